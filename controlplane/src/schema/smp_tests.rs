//! Table tests of strategic merge patch with the patches kubectl sends.

use serde_json::{json, Value};

use super::*;

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"},
                     "finalizers": ["a", "b"]},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {
                "containers": [
                    {"name": "web", "image": "nginx:1.27",
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                    {"name": "side", "image": "busybox"},
                ],
                "volumes": [{"name": "v", "emptyDir": {}}],
            }},
        },
    })
}

/// (name, patch, pointer into the result, expected value there)
fn cases() -> Vec<(&'static str, Value, &'static str, Value)> {
    vec![
        // A map where the object has a string (another type): kube takes the patch value
        // without its nulls, at every depth (found by the fuzz target `patch`).
        (
            "map over a scalar drops nulls",
            json!({"kind": {"labels": {"app": null, "x": "y", "deeper": {"gone": null, "kept": 1}}}}),
            "/kind",
            json!({"labels": {"x": "y", "deeper": {"kept": 1}}}),
        ),
        (
            "map over a list drops nulls",
            json!({"metadata": {"finalizers": {"a": null, "b": "c"}}}),
            "/metadata/finalizers",
            json!({"b": "c"}),
        ),
        (
            "kubectl label: add and remove",
            json!({"metadata": {"labels": {"tier": null, "new": "x"}}}),
            "/metadata/labels",
            json!({"app": "web", "new": "x"}),
        ),
        (
            "kubectl scale through patch",
            json!({"spec": {"replicas": 3}}),
            "/spec/replicas",
            json!(3),
        ),
        (
            "apply: change an image, delete an env var, keep order",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                "containers": [{
                    "$setElementOrder/env": [{"name": "A"}],
                    "env": [{"$patch": "delete", "name": "B"}],
                    "image": "nginx:1.28",
                    "name": "web",
                }],
            }}}}),
            "/spec/template/spec/containers",
            json!([
                {"name": "web", "image": "nginx:1.28", "env": [{"name": "A", "value": "1"}],
                 "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                {"name": "side", "image": "busybox"},
            ]),
        ),
        (
            "containers merge by name, a new one is appended",
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "side", "image": "busybox:2"}, {"name": "third", "image": "redis"}]}}}}),
            "/spec/template/spec/containers/1",
            json!({"name": "side", "image": "busybox:2"}),
        ),
        (
            "ports merge by containerPort",
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "ports": [{"containerPort": 443, "name": "https"}]}]}}}}),
            "/spec/template/spec/containers/0/ports",
            json!([{"containerPort": 80}, {"containerPort": 443, "name": "https"}]),
        ),
        (
            "setElementOrder reorders named elements",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}}}}),
            "/spec/template/spec/containers/0/name",
            json!("side"),
        ),
        (
            "primitive list with merge strategy is a union",
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            "/metadata/finalizers",
            json!(["a", "b", "c"]),
        ),
        (
            "deleteFromPrimitiveList",
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "/metadata/finalizers",
            json!(["b"]),
        ),
        (
            "retainKeys on a map: switch the deployment strategy",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            "/spec/strategy",
            json!({"type": "Recreate"}),
        ),
        (
            "retainKeys in a list element: change a volume's source",
            json!({"spec": {"template": {"spec": {"volumes": [
                {"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "c"}}]}}}}),
            "/spec/template/spec/volumes",
            json!([{"name": "v", "configMap": {"name": "c"}}]),
        ),
        (
            "$patch: replace on a map",
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
            "/metadata/labels",
            json!({"only": "this"}),
        ),
        (
            "$patch: delete on a map empties it",
            json!({"spec": {"strategy": {"$patch": "delete"}}}),
            "/spec/strategy",
            json!({}),
        ),
        (
            "$patch: replace element replaces a merged list",
            json!({"spec": {"template": {"spec": {"containers": [
                {"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}),
            "/spec/template/spec/containers",
            json!([{"name": "only", "image": "x"}]),
        ),
        (
            "lists without a strategy are replaced",
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "web", "args": ["b"]}]}}}}),
            "/spec/template/spec/containers/0/args",
            json!(["b"]),
        ),
        (
            "a new field with nested directives is cleaned",
            json!({"spec": {"template": {"spec": {"initContainers": [
                {"name": "init", "image": "x", "env": [{"name": "Z", "$patch": "delete"}]}]}}}}),
            "/spec/template/spec/initContainers",
            json!([{"name": "init", "image": "x", "env": []}]),
        ),
    ]
}

#[test]
fn kubectl_shaped_patches() {
    for (name, patch, pointer, want) in cases() {
        let got = strategic_merge("apps", "v1", "Deployment", &deployment(), &patch)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.pointer(pointer), Some(&want), "{name}: {got:#}");
        assert!(
            !got.to_string().contains("\"$"),
            "{name}: a directive survived: {got}"
        );
    }
}

#[test]
fn errors() {
    let d = deployment();
    let bad = |p: Value| strategic_merge("apps", "v1", "Deployment", &d, &p).unwrap_err();
    assert_eq!(bad(json!([1])), PatchError::NotAnObject);
    assert_eq!(
        bad(json!({"spec": {"$patch": "explode"}})),
        PatchError::UnknownDirective("\"explode\"".into())
    );
    assert_eq!(
        bad(json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})),
        PatchError::MissingMergeKey {
            field: "containers".into(),
            key: "name".into()
        }
    );
    assert_eq!(
        bad(json!({"metadata": {"$retainKeys": "name"}})),
        PatchError::InvalidDirective("$retainKeys".into())
    );
}

#[test]
fn kind_without_schema_merges_maps_and_replaces_lists() {
    let orig = json!({"a": {"b": 1, "c": [1, 2]}});
    let got = strategic_merge(
        "x",
        "v1",
        "Unknown",
        &orig,
        &json!({"a": {"c": [3], "d": 4}}),
    );
    assert_eq!(got, Ok(json!({"a": {"b": 1, "c": [3], "d": 4}})));
}

#[test]
fn pod_env_and_volume_mounts() {
    let pod = json!({"spec": {"containers": [{"name": "c", "image": "i",
        "volumeMounts": [{"name": "v", "mountPath": "/a"}]}]}});
    let patch = json!({"spec": {"containers": [{"name": "c",
        "volumeMounts": [{"name": "w", "mountPath": "/b"}, {"mountPath": "/a", "readOnly": true}]}]}});
    let got = strategic_merge("", "v1", "Pod", &pod, &patch).unwrap();
    // kube's normalizeElementOrder: the items the patch names come in the patch's order.
    assert_eq!(
        got["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "w", "mountPath": "/b"}, {"name": "v", "mountPath": "/a", "readOnly": true}])
    );
}
