//! Strategic merge patch (`application/strategic-merge-patch+json`), applied as
//! k8s.io/apimachinery/pkg/util/strategicpatch does, driven by the schema's
//! `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
//!
//! - maps merge recursively; `null` deletes a key;
//! - lists whose strategy is `merge` merge by the merge key (containers by `name`, ports by
//!   `containerPort`...), or as a set union for lists of primitives; other lists are replaced;
//! - directives: `$patch: replace|delete|merge` in maps and list elements, `$retainKeys`,
//!   `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`, which kubectl apply, edit,
//!   label and scale send. No directive survives into the result.

use serde_json::{Map, Value};

use super::{property, resolve, schema_for_kind};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Why a strategic merge patch cannot be applied (a 400 or 422 for the client).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PatchError {
    /// The patch or the original object is not a JSON object.
    #[error("a strategic merge patch and its target must be JSON objects")]
    NotAnObject,
    /// A `$patch` directive other than `replace`, `delete` or `merge`.
    #[error("unknown patch directive {0:?}")]
    UnknownDirective(String),
    /// An element of a list merged by key lacks that key.
    #[error("map in list {field:?} does not contain declared merge key {key:?}")]
    MissingMergeKey {
        /// The list field.
        field: String,
        /// The merge key of that list.
        key: String,
    },
    /// A `$retainKeys`, `$setElementOrder` or `$deleteFromPrimitiveList` value that is not a list.
    #[error("directive {0:?} must be a list")]
    InvalidDirective(String),
}

/// Applies `patch` to `original`, an object of the given kind. A kind without a schema is
/// patched without strategies (every list replaced), which is what kube does for unknown fields.
pub fn strategic_merge(
    group: &str,
    version: &str,
    kind: &str,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let (Value::Object(orig), Value::Object(p)) = (original, patch) else {
        return Err(PatchError::NotAnObject);
    };
    let schema = schema_for_kind(group, version, kind);
    merge_map(orig.clone(), p, schema).map(Value::Object)
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<&Value>,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get(DIRECTIVE) {
        None => {}
        Some(Value::String(d)) if d == "merge" => {}
        Some(Value::String(d)) if d == "replace" => {
            // The patch is the whole new value; merge it into nothing to drop nested directives.
            let mut rest = patch.clone();
            rest.remove(DIRECTIVE);
            return merge_map(Map::new(), &rest, schema);
        }
        Some(Value::String(d)) if d == "delete" => return Ok(Map::new()),
        Some(other) => return Err(PatchError::UnknownDirective(other.to_string())),
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep = retain
            .as_array()
            .ok_or_else(|| PatchError::InvalidDirective(RETAIN_KEYS.into()))?;
        original.retain(|k, _| keep.iter().any(|r| r.as_str() == Some(k)));
    }
    for (k, v) in patch {
        let Some(field) = k.strip_prefix(DELETE_PRIMITIVE) else {
            continue;
        };
        let remove = v
            .as_array()
            .ok_or_else(|| PatchError::InvalidDirective(k.clone()))?;
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|item| !remove.contains(item));
        }
    }
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        let field_schema = schema.and_then(|s| property(s, k));
        if pv.is_null() {
            original.remove(k);
            continue;
        }
        let merged = merge_value(original.remove(k), pv, k, field_schema)?;
        original.insert(k.clone(), merged);
    }
    for (k, order) in patch {
        let Some(field) = k.strip_prefix(SET_ORDER) else {
            continue;
        };
        let order = order
            .as_array()
            .ok_or_else(|| PatchError::InvalidDirective(k.clone()))?;
        let key = schema
            .and_then(|s| property(s, field))
            .and_then(|f| f.get("x-kubernetes-patch-merge-key"))
            .and_then(Value::as_str);
        if let Some(Value::Array(list)) = original.get_mut(field) {
            apply_order(list, order, key);
        }
    }
    Ok(original)
}

fn merge_value(
    original: Option<Value>,
    patch: &Value,
    field: &str,
    schema: Option<&Value>,
) -> Result<Value, PatchError> {
    let item_schema = schema.map(resolve);
    match (original, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => {
            merge_map(o, p, item_schema).map(Value::Object)
        }
        // No value, or one of another type: kube takes the patch value with its nulls and
        // directives removed (`discardNullValuesFromPatch`, `removeDirectives`), as merging it
        // into nothing does.
        (_, Value::Object(p)) => merge_map(Map::new(), p, item_schema).map(Value::Object),
        (Some(Value::Array(o)), Value::Array(p)) => merge_list(o, p, field, schema),
        (_, Value::Array(p)) => merge_list(Vec::new(), p, field, schema),
        // A scalar: the patch value wins.
        (_, p) => Ok(p.clone()),
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    field: &str,
    schema: Option<&Value>,
) -> Result<Value, PatchError> {
    let strategy = schema
        .and_then(|s| s.get("x-kubernetes-patch-strategy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let merge_key = schema
        .and_then(|s| s.get("x-kubernetes-patch-merge-key"))
        .and_then(Value::as_str);
    let items = schema.map(resolve).and_then(|s| s.get("items"));
    let is_merge = strategy.split(',').any(|s| s == "merge");

    // `{"$patch": "replace"}` as an element: the rest of the patch list is the new list.
    let replace = patch.iter().any(|e| directive(e) == Some("replace"));
    if !is_merge || replace {
        let mut out = Vec::new();
        for e in patch.iter().filter(|e| directive(e).is_none()) {
            out.push(merge_value(None, e, field, items)?);
        }
        return Ok(Value::Array(out));
    }

    let live = original.clone();
    let mut out = original;
    for e in patch {
        match (e, merge_key) {
            (Value::Object(pm), Some(key)) => {
                let id = pm.get(key).ok_or_else(|| PatchError::MissingMergeKey {
                    field: field.to_owned(),
                    key: key.to_owned(),
                })?;
                let pos = out.iter().position(|o| o.get(key) == Some(id));
                match directive(e) {
                    Some("delete") => out.retain(|o| o.get(key) != Some(id)),
                    Some("merge") | None => {
                        let prev = pos.map(|i| out[i].clone());
                        let merged = merge_value(prev, e, field, items)?;
                        match pos {
                            Some(i) => out[i] = merged,
                            None => out.push(merged),
                        }
                    }
                    Some(other) => return Err(PatchError::UnknownDirective(other.to_owned())),
                }
            }
            // Primitives (or maps without a declared key): a set union.
            _ => {
                if !out.contains(e) {
                    out.push(merge_value(None, e, field, items)?);
                }
            }
        }
    }
    Ok(Value::Array(kube_order(out, &live, patch, merge_key)))
}

/// The order kube gives a merged list (`normalizeElementOrder`): the items the patch names, in
/// the patch's order, with the server's own items put back before the first patch item they
/// preceded in the live list (`mergeSortedSlice`).
fn kube_order(
    merged: Vec<Value>,
    live: &[Value],
    patch: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let same = |a: &Value, b: &Value| match key {
        Some(k) if a.is_object() && b.is_object() => a.get(k).is_some() && a.get(k) == b.get(k),
        _ => a == b,
    };
    let index = |list: &[Value], item: &Value| list.iter().position(|x| same(x, item));
    let (mut named, server): (Vec<Value>, Vec<Value>) =
        merged.into_iter().partition(|m| index(patch, m).is_some());
    named.sort_by_key(|m| index(patch, m));
    let (mut left, mut right) = (server.into_iter().peekable(), named.into_iter().peekable());
    let mut out = Vec::new();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (index(live, l), index(live, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn directive(v: &Value) -> Option<&str> {
    v.get(DIRECTIVE).and_then(Value::as_str)
}

/// Reorders `list` as `$setElementOrder` asks: the elements it names take, in its order, the
/// positions such elements held; elements it does not name (the server's own) keep their places.
fn apply_order(list: &mut [Value], order: &[Value], key: Option<&str>) {
    let rank = |item: &Value| -> Option<usize> {
        order.iter().position(|o| match key {
            Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
            None => o == item,
        })
    };
    let slots: Vec<usize> = (0..list.len())
        .filter(|&i| rank(&list[i]).is_some())
        .collect();
    let mut named: Vec<Value> = slots.iter().map(|&i| list[i].clone()).collect();
    named.sort_by_key(|v| rank(v).unwrap_or(usize::MAX));
    for (slot, v) in slots.into_iter().zip(named) {
        list[slot] = v;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "smp_tests.rs"]
mod tests;
