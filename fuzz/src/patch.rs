//! `patch`: the three patch types of PATCH requests, as the control plane applies them: the
//! body read by [`parse_body`], then [`apply_patch`] (JSON patch, JSON merge patch, strategic
//! merge patch).
//!
//! Input: a mode byte, then `current JSON \0 patch body` (no NUL: the whole rest is the patch,
//! applied to a small object of the resource's kind). `mode % 3` picks the patch type,
//! `mode / 3` the resource (modulo the served resources), whose kind decides the strategic
//! merge strategies. Properties: a merge patch applied twice changes nothing the second time;
//! a strategic merge patch without lists or `$` directives does what a merge patch does; a JSON
//! patch of `test` operations only, when it passes, changes nothing.

use kgate_controlplane::apiserver::codec::parse_body;
use kgate_controlplane::apiserver::fuzzing::apply_patch;
use kgate_controlplane::resources::{ResourceDef, RESOURCES};
use serde_json::{json, Value};

/// The content types of the three patch types.
pub const PATCH_TYPES: [&str; 3] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Runs one input; true when the patch applied.
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let content_type = PATCH_TYPES[usize::from(mode % 3)];
    let def = &RESOURCES[usize::from(mode / 3) % RESOURCES.len()];
    let (current, body) = match rest.iter().position(|&b| b == 0) {
        Some(nul) => match serde_json::from_slice::<Value>(&rest[..nul]) {
            Ok(current) => (current, &rest[nul + 1..]),
            Err(_) => return false,
        },
        None => (default_object(def), rest),
    };
    let Ok(patch) = parse_body(Some(content_type), body) else {
        return false;
    };
    let Ok(patched) = apply_patch(def, content_type, &current, &patch) else {
        return false;
    };

    match mode % 3 {
        0 => {
            let only_tests = patch.as_array().is_some_and(|ops| {
                ops.iter()
                    .all(|op| op.get("op").and_then(Value::as_str) == Some("test"))
            });
            if only_tests {
                assert_eq!(patched, current, "test operations changed the object");
            }
        }
        1 => {
            let again = apply_patch(def, content_type, &patched, &patch)
                .unwrap_or_else(|e| panic!("second merge: {}", e.message));
            assert_eq!(again, patched, "a merge patch is not idempotent");
        }
        _ => {
            if current.is_object() && !has_list_or_directive(&patch) {
                let merged = apply_patch(def, PATCH_TYPES[1], &current, &patch)
                    .unwrap_or_else(|e| panic!("merge: {}", e.message));
                assert_eq!(patched, merged, "strategic merge differs from merge");
            }
        }
    }
    true
}

/// A small object of `def`'s kind.
pub fn default_object(def: &ResourceDef) -> Value {
    json!({
        "apiVersion": def.api_version(),
        "kind": def.kind,
        "metadata": {"name": "fuzz", "namespace": "default", "labels": {"app": "fuzz"}},
        "spec": {},
    })
}

fn has_list_or_directive(value: &Value) -> bool {
    match value {
        Value::Array(_) => true,
        Value::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.starts_with('$') || has_list_or_directive(v)),
        _ => false,
    }
}
