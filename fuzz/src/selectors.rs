//! `selectors`: the `labelSelector` and `fieldSelector` parsers of list and watch requests
//! ([`LabelSelector::parse`], [`FieldSelector::parse`]).
//!
//! Input: a mode byte, then the selector (UTF-8). Mode bit 0 clear: a label selector; set: a
//! field selector for resource number `mode >> 1` (modulo the served resources). An accepted
//! selector printed in kube's syntax must parse back to the same selector, and matching it
//! against a few objects (labels of every shape, missing fields) must not fail.

use kgate_controlplane::apiserver::selectors::{FieldSelector, LabelSelector};
use kgate_controlplane::resources::RESOURCES;
use serde_json::{json, Value};
use std::sync::OnceLock;

fn objects() -> &'static [Value] {
    static OBJECTS: OnceLock<Vec<Value>> = OnceLock::new();
    OBJECTS.get_or_init(|| {
        vec![
            json!({}),
            json!({"metadata": {"name": "web-1", "namespace": "team", "labels": {
                "app": "web", "tier": "front", "n": "5", "empty": "", "example.com/x": "y"}},
                "spec": {"nodeName": "n1", "hostNetwork": true, "unschedulable": "yes"},
                "status": {"phase": "Running", "replicas": 3, "podIPs": [{"ip": "10.0.0.1"}]},
                "type": "Opaque", "source": {"component": "kubelet"}}),
            json!({"metadata": {"labels": {"app": 1, "n": "-7", "tier": null}, "name": 5},
                "spec": null, "status": {"replicas": "x", "podIP": false}}),
        ]
    })
}

/// Runs one input; true when the selector was accepted.
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return false;
    };
    if mode & 1 == 0 {
        let Ok(selector) = LabelSelector::parse(text) else {
            return false;
        };
        let printed = selector.to_string();
        let again = LabelSelector::parse(&printed)
            .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}): {}", e.message));
        assert_eq!(again, selector, "{printed:?} (from {text:?})");
        for object in objects() {
            assert_eq!(selector.matches(object), again.matches(object));
        }
        assert_eq!(selector.is_everything(), printed.is_empty());
    } else {
        let def = &RESOURCES[usize::from(mode >> 1) % RESOURCES.len()];
        let Ok(selector) = FieldSelector::parse(def, text) else {
            return false;
        };
        let printed = selector.to_string();
        let again = FieldSelector::parse(def, &printed)
            .unwrap_or_else(|e| panic!("{printed:?} (from {text:?}): {}", e.message));
        assert_eq!(again, selector, "{printed:?} (from {text:?})");
        for object in objects() {
            assert_eq!(selector.matches(object), again.matches(object));
        }
        assert_eq!(selector.is_everything(), printed.is_empty());
        if let Some(name) = selector.required_name() {
            assert!(
                printed.contains("metadata.name="),
                "{printed:?} requires {name:?}"
            );
        }
    }
    true
}
