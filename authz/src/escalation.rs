//! The escalation check, as Kubernetes' `ConfirmNoEscalation`: a user may only write a Role or
//! ClusterRole (or bind one) whose rules are all covered by rules it already holds. Requested
//! rules are broken into atomic ones (one verb, apiGroup, resource and resourceName, or one verb
//! and URL) and each must be covered by one of the owner's rules (`validation.Covers`).
//!
//! The check alone: as in Kubernetes' RBAC storage, callers let members of the privileged groups
//! through before it, and a user allowed the `escalate` (roles) or `bind` (bindings) verb on
//! the role skips it.

use crate::authorizer::RbacAuthorizer;
use crate::objects::PolicyRule;
use crate::quote::{aggregate_errors, write_go_quoted, write_go_quoted_list};
use crate::rules_for::resolve_rules;
use kgate_core::UserInfo;
use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// Ok when `owner` covers every atomic rule of `requested`; otherwise the atomic rules left
/// uncovered, in the order they were broken out. As Kubernetes' `Covers`: `*` covers every verb,
/// group and resource; `*/sub` covers `res/sub`; a URL ending in `*` covers the URLs it
/// prefixes; an owner rule without resourceNames covers any names, one with names only those.
pub fn covers(owner: &[PolicyRule], requested: &[PolicyRule]) -> Result<(), Vec<PolicyRule>> {
    let uncovered: Vec<PolicyRule> = requested
        .iter()
        .flat_map(breakdown)
        .filter(|atom| !owner.iter().any(|o| rule_covers(o, atom)))
        .collect();
    if uncovered.is_empty() {
        Ok(())
    } else {
        Err(uncovered)
    }
}

/// A rule as atomic rules: one per (apiGroup, resource, verb[, resourceName]), then one per
/// (URL, verb), as Kubernetes' `BreakdownRule`.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| vec![s.clone()];
    let mut atoms = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            for verb in &rule.verbs {
                let atom = PolicyRule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..PolicyRule::default()
                };
                if rule.resource_names.is_empty() {
                    atoms.push(atom);
                } else {
                    for name in &rule.resource_names {
                        atoms.push(PolicyRule {
                            resource_names: one(name),
                            ..atom.clone()
                        });
                    }
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            atoms.push(PolicyRule {
                verbs: one(verb),
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    atoms
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

fn resources_cover(owner: &[String], requested: &[String]) -> bool {
    if has(owner, "*") {
        return true;
    }
    requested.iter().all(|resource| {
        has(owner, resource)
            || resource
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn url_covers(owner: &str, requested: &str) -> bool {
    owner == requested
        || (owner.ends_with('*') && requested.starts_with(owner.trim_end_matches('*')))
}

/// Whether one owner rule covers one atomic rule.
fn rule_covers(owner: &PolicyRule, atom: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, "*") || has_all(&owner.verbs, &atom.verbs);
    let groups = has(&owner.api_groups, "*") || has_all(&owner.api_groups, &atom.api_groups);
    let urls = atom
        .non_resource_urls
        .iter()
        .all(|u| owner.non_resource_urls.iter().any(|o| url_covers(o, u)));
    let names = owner.resource_names.is_empty()
        || (!atom.resource_names.is_empty()
            && has_all(&owner.resource_names, &atom.resource_names));
    verbs && groups && resources_cover(&owner.resources, &atom.resources) && urls && names
}

/// Atomic rules that differ only in their verb, merged into one, as Kubernetes' `CompactRules`
/// does for its message; others stay as they are.
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut simple: BTreeMap<(String, String, Option<String>), PolicyRule> = BTreeMap::new();
    let mut out = Vec::new();
    for rule in rules {
        let is_simple = rule.api_groups.len() == 1
            && rule.resources.len() == 1
            && rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty();
        if !is_simple {
            out.push(rule);
            continue;
        }
        let key = (
            rule.api_groups[0].clone(),
            rule.resources[0].clone(),
            rule.resource_names.first().cloned(),
        );
        match simple.get_mut(&key) {
            Some(merged) => merged.verbs.extend(rule.verbs),
            None => {
                simple.insert(key, rule);
            }
        }
    }
    out.extend(simple.into_values());
    out
}

impl PolicyRule {
    /// Kubernetes' compact form for messages, fields present only when non-empty:
    /// `{APIGroups:[""], Resources:["pods"], ResourceNames:["web"], Verbs:["get"]}` or
    /// `{NonResourceURLs:["/healthz"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut out = String::from("{");
        let fields: [(&str, &[String]); 5] = [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ];
        let mut first = true;
        for (label, values) in fields {
            if values.is_empty() {
                continue;
            }
            if !first {
                out.push_str(", ");
            }
            first = false;
            out.push_str(label);
            out.push(':');
            // Writing to a String cannot fail.
            let _ = write_go_quoted_list(&mut out, values);
        }
        out.push('}');
        out
    }
}

/// A user tried to grant RBAC permissions it does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationError {
    pub user: String,
    pub groups: Vec<String>,
    /// What is missing, compacted (atomic rules differing only in verb merged), in the order of
    /// their compact strings, without repeats.
    pub missing: Vec<PolicyRule>,
    /// Bindings whose role could not be found while resolving the user's rules, in Kubernetes'
    /// words; empty when all resolved. The user may hold more once those roles exist.
    pub resolution_errors: String,
}

impl fmt::Display for EscalationError {
    /// Kubernetes' text: `user "alice" (groups=["dev" "system:authenticated"]) is attempting
    /// to grant RBAC permissions not currently held:` then one compact rule per line, then
    /// `; resolution errors: [...]` when rule resolution failed somewhere.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("user ")?;
        write_go_quoted(f, &self.user)?;
        f.write_str(" (groups=")?;
        write_go_quoted_list(f, &self.groups)?;
        f.write_str(") is attempting to grant RBAC permissions not currently held:")?;
        for rule in &self.missing {
            f.write_char('\n')?;
            f.write_str(&rule.compact_string())?;
        }
        if !self.resolution_errors.is_empty() {
            write!(f, "; resolution errors: [{}]", self.resolution_errors)?;
        }
        Ok(())
    }
}

impl std::error::Error for EscalationError {}

impl RbacAuthorizer {
    /// Ok when `user` already holds, in `namespace` (`""`: cluster-wide), every permission
    /// `rules` grant, so it may put them in a role or bind a role that has them; otherwise what
    /// is missing, as Kubernetes' `ConfirmNoEscalation` reports it. Privileged groups and the
    /// `escalate`/`bind` verbs are the caller's checks (see the module docs).
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), EscalationError> {
        let state = self.read();
        let (owned, errors) = resolve_rules(&state, user, namespace);
        let owned: Vec<PolicyRule> = owned.into_iter().cloned().collect();
        let uncovered = match covers(&owned, rules) {
            Ok(()) => return Ok(()),
            Err(uncovered) => uncovered,
        };
        let mut described: BTreeMap<String, PolicyRule> = BTreeMap::new();
        for rule in compact(uncovered) {
            described.entry(rule.compact_string()).or_insert(rule);
        }
        Err(EscalationError {
            user: user.name.clone(),
            groups: user.groups.clone(),
            missing: described.into_values().collect(),
            resolution_errors: aggregate_errors(&errors),
        })
    }
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
