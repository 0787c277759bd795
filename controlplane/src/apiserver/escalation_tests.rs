// Tests may unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::resources::lookup;
use serde_json::json;

fn rbac() -> Arc<RbacAuthorizer> {
    let rbac = Arc::new(RbacAuthorizer::new());
    for object in [
        json!({"kind": "ClusterRole", "metadata": {"name": "pod-reader"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "role-maker"},
               "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "update"]}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "escalator"},
               "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "binder"},
               "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["secret-reader"]}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "secret-reader"},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "alice-pods", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
               "subjects": [{"kind": "User", "name": "alice"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "alice-maker", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "role-maker"},
               "subjects": [{"kind": "User", "name": "alice"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "esc", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "escalator"},
               "subjects": [{"kind": "User", "name": "erin"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "bind", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "binder"},
               "subjects": [{"kind": "User", "name": "bill"}]}),
    ] {
        rbac.upsert(&object).unwrap();
    }
    rbac
}

fn role(rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": "r", "namespace": "team"}, "rules": rules})
}

fn binding(role_kind: &str, role_name: &str, user: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "b", "namespace": "team"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
           "subjects": [{"kind": "User", "name": user}]})
}

fn roles() -> &'static ResourceDef {
    lookup("rbac.authorization.k8s.io", "v1", "roles").unwrap()
}

fn rolebindings() -> &'static ResourceDef {
    lookup("rbac.authorization.k8s.io", "v1", "rolebindings").unwrap()
}

fn user(name: &str) -> UserInfo {
    UserInfo::new(name).with_groups(["system:authenticated"])
}

#[test]
fn a_role_may_grant_only_what_its_writer_holds() {
    let guard = EscalationGuard::new(rbac());
    let alice = user("alice");
    let held = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]));
    guard.check(Some(&alice), roles(), &held, None).unwrap();
    let more = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]));
    let err = guard.check(Some(&alice), roles(), &more, None).unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(err.reason, "Forbidden");
    assert!(
        err.message.starts_with(r#"roles.rbac.authorization.k8s.io "r" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(r#"Verbs:["delete"]"#),
        "{}",
        err.message
    );
    // Held in team, not in another namespace.
    let mut elsewhere = held.clone();
    elsewhere["metadata"]["namespace"] = json!("prod");
    assert!(guard
        .check(Some(&alice), roles(), &elsewhere, None)
        .is_err());
}

#[test]
fn the_escalate_verb_lets_a_role_grant_anything() {
    let guard = EscalationGuard::new(rbac());
    let anything = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    guard
        .check(Some(&user("erin")), roles(), &anything, None)
        .unwrap();
    assert!(guard
        .check(Some(&user("alice")), roles(), &anything, None)
        .is_err());
}

#[test]
fn an_update_that_keeps_the_rules_needs_nothing() {
    let guard = EscalationGuard::new(rbac());
    let old = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    guard
        .check(Some(&user("alice")), roles(), &relabelled, Some(&old))
        .unwrap();
}

#[test]
fn a_binding_needs_the_roles_permissions_or_bind() {
    let guard = EscalationGuard::new(rbac());
    let alice = user("alice");
    guard
        .check(
            Some(&alice),
            rolebindings(),
            &binding("ClusterRole", "pod-reader", "bob"),
            None,
        )
        .unwrap();
    let err = guard
        .check(
            Some(&alice),
            rolebindings(),
            &binding("ClusterRole", "secret-reader", "bob"),
            None,
        )
        .unwrap_err();
    assert_eq!(err.code, 403, "{}", err.message);
    assert!(
        err.message.starts_with(
            r#"rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "alice""#
        ),
        "{}",
        err.message
    );
    // bill may bind secret-reader (and only it) without holding it.
    let bill = user("bill");
    guard
        .check(
            Some(&bill),
            rolebindings(),
            &binding("ClusterRole", "secret-reader", "x"),
            None,
        )
        .unwrap();
    assert!(guard
        .check(
            Some(&bill),
            rolebindings(),
            &binding("ClusterRole", "pod-reader", "x"),
            None
        )
        .is_err());
    // A missing role is 404, as kube answers.
    let err = guard
        .check(
            Some(&alice),
            rolebindings(),
            &binding("Role", "nope", "x"),
            None,
        )
        .unwrap_err();
    assert_eq!(err.code, 404, "{}", err.message);
}

#[test]
fn system_masters_and_other_groups_pass_and_an_unnamed_writer_does_not() {
    let guard = EscalationGuard::new(rbac());
    let anything = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    let admin = UserInfo::new("admin").with_groups(["system:masters"]);
    guard.check(Some(&admin), roles(), &anything, None).unwrap();
    assert_eq!(
        guard
            .check(None, roles(), &anything, None)
            .unwrap_err()
            .code,
        403
    );
    let pods = lookup("", "v1", "pods").unwrap();
    guard
        .check(None, pods, &json!({"kind": "Pod"}), None)
        .unwrap();
}

#[test]
fn front_proxy_headers_name_the_user() {
    let mut headers = HeaderMap::new();
    assert!(front_proxy_user(&headers).is_none());
    headers.insert(REMOTE_USER, "alice".parse().unwrap());
    headers.append(REMOTE_GROUP, "dev".parse().unwrap());
    headers.append(REMOTE_GROUP, "system:authenticated".parse().unwrap());
    headers.insert(REMOTE_UID, "u1".parse().unwrap());
    headers.insert("x-remote-extra-scopes%2Fa", "read".parse().unwrap());
    let user = front_proxy_user(&headers).unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(user.groups, ["dev", "system:authenticated"]);
    assert_eq!(user.uid, "u1");
    assert_eq!(user.extra.get("scopes/a").unwrap(), &["read".to_owned()]);
}
