//! The authorizer's state: roles by name, bindings by name, and the index that answers "which
//! bindings name this user or this group, cluster-wide or in this namespace" without scanning.
//!
//! ServiceAccount subjects are indexed under the user name they authenticate as
//! (`system:serviceaccount:NS:NAME`), so a lookup needs only the user's name and groups. Bindings
//! refer to their role by name and the role is looked up at decision time, so a role change
//! never touches the index. Everything a decision needs (compiled rules, the reason text of each
//! subject, the not-found text of each binding) is computed once, when an object arrives.

use crate::objects::{Binding, RbacKind, RbacObject, Role, RoleRefKind, SubjectKind};
use crate::rule::CompiledRule;
use kgate_core::{Attributes, Decision, UserInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The prefix of a ServiceAccount's user name, as `k8s.io/apiserver/pkg/authentication/serviceaccount`.
const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// A Role or ClusterRole, compiled.
#[derive(Debug)]
pub(crate) struct CompiledRole {
    rules: Vec<CompiledRule>,
}

/// A subject, resolved to the user or group name it matches, with the reason a grant through it
/// gives.
#[derive(Debug)]
struct CompiledSubject {
    /// Group subjects match a group; User and ServiceAccount subjects match the user name.
    group: bool,
    key: String,
    allowed_reason: String,
}

/// A RoleBinding (`namespace` set) or ClusterRoleBinding (`namespace` empty), compiled.
#[derive(Debug)]
pub(crate) struct CompiledBinding {
    name: String,
    namespace: String,
    role_kind: RoleRefKind,
    role_name: String,
    subjects: Vec<CompiledSubject>,
    /// What Kubernetes reports when the role does not exist.
    role_not_found: String,
}

/// An object ready to go into the state; made outside the lock.
#[derive(Debug)]
pub(crate) enum Compiled {
    /// A Role, or a ClusterRole when `namespace` is empty.
    Role {
        namespace: String,
        name: String,
        role: CompiledRole,
    },
    Binding(Arc<CompiledBinding>),
}

impl Compiled {
    pub(crate) fn new(object: &RbacObject) -> Self {
        match object {
            RbacObject::Role(r) | RbacObject::ClusterRole(r) => Self::role(r),
            RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b) => {
                Self::Binding(Arc::new(compile_binding(b)))
            }
        }
    }

    fn role(r: &Role) -> Self {
        Self::Role {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            role: CompiledRole {
                rules: r.rules.iter().map(CompiledRule::compile).collect(),
            },
        }
    }
}

fn compile_binding(b: &Binding) -> CompiledBinding {
    // Kubernetes' describers: `ClusterRoleBinding "x" of ClusterRole "y" to User "z"` and
    // `RoleBinding "x/ns" of Role "y" to ServiceAccount "sa/ns"`.
    let source = if b.namespace.is_empty() {
        format!(
            "ClusterRoleBinding {} of {} {}",
            go_quote(&b.name),
            b.role_ref.kind.as_str(),
            go_quote(&b.role_ref.name)
        )
    } else {
        format!(
            "RoleBinding {} of {} {}",
            go_quote(&format!("{}/{}", b.name, b.namespace)),
            b.role_ref.kind.as_str(),
            go_quote(&b.role_ref.name)
        )
    };
    let subjects = b
        .subjects
        .iter()
        .filter_map(|s| {
            let (group, key, described) = match s.kind {
                SubjectKind::Group => (true, s.name.clone(), s.name.clone()),
                SubjectKind::User => (false, s.name.clone(), s.name.clone()),
                SubjectKind::ServiceAccount => {
                    // An unqualified ServiceAccount means one in the binding's namespace.
                    let ns = if s.namespace.is_empty() {
                        &b.namespace
                    } else {
                        &s.namespace
                    };
                    if ns.is_empty() {
                        return None; // can match no one
                    }
                    let user = format!("{SERVICE_ACCOUNT_USER_PREFIX}{ns}:{}", s.name);
                    (false, user, format!("{}/{ns}", s.name))
                }
            };
            let allowed_reason = format!(
                "RBAC: allowed by {source} to {} {}",
                s.kind.as_str(),
                go_quote(&described)
            );
            Some(CompiledSubject {
                group,
                key,
                allowed_reason,
            })
        })
        .collect();
    let resource = match b.role_ref.kind {
        RoleRefKind::Role => "role",
        RoleRefKind::ClusterRole => "clusterrole",
    };
    CompiledBinding {
        name: b.name.clone(),
        namespace: b.namespace.clone(),
        role_kind: b.role_ref.kind,
        role_name: b.role_ref.name.clone(),
        subjects,
        role_not_found: format!(
            "{resource}.rbac.authorization.k8s.io {} not found",
            go_quote(&b.role_ref.name)
        ),
    }
}

/// Go's `%q` for the names RBAC prints (Kubernetes formats its reasons with it).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The bindings that name one user or one group, by binding name (a stable visiting order).
#[derive(Debug, Default)]
struct Bucket {
    cluster: BTreeMap<String, Arc<CompiledBinding>>,
    namespaced: HashMap<String, BTreeMap<String, Arc<CompiledBinding>>>,
}

impl Bucket {
    fn is_empty(&self) -> bool {
        self.cluster.is_empty() && self.namespaced.is_empty()
    }
}

/// All RBAC objects the authorizer knows, and the subject index.
#[derive(Debug, Default)]
pub(crate) struct State {
    cluster_roles: HashMap<String, CompiledRole>,
    roles: HashMap<String, HashMap<String, CompiledRole>>,
    cluster_bindings: HashMap<String, Arc<CompiledBinding>>,
    role_bindings: HashMap<String, HashMap<String, Arc<CompiledBinding>>>,
    by_user: HashMap<String, Bucket>,
    by_group: HashMap<String, Bucket>,
}

impl State {
    /// Adds or replaces one object.
    pub(crate) fn insert(&mut self, compiled: Compiled) {
        match compiled {
            Compiled::Role {
                namespace,
                name,
                role,
            } => {
                if namespace.is_empty() {
                    self.cluster_roles.insert(name, role);
                } else {
                    self.roles.entry(namespace).or_default().insert(name, role);
                }
            }
            Compiled::Binding(binding) => {
                let ns = binding.namespace.clone();
                self.remove(binding_kind(&ns), &ns, &binding.name);
                let primary = if ns.is_empty() {
                    &mut self.cluster_bindings
                } else {
                    self.role_bindings.entry(ns.clone()).or_default()
                };
                primary.insert(binding.name.clone(), binding.clone());
                for s in &binding.subjects {
                    let index = if s.group {
                        &mut self.by_group
                    } else {
                        &mut self.by_user
                    };
                    let bucket = index.entry(s.key.clone()).or_default();
                    let slot = if ns.is_empty() {
                        &mut bucket.cluster
                    } else {
                        bucket.namespaced.entry(ns.clone()).or_default()
                    };
                    slot.insert(binding.name.clone(), binding.clone());
                }
            }
        }
    }

    /// Removes one object; absent objects are ignored.
    pub(crate) fn remove(&mut self, kind: RbacKind, namespace: &str, name: &str) {
        match kind {
            RbacKind::ClusterRole => {
                self.cluster_roles.remove(name);
            }
            RbacKind::Role => {
                remove_nested(&mut self.roles, namespace, name);
            }
            RbacKind::ClusterRoleBinding => {
                if let Some(old) = self.cluster_bindings.remove(name) {
                    self.unindex(&old);
                }
            }
            RbacKind::RoleBinding => {
                if let Some(old) = remove_nested(&mut self.role_bindings, namespace, name) {
                    self.unindex(&old);
                }
            }
        }
    }

    /// Removes every object of `kind`.
    pub(crate) fn clear(&mut self, kind: RbacKind) {
        match kind {
            RbacKind::ClusterRole => self.cluster_roles.clear(),
            RbacKind::Role => self.roles.clear(),
            RbacKind::ClusterRoleBinding => {
                self.cluster_bindings.clear();
                for index in [&mut self.by_user, &mut self.by_group] {
                    index.retain(|_, bucket| {
                        bucket.cluster.clear();
                        !bucket.is_empty()
                    });
                }
            }
            RbacKind::RoleBinding => {
                self.role_bindings.clear();
                for index in [&mut self.by_user, &mut self.by_group] {
                    index.retain(|_, bucket| {
                        bucket.namespaced.clear();
                        !bucket.is_empty()
                    });
                }
            }
        }
    }

    pub(crate) fn count(&self, kind: RbacKind) -> usize {
        match kind {
            RbacKind::ClusterRole => self.cluster_roles.len(),
            RbacKind::Role => self.roles.values().map(HashMap::len).sum(),
            RbacKind::ClusterRoleBinding => self.cluster_bindings.len(),
            RbacKind::RoleBinding => self.role_bindings.values().map(HashMap::len).sum(),
        }
    }

    fn unindex(&mut self, old: &CompiledBinding) {
        for s in &old.subjects {
            let index = if s.group {
                &mut self.by_group
            } else {
                &mut self.by_user
            };
            let Some(bucket) = index.get_mut(&s.key) else {
                continue;
            };
            if old.namespace.is_empty() {
                bucket.cluster.remove(&old.name);
            } else if let Some(m) = bucket.namespaced.get_mut(&old.namespace) {
                m.remove(&old.name);
                if m.is_empty() {
                    bucket.namespaced.remove(&old.namespace);
                }
            }
            if bucket.is_empty() {
                index.remove(&s.key);
            }
        }
    }

    /// The decision for a request, as Kubernetes' RBAC authorizer makes it: ClusterRoleBindings
    /// that name the user first, then RoleBindings in the request's namespace; the first rule
    /// that allows wins. Otherwise NoOpinion, whose reason lists the missing roles of bindings
    /// that named the user (empty when there were none): RBAC never denies.
    pub(crate) fn decide(&self, a: &Attributes) -> Decision {
        let user = &a.user;
        let mut buckets: Vec<&Bucket> = Vec::with_capacity(1 + user.groups.len());
        buckets.extend(self.by_user.get(&user.name));
        buckets.extend(user.groups.iter().filter_map(|g| self.by_group.get(g)));
        let mut missing: Vec<&str> = Vec::new();
        for bucket in &buckets {
            for binding in bucket.cluster.values() {
                if let Some(reason) = self.visit(binding, a, &mut missing) {
                    return Decision::allow(reason);
                }
            }
        }
        if !a.namespace.is_empty() {
            for bucket in &buckets {
                let Some(bindings) = bucket.namespaced.get(&a.namespace) else {
                    continue;
                };
                for binding in bindings.values() {
                    if let Some(reason) = self.visit(binding, a, &mut missing) {
                        return Decision::allow(reason);
                    }
                }
            }
        }
        Decision::no_opinion(no_opinion_reason(&missing))
    }

    /// The allow reason if the binding's role allows the request.
    fn visit<'s>(
        &'s self,
        binding: &'s CompiledBinding,
        a: &Attributes,
        missing: &mut Vec<&'s str>,
    ) -> Option<&'s str> {
        let role = match binding.role_kind {
            RoleRefKind::ClusterRole => self.cluster_roles.get(&binding.role_name),
            RoleRefKind::Role => self
                .roles
                .get(&binding.namespace)
                .and_then(|m| m.get(&binding.role_name)),
        };
        let Some(role) = role else {
            missing.push(&binding.role_not_found);
            return None;
        };
        if !role.rules.iter().any(|r| r.allows(a)) {
            return None;
        }
        // Kubernetes names the first subject of the binding that applies to the user.
        binding
            .subjects
            .iter()
            .find(|s| applies(s, &a.user))
            .map(|s| s.allowed_reason.as_str())
    }
}

fn applies(s: &CompiledSubject, user: &UserInfo) -> bool {
    if s.group {
        user.in_group(&s.key)
    } else {
        user.name == s.key
    }
}

/// `RBAC: <error>`, or `RBAC: [<e1>, <e2>]` for several distinct ones, as Kubernetes'
/// aggregated errors print.
fn no_opinion_reason(missing: &[&str]) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for m in missing {
        if !unique.contains(m) {
            unique.push(m);
        }
    }
    match unique.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    }
}

fn binding_kind(namespace: &str) -> RbacKind {
    if namespace.is_empty() {
        RbacKind::ClusterRoleBinding
    } else {
        RbacKind::RoleBinding
    }
}

fn remove_nested<V>(
    map: &mut HashMap<String, HashMap<String, V>>,
    namespace: &str,
    name: &str,
) -> Option<V> {
    let inner = map.get_mut(namespace)?;
    let old = inner.remove(name);
    if inner.is_empty() {
        map.remove(namespace);
    }
    old
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote("alice"), "\"alice\"");
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
    }

    #[test]
    fn aggregated_errors_print_like_kubernetes() {
        assert_eq!(no_opinion_reason(&[]), "");
        assert_eq!(no_opinion_reason(&["a", "a"]), "RBAC: a");
        assert_eq!(no_opinion_reason(&["a", "b", "a"]), "RBAC: [a, b]");
    }
}
