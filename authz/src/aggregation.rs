//! ClusterRole aggregation, computed as Kubernetes' clusterrole-aggregation controller computes it
//! (`pkg/controller/clusterroleaggregation`): a ClusterRole with an `aggregationRule` gets, as its
//! rules, the rules of every other ClusterRole its `clusterRoleSelectors` select, selector by
//! selector, the selected roles in name order, each semantically distinct rule once.
//!
//! This module owns the computation and the label selectors it needs (`matchLabels`, and
//! `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`); it is pure (JSON objects
//! in, changes out). Applying the changes is the control plane's aggregation controller's job.
//!
//! Rules compare semantically, as Kubernetes' `equality.Semantic`: an absent, `null` or empty
//! list is the same empty list; order inside a list matters. Aggregated rules are written in
//! that normal form (empty lists left out, as Kubernetes serializes them).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use thiserror::Error;

/// The fields of a PolicyRule, in the order Kubernetes declares them.
const RULE_FIELDS: [&str; 5] = [
    "verbs",
    "apiGroups",
    "resources",
    "resourceNames",
    "nonResourceURLs",
];

/// A ClusterRole whose rules must change to what its aggregationRule selects.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedRole {
    /// The aggregating ClusterRole's name.
    pub name: String,
    /// Its rules after aggregation, in normal form.
    pub rules: Vec<Value>,
}

/// Why a ClusterRole could not be aggregated (it is left as it is, as Kubernetes does).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AggregationError {
    /// A `clusterRoleSelectors` entry is not a label selector Kubernetes accepts.
    #[error("ClusterRole {role:?}: aggregationRule.clusterRoleSelectors[{index}]: {message}")]
    InvalidSelector {
        /// The aggregating ClusterRole.
        role: String,
        /// The selector's position.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// The outcome of one aggregation pass over every ClusterRole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregation {
    /// The aggregating roles whose rules differ from the aggregation, with their new rules, in
    /// name order.
    pub changed: Vec<AggregatedRole>,
    /// The aggregating roles that were skipped, and why.
    pub errors: Vec<AggregationError>,
}

/// Aggregates every ClusterRole in `cluster_roles` that has an `aggregationRule`, and returns
/// those whose rules must change. Objects without a name are ignored.
pub fn aggregate(cluster_roles: &[Value]) -> Aggregation {
    let mut sorted: Vec<(&str, &Value)> = cluster_roles
        .iter()
        .filter_map(|r| Some((name_of(r)?, r)))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Aggregation::default();
    for (name, role) in &sorted {
        match aggregate_sorted(name, role, &sorted) {
            Ok(Some(rules)) if !rules_equal(&rules, rules_of(role)) => {
                out.changed.push(AggregatedRole {
                    name: (*name).to_owned(),
                    rules,
                });
            }
            Ok(_) => {}
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Like [`aggregate`], but applies each round's changes and aggregates again until nothing
/// changes, so that chains (view feeds edit, edit feeds admin) settle in one call. Rounds are
/// bounded by the number of roles: roles that select each other in a cycle never settle (in
/// Kubernetes neither), and their last round is returned.
pub fn aggregate_settled(cluster_roles: &[Value]) -> Aggregation {
    let mut roles = cluster_roles.to_vec();
    let first = aggregate(&roles);
    let errors = first.errors.clone();
    let mut round = first;
    for _ in 0..=roles.len() {
        if round.changed.is_empty() {
            break;
        }
        for change in &round.changed {
            if let Some(r) = roles
                .iter_mut()
                .find(|r| name_of(r) == Some(change.name.as_str()))
            {
                r["rules"] = Value::Array(change.rules.clone());
            }
        }
        round = aggregate(&roles);
    }
    let mut changed: Vec<AggregatedRole> = Vec::new();
    for (before, after) in cluster_roles.iter().zip(&roles) {
        if let Some(name) = name_of(after) {
            if !rules_equal(rules_of(before), rules_of(after)) {
                changed.push(AggregatedRole {
                    name: name.to_owned(),
                    rules: rules_of(after).to_vec(),
                });
            }
        }
    }
    changed.sort_by(|a, b| a.name.cmp(&b.name));
    Aggregation { changed, errors }
}

/// The rules `role` aggregates from `cluster_roles`, or `None` if it has no aggregationRule.
pub fn aggregated_rules(
    role: &Value,
    cluster_roles: &[Value],
) -> Result<Option<Vec<Value>>, AggregationError> {
    let mut sorted: Vec<(&str, &Value)> = cluster_roles
        .iter()
        .filter_map(|r| Some((name_of(r)?, r)))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    aggregate_sorted(name_of(role).unwrap_or(""), role, &sorted)
}

/// Whether two rule lists are equal as Kubernetes compares them (empty lists equal absent ones).
pub fn rules_equal(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| rule_equal(x, y))
}

/// Whether two PolicyRules are semantically equal.
pub fn rule_equal(a: &Value, b: &Value) -> bool {
    normal_rule(a) == normal_rule(b)
}

/// A rule in normal form: only the five PolicyRule fields, each a list of strings, empty lists
/// left out. Entries that are not strings are dropped (kube-apiserver refuses such rules).
pub fn normal_rule(rule: &Value) -> Value {
    let mut out = Map::new();
    for field in RULE_FIELDS {
        let items: Vec<Value> = rule
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.is_string())
            .cloned()
            .collect();
        if !items.is_empty() {
            out.insert(field.to_owned(), Value::Array(items));
        }
    }
    Value::Object(out)
}

fn name_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/name").and_then(Value::as_str)
}

fn rules_of(role: &Value) -> &[Value] {
    role.get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn aggregate_sorted(
    name: &str,
    role: &Value,
    sorted: &[(&str, &Value)],
) -> Result<Option<Vec<Value>>, AggregationError> {
    // A null aggregationRule is none; an empty one aggregates nothing (and empties the rules).
    let Some(rule) = role.get("aggregationRule").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let selectors = rule
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut rules: Vec<Value> = Vec::new();
    for (index, raw) in selectors.iter().enumerate() {
        let selector = LabelSelector::from_value(raw).map_err(|message| {
            AggregationError::InvalidSelector {
                role: name.to_owned(),
                index,
                message,
            }
        })?;
        for (other, candidate) in sorted {
            if *other == name || !selector.matches(&labels_of(candidate)) {
                continue;
            }
            for r in rules_of(candidate) {
                let r = normal_rule(r);
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
    }
    Ok(Some(rules))
}

fn labels_of(obj: &Value) -> BTreeMap<&str, &str> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
        .collect()
}

/// A `metav1.LabelSelector`, as `LabelSelectorAsSelector` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl LabelSelector {
    /// Parses a selector object. An empty selector selects everything, as in Kubernetes.
    pub fn from_value(selector: &Value) -> Result<LabelSelector, String> {
        if !selector.is_object() {
            return Err("a label selector must be an object".to_owned());
        }
        let mut requirements = Vec::new();
        match selector.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let v = v
                        .as_str()
                        .ok_or_else(|| format!("matchLabels[{k:?}]: the value must be a string"))?;
                    requirements.push(Requirement::In(k.clone(), vec![v.to_owned()]));
                }
            }
            Some(_) => return Err("matchLabels must be an object".to_owned()),
        }
        let expressions = match selector.get("matchExpressions") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(e)) => e.as_slice(),
            Some(_) => return Err("matchExpressions must be a list".to_owned()),
        };
        for (i, expr) in expressions.iter().enumerate() {
            requirements.push(
                Requirement::from_expression(expr)
                    .map_err(|m| format!("matchExpressions[{i}]: {m}"))?,
            );
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<&str, &str>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels
                .get(k.as_str())
                .is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => labels
                .get(k.as_str())
                .is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Exists(k) => labels.contains_key(k.as_str()),
            Requirement::DoesNotExist(k) => !labels.contains_key(k.as_str()),
        })
    }
}

impl Requirement {
    fn from_expression(expr: &Value) -> Result<Requirement, String> {
        let key = expr
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or("key: Required value")?
            .to_owned();
        let values: Vec<String> = match expr.get("values") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(vs)) => vs
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or("values: every value must be a string")?,
            Some(_) => return Err("values must be a list".to_owned()),
        };
        let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        // Kubernetes' wording (`metav1.LabelSelectorAsSelector`, `labels.NewRequirement`).
        match op {
            "In" | "NotIn" if values.is_empty() => {
                Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".to_owned())
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => Err(format!(
                "values: Invalid value: {values:?}: values set must be empty for exists and does not exist"
            )),
            "In" => Ok(Requirement::In(key, values)),
            "NotIn" => Ok(Requirement::NotIn(key, values)),
            "Exists" => Ok(Requirement::Exists(key)),
            "DoesNotExist" => Ok(Requirement::DoesNotExist(key)),
            other => Err(format!("{other:?} is not a valid label selector operator")),
        }
    }
}

#[cfg(test)]
#[path = "aggregation_tests.rs"]
mod tests;
