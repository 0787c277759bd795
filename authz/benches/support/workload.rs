//! The benchmark workload: the bootstrap policy plus N bindings of ClusterRole `view`, each
//! naming its own user: the even ones ClusterRoleBindings, the odd ones RoleBindings spread over
//! 100 namespaces. The subject under test holds one of the RoleBindings, so Kubernetes' scan
//! has to walk every ClusterRoleBinding before it reaches it.

// Each bench target uses part of this module.
#![allow(dead_code)]

use kgate_authz::bootstrap;
use kgate_core::{Attributes, UserInfo};
use serde_json::{json, Value};

pub const NAMESPACES: usize = 100;

/// The bootstrap ClusterRoles and ClusterRoleBindings.
pub fn bootstrap_objects() -> Vec<Value> {
    bootstrap::cluster_roles()
        .into_iter()
        .chain(bootstrap::cluster_role_bindings())
        .collect()
}

/// Binding `i` of the workload; `generation` changes its subject (for update benchmarks).
pub fn binding(i: usize, generation: usize) -> Value {
    binding_of_kind(i, generation, i % 2 == 1)
}

/// The other shape, for comparison: N RoleBindings over 100 namespaces and no
/// ClusterRoleBindings beyond the bootstrap ones, where Kubernetes' scan walks only the
/// request's namespace (N/100 bindings).
pub fn role_bindings_only(n: usize) -> Vec<Value> {
    (0..n).map(|i| binding_of_kind(i, 0, true)).collect()
}

fn binding_of_kind(i: usize, generation: usize, role_binding: bool) -> Value {
    let user = format!("user-{i}");
    let subject = if generation % 2 == 1 {
        format!("{user}-b")
    } else {
        user.clone()
    };
    if role_binding {
        json!({
            "kind": "RoleBinding",
            "metadata": {"name": format!("{user}-view"), "namespace": namespace_of(i)},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": subject}]
        })
    } else {
        json!({
            "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{user}-view")},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": subject}]
        })
    }
}

pub fn namespace_of(i: usize) -> String {
    format!("ns-{}", i % NAMESPACES)
}

/// The bindings of a workload of `n`.
pub fn bindings(n: usize) -> Vec<Value> {
    (0..n).map(|i| binding(i, 0)).collect()
}

/// The subject under test: an odd index (a RoleBinding) in the middle.
pub fn subject_index(n: usize) -> usize {
    (n / 2) | 1
}

/// `verb pods/web` by user `i` in its namespace, with the groups a typical user has.
pub fn request(verb: &str, i: usize) -> Attributes {
    let user = UserInfo::new(format!("user-{i}")).with_groups(["dev", "system:authenticated"]);
    let mut a = Attributes::resource(user, verb, "", "pods", &namespace_of(i));
    a.name = "web".to_owned();
    a
}
