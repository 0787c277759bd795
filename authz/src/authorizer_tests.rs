//! Table tests written from the Kubernetes RBAC documentation
//! (https://kubernetes.io/docs/reference/access-authn-authz/rbac/), over the bootstrap policy plus
//! a few objects of our own; then the update paths and the privileged-groups authorizer.

use super::*;
use crate::bootstrap;
use kgate_core::authz::AuthorizerChain;
use kgate_core::UserInfo;
use serde_json::{json, Value};
use std::sync::Arc;

pub(crate) fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name}, "rules": rules})
}

pub(crate) fn role(ns: &str, name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

pub(crate) fn binding(ns: &str, name: &str, role_ref: (&str, &str), subjects: Value) -> Value {
    let kind = if ns.is_empty() {
        "ClusterRoleBinding"
    } else {
        "RoleBinding"
    };
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
           "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_ref.0, "name": role_ref.1},
           "subjects": subjects})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

fn fixture() -> RbacAuthorizer {
    let rbac = RbacAuthorizer::new();
    for o in bootstrap::cluster_roles()
        .iter()
        .chain(&bootstrap::cluster_role_bindings())
    {
        rbac.upsert(o).unwrap();
    }
    let objects = [
        binding(
            "team",
            "alice-view",
            ("ClusterRole", "view"),
            json!([user("alice")]),
        ),
        role(
            "team",
            "pod-logs",
            json!([{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
        ),
        binding(
            "team",
            "bob-logs",
            ("Role", "pod-logs"),
            json!([user("bob")]),
        ),
        // The same Role name from another namespace: Roles resolve in the binding's namespace.
        binding(
            "staging",
            "bob-logs",
            ("Role", "pod-logs"),
            json!([user("bob")]),
        ),
        role(
            "team",
            "scaler",
            json!([{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get", "update"]}]),
        ),
        binding(
            "team",
            "bob-scaler",
            ("Role", "scaler"),
            json!([user("bob")]),
        ),
        role(
            "team",
            "app-config",
            json!([{"apiGroups": [""], "resources": ["configmaps"],
                                           "resourceNames": ["app-config"], "verbs": ["get", "update"]}]),
        ),
        binding(
            "team",
            "frank-config",
            ("Role", "app-config"),
            json!([user("frank")]),
        ),
        cluster_role(
            "node-reader",
            json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]),
        ),
        binding(
            "",
            "dev-read-nodes",
            ("ClusterRole", "node-reader"),
            json!([group("dev")]),
        ),
        cluster_role(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
        ),
        binding(
            "",
            "ops-pods",
            ("ClusterRole", "pod-reader"),
            json!([group("ops")]),
        ),
        binding(
            "ci",
            "ci-deployer",
            ("ClusterRole", "edit"),
            json!([{"kind": "ServiceAccount", "name": "deployer"}]),
        ),
        binding(
            "team",
            "cross-sa",
            ("ClusterRole", "view"),
            json!([{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}]),
        ),
        binding(
            "",
            "ghost",
            ("ClusterRole", "missing"),
            json!([user("carol")]),
        ),
        binding(
            "team",
            "ghost-role",
            ("Role", "absent"),
            json!([user("carol")]),
        ),
        cluster_role(
            "health-reader",
            json!([{"nonResourceURLs": ["/healthz", "/metrics/*"], "verbs": ["get"]}]),
        ),
        binding(
            "",
            "mon-health",
            ("ClusterRole", "health-reader"),
            json!([user("mon")]),
        ),
        binding(
            "multi",
            "multi",
            ("ClusterRole", "view"),
            json!([group("qa"), user("gina")]),
        ),
    ];
    for o in &objects {
        rbac.upsert(o).unwrap();
    }
    rbac
}

/// `name` with the groups authentication gives it; `system:authenticated` is added as
/// kube-apiserver does for every authenticated user.
fn who(spec: &str) -> UserInfo {
    let mut parts = spec.split('|');
    let name = parts.next().unwrap_or_default();
    if name == "system:anonymous" {
        return UserInfo::anonymous();
    }
    let mut u = UserInfo::new(name).with_groups(parts);
    u.add_authenticated_group();
    u
}

/// `verb group resource[/sub] namespace [name]`, or `verb /path` for a non-resource URL.
fn request(u: UserInfo, spec: &str) -> Attributes {
    let f: Vec<&str> = spec.split_whitespace().collect();
    if f[1].starts_with('/') {
        return Attributes::non_resource(u, f[0], f[1]);
    }
    let group = if f[1] == "core" { "" } else { f[1] };
    let (resource, sub) = f[2].split_once('/').unwrap_or((f[2], ""));
    let ns = f.get(3).map_or("", |n| if *n == "-" { "" } else { n });
    let mut a = Attributes::resource(u, f[0], group, resource, ns);
    a.subresource = sub.to_owned();
    a.name = f.get(4).map_or(String::new(), |n| (*n).to_owned());
    a
}

const NO: &str = "";

#[test]
fn decisions_follow_kubernetes_rbac() {
    let rbac = fixture();
    let cases: &[(&str, &str, Option<&str>)] = &[
        // A RoleBinding to a ClusterRole grants within its namespace only.
        (
            "alice",
            "get core pods team web",
            Some(
                r#"RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice""#,
            ),
        ),
        (
            "alice",
            "list core pods team",
            Some(
                r#"RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice""#,
            ),
        ),
        ("alice", "watch core pods team", Some("")),
        ("alice", "create core pods team", None),
        ("alice", "delete core pods team web", None),
        ("alice", "get core pods other web", None),
        ("alice", "list core pods -", None),
        // view's flattened rules: subresources it lists, and none it does not.
        ("alice", "get core pods/log team web", Some("")),
        ("alice", "get core pods/status team web", Some("")),
        ("alice", "create core pods/exec team web", None),
        ("alice", "get core secrets team s", None),
        ("alice", "list apps deployments team", Some("")),
        ("alice", "get apps deployments/scale team web", Some("")),
        ("alice", "update apps deployments/scale team web", None),
        ("alice", "list core configmaps team", Some("")),
        ("alice", "list core endpoints team", Some("")),
        ("alice", "get core nodes - n1", None),
        // Bootstrap bindings for every authenticated user, and for anonymous.
        (
            "alice",
            "get /api",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group "system:authenticated""#,
            ),
        ),
        ("alice", "get /apis/apps/v1", Some("")),
        ("alice", "post /api", None),
        (
            "alice",
            "create authorization.k8s.io selfsubjectaccessreviews -",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated""#,
            ),
        ),
        (
            "system:anonymous",
            "get /version",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated""#,
            ),
        ),
        ("system:anonymous", "get /api", None),
        ("system:anonymous", "get core pods default", None),
        // cluster-admin through its bootstrap binding to system:masters.
        (
            "admin|system:masters",
            "delete core nodes - n1",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#,
            ),
        ),
        ("admin|system:masters", "get /metrics", Some("")),
        (
            "admin|system:masters",
            "create x.io widgets/scale any w",
            Some(""),
        ),
        // Group subjects, and a ClusterRoleBinding granting namespaced resources everywhere.
        (
            "dana|dev",
            "get core nodes - n1",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "dev-read-nodes" of ClusterRole "node-reader" to Group "dev""#,
            ),
        ),
        ("dana|dev", "delete core nodes - n1", None),
        ("dana", "get core nodes - n1", None),
        (
            "eve|ops",
            "get core pods anywhere p",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "ops-pods" of ClusterRole "pod-reader" to Group "ops""#,
            ),
        ),
        ("eve|ops", "list core pods -", Some("")),
        ("eve|ops", "get core pods/log anywhere p", None),
        // ServiceAccount subjects: an unqualified one is in the binding's namespace.
        (
            "system:serviceaccount:ci:deployer",
            "create apps deployments ci",
            Some(
                r#"RBAC: allowed by RoleBinding "ci-deployer/ci" of ClusterRole "edit" to ServiceAccount "deployer/ci""#,
            ),
        ),
        (
            "system:serviceaccount:ci:deployer",
            "create apps deployments team",
            None,
        ),
        (
            "system:serviceaccount:team:deployer",
            "create apps deployments ci",
            None,
        ),
        (
            "system:serviceaccount:ci:builder",
            "get core pods team p",
            Some(
                r#"RBAC: allowed by RoleBinding "cross-sa/team" of ClusterRole "view" to ServiceAccount "builder/ci""#,
            ),
        ),
        ("builder", "get core pods team p", None),
        // A rule for pods/log grants the subresource only.
        (
            "bob",
            "get core pods/log team web",
            Some(
                r#"RBAC: allowed by RoleBinding "bob-logs/team" of Role "pod-logs" to User "bob""#,
            ),
        ),
        ("bob", "get core pods team web", None),
        ("bob", "get core pods/log other web", None),
        // */scale: any resource's scale subresource.
        (
            "bob",
            "update apps deployments/scale team web",
            Some(
                r#"RBAC: allowed by RoleBinding "bob-scaler/team" of Role "scaler" to User "bob""#,
            ),
        ),
        ("bob", "get apps statefulsets/scale team db", Some("")),
        ("bob", "update apps deployments team web", None),
        ("bob", "update apps deployments/status team web", None),
        // resourceNames: only named requests, never list/create/deletecollection.
        (
            "frank",
            "get core configmaps team app-config",
            Some(
                r#"RBAC: allowed by RoleBinding "frank-config/team" of Role "app-config" to User "frank""#,
            ),
        ),
        ("frank", "update core configmaps team app-config", Some("")),
        ("frank", "get core configmaps team other-config", None),
        ("frank", "list core configmaps team", None),
        ("frank", "create core configmaps team", None),
        ("frank", "deletecollection core configmaps team", None),
        // Non-resource URLs, exact and with a trailing *.
        (
            "mon",
            "get /healthz",
            Some(
                r#"RBAC: allowed by ClusterRoleBinding "mon-health" of ClusterRole "health-reader" to User "mon""#,
            ),
        ),
        ("mon", "get /metrics/slis", Some("")),
        ("mon", "get /metrics", None),
        ("mon", "get /healthz/etcd", None),
        // The first subject of a binding that applies is the one named.
        (
            "gina|qa",
            "get core pods multi p",
            Some(
                r#"RBAC: allowed by RoleBinding "multi/multi" of ClusterRole "view" to Group "qa""#,
            ),
        ),
        (
            "gina",
            "get core pods multi p",
            Some(
                r#"RBAC: allowed by RoleBinding "multi/multi" of ClusterRole "view" to User "gina""#,
            ),
        ),
    ];
    assert!(cases.len() >= 30);
    for (u, spec, want) in cases {
        let got = rbac.authorize(&request(who(u), spec));
        match want {
            Some(reason) => {
                assert!(got.is_allow(), "{u} {spec}: want allow, got {got:?}");
                if !reason.is_empty() {
                    assert_eq!(got.reason(), *reason, "{u} {spec}");
                }
            }
            None => assert_eq!(got, Decision::no_opinion(NO), "{u} {spec}"),
        }
    }
}

#[test]
fn a_binding_to_a_missing_role_grants_nothing_and_says_so() {
    let rbac = fixture();
    let got = rbac.authorize(&request(who("carol"), "get core pods team p"));
    assert_eq!(
        got,
        Decision::no_opinion(
            r#"RBAC: [clusterrole.rbac.authorization.k8s.io "missing" not found, role.rbac.authorization.k8s.io "absent" not found]"#
        )
    );
    let got = rbac.authorize(&request(who("carol"), "get core pods other p"));
    assert_eq!(
        got.reason(),
        r#"RBAC: clusterrole.rbac.authorization.k8s.io "missing" not found"#
    );
    // bob's RoleBinding in staging names a Role that exists only in team.
    let got = rbac.authorize(&request(who("bob"), "get core pods/log staging p"));
    assert_eq!(
        got,
        Decision::no_opinion(r#"RBAC: role.rbac.authorization.k8s.io "pod-logs" not found"#)
    );
    // Creating the role makes the binding grant.
    rbac.upsert(&role(
        "staging",
        "pod-logs",
        json!([{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
    ))
    .unwrap();
    assert!(rbac
        .authorize(&request(who("bob"), "get core pods/log staging p"))
        .is_allow());
}

#[test]
fn updates_and_removals_take_effect_immediately() {
    let rbac = fixture();
    let get = |u: &str| rbac.authorize(&request(who(u), "get core pods team p"));
    assert!(!get("zed").is_allow());
    rbac.upsert(&binding(
        "team",
        "zed",
        ("ClusterRole", "view"),
        json!([user("zed")]),
    ))
    .unwrap();
    assert!(get("zed").is_allow());
    // Re-pointing the binding at another user moves the grant.
    rbac.upsert(&binding(
        "team",
        "zed",
        ("ClusterRole", "view"),
        json!([user("yan")]),
    ))
    .unwrap();
    assert!(!get("zed").is_allow());
    assert!(get("yan").is_allow());
    rbac.remove("RoleBinding", "team", "zed");
    assert!(!get("yan").is_allow());
    // Removing from another namespace or an unknown kind changes nothing.
    rbac.remove("RoleBinding", "other", "alice-view");
    rbac.remove("Pod", "team", "alice-view");
    assert!(get("alice").is_allow());
    // A role update changes what its bindings grant.
    rbac.upsert(&cluster_role("view", json!([]))).unwrap();
    assert!(!get("alice").is_allow());
    rbac.remove("ClusterRole", "", "view");
    assert_eq!(
        get("alice").reason(),
        r#"RBAC: clusterrole.rbac.authorization.k8s.io "view" not found"#
    );
    // A ClusterRoleBinding removal.
    let nodes = |u: &str| rbac.authorize(&request(who(u), "get core nodes - n1"));
    assert!(nodes("dana|dev").is_allow());
    rbac.remove("ClusterRoleBinding", "ignored", "dev-read-nodes");
    assert!(!nodes("dana|dev").is_allow());
    // A refused update drops the previous version: the cluster no longer holds it, and RBAC
    // fails closed. Objects it cannot name are refused without touching anything.
    let logs = || {
        rbac.authorize(&request(who("bob"), "get core pods/log team p"))
            .is_allow()
    };
    assert!(logs());
    assert!(rbac
        .upsert(
            &json!({"kind": "RoleBinding", "metadata": {"name": "bob-logs", "namespace": "other"}})
        )
        .is_err());
    assert!(logs());
    assert!(rbac
        .upsert(
            &json!({"kind": "Role", "metadata": {"name": "pod-logs", "namespace": "team"},
                        "rules": "not a list"})
        )
        .is_err());
    assert_eq!(
        rbac.authorize(&request(who("bob"), "get core pods/log team p"))
            .reason(),
        r#"RBAC: role.rbac.authorization.k8s.io "pod-logs" not found"#
    );
    rbac.upsert(&role(
        "team",
        "pod-logs",
        json!([{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
    ))
    .unwrap();
    assert!(logs());
    assert!(rbac
        .upsert(
            &json!({"kind": "RoleBinding", "metadata": {"name": "bob-logs", "namespace": "team"}})
        )
        .is_err());
    assert!(!logs());
    assert!(rbac.upsert(&json!({"metadata": {"name": "x"}})).is_err());
    assert!(rbac
        .upsert(&json!({"kind": "ClusterRoleBinding", "metadata": {"name": 7}}))
        .is_err());
}

#[test]
fn replace_kind_drops_vanished_objects_and_skips_bad_ones() {
    let rbac = fixture();
    let before = rbac.object_count(RbacKind::RoleBinding);
    assert!(before > 5);
    let list = [
        // List items often carry no kind.
        json!({"metadata": {"name": "alice-view", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [user("alice")]}),
        json!({"metadata": {"name": "broken", "namespace": "team"}}),
        binding("team", "hal", ("ClusterRole", "view"), json!([user("hal")])),
    ];
    let err = rbac.replace_kind("RoleBinding", &list).unwrap_err();
    let RbacError::Skipped {
        applied, errors, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*applied, errors.len()), (2, 1));
    assert!(matches!(errors[0], RbacError::InvalidRoleRef { .. }));
    assert_eq!(err.to_string(), "1 RoleBinding objects skipped, 2 applied");
    assert_eq!(rbac.object_count(RbacKind::RoleBinding), 2);
    let get = |u: &str| {
        rbac.authorize(&request(who(u), "get core pods team p"))
            .is_allow()
    };
    assert!(get("alice") && get("hal"));
    assert!(!rbac
        .authorize(&request(who("bob"), "get core pods/log team p"))
        .is_allow());
    // ClusterRoleBindings are untouched by a RoleBinding relist.
    assert!(rbac
        .authorize(&request(who("dana|dev"), "get core nodes - n"))
        .is_allow());
    // A relist of ClusterRoles that lost view.
    let roles: Vec<Value> = bootstrap::cluster_roles()
        .into_iter()
        .filter(|r| r["metadata"]["name"] != "view")
        .collect();
    rbac.replace_kind("ClusterRole", &roles).unwrap();
    assert!(!get("alice"));
    assert!(matches!(
        rbac.replace_kind("Pod", &[]),
        Err(RbacError::UnsupportedKind { .. })
    ));
    // An empty relist empties the kind.
    rbac.replace_kind("ClusterRoleBinding", &[]).unwrap();
    assert_eq!(rbac.object_count(RbacKind::ClusterRoleBinding), 0);
    assert!(!rbac
        .authorize(&request(who("eve|ops"), "get core pods x p"))
        .is_allow());
    // Emptying every kind leaves no role slot behind.
    for kind in RbacKind::ALL {
        rbac.replace_kind(kind.as_str(), &[]).unwrap();
        assert_eq!(rbac.object_count(kind), 0);
    }
    assert_eq!(rbac.read().role_slots_in_use(), 0);
}

#[test]
fn privileged_groups_allow_system_masters_only() {
    let p = PrivilegedGroups::default();
    assert_eq!(p.name(), "privileged-groups");
    let any = |u: &str| request(who(u), "delete core nodes - n1");
    assert_eq!(
        p.authorize(&any("root|system:masters")),
        Decision::allow("")
    );
    assert_eq!(p.authorize(&any("alice|dev")), Decision::no_opinion(""));
    // In the chain, system:masters may do everything even with no RBAC objects at all.
    let chain = AuthorizerChain::new(vec![
        Arc::new(PrivilegedGroups::default()),
        Arc::new(RbacAuthorizer::new()),
    ]);
    assert!(chain.decide(&any("root|system:masters")).is_allow());
    assert!(!chain.decide(&any("alice")).is_allow());
    assert_eq!(RbacAuthorizer::new().name(), "rbac");
}
