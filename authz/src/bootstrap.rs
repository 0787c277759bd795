//! The bootstrap RBAC policy every cluster starts with, as kube-apiserver creates it
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy`): the ClusterRoles (cluster-admin, admin,
//! edit, view, the system:aggregate-to-* roles, system:basic-user, system:discovery,
//! system:public-info-viewer, system:node*, system:kube-*, ...), the controller roles
//! (system:controller:*), their ClusterRoleBindings, and the Roles and RoleBindings of
//! kube-system and kube-public. [`reconcile`] holds how a stored object is brought back in line
//! with them at every start.
//!
//! The data is Kubernetes' own, the testdata Kubernetes checks its policy against, kept as YAML
//! beside this file (each file says which commit it comes from). Two things are computed here
//! rather than shipped: admin, edit and view carry their aggregated rules (Kubernetes creates them
//! empty and its aggregation controller fills them; filling them at load makes the policy grant
//! from the first request), and the controller roles' bindings (Kubernetes binds every
//! system:controller:<name> role to the ServiceAccount kube-system/<name>, `addControllerRole`).

pub mod reconcile;

use serde_json::{json, Value};

use crate::aggregation;

const CLUSTER_ROLES: &str = include_str!("bootstrap/cluster-roles.yaml");
const CLUSTER_ROLE_BINDINGS: &str = include_str!("bootstrap/cluster-role-bindings.yaml");
const CONTROLLER_ROLES: &str = include_str!("bootstrap/controller-roles.yaml");
const NAMESPACE_ROLES: &str = include_str!("bootstrap/namespace-roles.yaml");
const NAMESPACE_ROLE_BINDINGS: &str = include_str!("bootstrap/namespace-role-bindings.yaml");

/// The prefix of the controller roles' names; the rest names the controller's ServiceAccount.
const CONTROLLER_ROLE_PREFIX: &str = "system:controller:";

/// The annotation that lets an admin opt an object out of reconciliation (value "false").
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// The bootstrap ClusterRoles, the controller roles included, with admin, edit and view holding
/// their aggregated rules.
pub fn cluster_roles() -> Vec<Value> {
    let mut roles = parse_embedded(CLUSTER_ROLES);
    roles.extend(parse_embedded(CONTROLLER_ROLES));
    for change in aggregation::aggregate_settled(&roles).changed {
        if let Some(role) = roles
            .iter_mut()
            .find(|r| r["metadata"]["name"] == change.name.as_str())
        {
            role["rules"] = Value::Array(change.rules);
        }
    }
    roles
}

/// The bootstrap ClusterRoleBindings, the controller roles' bindings included.
pub fn cluster_role_bindings() -> Vec<Value> {
    let mut bindings = parse_embedded(CLUSTER_ROLE_BINDINGS);
    bindings.extend(controller_role_bindings());
    bindings
}

/// The bootstrap Roles (in kube-system and kube-public).
pub fn roles() -> Vec<Value> {
    parse_embedded(NAMESPACE_ROLES)
}

/// The bootstrap RoleBindings (in kube-system and kube-public).
pub fn role_bindings() -> Vec<Value> {
    parse_embedded(NAMESPACE_ROLE_BINDINGS)
}

/// One binding per controller role, to its controller's ServiceAccount in kube-system, shaped as
/// Kubernetes' controller-role-bindings.yaml.
fn controller_role_bindings() -> Vec<Value> {
    parse_embedded(CONTROLLER_ROLES)
        .iter()
        .filter_map(|role| {
            let name = role["metadata"]["name"].as_str()?;
            let account = name.strip_prefix(CONTROLLER_ROLE_PREFIX)?;
            Some(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {
                    "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
                    "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                    "name": name,
                },
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "kube-system"}],
            }))
        })
        .collect()
}

/// The `items` of one embedded `kind: List` file.
fn parse_embedded(yaml: &str) -> Vec<Value> {
    // The YAML is compiled in and parsed by this crate's tests, so this cannot fail at run time.
    #[allow(clippy::expect_used)]
    let list: Value = serde_yaml::from_str(yaml).expect("embedded bootstrap policy is valid YAML");
    match list.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
#[path = "bootstrap/tests.rs"]
mod tests;
