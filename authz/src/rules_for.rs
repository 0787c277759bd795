//! What one user may do in one namespace: Kubernetes' `RulesFor`, which answers a
//! SelfSubjectRulesReview and feeds the escalation check. Found through the subject index, so
//! only the bindings that name the user or its groups are read.

use crate::authorizer::{PrivilegedGroups, RbacAuthorizer};
use crate::index::{CompiledBinding, State};
use crate::objects::{PolicyRule, RoleRefKind};
use crate::quote::aggregate_errors;
use kgate_core::UserInfo;
use std::collections::HashSet;
use std::ops::ControlFlow;

/// The rules a user holds, in the shape of a SelfSubjectRulesReview's status. Rules are
/// additive: a rule listed is held even when the list is incomplete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectRules {
    /// Rules with resources: verbs, apiGroups, resources and resourceNames (no URLs).
    pub resource_rules: Vec<PolicyRule>,
    /// Rules with nonResourceURLs: verbs and nonResourceURLs only.
    pub non_resource_rules: Vec<PolicyRule>,
    /// True when an authorizer that cannot list rules (a webhook) is in the chain, so the user
    /// may hold more than listed. A missing role does not set it (as in Kubernetes): it is
    /// named in `evaluation_error`.
    pub incomplete: bool,
    /// What could not be resolved, in Kubernetes' words
    /// (`clusterrole.rbac.authorization.k8s.io "x" not found`); empty when nothing failed.
    pub evaluation_error: String,
}

impl SubjectRules {
    /// Everything: what a member of a privileged group (`system:masters`) may do, as Kubernetes'
    /// SelfSubjectRulesReview reports it for cluster-admin: `*` on every resource of every group,
    /// and `*` on every non-resource URL.
    pub fn everything() -> Self {
        let star = || vec!["*".to_owned()];
        Self {
            resource_rules: vec![PolicyRule {
                verbs: star(),
                api_groups: star(),
                resources: star(),
                ..PolicyRule::default()
            }],
            non_resource_rules: vec![PolicyRule {
                verbs: star(),
                non_resource_urls: star(),
                ..PolicyRule::default()
            }],
            incomplete: false,
            evaluation_error: String::new(),
        }
    }

    /// Files one rule under resource rules, non-resource rules or both, as Kubernetes' RBAC
    /// `RulesFor` splits a PolicyRule (a rule with neither grants nothing and is dropped).
    fn push(&mut self, rule: &PolicyRule) {
        if !rule.resources.is_empty() {
            self.resource_rules.push(PolicyRule {
                verbs: rule.verbs.clone(),
                api_groups: rule.api_groups.clone(),
                resources: rule.resources.clone(),
                resource_names: rule.resource_names.clone(),
                non_resource_urls: Vec::new(),
            });
        }
        if !rule.non_resource_urls.is_empty() {
            self.non_resource_rules.push(PolicyRule {
                verbs: rule.verbs.clone(),
                non_resource_urls: rule.non_resource_urls.clone(),
                ..PolicyRule::default()
            });
        }
    }
}

/// Every rule of every role bound to `user` through ClusterRoleBindings and, when `namespace`
/// is not empty, the RoleBindings there (each binding once), and the resolution errors. As in
/// Kubernetes, this includes the non-resource rules of a ClusterRole bound by a RoleBinding,
/// although a RoleBinding never grants a non-resource URL.
pub(crate) fn resolve_rules<'s>(
    state: &'s State,
    user: &UserInfo,
    namespace: &str,
) -> (Vec<&'s PolicyRule>, Vec<String>) {
    let mut seen: HashSet<*const CompiledBinding> = HashSet::new();
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let _ = state.visit_bindings_for(user, namespace, |binding| -> ControlFlow<()> {
        if !seen.insert(binding as *const CompiledBinding) {
            return ControlFlow::Continue(());
        }
        match state.role_of(binding) {
            Some(role) => rules.extend(role.rules.iter().map(|r| r.source())),
            None => errors.push(binding.role_not_found()),
        }
        ControlFlow::Continue(())
    });
    (rules, errors)
}

impl RbacAuthorizer {
    /// The rules `user` holds through RBAC in `namespace` (`""`: through ClusterRoleBindings
    /// only), as Kubernetes' `RulesFor` and a SelfSubjectRulesReview give them. A binding whose
    /// role is missing is named in `evaluation_error`; like Kubernetes' RBAC authorizer
    /// (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `RulesFor` returns `incomplete` false with the
    /// error), that does not mark the list incomplete.
    ///
    /// Members of a privileged group get everything from [`PrivilegedGroups`], not from RBAC:
    /// see [`PrivilegedGroups::rules_for`]. (With the bootstrap policy, cluster-admin's binding
    /// to `system:masters` gives them `*` here too.)
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> SubjectRules {
        let state = self.read();
        let (rules, errors) = resolve_rules(&state, user, namespace);
        let mut out = SubjectRules::default();
        for rule in rules {
            out.push(rule);
        }
        if !errors.is_empty() {
            out.evaluation_error = aggregate_errors(&errors);
        }
        out
    }
}

impl RbacAuthorizer {
    /// The rules of one Role (`kind` Role, its namespace) or ClusterRole (`namespace` ignored),
    /// as stored; `None` when it does not exist. What a binding to it would grant: the
    /// escalation check of a binding compares these with what its writer holds.
    pub fn role_rules(
        &self,
        kind: RoleRefKind,
        namespace: &str,
        name: &str,
    ) -> Option<Vec<PolicyRule>> {
        let namespace = match kind {
            RoleRefKind::Role => namespace,
            RoleRefKind::ClusterRole => "",
        };
        let state = self.read();
        let role = state.role(namespace, name)?;
        Some(role.rules.iter().map(|r| r.source().clone()).collect())
    }
}

impl PrivilegedGroups {
    /// [`SubjectRules::everything`] for a member of one of the privileged groups, who may do
    /// anything whatever RBAC says; `None` for anyone else (ask [`RbacAuthorizer::rules_for`]).
    pub fn rules_for(&self, user: &UserInfo) -> Option<SubjectRules> {
        self.includes(user).then(SubjectRules::everything)
    }
}
