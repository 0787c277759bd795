//! `--from DIR_OR_FILE`: RBAC objects read from YAML and JSON files, as exported from a cluster
//! (`kubectl get clusterroles,... -o yaml`) or kept in a repository, optionally with Kubernetes'
//! bootstrap policy under them.
//!
//! A folder is searched recursively for `*.yaml`, `*.yml` and `*.json` (hidden entries skipped,
//! in path order so later files win deterministically); a file named directly is read whatever
//! its name. YAML files may hold several documents; a document may be a `List` or a typed list
//! (`ClusterRoleList`, whose items may omit `kind`). Objects that are not RBAC (no `kind`, another
//! kind, or another API group's `Role`) are ignored, since such folders usually hold other
//! manifests too; an RBAC object that does not parse is an error naming its file and document.
//! Aggregated ClusterRoles (`aggregationRule`) are filled in as the cluster's controller would.

use super::RbacCliError;
use kgate_authz::objects::RbacKind;
use kgate_authz::{aggregation, bootstrap, RbacAuthorizer, RbacObject};
use serde::Deserialize as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Folders deeper than this are not searched (a guard against symbolic link loops).
const MAX_DEPTH: usize = 32;
const RBAC_API_GROUP_PREFIX: &str = "rbac.authorization.k8s.io/";

/// Where an object was read: file, document (from 1) and, inside a list, item (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub document: usize,
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.path.display(), self.document)?;
        if let Some(item) = self.item {
            write!(f, ", item {item}")?;
        }
        Ok(())
    }
}

/// What `--from` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: usize,
    /// RBAC objects read from the files (before duplicates are merged).
    pub objects: usize,
    /// Documents or items that are not RBAC objects.
    pub ignored: usize,
}

/// One object, keyed by kind, namespace and name so a later file replaces an earlier one.
type Key = (RbacKind, String, String);

/// Reads `root` into a new authorizer, with the bootstrap policy under the files' objects if
/// `with_bootstrap`. Warnings (aggregation problems) go to `warn`.
pub fn load(
    root: &Path,
    with_bootstrap: bool,
    warn: &mut dyn FnMut(String),
) -> Result<(RbacAuthorizer, Summary), RbacCliError> {
    let mut summary = Summary::default();
    let mut objects: BTreeMap<Key, (Option<Location>, Value)> = BTreeMap::new();
    if with_bootstrap {
        let bootstrap = [
            bootstrap::cluster_roles(),
            bootstrap::cluster_role_bindings(),
            bootstrap::roles(),
            bootstrap::role_bindings(),
        ];
        for value in bootstrap.into_iter().flatten() {
            // The embedded policy is tested in kgate-authz; a refusal here would be a bug there.
            let parsed = RbacObject::from_value(&value).map_err(|source| RbacCliError::Object {
                location: "the bootstrap policy".to_owned(),
                source,
            })?;
            objects.insert(key_of(&parsed), (None, value));
        }
    }
    let mut files = Vec::new();
    if std::fs::metadata(root)
        .map_err(|source| RbacCliError::Read {
            path: root.to_owned(),
            source,
        })?
        .is_dir()
    {
        collect_files(root, 0, &mut files)?;
    } else {
        files.push(root.to_owned());
    }
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| RbacCliError::Read {
            path: path.clone(),
            source,
        })?;
        summary.files += 1;
        for (location, value) in documents(&path, &text)? {
            match rbac_object(&location, value)? {
                Some((key, value)) => {
                    summary.objects += 1;
                    objects.insert(key, (Some(location), value));
                }
                None => summary.ignored += 1,
            }
        }
    }
    if summary.objects == 0 {
        return Err(RbacCliError::NoObjects {
            path: root.to_owned(),
            files: summary.files,
        });
    }
    aggregate(&mut objects, warn);
    let authorizer = RbacAuthorizer::new();
    for (location, value) in objects.values() {
        authorizer
            .upsert(value)
            .map_err(|source| RbacCliError::Object {
                location: location
                    .as_ref()
                    .map_or_else(|| "the bootstrap policy".to_owned(), ToString::to_string),
                source,
            })?;
    }
    Ok((authorizer, summary))
}

/// The `*.yaml`, `*.yml` and `*.json` files under `dir`, in path order, hidden entries skipped.
fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), RbacCliError> {
    let read_error = |source| RbacCliError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_error)?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // Follows symbolic links; MAX_DEPTH stops a loop.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue; // a dangling link
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                collect_files(&path, depth + 1, out)?;
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The documents of one file, with their locations; `null` (empty) documents are left out.
fn documents(path: &Path, text: &str) -> Result<Vec<(Location, Value)>, RbacCliError> {
    let at = |document| Location {
        path: path.to_owned(),
        document,
        item: None,
    };
    let mut out = Vec::new();
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let value: Value = serde_json::from_str(text).map_err(|e| RbacCliError::Parse {
            location: at(1).to_string(),
            source: Box::new(e),
        })?;
        out.push((at(1), value));
    } else {
        for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(document).map_err(|e| RbacCliError::Parse {
                location: at(index + 1).to_string(),
                source: Box::new(e),
            })?;
            out.push((at(index + 1), value));
        }
    }
    out.retain(|(_, v)| !v.is_null());
    // A list's items, each with its own location.
    let mut expanded = Vec::with_capacity(out.len());
    for (location, value) in out {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(list_kind) = kind.strip_suffix("List") else {
            expanded.push((location, value));
            continue;
        };
        let list_kind = list_kind.to_owned();
        let Some(Value::Array(items)) = value.get("items").cloned() else {
            return Err(RbacCliError::Parse {
                location: location.to_string(),
                source: format!("a {kind} without an items list").into(),
            });
        };
        for (index, mut item) in items.into_iter().enumerate() {
            // Typed lists, as the API returns them, leave out each item's kind.
            if let (Some(map), Some(item_kind)) =
                (item.as_object_mut(), RbacKind::from_kind(&list_kind))
            {
                map.entry("kind")
                    .or_insert_with(|| item_kind.as_str().into());
                map.entry("apiVersion")
                    .or_insert_with(|| "rbac.authorization.k8s.io/v1".into());
            }
            let item_location = Location {
                item: Some(index + 1),
                ..location.clone()
            };
            expanded.push((item_location, item));
        }
    }
    Ok(expanded)
}

/// The object's key if it is an RBAC object; `None` if it is something else; an error if it
/// is an RBAC object that does not parse.
fn rbac_object(location: &Location, value: Value) -> Result<Option<(Key, Value)>, RbacCliError> {
    let Some(object) = value.as_object() else {
        return Err(RbacCliError::Parse {
            location: location.to_string(),
            source: "not an object".into(),
        });
    };
    let kind = object.get("kind").and_then(Value::as_str);
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let in_rbac_group = api_version.is_none_or(|v| v.starts_with(RBAC_API_GROUP_PREFIX));
    match kind.and_then(RbacKind::from_kind) {
        Some(_) if in_rbac_group => {}
        // An RBAC apiVersion with a kind that is not one is a mistake worth stopping for.
        _ if api_version.is_some_and(|v| v.starts_with(RBAC_API_GROUP_PREFIX)) => {
            return Err(RbacCliError::Parse {
                location: location.to_string(),
                source: format!(
                    "kind {:?} is not Role, ClusterRole, RoleBinding or ClusterRoleBinding",
                    kind.unwrap_or_default()
                )
                .into(),
            })
        }
        _ => return Ok(None),
    }
    let parsed = RbacObject::from_value(&value).map_err(|source| RbacCliError::Object {
        location: location.to_string(),
        source,
    })?;
    Ok(Some((key_of(&parsed), value)))
}

fn key_of(object: &RbacObject) -> Key {
    let (kind, namespace, name) = match object {
        RbacObject::Role(r) => (RbacKind::Role, &r.namespace, &r.name),
        RbacObject::ClusterRole(r) => (RbacKind::ClusterRole, &r.namespace, &r.name),
        RbacObject::RoleBinding(b) => (RbacKind::RoleBinding, &b.namespace, &b.name),
        RbacObject::ClusterRoleBinding(b) => (RbacKind::ClusterRoleBinding, &b.namespace, &b.name),
        // RbacObject is non_exhaustive; a new kind would need a key here.
        other => (other.kind(), &String::new(), &String::new()),
    };
    (kind, namespace.clone(), name.clone())
}

/// Fills the rules of aggregated ClusterRoles from the roles their selectors pick, as
/// Kubernetes' aggregation controller does (files written by hand often leave them empty).
fn aggregate(objects: &mut BTreeMap<Key, (Option<Location>, Value)>, warn: &mut dyn FnMut(String)) {
    let cluster_roles: Vec<Value> = objects
        .iter()
        .filter(|(key, _)| key.0 == RbacKind::ClusterRole)
        .map(|(_, (_, value))| value.clone())
        .collect();
    let aggregation = aggregation::aggregate_settled(&cluster_roles);
    for error in aggregation.errors {
        warn(format!("aggregation skipped: {error}"));
    }
    for change in aggregation.changed {
        let key = (RbacKind::ClusterRole, String::new(), change.name);
        if let Some((_, value)) = objects.get_mut(&key) {
            value["rules"] = Value::Array(change.rules);
        }
    }
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
