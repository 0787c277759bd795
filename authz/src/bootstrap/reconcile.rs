//! Bootstrap reconciliation: how a stored Role, ClusterRole, RoleBinding or ClusterRoleBinding
//! is brought back in line with the bootstrap policy at every start, as kube-apiserver's
//! `ensureRBACPolicy` does with `removeExtraPermissions` / `removeExtraSubjects` off
//! (`pkg/registry/rbac/reconciliation`):
//!
//! - an object annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` is protected:
//!   nothing is changed;
//! - labels and annotations the policy has and the object lacks are added (the object's own
//!   values win);
//! - a role gets back every policy rule its rules no longer cover (the admin's extra rules stay);
//!   aggregated roles' rules are the aggregation controller's, not reconciled here; missing
//!   aggregationRule selectors are added, and an aggregationRule the policy does not have is
//!   removed;
//! - a binding gets back its missing subjects (extra ones stay); a binding whose roleRef differs
//!   is replaced by the policy's binding (a roleRef cannot change in place).
//!
//! One difference from Kubernetes, on purpose: an uncovered policy rule comes back whole, where
//! Kubernetes appends only its uncovered pieces (one rule per group, resource and verb). Both
//! grant the same; whole rules keep the restored object readable.

use serde_json::{Map, Value};

use super::AUTOUPDATE_ANNOTATION;
use crate::aggregation::normal_rule;

/// What to do with a stored object.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconciliation {
    /// It already agrees with the policy: no write.
    Unchanged,
    /// Its autoupdate annotation is "false": it is the admin's, no write.
    Protected,
    /// Store this successor of the stored object (same metadata, so a compare-and-swap update).
    Update(Value),
    /// Delete the stored binding and create this one (its roleRef differs from the policy's).
    Recreate(Value),
}

/// Reconciles a stored Role or ClusterRole with its policy version.
pub fn reconcile_role(expected: &Value, existing: &Value) -> Reconciliation {
    if is_protected(existing) {
        return Reconciliation::Protected;
    }
    let mut next = existing.clone();
    merge_metadata(expected, &mut next);
    let expected_aggregation = non_null(expected, "aggregationRule");
    if expected_aggregation.is_none() {
        let missing: Vec<Value> = list(expected, "rules")
            .iter()
            .filter(|rule| !covers(list(existing, "rules"), rule))
            .map(normal_rule)
            .collect();
        if !missing.is_empty() {
            let mut rules = list(existing, "rules").to_vec();
            rules.extend(missing);
            set(&mut next, "rules", Value::Array(rules));
        }
    }
    match (expected_aggregation, non_null(existing, "aggregationRule")) {
        (None, Some(_)) => {
            if let Some(map) = next.as_object_mut() {
                map.remove("aggregationRule");
            }
        }
        (Some(want), have) => {
            let have_selectors = have.map(|h| list(h, "clusterRoleSelectors")).unwrap_or(&[]);
            let missing: Vec<&Value> = list(want, "clusterRoleSelectors")
                .iter()
                .filter(|s| !have_selectors.contains(s))
                .collect();
            if !missing.is_empty() || have.is_none() {
                let mut selectors = have_selectors.to_vec();
                selectors.extend(missing.into_iter().cloned());
                let mut rule = have.cloned().unwrap_or_else(|| Value::Object(Map::new()));
                set(&mut rule, "clusterRoleSelectors", Value::Array(selectors));
                set(&mut next, "aggregationRule", rule);
            }
        }
        (None, None) => {}
    }
    finish(existing, next)
}

/// Reconciles a stored RoleBinding or ClusterRoleBinding with its policy version.
pub fn reconcile_binding(expected: &Value, existing: &Value) -> Reconciliation {
    if is_protected(existing) {
        return Reconciliation::Protected;
    }
    if role_ref(expected) != role_ref(existing) {
        return Reconciliation::Recreate(expected.clone());
    }
    let mut next = existing.clone();
    merge_metadata(expected, &mut next);
    let have: Vec<[&str; 4]> = list(existing, "subjects").iter().map(subject_key).collect();
    let missing: Vec<Value> = list(expected, "subjects")
        .iter()
        .filter(|s| !have.contains(&subject_key(s)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let mut subjects = list(existing, "subjects").to_vec();
        subjects.extend(missing);
        set(&mut next, "subjects", Value::Array(subjects));
    }
    finish(existing, next)
}

/// Whether `owner` rules grant everything `rule` grants (Kubernetes' `validation.Covers`, for one
/// servant rule): every (group, resource, name, verb) and (URL, verb) piece of `rule` is allowed
/// by some owner rule, wildcards (`*`, `*/subresource`, URL prefixes ending in `*`) included.
pub fn covers(owner: &[Value], rule: &Value) -> bool {
    let owners: Vec<Rule> = owner.iter().map(Rule::from_value).collect();
    let rule = Rule::from_value(rule);
    for verb in &rule.verbs {
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let names: Vec<Option<&str>> = if rule.resource_names.is_empty() {
                    vec![None]
                } else {
                    rule.resource_names
                        .iter()
                        .map(|n| Some(n.as_str()))
                        .collect()
                };
                for name in names {
                    if !owners
                        .iter()
                        .any(|o| o.allows_resource(verb, group, resource, name))
                    {
                        return false;
                    }
                }
            }
        }
        for url in &rule.non_resource_urls {
            if !owners.iter().any(|o| o.allows_url(verb, url)) {
                return false;
            }
        }
    }
    true
}

/// A rule's string lists (absent or malformed fields are empty).
struct Rule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

impl Rule {
    fn from_value(v: &Value) -> Rule {
        let strings = |field: &str| -> Vec<String> {
            list(v, field)
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        };
        Rule {
            verbs: strings("verbs"),
            api_groups: strings("apiGroups"),
            resources: strings("resources"),
            resource_names: strings("resourceNames"),
            non_resource_urls: strings("nonResourceURLs"),
        }
    }

    fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn allows_resource(&self, verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
        let group_ok = self.api_groups.iter().any(|g| g == "*" || g == group);
        // `*` covers every resource; `*/sub` covers that subresource of every resource.
        let resource_ok = self.resources.iter().any(|r| {
            r == "*"
                || r == resource
                || resource
                    .split_once('/')
                    .is_some_and(|(_, sub)| r.strip_prefix("*/") == Some(sub))
        });
        // A rule restricted to names covers only those names, never "every name".
        let name_ok = self.resource_names.is_empty()
            || name.is_some_and(|n| self.resource_names.iter().any(|x| x == n));
        self.has_verb(verb) && group_ok && resource_ok && name_ok
    }

    fn allows_url(&self, verb: &str, url: &str) -> bool {
        self.has_verb(verb)
            && self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == url
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| url.starts_with(prefix))
            })
    }
}

fn is_protected(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("false")
}

fn non_null<'a>(obj: &'a Value, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

fn list<'a>(obj: &'a Value, field: &str) -> &'a [Value] {
    obj.get(field)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn set(obj: &mut Value, field: &str, value: Value) {
    if let Some(map) = obj.as_object_mut() {
        map.insert(field.to_owned(), value);
    }
}

/// Adds the policy's labels and annotations the object lacks; the object's values win.
fn merge_metadata(expected: &Value, next: &mut Value) {
    for field in ["labels", "annotations"] {
        let Some(want) = expected
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        if want.is_empty() {
            continue;
        }
        let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        let entry = meta
            .entry(field.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if entry.is_null() {
            *entry = Value::Object(Map::new());
        }
        if let Some(have) = entry.as_object_mut() {
            for (k, v) in want {
                have.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// A roleRef as Kubernetes compares it; an empty apiGroup is the RBAC group it defaults to.
fn role_ref(obj: &Value) -> [&str; 3] {
    let field = |f: &str| {
        obj.pointer(&format!("/roleRef/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let group = match field("apiGroup") {
        "" => "rbac.authorization.k8s.io",
        g => g,
    };
    [group, field("kind"), field("name")]
}

/// A subject as Kubernetes compares them: kind, apiGroup, name and namespace, absent as "";
/// a User's or Group's empty apiGroup is the RBAC group it defaults to.
fn subject_key(s: &Value) -> [&str; 4] {
    let field = |f: &str| s.get(f).and_then(Value::as_str).unwrap_or("");
    let group = match (field("kind"), field("apiGroup")) {
        ("User" | "Group", "") => "rbac.authorization.k8s.io",
        (_, g) => g,
    };
    [field("kind"), group, field("name"), field("namespace")]
}

fn finish(existing: &Value, next: Value) -> Reconciliation {
    if &next == existing {
        Reconciliation::Unchanged
    } else {
        Reconciliation::Update(next)
    }
}
