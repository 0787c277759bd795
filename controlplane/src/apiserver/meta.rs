//! Leaf helpers on API objects as JSON values: reading and writing `metadata`, finalizers and
//! the deletion mark, kube's timestamp format and generated names. Every other module of the
//! API server may use these; this module uses none of them (only [`ResourceDef`]).

use rand::Rng;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::resources::ResourceDef;

/// The characters of a generated name suffix, as apimachinery's `rand.String` (no vowels, no
/// look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// A generated name's random suffix length.
const NAME_SUFFIX_LEN: usize = 5;
/// A generateName prefix is cut to this, so prefix + suffix fits a DNS label (63).
const MAX_PREFIX_LEN: usize = 63 - NAME_SUFFIX_LEN;

/// `metadata.<field>` as a string.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata`, created when missing or not an object.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Value::Object(map) = obj else {
        unreachable!("just made an object")
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The object's metadata.finalizers (empty when absent).
pub(crate) fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

/// True when `next` ends the deletion of `current`: it was being deleted and no finalizer is
/// left (for a namespace, neither metadata nor spec finalizers).
pub(crate) fn finalizers_done(def: &ResourceDef, current: &Value, next: &Value) -> bool {
    if !is_deleting(current) || !finalizers(next).is_empty() {
        return false;
    }
    if def.kind == "Namespace" {
        let spec_empty = next
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        return spec_empty;
    }
    true
}

/// Now, as kube's metav1.Time serializes it: RFC 3339, UTC, whole seconds.
pub(crate) fn now_timestamp() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `prefix` + 5 random characters, as the apiserver's `SimpleNameGenerator`.
pub(crate) fn generate_name(prefix: &str) -> String {
    let cut: String = prefix.chars().take(MAX_PREFIX_LEN).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..NAME_SUFFIX_LEN)
        .map(|_| char::from(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())]))
        .collect();
    format!("{cut}{suffix}")
}

/// The object with `deletionTimestamp` now and a zero grace period.
pub(crate) fn mark_deleting(mut obj: Value) -> Value {
    let meta = meta_mut(&mut obj);
    // kube's markAsDeleting: an object with a generation gets a new one when deletion starts.
    if let Some(generation) = meta.get("generation").and_then(Value::as_i64) {
        if generation > 0 && !meta.contains_key("deletionTimestamp") {
            meta.insert("generation".into(), json!(generation + 1));
        }
    }
    meta.insert("deletionTimestamp".into(), json!(now_timestamp()));
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_use_kubes_alphabet() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        assert_eq!(generate_name(&"x".repeat(80)).len(), 63);
    }
}
