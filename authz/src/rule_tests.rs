//! Unit tests of one compiled rule against one request.

use super::*;
use kgate_core::UserInfo;

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> CompiledRule {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    CompiledRule::compile(&PolicyRule {
        verbs: s(verbs),
        api_groups: s(groups),
        resources: s(resources),
        resource_names: s(names),
        non_resource_urls: Vec::new(),
    })
}

fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
    let mut a = Attributes::resource(UserInfo::new("u"), verb, group, resource, "ns");
    a.subresource = sub.to_owned();
    a.name = name.to_owned();
    a
}

#[test]
fn resource_matching_table() {
    // (rule verbs, groups, resources, names) vs (verb, group, resource, subresource, name)
    // (rule verbs, groups, resources, names), request, allowed
    type Case = (Names, Names, Names, Names, [&'static str; 5], bool);
    type Names = &'static [&'static str];
    let cases: &[Case] = &[
        (
            &["get"],
            &[""],
            &["pods"],
            &[],
            ["get", "", "pods", "", "p"],
            true,
        ),
        (
            &["get"],
            &[""],
            &["pods"],
            &[],
            ["list", "", "pods", "", ""],
            false,
        ),
        (
            &["*"],
            &[""],
            &["pods"],
            &[],
            ["delete", "", "pods", "", "p"],
            true,
        ),
        (
            &["get"],
            &["*"],
            &["pods"],
            &[],
            ["get", "x.io", "pods", "", ""],
            true,
        ),
        (
            &["get"],
            &[""],
            &["pods"],
            &[],
            ["get", "apps", "pods", "", ""],
            false,
        ),
        (
            &["get"],
            &[""],
            &["*"],
            &[],
            ["get", "", "pods", "log", ""],
            true,
        ),
        (
            &["get"],
            &[""],
            &["pods"],
            &[],
            ["get", "", "pods", "status", ""],
            false,
        ),
        (
            &["get"],
            &[""],
            &["pods/log"],
            &[],
            ["get", "", "pods", "log", "p"],
            true,
        ),
        (
            &["get"],
            &[""],
            &["pods/log"],
            &[],
            ["get", "", "pods", "", "p"],
            false,
        ),
        (
            &["get"],
            &[""],
            &["pods/log"],
            &[],
            ["get", "", "pods", "exec", "p"],
            false,
        ),
        (
            &["get"],
            &["apps"],
            &["*/scale"],
            &[],
            ["get", "apps", "deployments", "scale", ""],
            true,
        ),
        (
            &["get"],
            &["apps"],
            &["*/scale"],
            &[],
            ["get", "apps", "deployments", "", ""],
            false,
        ),
        (
            &["get"],
            &["apps"],
            &["*/scale"],
            &[],
            ["get", "apps", "deployments", "status", ""],
            false,
        ),
        (
            &["get"],
            &[""],
            &["pods"],
            &["web"],
            ["get", "", "pods", "", "web"],
            true,
        ),
        (
            &["get"],
            &[""],
            &["pods"],
            &["web"],
            ["get", "", "pods", "", "db"],
            false,
        ),
        (
            &["list"],
            &[""],
            &["pods"],
            &["web"],
            ["list", "", "pods", "", ""],
            false,
        ),
        (
            &["create"],
            &[""],
            &["pods"],
            &["web"],
            ["create", "", "pods", "", ""],
            false,
        ),
        (&[], &["*"], &["*"], &[], ["get", "", "pods", "", ""], false),
        (
            &["get"],
            &[],
            &["pods"],
            &[],
            ["get", "", "pods", "", ""],
            false,
        ),
        (
            &["get"],
            &[""],
            &["podsx"],
            &[],
            ["get", "", "pods", "x", ""],
            false,
        ),
    ];
    for (verbs, groups, resources, names, [v, g, r, s, n], want) in cases {
        let got = rule(verbs, groups, resources, names).allows(&req(v, g, r, s, n));
        assert_eq!(
            got, *want,
            "rule {verbs:?} {groups:?} {resources:?} {names:?} vs {v} {g} {r}/{s} {n}"
        );
    }
}

#[test]
fn non_resource_urls() {
    let r = CompiledRule::compile(&PolicyRule {
        verbs: vec!["get".into()],
        non_resource_urls: vec!["/healthz".into(), "/apis/*".into(), "/logs**".into()],
        ..PolicyRule::default()
    });
    let u = || UserInfo::new("u");
    for (verb, path, want) in [
        ("get", "/healthz", true),
        ("get", "/healthz/etcd", false),
        ("post", "/healthz", false),
        ("get", "/apis/apps", true),
        ("get", "/apis/", true),
        ("get", "/apis", false),
        ("get", "/logs/x", true),
        ("get", "/logs", true),
    ] {
        assert_eq!(
            r.allows(&Attributes::non_resource(u(), verb, path)),
            want,
            "{verb} {path}"
        );
    }
    let all = CompiledRule::compile(&PolicyRule {
        verbs: vec!["*".into()],
        non_resource_urls: vec!["*".into()],
        ..PolicyRule::default()
    });
    assert!(all.allows(&Attributes::non_resource(u(), "get", "/anything")));
    // A non-resource rule never allows a resource request.
    assert!(!all.allows(&req("get", "", "pods", "", "")));
}

#[test]
fn verbs_match_exactly_and_case_sensitively() {
    let r = rule(&["get", "Watch", "frobnicate"], &["*"], &["*"], &[]);
    for (verb, want) in [
        ("get", true),
        ("GET", false),
        ("Get", false),
        ("watch", false),
        ("Watch", true),
        ("frobnicate", true),
        ("frob", false),
        ("list", false),
        ("", false),
    ] {
        assert_eq!(r.allows(&req(verb, "", "pods", "", "")), want, "{verb}");
    }
    let all = rule(&["*"], &["*"], &["*"], &[]);
    for verb in ["get", "escalate", "anything", ""] {
        assert!(all.allows(&req(verb, "x", "y", "", "")), "{verb}");
    }
    // `*` is only a wildcard alone, never inside a word.
    let partial = rule(&["get*"], &["*"], &["*"], &[]);
    assert!(!partial.allows(&req("get", "", "pods", "", "")));
}

#[test]
fn only_star_is_a_resource_wildcard() {
    let pods_star = rule(&["get"], &[""], &["pods/*"], &[]);
    assert!(!pods_star.allows(&req("get", "", "pods", "log", "p")));
    assert!(!pods_star.allows(&req("get", "", "pods", "", "p")));
    let star_log = rule(&["get"], &[""], &["*/log"], &[]);
    assert!(star_log.allows(&req("get", "", "pods", "log", "p")));
    assert!(!star_log.allows(&req("get", "", "pods", "", "p")));
    assert!(!star_log.allows(&req("get", "", "pods", "logs", "p")));
    assert!(!star_log.allows(&req("get", "", "pods", "og", "p")));
    // resourceNames has no wildcard either.
    let named_star = rule(&["get"], &[""], &["pods"], &["*"]);
    assert!(!named_star.allows(&req("get", "", "pods", "", "web")));
    assert!(named_star.allows(&req("get", "", "pods", "", "*")));
}

#[test]
fn same_compares_every_length() {
    let text = "abcdefghijklmnopqrstuvwxyz0123456789";
    for len in 0..text.len() {
        let a = &text[..len];
        assert!(same(a, a), "{len}");
        assert!(!same(a, &text[..len + 1]), "{len}");
        for i in 0..len {
            let mut b = a.as_bytes().to_vec();
            b[i] = b'#';
            let b = String::from_utf8(b).unwrap();
            assert!(!same(a, &b), "{len} at {i}");
        }
    }
}
