//! The policy file: a YAML `AuthorizationPolicy` document holding an optional casbin model and
//! the policy lines, each located at its line in the file so that decisions and errors can
//! name it. Parsing only: no casbin here.

use super::PolicyError;
use serde::Deserialize;
use std::fmt;

/// The document's `apiVersion`.
pub const API_VERSION: &str = "kgate.io/v1alpha1";
/// The document's `kind`.
pub const KIND: &str = "AuthorizationPolicy";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    api_version: String,
    kind: String,
    /// Accepted for Kubernetes-style tooling; unused.
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_yaml::Value>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    policies: Vec<String>,
}

/// Where a policy line is: its line in the file when it could be found there (block-style
/// lists, as the README shows), else its index in `policies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of the file.
    Line(usize),
    /// 0-based index in `policies` (flow-style lists, or escapes that hide the text).
    Item(usize),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Item(i) => write!(f, "policies[{i}]"),
        }
    }
}

/// One policy line: where it is, its text as written, and its fields.
#[derive(Debug, Clone)]
pub(crate) struct RawLine {
    pub location: Location,
    pub text: String,
    /// Split at every comma and trimmed; `fields[0]` is the section (`p`, `g`, ...).
    pub fields: Vec<String>,
}

/// The parsed document.
#[derive(Debug)]
pub(crate) struct RawPolicy {
    pub model: Option<String>,
    pub lines: Vec<RawLine>,
}

pub(crate) fn parse(text: &str) -> Result<RawPolicy, PolicyError> {
    let doc: Document = serde_yaml::from_str(text).map_err(PolicyError::Yaml)?;
    if doc.api_version != API_VERSION || doc.kind != KIND {
        return Err(PolicyError::Kind {
            api_version: doc.api_version,
            kind: doc.kind,
        });
    }
    let locations = locate(text, &doc.policies);
    let mut lines = Vec::with_capacity(doc.policies.len());
    for (policy, location) in doc.policies.into_iter().zip(locations) {
        let fields = split(&policy).map_err(|reason| PolicyError::Line {
            location,
            text: policy.clone(),
            reason,
        })?;
        lines.push(RawLine {
            location,
            text: policy,
            fields,
        });
    }
    Ok(RawPolicy {
        model: doc.model,
        lines,
    })
}

/// Fields at every comma, trimmed. kgate's patterns have no commas, so casbin's CSV quoting is
/// not used: `""` stays as written and means the empty value.
fn split(line: &str) -> Result<Vec<String>, String> {
    let fields: Vec<String> = line.split(',').map(|f| f.trim().to_owned()).collect();
    if let Some(i) = fields.iter().position(String::is_empty) {
        return Err(format!(
            "field {} is empty (write * for any value, \"\" for the empty value)",
            i + 1
        ));
    }
    Ok(fields)
}

/// The file line of each item of the top-level `policies` list: the next list-item line after
/// the previous one whose item, read as a YAML scalar, is the policy (so quoting and trailing
/// comments do not matter). Items not found that way (flow-style lists, multi-line scalars)
/// keep their index.
fn locate(text: &str, policies: &[String]) -> Vec<Location> {
    let lines: Vec<&str> = text.lines().collect();
    let mut next = lines
        .iter()
        .position(|l| l.starts_with("policies:"))
        .map_or(lines.len(), |i| i + 1);
    let item_at = |i: usize| -> Option<String> {
        let item = lines[i].trim_start().strip_prefix('-')?;
        serde_yaml::from_str(item).ok()
    };
    policies
        .iter()
        .enumerate()
        .map(|(index, policy)| {
            match (next..lines.len()).find(|&i| item_at(i).as_ref() == Some(policy)) {
                Some(i) => {
                    next = i + 1;
                    Location::Line(i + 1)
                }
                None => Location::Item(index),
            }
        })
        .collect()
}
