//! The rows of the storage kinds, after kube's printers: PersistentVolume, PersistentVolumeClaim
//! (capacities as `resource.Quantity` prints them, access modes as `RWO,ROX,RWX,RWOP`), CSIDriver
//! and StorageClass (the defaults of unset fields, the `(default)` class).

use serde_json::{json, Value};

use super::printers::{list as items, s as text};
use super::quantity;

/// The string at `pointer`, or kube's `<unset>` when absent.
fn unset(o: &Value, pointer: &str) -> String {
    o.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("<unset>")
        .to_owned()
}

fn flag(v: &Value, pointer: &str, default: bool) -> bool {
    v.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

/// The storage class annotation kube reads before `spec.storageClassName`.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// helper.GetAccessModesAsString: the modes present, in kube's fixed order.
fn access_modes(modes: &[Value]) -> String {
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// A `storage` quantity as kube prints it: `0` when absent.
fn storage(o: &Value, pointer: &str) -> String {
    match o.pointer(pointer) {
        Some(Value::String(s)) => quantity::printed(s),
        Some(Value::Number(n)) => quantity::printed(&n.to_string()),
        _ => "0".to_owned(),
    }
}

/// The cells of a PersistentVolume row.
pub(super) fn persistent_volume(o: &Value, name: &str, age: String) -> Vec<Value> {
    let claim = match o.pointer("/spec/claimRef") {
        Some(c) if c.is_object() => format!(
            "{}/{}",
            text(c, "/namespace").unwrap_or(""),
            text(c, "/name").unwrap_or("")
        ),
        _ => String::new(),
    };
    let phase = if deleting(o) {
        "Terminating"
    } else {
        text(o, "/status/phase").unwrap_or("")
    };
    let class = annotation(o, BETA_STORAGE_CLASS)
        .or(text(o, "/spec/storageClassName"))
        .unwrap_or("");
    vec![
        json!(name),
        json!(storage(o, "/spec/capacity/storage")),
        json!(access_modes(items(o, "/spec/accessModes"))),
        json!(text(o, "/spec/persistentVolumeReclaimPolicy").unwrap_or("")),
        json!(phase),
        json!(claim),
        json!(class),
        json!(unset(o, "/spec/volumeAttributesClassName")),
        json!(text(o, "/status/reason").unwrap_or("")),
        json!(age),
        json!(unset(o, "/spec/volumeMode")),
    ]
}

/// The cells of a PersistentVolumeClaim row: capacity and access modes only once bound to a
/// volume (`spec.volumeName`).
pub(super) fn persistent_volume_claim(o: &Value, name: &str, age: String) -> Vec<Value> {
    let phase = if deleting(o) {
        "Terminating"
    } else {
        text(o, "/status/phase").unwrap_or("")
    };
    let volume = text(o, "/spec/volumeName").unwrap_or("");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            storage(o, "/status/capacity/storage"),
            access_modes(items(o, "/status/accessModes")),
        )
    };
    let class = annotation(o, BETA_STORAGE_CLASS)
        .or(o.pointer("/spec/storageClassName").and_then(Value::as_str))
        .unwrap_or("");
    vec![
        json!(name),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(unset(o, "/spec/volumeAttributesClassName")),
        json!(age),
        json!(unset(o, "/spec/volumeMode")),
    ]
}

/// The cells of a CSIDriver row, unset fields shown as their defaults.
pub(super) fn csi_driver(o: &Value, name: &str, age: String) -> Vec<Value> {
    // kube stores through protobuf, where an empty list and an absent one are the same: unset.
    let tokens = items(o, "/spec/tokenRequests");
    let tokens = if tokens.is_empty() {
        "<unset>".to_owned()
    } else {
        tokens
            .iter()
            .map(|t| t["audience"].as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let modes: Vec<&str> = items(o, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_owned()
    } else {
        modes.join(",")
    };
    vec![
        json!(name),
        json!(flag(o, "/spec/attachRequired", true)),
        json!(flag(o, "/spec/podInfoOnMount", false)),
        json!(flag(o, "/spec/storageCapacity", false)),
        json!(tokens),
        json!(flag(o, "/spec/requiresRepublish", false)),
        json!(modes),
        json!(age),
    ]
}

/// The cells of a StorageClass row; the default class (by either is-default-class annotation
/// set to `true`) is named `NAME (default)`.
pub(super) fn storage_class(o: &Value, name: &str, age: String) -> Vec<Value> {
    let default = [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| annotation(o, k) == Some("true"));
    let name = if default {
        format!("{name} (default)")
    } else {
        name.to_owned()
    };
    vec![
        json!(name),
        json!(text(o, "/provisioner").unwrap_or("")),
        json!(text(o, "/reclaimPolicy").unwrap_or("Delete")),
        json!(text(o, "/volumeBindingMode").unwrap_or("Immediate")),
        json!(flag(o, "/allowVolumeExpansion", false)),
        json!(age),
    ]
}
