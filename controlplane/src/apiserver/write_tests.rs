//! Tests of [`super`]'s JSON patch bounds and failures (the rest is driven through the API in
//! `tests/api.rs`).

use super::*;
use crate::resources::lookup;
use serde_json::json;

fn json_patch(current: &Value, patch: Value) -> Result<Value, Status> {
    let def = lookup("", "v1", "configmaps").expect("configmaps");
    apply_patch(def, PatchType::Json, current, &patch)
}

/// A `move` whose destination is invalid has removed its source when it fails: undoing the
/// operations before it then fails too, which `json_patch::patch` answers with a panic (found
/// by the `patch` fuzz target).
#[test]
fn a_failed_move_after_other_operations_is_a_422() {
    let current = json!({"kind": "ConfigMap", "data": {"a": "1"}});
    let err = json_patch(
        &current,
        json!([
            {"op": "add", "path": "/data/x", "value": "y"},
            {"op": "move", "from": "/data/x", "path": "/nothing/here"},
        ]),
    )
    .expect_err("an invalid path");
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(err.message, GENERIC_422);
}

/// kube's answer to a JSON patch that does not apply: `NewGenericServerResponse`'s 422, which
/// does not say why.
const GENERIC_422: &str = "the server rejected our request due to an error in our request";

/// Each copy of the object into itself doubles it: kube-apiserver stops copies past 3 MiB in
/// all, and so must this server.
#[test]
fn json_patch_copies_are_bounded() {
    let current = json!({"kind": "ConfigMap", "data": {"a": "x".repeat(100)}});
    let doubling: Vec<Value> = (0..17)
        .map(|i| json!({"op": "copy", "from": "", "path": format!("/c{i}")}))
        .collect();
    let err = json_patch(&current, Value::Array(doubling)).expect_err("over 3 MiB copied");
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert_eq!(err.message, GENERIC_422);
    // Small copies still work.
    let copied = json_patch(
        &current,
        json!([{"op": "copy", "from": "/data", "path": "/copy"}]),
    )
    .expect("a small copy");
    assert_eq!(copied["copy"], current["data"]);
}

#[test]
fn json_patch_operations_are_bounded() {
    let current = json!({"kind": "ConfigMap"});
    let test = json!({"op": "test", "path": "/kind", "value": "ConfigMap"});
    assert_eq!(
        json_patch(&current, Value::Array(vec![test.clone(); 10_000])).expect("10,000"),
        current
    );
    let err = json_patch(&current, Value::Array(vec![test; 10_001])).expect_err("10,001");
    assert_eq!(err.code, 413);
    assert_eq!(
        err.message,
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn a_failed_json_patch_is_kubes_generic_422_and_changes_nothing() {
    let current = json!({"kind": "ConfigMap", "data": {"a": "1"}});
    let err = json_patch(
        &current,
        json!([
            {"op": "replace", "path": "/data/a", "value": "2"},
            {"op": "test", "path": "/data/a", "value": "1"},
        ]),
    )
    .expect_err("the test fails");
    assert_eq!(err.code, 422);
    assert_eq!(err.message, GENERIC_422);
    assert_eq!(current["data"]["a"], "1");
}

/// `{"f:a": {"f:a": ... "x"}}`, `levels` deep.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("x"), |inner, _| json!({ "f:a": inner }))
}

#[test]
fn a_json_patch_cannot_nest_an_object_past_the_bound() {
    // managedFields[].fieldsV1 is free-form: the one place a built-in object may nest at will.
    let current = json!({"kind": "ConfigMap", "metadata": {"name": "deep", "managedFields": [
        {"manager": "m", "fieldsType": "FieldsV1", "fieldsV1": nested(90)}]}});
    assert_eq!(codec::depth(&current), 94);
    // Each operation's value is shallow; its path puts it 95 levels down.
    let path = format!("/metadata/managedFields/0/fieldsV1{}", "/f:a".repeat(89));
    let err = json_patch(
        &current,
        json!([{"op": "replace", "path": path, "value": nested(10)}]),
    )
    .expect_err("too deep");
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"), "{err:?}");
    assert_eq!(
        err.message,
        "the object is nested more than 100 levels deep"
    );
    // Copies and moves count the depth of what they take.
    let copy =
        json!([{"op": "copy", "from": "/metadata/managedFields/0/fieldsV1", "path": "/data"}]);
    json_patch(&current, copy).expect("a copy beside");
    let below = format!(
        "/metadata/managedFields/0/fieldsV1{}/f:b",
        "/f:a".repeat(10)
    );
    let copy_down = json!([{"op": "copy", "from": "/metadata/managedFields/0/fieldsV1",
                            "path": below}]);
    let err = json_patch(&current, copy_down).expect_err("a copy below");
    assert_eq!(err.code, 422);
    // Within the bound, deep paths are fine.
    let shallow = format!("/metadata/managedFields/0/fieldsV1{}", "/f:a".repeat(80));
    json_patch(
        &current,
        json!([{"op": "replace", "path": shallow, "value": nested(5)}]),
    )
    .expect("within the bound");
}

#[test]
fn objects_past_the_depth_bound_are_never_encoded_for_the_store() {
    let at_bound = json!({"kind": "ConfigMap", "metadata": {"name": "x"}, "data": nested(99)});
    assert_eq!(codec::depth(&at_bound), codec::MAX_OBJECT_DEPTH);
    encode_object(&at_bound).expect("at the bound");
    let over = json!({"kind": "ConfigMap", "metadata": {"name": "x"}, "data": nested(100)});
    let err = encode_object(&over).expect_err("over the bound");
    assert_eq!(err.code, 422);
    assert_eq!(codec::depth(&json!("x")), 0);
    assert_eq!(codec::depth(&json!([])), 1);
    assert_eq!(codec::depth(&json!({"a": [1, {"b": 2}]})), 3);
}
