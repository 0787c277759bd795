//! Parsing, matching (each column, globs, negation, non-resource paths), the two layers, line
//! numbers in reasons, and malformed files.

use super::*;
use kgate_core::UserInfo;

pub(super) const ORIGIN: &str = "/etc/kgate/policy.yaml";

pub(super) fn doc(lines: &[&str]) -> String {
    let mut text =
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n".to_owned();
    for line in lines {
        text.push_str(&format!("  - {line}\n"));
    }
    text
}

fn policy(lines: &[&str]) -> Policy {
    Policy::parse(ORIGIN, &doc(lines)).unwrap()
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo::new(name).with_groups(groups.iter().copied())
}

fn res(u: UserInfo, verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
    Attributes::resource(u, verb, group, resource, ns)
}

fn named(mut a: Attributes, name: &str) -> Attributes {
    a.name = name.to_owned();
    a
}

fn sub(mut a: Attributes, subresource: &str) -> Attributes {
    a.subresource = subresource.to_owned();
    a
}

fn denied(p: &Policy, a: &Attributes) -> bool {
    matches!(p.deny_decision(a), Decision::Deny { .. })
}

fn allowed(p: &Policy, a: &Attributes) -> bool {
    p.allow_decision(a).is_allow()
}

#[test]
fn no_exec_in_kube_system_outside_sre() {
    let p = policy(&["p, deny, *, !sre, *, \"\", pods/exec|pods/attach, kube-system, *, *"]);
    let exec = |u| sub(res(u, "create", "", "pods", "kube-system"), "exec");
    assert!(denied(
        &p,
        &exec(user("alice", &["dev", "system:authenticated"]))
    ));
    assert!(denied(&p, &exec(user("root", &["system:masters"]))));
    assert!(!denied(
        &p,
        &exec(user("bob", &["sre", "system:authenticated"]))
    ));
    // Other namespaces, other subresources, the pod itself: not this line's business.
    let alice = || user("alice", &["dev"]);
    assert!(!denied(
        &p,
        &sub(res(alice(), "create", "", "pods", "team"), "exec")
    ));
    assert!(!denied(
        &p,
        &sub(res(alice(), "get", "", "pods", "kube-system"), "log")
    ));
    assert!(!denied(&p, &res(alice(), "get", "", "pods", "kube-system")));
    assert!(denied(
        &p,
        &sub(res(alice(), "create", "", "pods", "kube-system"), "attach")
    ));
}

#[test]
fn each_column_matches_on_its_own() {
    let p = policy(&["p, deny, alice, dev, delete, apps, deployments, team, web, *"]);
    let base = || {
        named(
            res(
                user("alice", &["dev"]),
                "delete",
                "apps",
                "deployments",
                "team",
            ),
            "web",
        )
    };
    assert!(denied(&p, &base()));
    let mut other_user = base();
    other_user.user.name = "bob".into();
    let mut other_group = base();
    other_group.user.groups = vec!["ops".into()];
    let mut other_verb = base();
    other_verb.verb = "get".into();
    let mut other_api_group = base();
    other_api_group.api_group = "extensions".into();
    let mut other_resource = base();
    other_resource.resource = "statefulsets".into();
    let mut other_subresource = base();
    other_subresource.subresource = "scale".into();
    let mut other_namespace = base();
    other_namespace.namespace = "prod".into();
    let mut other_name = base();
    other_name.name = "db".into();
    for (what, a) in [
        ("user", other_user),
        ("group", other_group),
        ("verb", other_verb),
        ("apiGroup", other_api_group),
        ("resource", other_resource),
        ("subresource", other_subresource),
        ("namespace", other_namespace),
        ("name", other_name),
    ] {
        assert!(!denied(&p, &a), "a different {what} still matched");
    }
}

#[test]
fn globs_alternatives_and_the_empty_value() {
    let p = policy(&[
        "p, deny, system:serviceaccount:ci:*, *, create|update|patch, *, *, prod-*, *, *",
        "p, deny, *, interns, get, \"\", secrets, *, *, *",
    ]);
    let sa = || {
        user(
            "system:serviceaccount:ci:jenkins",
            &["system:serviceaccounts"],
        )
    };
    assert!(denied(
        &p,
        &res(sa(), "patch", "apps", "deployments", "prod-eu")
    ));
    assert!(denied(&p, &res(sa(), "create", "", "configmaps", "prod-")));
    assert!(!denied(
        &p,
        &res(sa(), "get", "apps", "deployments", "prod-eu")
    ));
    assert!(!denied(
        &p,
        &res(sa(), "create", "", "configmaps", "staging")
    ));
    assert!(!denied(
        &p,
        &res(
            user("system:serviceaccount:cd:argo", &[]),
            "create",
            "",
            "pods",
            "prod-eu"
        )
    ));
    // `""` is the core group only.
    let intern = || user("ivy", &["interns"]);
    assert!(denied(&p, &res(intern(), "get", "", "secrets", "team")));
    assert!(!denied(
        &p,
        &res(intern(), "get", "example.com", "secrets", "team")
    ));
}

#[test]
fn star_matches_empty_values_and_a_plain_resource_not_its_subresources() {
    let p = policy(&["p, deny, *, *, get, *, pods, *, *, *"]);
    let cluster_scoped = res(user("u", &[]), "get", "", "pods", "");
    assert!(denied(&p, &cluster_scoped), "* matches the empty namespace");
    assert!(!denied(
        &p,
        &sub(res(user("u", &[]), "get", "", "pods", "x"), "log")
    ));
    let p = policy(&["p, deny, *, *, get, *, pods*, *, *, *"]);
    assert!(denied(
        &p,
        &sub(res(user("u", &[]), "get", "", "pods", "x"), "log")
    ));
}

#[test]
fn negation_on_groups_means_in_none_of_them() {
    let p = policy(&["p, deny, *, !sre|platform-*, delete, *, namespaces, *, *, *"]);
    let del = |u| res(u, "delete", "", "namespaces", "");
    assert!(denied(&p, &del(user("a", &["dev"]))));
    assert!(
        denied(&p, &del(user("a", &[]))),
        "no groups: in none of them"
    );
    assert!(!denied(&p, &del(user("a", &["dev", "sre"]))));
    assert!(!denied(&p, &del(user("a", &["platform-eu"]))));
    // Negation on a single value too.
    let p = policy(&["p, deny, !admin, *, delete, *, *, *, *, *"]);
    assert!(denied(&p, &del(user("alice", &[]))));
    assert!(!denied(&p, &del(user("admin", &[]))));
}

#[test]
fn non_resource_requests_match_on_path_and_verb() {
    let p = policy(&[
        "p, deny, *, !monitoring, get, *, *, *, *, /metrics",
        "p, allow, *, system:authenticated, get, *, *, *, *, /version|/healthz*",
    ]);
    let metrics = |u| Attributes::non_resource(u, "get", "/metrics");
    assert!(denied(&p, &metrics(user("a", &["dev"]))));
    assert!(!denied(&p, &metrics(user("prom", &["monitoring"]))));
    let authn = || user("a", &["system:authenticated"]);
    assert!(allowed(
        &p,
        &Attributes::non_resource(authn(), "get", "/version")
    ));
    assert!(allowed(
        &p,
        &Attributes::non_resource(authn(), "get", "/healthz/etcd")
    ));
    assert!(!allowed(
        &p,
        &Attributes::non_resource(authn(), "post", "/version")
    ));
    // A path line never matches a resource request, whose path is empty to the matcher.
    assert!(!denied(
        &p,
        &res(user("a", &["dev"]), "get", "", "pods", "x")
    ));
    // A resource line never matches a non-resource request.
    let p = policy(&["p, deny, *, *, get, *, pods, *, *, *"]);
    assert!(!denied(
        &p,
        &Attributes::non_resource(user("a", &[]), "get", "/api")
    ));
}

#[test]
fn deny_lines_deny_and_allow_lines_allow_each_in_its_own_layer() {
    let p = policy(&[
        "p, allow, ci-bot, *, list, \"\", pods, ci, *, *",
        "p, deny, ci-bot, *, list, \"\", pods, ci, *, *",
    ]);
    let a = res(user("ci-bot", &[]), "list", "", "pods", "ci");
    // Both layers see their own lines; the chain asks the deny layer first.
    assert!(denied(&p, &a));
    assert!(allowed(&p, &a));
    assert_eq!(p.deny_lines(), 1);
    assert_eq!(p.allow_lines(), 1);
    let handle = PolicyHandle::new(p);
    let chain = kgate_core::authz::AuthorizerChain::new(vec![
        Arc::new(PolicyAuthorizer::deny(handle.clone())),
        Arc::new(PolicyAuthorizer::allow(handle)),
    ]);
    assert!(matches!(chain.decide(&a), Decision::Deny { .. }));
    // Nothing matches: no opinion from either layer, without a reason to clutter the 403.
    let other = res(user("ci-bot", &[]), "list", "", "pods", "default");
    assert_eq!(chain.decide(&other), Decision::no_opinion(""));
}

#[test]
fn reasons_name_the_file_line_and_text() {
    let text = "# policy for the team\napiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  # no deletes\n  - p, deny, *, !sre, delete, *, namespaces, *, *, *\n\n  - \"p, allow, ci-bot, *, list, \\\"\\\", pods, ci, *, *\"\n";
    let p = Policy::parse(ORIGIN, text).unwrap();
    let d = p.deny_decision(&res(user("a", &[]), "delete", "", "namespaces", ""));
    assert_eq!(
        d,
        Decision::deny(
            r#"policy: denied by line 6 of /etc/kgate/policy.yaml: "p, deny, *, !sre, delete, *, namespaces, *, *, *""#
        )
    );
    let a = p.allow_decision(&res(user("ci-bot", &[]), "list", "", "pods", "ci"));
    assert_eq!(
        a,
        Decision::allow(
            r#"policy: allowed by line 8 of /etc/kgate/policy.yaml: "p, allow, ci-bot, *, list, "", pods, ci, *, *""#
        )
    );
}

#[test]
fn a_flow_style_list_is_named_by_index() {
    let text = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies: [\"p, deny, *, *, delete, *, *, *, *, *\"]\n";
    let p = Policy::parse(ORIGIN, text).unwrap();
    let d = p.deny_decision(&res(user("a", &[]), "delete", "", "pods", "x"));
    assert!(
        d.reason().starts_with("policy: denied by policies[0] of "),
        "{d:?}"
    );
}

#[test]
fn the_first_matching_line_is_named() {
    let p = policy(&[
        "p, deny, *, *, delete, *, secrets, *, *, *",
        "p, deny, *, *, delete, *, *, *, *, *",
        "p, deny, *, *, delete, *, *, *, *, *",
    ]);
    let d = p.deny_decision(&res(user("a", &[]), "delete", "", "pods", "x"));
    assert!(d.reason().contains("line 5 of"), "{d:?}");
}

#[test]
fn an_empty_policy_has_no_opinion() {
    let p = Policy::parse(
        ORIGIN,
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\n",
    )
    .unwrap();
    let a = res(user("a", &[]), "get", "", "pods", "x");
    assert_eq!(p.deny_decision(&a), Decision::no_opinion(""));
    assert_eq!(p.allow_decision(&a), Decision::no_opinion(""));
}

#[test]
fn the_handle_swaps_the_whole_policy() {
    let handle = PolicyHandle::new(policy(&["p, deny, *, *, delete, *, *, *, *, *"]));
    let deny = PolicyAuthorizer::deny(handle.clone());
    let a = res(user("a", &[]), "delete", "", "pods", "x");
    assert!(matches!(deny.authorize(&a), Decision::Deny { .. }));
    handle.replace(policy(&[]));
    assert_eq!(deny.authorize(&a), Decision::no_opinion(""));
    assert_eq!(deny.name(), "policy-deny");
}

#[test]
fn a_custom_model_with_roles() {
    let text = r#"apiVersion: kgate.io/v1alpha1
kind: AuthorizationPolicy
model: |
  [request_definition]
  r = user, groups, verb, apiGroup, resource, namespace, name, path

  [policy_definition]
  p = eft, sub, verb, resource

  [role_definition]
  g = _, _

  [policy_effect]
  e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

  [matchers]
  m = g(r.user, p.sub) && r.verb == p.verb && kgateMatch(r.resource, p.resource)
policies:
  - g, alice, readers
  - p, allow, readers, get, pods|services
"#;
    let p = Policy::parse(ORIGIN, text).unwrap();
    assert!(allowed(
        &p,
        &res(user("alice", &[]), "get", "", "services", "x")
    ));
    assert!(!allowed(
        &p,
        &res(user("bob", &[]), "get", "", "services", "x")
    ));
    assert!(!allowed(
        &p,
        &res(user("alice", &[]), "list", "", "services", "x")
    ));
    let d = p.allow_decision(&res(user("alice", &[]), "get", "", "pods", "x"));
    assert!(d.reason().contains("line 20 of"), "{d:?}");
}

#[test]
fn the_default_model_parses_and_is_the_default() {
    let with_default = format!(
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\nmodel: |\n{}policies:\n  - p, deny, *, *, get, *, *, *, *, *\n",
        DEFAULT_MODEL.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    let p = Policy::parse(ORIGIN, &with_default).unwrap();
    assert!(
        p.deny[0].prefilter.is_some(),
        "the default model written out keeps the pre-filter"
    );
    assert!(denied(&p, &res(user("a", &[]), "get", "", "pods", "x")));
}

fn error_of(text: &str) -> String {
    let error = Policy::parse(ORIGIN, text).unwrap_err();
    // The whole chain, as the gateway logs it.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[test]
fn bad_yaml_is_refused_with_its_position() {
    let e = error_of(
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  - [unclosed\n",
    );
    assert!(
        e.starts_with("not a valid AuthorizationPolicy document: "),
        "{e}"
    );
    assert!(e.contains("line 4"), "{e}");
    let e = error_of(
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicy:\n  - p, deny\n",
    );
    assert!(e.contains("unknown field `policy`"), "{e}");
    let e = error_of(
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  - p: deny\n",
    );
    assert!(e.contains("expected a string"), "{e}");
}

#[test]
fn the_wrong_kind_is_refused() {
    let e = error_of("apiVersion: v1\nkind: ConfigMap\n");
    assert_eq!(
        e,
        r#"expected apiVersion "kgate.io/v1alpha1" and kind "AuthorizationPolicy", found "v1" and "ConfigMap""#
    );
}

#[test]
fn bad_models_are_refused_with_the_reason() {
    let with_model = |model: &str| {
        format!(
            "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\nmodel: |\n{}",
            model
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
        )
    };
    let default_with = |from: &str, to: &str| with_model(&DEFAULT_MODEL.replace(from, to));
    let e = error_of(&default_with("r = user, groups,", "r = sub, groups,"));
    assert!(
        e.contains("[request_definition] must be `r = user, groups, verb"),
        "{e}"
    );
    let e = error_of(&default_with("p = eft,", "p = effect,"));
    assert!(e.contains("needs an `eft` column"), "{e}");
    let e = error_of(&default_with("!some(where (p.eft == deny))", "true"));
    assert!(e.contains("[policy_effect] must be"), "{e}");
    let e = error_of(&default_with(
        "kgateMatch(r.user, p.user)",
        "noSuchFunction(r.user, p.user)",
    ));
    assert!(
        e.starts_with("the model is invalid: the matcher cannot be evaluated"),
        "{e}"
    );
    assert!(e.contains("noSuchFunction"), "{e}");
    let e = error_of(&default_with(
        "kgateMatch(r.user, p.user) &&",
        "kgateMatch(r.user, p.user) && (((",
    ));
    assert!(e.starts_with("the model is invalid: "), "{e}");
    let e = error_of(&with_model(
        "[request_definition]\nr = user, groups, verb, apiGroup, resource, namespace, name, path\n",
    ));
    assert!(
        e.contains("[policy_definition] `p = ...` is missing"),
        "{e}"
    );
}

#[test]
fn bad_lines_are_refused_with_their_line() {
    let e = error_of(&doc(&[
        "p, deny, *, *, delete, *, *, *, *, *",
        "p, deny, *, *, delete, *, *",
    ]));
    assert_eq!(
        e,
        r#"line 5: 6 fields after p, the model's policy_definition has 9 (eft, user, groups, verb, apiGroup, resource, namespace, name, path): "p, deny, *, *, delete, *, *""#
    );
    let e = error_of(&doc(&["p, permit, *, *, delete, *, *, *, *, *"]));
    assert!(
        e.starts_with("line 4: the effect is \"permit\"; it must be deny or allow"),
        "{e}"
    );
    let e = error_of(&doc(&["p, deny, *, , delete, *, *, *, *, *"]));
    assert!(e.starts_with("line 4: field 4 is empty"), "{e}");
    let e = error_of(&doc(&["p, deny, *, sre||ops, delete, *, *, *, *, *"]));
    assert!(
        e.starts_with("line 4: groups: \"sre||ops\" has an empty alternative"),
        "{e}"
    );
    let e = error_of(&doc(&["p, deny, !!alice, *, delete, *, *, *, *, *"]));
    assert!(e.contains("only one leading !"), "{e}");
    let e = error_of(&doc(&["g, alice, admins"]));
    assert!(
        e.starts_with("line 4: unknown section \"g\" (the model defines p)"),
        "{e}"
    );
}

#[test]
fn read_only_fridays_with_a_weekday_column() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    assert_eq!(engine::weekday(UNIX_EPOCH), "Thursday");
    // 2024-05-17T12:00:00Z was a Friday.
    assert_eq!(
        engine::weekday(UNIX_EPOCH + Duration::from_secs(1_715_947_200)),
        "Friday"
    );
    let today = engine::weekday(SystemTime::now());
    let other = if today == "Friday" {
        "Monday"
    } else {
        "Friday"
    };
    let model = DEFAULT_MODEL
        .replace(
            "name, path\n\n[policy_effect]",
            "name, path, days\n\n[policy_effect]",
        )
        .replace(
            "kgateMatch(r.path, p.path)",
            "kgateMatch(r.path, p.path) && kgateMatch(kgateWeekday(), p.days)",
        );
    let on = |day: &str| {
        let text = format!(
            "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\nmodel: |\n{}policies:\n  - p, deny, *, dev, !get|list|watch, *, *, *, *, *, {day}\n",
            model.lines().map(|l| format!("  {l}\n")).collect::<String>()
        );
        Policy::parse(ORIGIN, &text).unwrap()
    };
    let dev = || user("alice", &["dev"]);
    assert!(denied(
        &on(today),
        &res(dev(), "create", "apps", "deployments", "team")
    ));
    assert!(!denied(
        &on(today),
        &res(dev(), "list", "apps", "deployments", "team")
    ));
    assert!(!denied(
        &on(today),
        &res(user("ops", &["sre"]), "create", "", "pods", "team")
    ));
    assert!(!denied(
        &on(other),
        &res(dev(), "create", "apps", "deployments", "team")
    ));
}

/// The README's policy section: its files parse, its default model is this one.
#[test]
fn the_readme_examples_parse() {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Policy layer (casbin)")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap();
    let blocks: Vec<&str> = section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|b| b.split_once('\n').unwrap().1)
        .collect();
    let files: Vec<&&str> = blocks
        .iter()
        .filter(|b| b.contains("kind: AuthorizationPolicy"))
        .collect();
    assert_eq!(files.len(), 3);
    for file in files {
        Policy::parse("README.md", file).unwrap_or_else(|e| panic!("{e:?}\n{file}"));
    }
    assert!(
        blocks.contains(&DEFAULT_MODEL),
        "the README shows another default model"
    );
}
