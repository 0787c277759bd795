//! Who may make a request: every subject some binding grants it, with the binding and the role.
//! It answers a question about all subjects, so it reads every binding in scope: an offline
//! query for a CLI or an audit, not for the request path.

use crate::authorizer::RbacAuthorizer;
use crate::index::{describe_binding, scope_namespace, CompiledBinding};
use crate::objects::{RbacKind, RoleRef, Subject};
use crate::rule::Request;
use kgate_core::Attributes;
use std::fmt;

/// Which binding: kind, namespace (empty for a ClusterRoleBinding) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindingRef {
    pub kind: RbacKind,
    pub namespace: String,
    pub name: String,
}

impl BindingRef {
    pub(crate) fn of(binding: &CompiledBinding) -> Self {
        Self {
            kind: binding.kind(),
            namespace: binding.namespace.clone(),
            name: binding.name.clone(),
        }
    }
}

impl fmt::Display for BindingRef {
    /// `ClusterRoleBinding "x"` or `RoleBinding "x/ns"`, as Kubernetes' reasons print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe_binding(&self.namespace, &self.name))
    }
}

/// One subject allowed a request, and what allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// As the binding names it; a ServiceAccount's namespace is filled in from a RoleBinding's.
    pub subject: Subject,
    pub binding: BindingRef,
    pub role: RoleRef,
}

impl RbacAuthorizer {
    /// Every subject RBAC allows `request` (its `user` is ignored): each subject of each
    /// ClusterRoleBinding, and of each RoleBinding in the request's namespace, whose role has a
    /// rule allowing the request: ClusterRoleBindings, then RoleBindings, each by name, subjects
    /// in binding order. Bindings whose role is missing grant nothing and are left out.
    ///
    /// This scans every binding in scope (it has to: the question names no subject), so its
    /// cost grows with the cluster's bindings. Meant for offline use (`kgate rbac who-can`); a
    /// request's decision goes through [`kgate_core::authz::Authorizer::authorize`]. Groups are
    /// listed as groups: who is in them is the authenticator's knowledge, not RBAC's; the
    /// privileged groups (`system:masters`) are not RBAC's either.
    pub fn who_can(&self, request: &Attributes) -> Vec<Grant> {
        let state = self.read();
        let matcher = Request::new(request);
        let mut bindings: Vec<&CompiledBinding> = state
            .bindings_in_scope(scope_namespace(request))
            .filter(|b| {
                state
                    .role_of(b)
                    .is_some_and(|role| role.rules.iter().any(|r| r.allows_request(&matcher)))
            })
            .collect();
        // ClusterRoleBindings (no namespace) first, as Kubernetes visits them.
        bindings.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        bindings
            .into_iter()
            .flat_map(|b| {
                let binding = BindingRef::of(b);
                b.subjects.iter().map(move |s| Grant {
                    subject: s.subject.clone(),
                    binding: binding.clone(),
                    role: b.role_ref.clone(),
                })
            })
            .collect()
    }
}
