//! The escalation check: `covers` case by case (from Kubernetes' documented escalation
//! prevention: a user can only create or update a role if it already has all the permissions
//! contained in the role, at the same scope), and `confirm_no_escalation`'s message.

use super::*;
use serde_json::json;

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|x| (*x).to_owned()).collect()
}

fn res(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: s(verbs),
        api_groups: s(groups),
        resources: s(resources),
        ..PolicyRule::default()
    }
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: s(names),
        ..res(verbs, groups, resources)
    }
}

fn url(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: s(verbs),
        non_resource_urls: s(urls),
        ..PolicyRule::default()
    }
}

#[test]
fn covers_follows_kubernetes() {
    let star = || res(&["*"], &["*"], &["*"]);
    // (owner, requested, covered)
    let cases: Vec<(Vec<PolicyRule>, Vec<PolicyRule>, bool)> = vec![
        (vec![star()], vec![res(&["get"], &[""], &["pods"])], true),
        (
            vec![star()],
            vec![res(&["delete"], &["apps"], &["deployments/scale"])],
            true,
        ),
        (
            vec![star()],
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            true,
        ),
        // A resource star does not cover URLs, nor the reverse.
        (vec![star()], vec![url(&["get"], &["/healthz"])], false),
        (
            vec![url(&["*"], &["*"])],
            vec![url(&["get"], &["/healthz"])],
            true,
        ),
        (
            vec![url(&["*"], &["*"])],
            vec![res(&["get"], &[""], &["pods"])],
            false,
        ),
        (
            vec![res(&["get", "list"], &[""], &["pods"])],
            vec![res(&["get"], &[""], &["pods"])],
            true,
        ),
        (
            vec![res(&["get"], &[""], &["pods"])],
            vec![res(&["get", "list"], &[""], &["pods"])],
            false,
        ),
        (
            vec![
                res(&["get"], &[""], &["pods"]),
                res(&["list"], &[""], &["pods"]),
            ],
            vec![res(&["get", "list"], &[""], &["pods"])],
            true,
        ),
        (
            vec![res(&["get"], &["*"], &["pods"])],
            vec![res(&["get"], &["x.io"], &["pods"])],
            true,
        ),
        (
            vec![res(&["get"], &["apps"], &["pods"])],
            vec![res(&["get"], &[""], &["pods"])],
            false,
        ),
        (
            vec![res(&["get"], &[""], &["pods"])],
            vec![res(&["get"], &[""], &["pods/log"])],
            false,
        ),
        (
            vec![res(&["get"], &[""], &["pods/log"])],
            vec![res(&["get"], &[""], &["pods"])],
            false,
        ),
        (
            vec![res(&["update"], &["apps"], &["*/scale"])],
            vec![res(&["update"], &["apps"], &["deployments/scale"])],
            true,
        ),
        (
            vec![res(&["update"], &["apps"], &["*/scale"])],
            vec![res(&["update"], &["apps"], &["*/scale"])],
            true,
        ),
        (
            vec![res(&["update"], &["apps"], &["deployments/scale"])],
            vec![res(&["update"], &["apps"], &["*/scale"])],
            false,
        ),
        (
            vec![res(&["update"], &["apps"], &["*/scale"])],
            vec![res(&["update"], &["apps"], &["deployments"])],
            false,
        ),
        (
            vec![res(&["get"], &[""], &["pods"])],
            vec![res(&["get"], &[""], &["*"])],
            false,
        ),
        // resourceNames: no names cover any names; names cover only themselves.
        (
            vec![res(&["get"], &[""], &["secrets"])],
            vec![named(&["get"], &[""], &["secrets"], &["a", "b"])],
            true,
        ),
        (
            vec![named(&["get"], &[""], &["secrets"], &["a", "b"])],
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            true,
        ),
        (
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            vec![named(&["get"], &[""], &["secrets"], &["a", "b"])],
            false,
        ),
        (
            vec![named(&["get"], &[""], &["secrets"], &["a"])],
            vec![res(&["get"], &[""], &["secrets"])],
            false,
        ),
        // URLs: exact, star, trailing-star prefixes.
        (
            vec![url(&["get"], &["/healthz"])],
            vec![url(&["get"], &["/healthz"])],
            true,
        ),
        (
            vec![url(&["get"], &["/healthz"])],
            vec![url(&["get"], &["/healthz/etcd"])],
            false,
        ),
        (
            vec![url(&["get"], &["/metrics/*"])],
            vec![url(&["get"], &["/metrics/slis", "/metrics/*"])],
            true,
        ),
        (
            vec![url(&["get"], &["/metrics/*"])],
            vec![url(&["get"], &["/metrics"])],
            false,
        ),
        (
            vec![url(&["get"], &["/metrics"])],
            vec![url(&["get"], &["/metrics*"])],
            false,
        ),
        (
            vec![url(&["get"], &["*"])],
            vec![url(&["post"], &["/x"])],
            false,
        ),
        // Nothing requested is always covered.
        (vec![], vec![], true),
        (vec![], vec![res(&[], &[""], &["pods"])], true),
        (vec![], vec![res(&["get"], &[""], &["pods"])], false),
    ];
    for (i, (owner, requested, want)) in cases.iter().enumerate() {
        assert_eq!(
            covers(owner, requested).is_ok(),
            *want,
            "case {i}: {owner:?} covers {requested:?}"
        );
    }
}

#[test]
fn uncovered_rules_are_atomic() {
    let owner = [res(&["get"], &[""], &["pods"])];
    let requested = [
        named(&["get", "delete"], &["", "apps"], &["pods"], &["a"]),
        url(&["get"], &["/x", "/y"]),
    ];
    let missing = covers(&owner, &requested).unwrap_err();
    let described: Vec<String> = missing.iter().map(PolicyRule::compact_string).collect();
    assert_eq!(
        described,
        [
            r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["delete"]}"#,
            r#"{APIGroups:["apps"], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}"#,
            r#"{APIGroups:["apps"], Resources:["pods"], ResourceNames:["a"], Verbs:["delete"]}"#,
            r#"{NonResourceURLs:["/x"], Verbs:["get"]}"#,
            r#"{NonResourceURLs:["/y"], Verbs:["get"]}"#,
        ]
    );
}

fn authorizer(objects: &[serde_json::Value]) -> RbacAuthorizer {
    let rbac = RbacAuthorizer::new();
    for o in objects {
        rbac.upsert(o).unwrap();
    }
    rbac
}

fn alice() -> UserInfo {
    UserInfo::new("alice").with_groups(["dev", "system:authenticated"])
}

#[test]
fn confirm_no_escalation_reports_like_kubernetes() {
    let rbac = authorizer(&[
        json!({"kind": "ClusterRole", "metadata": {"name": "reader"},
               "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
                         {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "dev-read"},
               "roleRef": {"kind": "ClusterRole", "name": "reader"},
               "subjects": [{"kind": "Group", "name": "dev"}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "deployer"},
               "rules": [{"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "alice-deploy", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "deployer"},
               "subjects": [{"kind": "User", "name": "alice"}]}),
    ]);
    let held = [
        res(&["get"], &[""], &["pods"]),
        url(&["get"], &["/healthz"]),
    ];
    assert_eq!(rbac.confirm_no_escalation(&alice(), "", &held), Ok(()));
    // A RoleBinding's grant counts in its namespace only.
    let deploy = [res(&["create", "delete"], &["apps"], &["deployments"])];
    assert_eq!(
        rbac.confirm_no_escalation(&alice(), "team", &deploy),
        Ok(())
    );
    let err = rbac
        .confirm_no_escalation(&alice(), "other", &deploy)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user \"alice\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"create\" \"delete\"]}"
    );
    // Several missing rules: compacted per resource, one line each, sorted.
    let wanted = [
        res(&["get", "watch", "delete"], &[""], &["pods", "secrets"]),
        named(&["update"], &[""], &["configmaps"], &["app"]),
        url(&["get", "post"], &["/metrics"]),
    ];
    let err = rbac
        .confirm_no_escalation(&alice(), "", &wanted)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user \"alice\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"configmaps\"], ResourceNames:[\"app\"], Verbs:[\"update\"]}\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"watch\" \"delete\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"watch\" \"delete\"]}\n\
         {NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}\n\
         {NonResourceURLs:[\"/metrics\"], Verbs:[\"post\"]}"
    );
    assert_eq!(err.missing.len(), 5);
    assert!(err.resolution_errors.is_empty());
}

#[test]
fn resolution_errors_are_appended() {
    let rbac = authorizer(&[
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "ghost"},
           "roleRef": {"kind": "ClusterRole", "name": "missing"},
           "subjects": [{"kind": "User", "name": "bob"}]}),
    ]);
    let bob = UserInfo::new("bob");
    let err = rbac
        .confirm_no_escalation(&bob, "ns", &[res(&["get"], &[""], &["pods"])])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "user \"bob\" (groups=[]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}; \
         resolution errors: [clusterrole.rbac.authorization.k8s.io \"missing\" not found]"
    );
    // Nothing requested: nothing to escalate, whatever failed to resolve.
    assert_eq!(rbac.confirm_no_escalation(&bob, "ns", &[]), Ok(()));
}

#[test]
fn cluster_admin_covers_everything() {
    let rbac = RbacAuthorizer::new();
    for o in crate::bootstrap::cluster_roles()
        .iter()
        .chain(&crate::bootstrap::cluster_role_bindings())
    {
        rbac.upsert(o).unwrap();
    }
    let root = UserInfo::new("root").with_groups(["system:masters", "system:authenticated"]);
    let anything = [
        named(&["*"], &["*"], &["*"], &["x"]),
        url(&["*"], &["*"]),
        res(
            &["escalate", "bind"],
            &["rbac.authorization.k8s.io"],
            &["clusterroles"],
        ),
    ];
    assert_eq!(rbac.confirm_no_escalation(&root, "", &anything), Ok(()));
    let nobody = UserInfo::new("nobody").with_groups(["system:authenticated"]);
    assert!(rbac.confirm_no_escalation(&nobody, "", &anything).is_err());
}
