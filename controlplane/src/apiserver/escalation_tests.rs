// Tests may unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::resources::lookup;
use kgate_authz::PrivilegedGroups;
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
           "metadata": {"name": "r", "namespace": "team", "uid": "u-r", "resourceVersion": "7"},
           "rules": rules})
}

fn cluster_role(rules: Value, aggregation: Option<Value>) -> Value {
    let mut role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": "cr", "uid": "u-cr", "resourceVersion": "7"}, "rules": rules});
    if let Some(aggregation) = aggregation {
        role["aggregationRule"] = aggregation;
    }
    role
}

fn binding(role_kind: &str, role_name: &str, user: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": "b", "namespace": "team", "uid": "u-b", "resourceVersion": "7"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
           "subjects": [{"kind": "User", "name": user}]})
}

fn def(plural: &str) -> &'static ResourceDef {
    lookup("rbac.authorization.k8s.io", "v1", plural).unwrap()
}

fn user(name: &str) -> UserInfo {
    UserInfo::new(name).with_groups(["system:authenticated"])
}

/// The guard as the gateway wires it: `[system:masters, RBAC]` answers escalate and bind.
fn guard() -> EscalationGuard {
    let rbac = rbac();
    guard_with(
        rbac.clone(),
        vec![Arc::new(PrivilegedGroups::default()), rbac],
    )
}

fn guard_with(
    rbac: Arc<RbacAuthorizer>,
    chain: Vec<Arc<dyn kgate_core::authz::Authorizer>>,
) -> EscalationGuard {
    EscalationGuard::new(rbac, AuthorizerChain::new(chain))
}

/// A create in `team` (cluster-wide for cluster-scoped kinds): no name in the URL.
fn create(
    guard: &EscalationGuard,
    who: &UserInfo,
    plural: &str,
    new: &Value,
) -> Result<(), Status> {
    let def = def(plural);
    let namespace = if def.namespaced { "team" } else { "" };
    guard.check(
        Some(who),
        &RbacWrite {
            def,
            namespace,
            name: "",
            new,
            old: None,
        },
    )
}

/// An update of the object named in `new` from `old`.
fn update(
    guard: &EscalationGuard,
    who: &UserInfo,
    plural: &str,
    new: &Value,
    old: &Value,
) -> Result<(), Status> {
    let def = def(plural);
    let namespace = if def.namespaced { "team" } else { "" };
    let name = new["metadata"]["name"].as_str().unwrap();
    guard.check(
        Some(who),
        &RbacWrite {
            def,
            namespace,
            name,
            new,
            old: Some(old),
        },
    )
}

#[test]
fn a_role_may_grant_only_what_its_writer_holds() {
    let guard = guard();
    let alice = user("alice");
    let held = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]));
    create(&guard, &alice, "roles", &held).unwrap();
    let more = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]));
    let err = create(&guard, &alice, "roles", &more).unwrap_err();
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
    // What she holds is judged in the namespace of the URL.
    let write = RbacWrite {
        def: def("roles"),
        namespace: "prod",
        name: "",
        new: &held,
        old: None,
    };
    assert!(guard.check(Some(&alice), &write).is_err());
}

#[test]
fn the_escalate_verb_lets_a_role_grant_anything() {
    let guard = guard();
    let anything = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    create(&guard, &user("erin"), "roles", &anything).unwrap();
    assert!(create(&guard, &user("alice"), "roles", &anything).is_err());
}

#[test]
fn an_escalate_grant_by_name_covers_updates_of_that_role_but_not_its_create() {
    // nina may escalate the Role named "r" only.
    let rbac = rbac();
    for object in [
        json!({"kind": "Role", "metadata": {"name": "named-escalator", "namespace": "team"},
               "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                          "verbs": ["escalate"], "resourceNames": ["r"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "nina", "namespace": "team"},
               "roleRef": {"kind": "Role", "name": "named-escalator"},
               "subjects": [{"kind": "User", "name": "nina"}]}),
    ] {
        rbac.upsert(&object).unwrap();
    }
    let guard = guard_with(rbac.clone(), vec![rbac]);
    let nina = user("nina");
    let anything = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    // Kube authorizes a create with the name of the URL, which has none.
    let err = create(&guard, &nina, "roles", &anything).unwrap_err();
    assert!(
        err.message.contains("attempting to grant"),
        "{}",
        err.message
    );
    let old = role(json!([]));
    update(&guard, &nina, "roles", &anything, &old).unwrap();
}

#[test]
fn any_update_but_of_gc_fields_is_checked_on_the_new_rules() {
    let guard = guard();
    let alice = user("alice");
    let old = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    // A new label: the whole new object must be held (the review's relabel escalation).
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] =
        json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"});
    let err = update(&guard, &alice, "roles", &relabelled, &old).unwrap_err();
    assert!(
        err.message.contains("attempting to grant"),
        "{}",
        err.message
    );
    // An annotation, or a PUT that leaves out the uid, changes more than GC fields too.
    let mut annotated = old.clone();
    annotated["metadata"]["annotations"] = json!({"note": "x"});
    assert!(update(&guard, &alice, "roles", &annotated, &old).is_err());
    let mut without_uid = old.clone();
    without_uid["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("uid");
    assert!(update(&guard, &alice, "roles", &without_uid, &old).is_err());
    // Finalizers and owner references are the garbage collector's: no check.
    let mut finalized = old.clone();
    finalized["metadata"]["finalizers"] = json!(["kgate.test/hold"]);
    finalized["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-o"}]);
    update(&guard, &alice, "roles", &finalized, &old).unwrap();
    update(&guard, &alice, "roles", &old, &finalized).unwrap();
}

#[test]
fn an_aggregation_rule_on_the_new_or_the_old_object_needs_full_authority() {
    // hal holds get on pods cluster-wide, and may write ClusterRoles; not `*`.
    let rbac = rbac();
    for object in [
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "hal"},
               "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
               "subjects": [{"kind": "User", "name": "hal"}]}),
        json!({"kind": "ClusterRole", "metadata": {"name": "superuser"},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                         {"nonResourceURLs": ["*"], "verbs": ["*"]}]}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "root"},
               "roleRef": {"kind": "ClusterRole", "name": "superuser"},
               "subjects": [{"kind": "User", "name": "root"}]}),
    ] {
        rbac.upsert(&object).unwrap();
    }
    let guard = guard_with(rbac.clone(), vec![rbac]);
    let hal = user("hal");
    let reads = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let selectors = json!({"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]});
    let plain = cluster_role(reads.clone(), None);
    create(&guard, &hal, "clusterroles", &plain).unwrap();
    let aggregated = cluster_role(reads.clone(), Some(selectors.clone()));
    let err = create(&guard, &hal, "clusterroles", &aggregated).unwrap_err();
    assert_eq!(err.code, 403);
    assert!(
        err.message
            .ends_with("must have cluster-admin privileges to use the aggregationRule"),
        "{}",
        err.message
    );
    // Removing it, or relabelling a role that has it, needs the same.
    assert!(update(&guard, &hal, "clusterroles", &plain, &aggregated).is_err());
    let mut relabelled = aggregated.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    assert!(update(&guard, &hal, "clusterroles", &relabelled, &aggregated).is_err());
    // An empty selector list is no aggregation.
    let empty = cluster_role(reads, Some(json!({"clusterRoleSelectors": []})));
    create(&guard, &hal, "clusterroles", &empty).unwrap();
    // Full authority may.
    create(&guard, &user("root"), "clusterroles", &aggregated).unwrap();
    update(
        &guard,
        &user("root"),
        "clusterroles",
        &relabelled,
        &aggregated,
    )
    .unwrap();
}

#[test]
fn a_binding_needs_the_roles_permissions_or_bind() {
    let guard = guard();
    let alice = user("alice");
    create(
        &guard,
        &alice,
        "rolebindings",
        &binding("ClusterRole", "pod-reader", "bob"),
    )
    .unwrap();
    let err = create(
        &guard,
        &alice,
        "rolebindings",
        &binding("ClusterRole", "secret-reader", "bob"),
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
    create(
        &guard,
        &bill,
        "rolebindings",
        &binding("ClusterRole", "secret-reader", "x"),
    )
    .unwrap();
    assert!(create(
        &guard,
        &bill,
        "rolebindings",
        &binding("ClusterRole", "pod-reader", "x")
    )
    .is_err());
    // A missing role is 404, as kube answers.
    let err = create(
        &guard,
        &alice,
        "rolebindings",
        &binding("Role", "nope", "x"),
    )
    .unwrap_err();
    assert_eq!(err.code, 404, "{}", err.message);
}

#[test]
fn a_binding_update_is_checked_unless_it_changes_only_gc_fields() {
    let guard = guard();
    let alice = user("alice");
    let old = binding("ClusterRole", "secret-reader", "bob");
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    let err = update(&guard, &alice, "rolebindings", &relabelled, &old).unwrap_err();
    assert!(
        err.message.contains("attempting to grant"),
        "{}",
        err.message
    );
    let mut finalized = old.clone();
    finalized["metadata"]["finalizers"] = json!(["kgate.test/hold"]);
    update(&guard, &alice, "rolebindings", &finalized, &old).unwrap();
}

/// Refuses `bind` and `escalate` to everyone: a policy deny line, asked first.
struct DenyShortcuts;
impl kgate_core::authz::Authorizer for DenyShortcuts {
    fn name(&self) -> &'static str {
        "deny-shortcuts"
    }
    fn authorize(&self, a: &Attributes) -> kgate_core::Decision {
        if a.verb == "bind" || a.verb == "escalate" {
            kgate_core::Decision::deny("policy: no shortcuts")
        } else {
            kgate_core::Decision::no_opinion("")
        }
    }
}

#[test]
fn a_deny_in_the_chain_takes_bind_and_escalate_away_but_not_what_is_held() {
    let rbac = rbac();
    let guard = guard_with(
        rbac.clone(),
        vec![
            Arc::new(DenyShortcuts),
            Arc::new(PrivilegedGroups::default()),
            rbac,
        ],
    );
    // bill's `bind` and erin's `escalate` no longer help...
    assert!(create(
        &guard,
        &user("bill"),
        "rolebindings",
        &binding("ClusterRole", "secret-reader", "x")
    )
    .is_err());
    let anything = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    assert!(create(&guard, &user("erin"), "roles", &anything).is_err());
    // ...even for system:masters, who then needs to hold the rules through RBAC.
    let admin = UserInfo::new("admin").with_groups(["system:masters"]);
    assert!(create(&guard, &admin, "roles", &anything).is_err());
    // What a writer holds she may still grant.
    create(
        &guard,
        &user("alice"),
        "rolebindings",
        &binding("ClusterRole", "pod-reader", "x"),
    )
    .unwrap();
}

#[test]
fn system_masters_and_other_groups_pass_and_an_unnamed_writer_does_not() {
    let guard = guard();
    let anything = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    let admin = UserInfo::new("admin").with_groups(["system:masters"]);
    create(&guard, &admin, "roles", &anything).unwrap();
    let write = RbacWrite {
        def: def("roles"),
        namespace: "team",
        name: "",
        new: &anything,
        old: None,
    };
    assert_eq!(guard.check(None, &write).unwrap_err().code, 403);
    let pods = lookup("", "v1", "pods").unwrap();
    let pod = json!({"kind": "Pod"});
    let write = RbacWrite {
        def: pods,
        namespace: "team",
        name: "",
        new: &pod,
        old: None,
    };
    guard.check(None, &write).unwrap();
}

#[test]
fn gc_fields_are_told_apart_with_zero_values_equal() {
    let old = json!({"kind": "Role", "metadata": {"name": "r", "labels": {"a": "b"}}, "rules": []});
    // Absent, null and empty are one value.
    let same = json!({"kind": "Role", "metadata": {"name": "r", "labels": {"a": "b"},
                      "annotations": {}, "finalizers": null}, "rules": null});
    assert!(only_gc_fields_change(&same, &old));
    let gc = json!({"kind": "Role", "metadata": {"name": "r", "labels": {"a": "b"},
                    "finalizers": ["f"], "ownerReferences": [{"uid": "u"}],
                    "managedFields": [{"manager": "m"}]}});
    assert!(only_gc_fields_change(&gc, &old));
    for changed in [
        json!({"kind": "Role", "metadata": {"name": "r", "labels": {"a": "c"}}}),
        json!({"kind": "Role", "metadata": {"name": "r", "labels": {"a": "b"}},
               "rules": [{"verbs": ["get"]}]}),
        json!({"kind": "Role", "metadata": {"name": "r", "labels": {"a": "b", "x": "y"}}}),
        json!({"kind": "Role", "metadata": {"name": "r"}}),
        json!({"kind": "Role"}),
    ] {
        assert!(!only_gc_fields_change(&changed, &old), "{changed}");
    }
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
