use serde_json::json;

use super::reconcile::{covers, reconcile_binding, reconcile_role, Reconciliation};
use super::*;
use crate::aggregation::{aggregated_rules, rules_equal};
use crate::objects::{RbacKind, RbacObject};

fn by_name<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

fn subjects(binding: &Value) -> Vec<String> {
    binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let ns = s["namespace"]
                .as_str()
                .map(|n| format!("{n}/"))
                .unwrap_or_default();
            format!(
                "{}:{ns}{}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_object_parses_and_carries_the_bootstrap_markers() {
    let all = [
        (cluster_roles(), RbacKind::ClusterRole, 68),
        (cluster_role_bindings(), RbacKind::ClusterRoleBinding, 49),
        (roles(), RbacKind::Role, 7),
        (role_bindings(), RbacKind::RoleBinding, 7),
    ];
    for (objects, kind, count) in &all {
        assert_eq!(objects.len(), *count, "{kind:?}");
        for o in objects {
            assert_eq!(RbacObject::from_value(o).unwrap().kind(), *kind);
            assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
            assert_eq!(
                o["metadata"]["labels"]["kubernetes.io/bootstrapping"],
                "rbac-defaults"
            );
            assert_eq!(o["metadata"]["annotations"][AUTOUPDATE_ANNOTATION], "true");
            // Server-populated fields are the server's to set.
            assert!(o["metadata"].get("creationTimestamp").is_none());
            assert_eq!(kind.is_namespaced(), o["metadata"]["namespace"].is_string());
        }
        let mut names: Vec<String> = objects
            .iter()
            .map(|o| format!("{}/{}", o["metadata"]["namespace"], o["metadata"]["name"]))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), *count, "duplicate names in {kind:?}");
    }
    let roles = cluster_roles();
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-view",
        "system:basic-user",
        "system:discovery",
        "system:public-info-viewer",
        "system:service-account-issuer-discovery",
        "system:monitoring",
        "system:node",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:controller:clusterrole-aggregation-controller",
        "system:controller:namespace-controller",
    ] {
        by_name(&roles, name);
    }
}

#[test]
fn aggregated_roles_ship_with_the_aggregation_result() {
    let roles = cluster_roles();
    let label = |n: &str, l: &str| by_name(&roles, n)["metadata"]["labels"][l].clone();
    assert_eq!(
        label("edit", "rbac.authorization.k8s.io/aggregate-to-admin"),
        "true"
    );
    assert_eq!(
        label("view", "rbac.authorization.k8s.io/aggregate-to-edit"),
        "true"
    );
    assert_eq!(
        by_name(&roles, "view")["aggregationRule"],
        json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]})
    );
    for name in ["admin", "edit", "view"] {
        let role = by_name(&roles, name);
        let want = aggregated_rules(role, &roles).unwrap().unwrap();
        assert!(!want.is_empty(), "{name}");
        assert!(
            rules_equal(role["rules"].as_array().unwrap(), &want),
            "{name}"
        );
    }
    // Kubernetes' own view grants reading pods and never secrets.
    let view = by_name(&roles, "view")["rules"].as_array().unwrap().clone();
    assert!(covers(
        &view,
        &json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]})
    ));
    assert!(!covers(
        &view,
        &json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    ));
}

#[test]
fn bindings_name_the_kubernetes_subjects_and_existing_roles() {
    let bindings = cluster_role_bindings();
    let of = |n: &str| subjects(by_name(&bindings, n));
    assert_eq!(of("cluster-admin"), ["Group:system:masters"]);
    assert_eq!(of("system:discovery"), ["Group:system:authenticated"]);
    assert_eq!(of("system:basic-user"), ["Group:system:authenticated"]);
    assert_eq!(
        of("system:public-info-viewer"),
        ["Group:system:authenticated", "Group:system:unauthenticated"]
    );
    assert_eq!(
        of("system:service-account-issuer-discovery"),
        ["Group:system:serviceaccounts"]
    );
    assert_eq!(
        of("system:kube-dns"),
        ["ServiceAccount:kube-system/kube-dns"]
    );
    // Kept with no subjects, as Kubernetes keeps it (the Node authorizer replaced it).
    assert!(of("system:node").is_empty());
    assert_eq!(
        of("system:controller:clusterrole-aggregation-controller"),
        ["ServiceAccount:kube-system/clusterrole-aggregation-controller"]
    );
    let roles = cluster_roles();
    for b in &bindings {
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        by_name(&roles, b["roleRef"]["name"].as_str().unwrap());
    }
    // Every controller role is bound.
    for r in roles.iter().filter(|r| {
        r["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with(CONTROLLER_ROLE_PREFIX)
    }) {
        by_name(&bindings, r["metadata"]["name"].as_str().unwrap());
    }
    // RoleBindings refer to Roles of their own namespace.
    let ns_roles = super::roles();
    for b in role_bindings() {
        assert_eq!(b["roleRef"]["kind"], "Role");
        assert!(ns_roles
            .iter()
            .any(|r| r["metadata"]["name"] == b["roleRef"]["name"]
                && r["metadata"]["namespace"] == b["metadata"]["namespace"]));
    }
    assert_eq!(
        subjects(by_name(
            &role_bindings(),
            "system::leader-locking-kube-scheduler"
        )),
        [
            "User:system:kube-scheduler",
            "ServiceAccount:kube-system/kube-scheduler"
        ]
    );
}

fn policy_role() -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "r", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {AUTOUPDATE_ANNOTATION: "true"}},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                  {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]})
}

fn stored(mut obj: Value) -> Value {
    obj["metadata"]["resourceVersion"] = json!("7");
    obj["metadata"]["uid"] = json!("u");
    obj
}

#[test]
fn roles_get_missing_rules_back_and_keep_extra_ones() {
    let expected = policy_role();
    assert_eq!(
        reconcile_role(&expected, &stored(expected.clone())),
        Reconciliation::Unchanged
    );
    // The admin dropped `list` and added a rule: the policy rule comes back, the extra stays.
    let mut edited = stored(expected.clone());
    edited["rules"] = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                             {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
                             {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]);
    let Reconciliation::Update(next) = reconcile_role(&expected, &edited) else {
        panic!("expected an update")
    };
    assert_eq!(next["rules"].as_array().unwrap().len(), 4);
    assert_eq!(next["rules"][3], expected["rules"][0]);
    assert_eq!(next["metadata"], edited["metadata"]);
    // Rules the admin widened still cover the policy: nothing to do.
    let mut widened = stored(expected.clone());
    widened["rules"] = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                              {"nonResourceURLs": ["/health*"], "verbs": ["*"]}]);
    assert_eq!(
        reconcile_role(&expected, &widened),
        Reconciliation::Unchanged
    );
}

#[test]
fn metadata_is_merged_and_autoupdate_false_protects() {
    let expected = policy_role();
    let mut edited = stored(expected.clone());
    edited["metadata"]["labels"] = json!({"kubernetes.io/bootstrapping": "mine", "team": "a"});
    edited["metadata"]["annotations"] = Value::Null;
    let Reconciliation::Update(next) = reconcile_role(&expected, &edited) else {
        panic!("expected an update")
    };
    assert_eq!(
        next["metadata"]["labels"],
        json!({"kubernetes.io/bootstrapping": "mine", "team": "a"})
    );
    assert_eq!(
        next["metadata"]["annotations"],
        json!({AUTOUPDATE_ANNOTATION: "true"})
    );
    let mut protected = stored(expected.clone());
    protected["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = json!("false");
    protected["rules"] = json!([]);
    assert_eq!(
        reconcile_role(&expected, &protected),
        Reconciliation::Protected
    );
}

#[test]
fn aggregation_rules_are_unioned_and_aggregated_rules_left_to_the_controller() {
    let mut expected = policy_role();
    expected["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {"a": "true"}}]});
    let mut existing = stored(expected.clone());
    existing["aggregationRule"] =
        json!({"clusterRoleSelectors": [{"matchLabels": {"mine": "true"}}]});
    existing["rules"] = json!([]);
    let Reconciliation::Update(next) = reconcile_role(&expected, &existing) else {
        panic!("expected an update")
    };
    assert_eq!(
        next["aggregationRule"]["clusterRoleSelectors"],
        json!([{"matchLabels": {"mine": "true"}}, {"matchLabels": {"a": "true"}}])
    );
    assert_eq!(next["rules"], json!([]));
    // A role the policy does not aggregate loses an aggregationRule the admin gave it.
    let plain = policy_role();
    let mut aggregated = stored(plain.clone());
    aggregated["aggregationRule"] = json!({"clusterRoleSelectors": []});
    let Reconciliation::Update(next) = reconcile_role(&plain, &aggregated) else {
        panic!("expected an update")
    };
    assert!(next.get("aggregationRule").is_none());
}

fn policy_binding() -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "b", "annotations": {AUTOUPDATE_ANNOTATION: "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "g"}]})
}

#[test]
fn bindings_get_missing_subjects_and_a_changed_role_ref_is_recreated() {
    let expected = policy_binding();
    let mut edited = stored(expected.clone());
    edited["subjects"] = json!([{"kind": "User", "name": "alice"}]);
    let Reconciliation::Update(next) = reconcile_binding(&expected, &edited) else {
        panic!("expected an update")
    };
    assert_eq!(
        next["subjects"],
        json!([{"kind": "User", "name": "alice"},
               {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "g"}])
    );
    // A Group without apiGroup is the same subject (the group defaults).
    let mut defaulted = stored(expected.clone());
    defaulted["subjects"] = json!([{"kind": "Group", "name": "g"}]);
    defaulted["roleRef"]["apiGroup"] = json!("");
    assert_eq!(
        reconcile_binding(&expected, &defaulted),
        Reconciliation::Unchanged
    );
    let mut moved = stored(expected.clone());
    moved["roleRef"]["name"] = json!("other");
    assert_eq!(
        reconcile_binding(&expected, &moved),
        Reconciliation::Recreate(expected.clone())
    );
    moved["metadata"]["annotations"][AUTOUPDATE_ANNOTATION] = json!("false");
    assert_eq!(
        reconcile_binding(&expected, &moved),
        Reconciliation::Protected
    );
}

#[test]
fn covers_follows_kubernetes_wildcards() {
    let owner = [
        json!({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}),
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}),
        json!({"nonResourceURLs": ["/api/*"], "verbs": ["get"]}),
    ];
    let yes = |r: Value| assert!(covers(&owner, &r), "{r}");
    let no = |r: Value| assert!(!covers(&owner, &r), "{r}");
    yes(json!({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"]}));
    no(json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}));
    yes(
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}),
    );
    no(json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}));
    no(
        json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a", "b"], "verbs": ["get"]}),
    );
    yes(json!({"nonResourceURLs": ["/api/v1"], "verbs": ["get"]}));
    no(json!({"nonResourceURLs": ["/apis"], "verbs": ["get"]}));
    // An empty rule asks for nothing.
    yes(json!({}));
}
