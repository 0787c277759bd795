//! The bootstrap ClusterRoles and ClusterRoleBindings every cluster starts with, as JSON objects
//! ready to store: cluster-admin, admin, edit, view, system:discovery, system:basic-user and
//! system:public-info-viewer with the rules Kubernetes gives them, the system:aggregate-to-*
//! roles admin/edit/view are aggregated from, and the bindings of the first four system roles.
//!
//! The data is Kubernetes' own (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/`),
//! kept as YAML beside this file. admin, edit and view carry their `aggregationRule` and, already
//! flattened, the rules the aggregation controller gives them, so they grant from the first start.

use serde_json::Value;

const CLUSTER_ROLES: &str = include_str!("bootstrap/cluster-roles.yaml");
const CLUSTER_ROLE_BINDINGS: &str = include_str!("bootstrap/cluster-role-bindings.yaml");

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    parse_embedded(CLUSTER_ROLES)
}

/// The bootstrap ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    parse_embedded(CLUSTER_ROLE_BINDINGS)
}

fn parse_embedded(yaml: &str) -> Vec<Value> {
    // The YAML is compiled in and parsed by this crate's tests, so this cannot fail at run time.
    #[allow(clippy::expect_used)]
    serde_yaml::from_str(yaml).expect("embedded bootstrap policy is valid YAML")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{PolicyRule, RbacObject};
    use serde_json::json;

    fn by_name(objects: &[Value], name: &str) -> Value {
        objects
            .iter()
            .find(|o| o["metadata"]["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}"))
    }

    fn rules(object: &Value) -> Vec<PolicyRule> {
        match RbacObject::from_value(object).unwrap() {
            RbacObject::ClusterRole(r) => r.rules,
            other => panic!("not a ClusterRole: {other:?}"),
        }
    }

    #[test]
    fn every_object_parses_and_carries_the_bootstrap_markers() {
        let roles = cluster_roles();
        let bindings = cluster_role_bindings();
        assert_eq!(roles.len(), 10);
        assert_eq!(bindings.len(), 4);
        for o in roles.iter().chain(&bindings) {
            RbacObject::from_value(o).unwrap();
            assert_eq!(o["apiVersion"], "rbac.authorization.k8s.io/v1");
            assert_eq!(
                o["metadata"]["labels"]["kubernetes.io/bootstrapping"],
                "rbac-defaults"
            );
            assert_eq!(
                o["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
                "true"
            );
        }
        for name in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:discovery",
            "system:basic-user",
            "system:public-info-viewer",
        ] {
            by_name(&roles, name);
        }
    }

    #[test]
    fn aggregation_labels_and_rules_as_kubernetes_ships_them() {
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
    }

    /// Recomputes what Kubernetes' ClusterRole aggregation controller gives admin, edit and view
    /// (roles matching a selector, sorted by name, rules appended unless present) and checks the
    /// flattened rules in the YAML agree.
    #[test]
    fn aggregated_roles_are_flattened() {
        let roles = cluster_roles();
        let mut sorted = roles.clone();
        sorted.sort_by(|a, b| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        });
        for role in roles.iter().filter(|r| r.get("aggregationRule").is_some()) {
            let mut want: Vec<PolicyRule> = Vec::new();
            for selector in role["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .unwrap()
            {
                let labels = selector["matchLabels"].as_object().unwrap();
                for other in &sorted {
                    let matches = labels
                        .iter()
                        .all(|(k, v)| &other["metadata"]["labels"][k] == v);
                    if !matches || other["metadata"]["name"] == role["metadata"]["name"] {
                        continue;
                    }
                    for rule in rules(other) {
                        if !want.contains(&rule) {
                            want.push(rule);
                        }
                    }
                }
            }
            assert_eq!(rules(role), want, "{}", role["metadata"]["name"]);
        }
    }

    #[test]
    fn bindings_name_the_kubernetes_subjects() {
        let bindings = cluster_role_bindings();
        let groups = |n: &str| -> Vec<String> {
            by_name(&bindings, n)["subjects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    format!(
                        "{}:{}",
                        s["kind"].as_str().unwrap(),
                        s["name"].as_str().unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(groups("cluster-admin"), ["Group:system:masters"]);
        assert_eq!(groups("system:discovery"), ["Group:system:authenticated"]);
        assert_eq!(groups("system:basic-user"), ["Group:system:authenticated"]);
        assert_eq!(
            groups("system:public-info-viewer"),
            ["Group:system:authenticated", "Group:system:unauthenticated"]
        );
        for b in &bindings {
            assert_eq!(b["roleRef"]["name"], b["metadata"]["name"]);
        }
    }
}
