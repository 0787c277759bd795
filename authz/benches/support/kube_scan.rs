//! Kubernetes' RBAC authorizer as it works, for comparison: written from its behaviour
//! (plugin/pkg/auth/authorizer/rbac and pkg/registry/rbac/validation), not its code.
//!
//! `VisitRulesFor` lists every ClusterRoleBinding (the informer's `List` copies every cached
//! item into a new slice), checks each one's subjects against the user (`appliesTo`), fetches
//! its role by key, and checks the role's rules (`RuleAllows`, which builds `resource/sub`);
//! then it lists the RoleBindings of the request's namespace (the namespace index gives keys,
//! each item fetched by key) and does the same. It stops at the first allow and formats the
//! reason then; a role it cannot find becomes an error in the NoOpinion reason. What it skips:
//! the label-selector check of `List(labels.Everything())`, which always passes.

use kgate_authz::objects::{
    Binding, PolicyRule, RbacObject, Role, RoleRefKind, Subject, SubjectKind,
};
use kgate_core::{Attributes, Decision, UserInfo};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub struct KubeScan {
    cluster_role_bindings: HashMap<String, Binding>,
    /// By `namespace/name`, as the informer's store keys them.
    role_bindings: HashMap<String, Binding>,
    /// The informer's namespace index: namespace → keys.
    role_bindings_by_namespace: HashMap<String, HashSet<String>>,
    cluster_roles: HashMap<String, Role>,
    roles: HashMap<String, Role>,
}

impl KubeScan {
    pub fn new(objects: &[Value]) -> Self {
        let mut scan = Self::default();
        for o in objects {
            match RbacObject::from_value(o).expect("workload object") {
                RbacObject::ClusterRole(r) => {
                    scan.cluster_roles.insert(r.name.clone(), r);
                }
                RbacObject::Role(r) => {
                    scan.roles.insert(format!("{}/{}", r.namespace, r.name), r);
                }
                RbacObject::ClusterRoleBinding(b) => {
                    scan.cluster_role_bindings.insert(b.name.clone(), b);
                }
                RbacObject::RoleBinding(b) => {
                    let key = format!("{}/{}", b.namespace, b.name);
                    scan.role_bindings_by_namespace
                        .entry(b.namespace.clone())
                        .or_default()
                        .insert(key.clone());
                    scan.role_bindings.insert(key, b);
                }
                _ => {}
            }
        }
        scan
    }

    pub fn authorize(&self, a: &Attributes) -> Decision {
        let mut errors: Vec<String> = Vec::new();
        let cluster: Vec<&Binding> = self.cluster_role_bindings.values().collect();
        for b in cluster {
            if let Some(reason) = self.visit(b, "", a, &mut errors) {
                return Decision::allow(reason);
            }
        }
        if !a.namespace.is_empty() {
            let namespaced: Vec<&Binding> = self
                .role_bindings_by_namespace
                .get(&a.namespace)
                .into_iter()
                .flatten()
                .filter_map(|key| self.role_bindings.get(key))
                .collect();
            for b in namespaced {
                if let Some(reason) = self.visit(b, &a.namespace, a, &mut errors) {
                    return Decision::allow(reason);
                }
            }
        }
        if errors.is_empty() {
            Decision::no_opinion("")
        } else {
            Decision::no_opinion(format!("RBAC: [{}]", errors.join(", ")))
        }
    }

    fn visit(
        &self,
        b: &Binding,
        namespace: &str,
        a: &Attributes,
        errors: &mut Vec<String>,
    ) -> Option<String> {
        let subject = applies_to(&a.user, &b.subjects, namespace)?;
        let rules = match self.role_rules(b, namespace) {
            Ok(rules) => rules,
            Err(e) => {
                errors.push(e);
                return None;
            }
        };
        if !rules.iter().any(|r| rule_allows(a, r)) {
            return None;
        }
        let binding = if namespace.is_empty() {
            format!("ClusterRoleBinding {:?}", b.name)
        } else {
            format!("RoleBinding {:?}", format!("{}/{}", b.name, b.namespace))
        };
        let who = match subject.kind {
            SubjectKind::ServiceAccount => format!("{}/{}", subject.name, subject.namespace),
            _ => subject.name.clone(),
        };
        Some(format!(
            "RBAC: allowed by {binding} of {} {:?} to {} {:?}",
            b.role_ref.kind.as_str(),
            b.role_ref.name,
            subject.kind.as_str(),
            who
        ))
    }

    fn role_rules(&self, b: &Binding, namespace: &str) -> Result<&[PolicyRule], String> {
        let (role, resource) = match b.role_ref.kind {
            RoleRefKind::ClusterRole => (self.cluster_roles.get(&b.role_ref.name), "clusterrole"),
            // The lister's key is built for each lookup.
            _ => (
                self.roles.get(&format!("{namespace}/{}", b.role_ref.name)),
                "role",
            ),
        };
        role.map(|r| r.rules.as_slice()).ok_or_else(|| {
            format!(
                "{resource}.rbac.authorization.k8s.io {:?} not found",
                b.role_ref.name
            )
        })
    }
}

fn applies_to<'b>(
    user: &UserInfo,
    subjects: &'b [Subject],
    namespace: &str,
) -> Option<&'b Subject> {
    subjects.iter().find(|s| match s.kind {
        SubjectKind::User => user.name == s.name,
        SubjectKind::Group => user.groups.contains(&s.name),
        SubjectKind::ServiceAccount => {
            let ns = if s.namespace.is_empty() {
                namespace
            } else {
                &s.namespace
            };
            !ns.is_empty() && matches_service_account(ns, &s.name, &user.name)
        }
        _ => false,
    })
}

/// `system:serviceaccount:NS:NAME`, compared piece by piece as Kubernetes does.
fn matches_service_account(namespace: &str, name: &str, user: &str) -> bool {
    let Some(rest) = user.strip_prefix("system:serviceaccount:") else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(namespace) else {
        return false;
    };
    rest.strip_prefix(':') == Some(name)
}

fn has(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x == item)
}

fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    let verb = rule.verbs.iter().any(|v| v == "*" || *v == a.verb);
    if !a.resource_request {
        return verb
            && rule.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || (u.ends_with('*') && a.path.starts_with(u.trim_end_matches('*')))
            });
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    verb && (has(&rule.api_groups, "*") || has(&rule.api_groups, &a.api_group))
        && rule.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.len() == a.subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(a.subresource.as_str()))
        })
        && (rule.resource_names.is_empty() || has(&rule.resource_names, &a.name))
}
