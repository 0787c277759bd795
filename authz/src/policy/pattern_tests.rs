//! The pattern language, and the pre-filter checked against casbin: with and without it, the
//! same decisions.

use super::tests::{doc, ORIGIN};
use super::*;
use kgate_core::UserInfo;
use proptest::prelude::*;

#[test]
fn patterns() {
    use pattern::{matches, matches_any};
    assert!(matches("*", ""));
    assert!(matches("*", "anything/at:all"));
    assert!(matches("a*c", "abbbc"));
    assert!(matches("a*c", "ac"));
    assert!(!matches("a*c", "acb"));
    assert!(matches("*a*b*", "xxaxxbxx"));
    assert!(!matches("*a*b*", "xxbxxaxx"));
    assert!(matches("\"\"", ""));
    assert!(!matches("\"\"", "x"));
    assert!(matches("\"\"|apps", "apps"));
    assert!(matches("!kube-*", "team"));
    assert!(matches("!kube-*", ""));
    assert!(!matches("!kube-*", "kube-system"));
    assert!(matches_any("*", []));
    assert!(!matches_any("sre", []));
    assert!(matches_any("!sre", []));
    assert!(matches_any("sre|ops", ["dev", "ops"]));
    assert!(!matches_any("!sre|ops", ["dev", "ops"]));
    // No blow-up on many stars.
    let long = "a".repeat(10_000);
    assert!(!matches("*a*a*a*a*a*a*a*a*b", &long));
}

/// The default matcher with its terms in another order: the same meaning, but not the
/// default model, so every line goes to casbin.
fn unfiltered(lines: &[String]) -> Policy {
    let model = DEFAULT_MODEL.replace(
        "m = kgateMatch(r.user, p.user) && kgateMatchAny(r.groups, p.groups)",
        "m = kgateMatchAny(r.groups, p.groups) && kgateMatch(r.user, p.user)",
    );
    let mut text = format!(
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\nmodel: |\n{}policies:\n",
        model
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    for line in lines {
        text.push_str(&format!("  - {line}\n"));
    }
    let p = Policy::parse(ORIGIN, &text).unwrap();
    assert!(p.deny.iter().chain(&p.allow).all(|l| l.prefilter.is_none()));
    p
}

fn column(values: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(values).prop_map(str::to_owned)
}

fn line() -> impl Strategy<Value = String> {
    (
        column(&["deny", "allow"]),
        column(&["*", "alice", "!alice", "a*"]),
        column(&["*", "sre", "!sre", "sre|dev"]),
        column(&["*", "get", "get|list", "!delete"]),
        column(&["*", "\"\"", "apps", "\"\"|apps"]),
        column(&["*", "pods", "pods/*", "pods*", "!secrets"]),
        column(&["*", "\"\"", "kube-*", "!kube-system"]),
        column(&["*", "web", "!web"]),
        column(&["*", "\"\"", "/metrics", "/healthz*"]),
    )
        .prop_map(|(e, u, g, v, ag, r, ns, n, path)| {
            format!("p, {e}, {u}, {g}, {v}, {ag}, {r}, {ns}, {n}, {path}")
        })
}

fn request() -> impl Strategy<Value = Attributes> {
    (
        column(&["alice", "bob"]),
        prop::sample::subsequence(vec!["sre", "dev", "system:authenticated"], 0..3),
        column(&["get", "list", "delete"]),
        any::<bool>(),
        column(&["", "apps"]),
        column(&["pods", "secrets"]),
        column(&["", "log", "exec"]),
        column(&["", "kube-system", "team"]),
        column(&["", "web"]),
        column(&["/metrics", "/healthz/etcd", "/api"]),
    )
        .prop_map(
            |(u, groups, verb, is_resource, ag, r, sub, ns, name, path)| {
                let user = UserInfo::new(u).with_groups(groups);
                if !is_resource {
                    return Attributes::non_resource(user, &verb, &path);
                }
                let mut a = Attributes::resource(user, &verb, &ag, &r, &ns);
                a.subresource = sub;
                a.name = name;
                a
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    /// The pre-filter only ever saves work: with it and without it, the same decisions.
    #[test]
    fn never_changes_a_decision(lines in prop::collection::vec(line(), 1..6), a in request()) {
        let filtered = Policy::parse(ORIGIN, &doc(&lines.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
        let unfiltered = unfiltered(&lines);
        prop_assert_eq!(filtered.deny_decision(&a).is_allow(), unfiltered.deny_decision(&a).is_allow());
        prop_assert_eq!(
            matches!(filtered.deny_decision(&a), Decision::Deny { .. }),
            matches!(unfiltered.deny_decision(&a), Decision::Deny { .. })
        );
        prop_assert_eq!(filtered.allow_decision(&a).is_allow(), unfiltered.allow_decision(&a).is_allow());
    }
}
