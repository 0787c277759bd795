//! Why RBAC decided what it did: the decision, and every binding that names the user or one of
//! its groups in the request's scope, with its role, whether the role exists, and which of the
//! role's rules match. `Display` prints the report `kgate rbac explain` shows.

use crate::authorizer::RbacAuthorizer;
use crate::index::{describe_subject, scope_namespace, CompiledBinding};
use crate::objects::{PolicyRule, RoleRef, Subject};
use crate::quote::{write_go_quoted, write_go_quoted_list};
use crate::rule::Request;
use crate::who_can::BindingRef;
use kgate_core::{Attributes, Decision};
use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;

/// RBAC's decision on one request, and the bindings it considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub attributes: Attributes,
    /// The same decision [`kgate_core::authz::Authorizer::authorize`] gives.
    pub decision: Decision,
    /// In the order RBAC visits them: ClusterRoleBindings, then RoleBindings of the request's
    /// namespace; each once.
    pub bindings: Vec<BindingExplanation>,
}

/// One binding that names the user (by name, as a ServiceAccount, or through a group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingExplanation {
    pub binding: BindingRef,
    /// The first subject that applies to the user: the one an allow reason names.
    pub subject: Subject,
    pub role: RoleRef,
    /// False when the role does not exist: the binding grants nothing.
    pub role_found: bool,
    /// The role's rules, each with whether it allows the request.
    pub rules: Vec<RuleMatch>,
}

/// One rule of a role and whether it allows the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub rule: PolicyRule,
    pub matched: bool,
}

impl RbacAuthorizer {
    /// The decision on `attributes` and every binding behind it (see [`Explanation`]), under one
    /// read lock so the two agree. Found through the subject index, as a decision is.
    pub fn explain(&self, attributes: &Attributes) -> Explanation {
        let state = self.read();
        let decision = state.decide(attributes);
        let request = Request::new(attributes);
        let mut seen: HashSet<*const CompiledBinding> = HashSet::new();
        let mut bindings = Vec::new();
        let user = &attributes.user;
        let _ = state.visit_bindings_for(user, scope_namespace(attributes), |b| {
            if !seen.insert(b as *const CompiledBinding) {
                return ControlFlow::<()>::Continue(());
            }
            let Some(subject) = b.first_subject_for(user) else {
                return ControlFlow::Continue(());
            };
            let role = state.role_of(b);
            bindings.push(BindingExplanation {
                binding: BindingRef::of(b),
                subject: subject.subject.clone(),
                role: b.role_ref.clone(),
                role_found: role.is_some(),
                rules: role
                    .map(|r| {
                        r.rules
                            .iter()
                            .map(|rule| RuleMatch {
                                rule: rule.source().clone(),
                                matched: rule.allows_request(&request),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            });
            ControlFlow::Continue(())
        });
        Explanation {
            attributes: attributes.clone(),
            decision,
            bindings,
        }
    }
}

/// `get resource "pods/log" in API group "" in the namespace "team", name "web"` or
/// `get path "/healthz"`, in kube-apiserver's words.
fn write_request(f: &mut fmt::Formatter<'_>, a: &Attributes) -> fmt::Result {
    write!(f, "{} ", a.verb)?;
    if !a.resource_request {
        f.write_str("path ")?;
        return write_go_quoted(f, &a.path);
    }
    f.write_str("resource ")?;
    write_go_quoted(f, &a.resource_with_subresource())?;
    f.write_str(" in API group ")?;
    write_go_quoted(f, &a.api_group)?;
    if a.namespace.is_empty() {
        f.write_str(" at the cluster scope")?;
    } else {
        f.write_str(" in the namespace ")?;
        write_go_quoted(f, &a.namespace)?;
    }
    if !a.name.is_empty() {
        f.write_str(", name ")?;
        write_go_quoted(f, &a.name)?;
    }
    Ok(())
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.attributes;
        f.write_str("request:  User ")?;
        write_go_quoted(f, &a.user.name)?;
        f.write_str(" (groups=")?;
        write_go_quoted_list(f, &a.user.groups)?;
        f.write_str(") ")?;
        write_request(f, a)?;
        f.write_str("\ndecision: ")?;
        match &self.decision {
            Decision::Allow { reason } => write!(f, "allowed: {reason}")?,
            other => {
                f.write_str("no RBAC rule allows it (denied unless another authorizer allows it)")?;
                if !other.reason().is_empty() {
                    write!(f, "; {}", other.reason())?;
                }
            }
        }
        f.write_str("\n")?;
        if self.bindings.is_empty() {
            f.write_str("bindings: none names the user or its groups")?;
            if a.resource_request && !a.namespace.is_empty() {
                f.write_str(" (cluster-wide or in this namespace)")?;
            }
            return f.write_str("\n");
        }
        writeln!(
            f,
            "bindings naming the user or its groups: {}",
            self.bindings.len()
        )?;
        for b in &self.bindings {
            write!(f, "  {} of {} ", b.binding, b.role.kind.as_str())?;
            write_go_quoted(f, &b.role.name)?;
            writeln!(f, " to {}", describe_subject(&b.subject))?;
            if !b.role_found {
                writeln!(f, "    role not found: grants nothing")?;
                continue;
            }
            if b.rules.is_empty() {
                writeln!(f, "    the role has no rules")?;
            }
            for r in &b.rules {
                let mark = if r.matched { "match   " } else { "no match" };
                writeln!(f, "    {mark} {}", r.rule.compact_string())?;
            }
        }
        Ok(())
    }
}
