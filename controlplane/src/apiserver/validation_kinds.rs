//! The validation of the kinds served for kube-scheduler (PersistentVolumes and their claims,
//! ReplicationControllers, PodDisruptionBudgets, storage.k8s.io, resource.k8s.io), as kube's
//! `pkg/apis/{core,storage,policy,resource}/validation` words it: the rules a user is most
//! likely to meet, required fields on create and immutable fields on update, not every rule.
//!
//! Where kube's message ends with a Go diff of two specs (PersistentVolume sources, claims) or
//! prints an internal Go struct (a ResourceClaim's spec), the field path and reason are kube's
//! and the message stops before the Go part.

use kgate_core::status::StatusCause;
use serde_json::{Map, Value};

use super::{
    cause, forbidden, go_value, invalid_value, is_dns1123_subdomain, not_supported,
    qualified_name_errors, required, required_because, DNS1123_LABEL_MSG, DNS1123_SUBDOMAIN_MSG,
};
use crate::resources::ResourceDef;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// The volume sources of a PersistentVolumeSpec (`core.PersistentVolumeSource`).
const PV_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "hostPath",
    "glusterfs",
    "nfs",
    "rbd",
    "iscsi",
    "cinder",
    "cephfs",
    "fc",
    "flocker",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];

fn immutable(field: &str, value: Option<&Value>) -> StatusCause {
    invalid_value(field, value, "field is immutable")
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A map that is absent or empty: Go's nil and empty maps compare as kube stores them.
fn empty_map(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty))
}

/// kube's `GetWarningsForPersistentVolume`, on a PersistentVolume: the deprecated reclaim
/// policy and the volume plugins kube no longer runs. Other kinds: none here.
pub(super) fn warnings(def: &ResourceDef, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if (def.group, def.kind) != ("", "PersistentVolume") {
        return out;
    }
    if text(obj, "/spec/persistentVolumeReclaimPolicy") == "Recycle" {
        out.push("spec.persistentVolumeReclaimPolicy: The Recycle reclaim policy is deprecated. Instead, the recommended approach is to use dynamic provisioning.".to_owned());
    }
    for (plugin, deprecated, gone) in [
        ("cephfs", "1.28", "1.31"),
        ("photonPersistentDisk", "1.11", "1.16"),
        ("scaleIO", "1.16", "1.22"),
        ("storageos", "1.22", "1.25"),
        ("glusterfs", "1.25", "1.26"),
        ("rbd", "1.28", "1.31"),
    ] {
        if obj
            .pointer(&format!("/spec/{plugin}"))
            .is_some_and(|v| !v.is_null())
        {
            out.push(format!(
                "spec.{plugin}: deprecated in v{deprecated}, non-functional in v{gone}+"
            ));
        }
    }
    out
}

/// The create (and update) rules of `def`'s kind.
pub(super) fn kind_causes(def: &ResourceDef, obj: &Value, out: &mut Vec<StatusCause>) {
    match (def.group, def.kind) {
        ("", "PersistentVolume") => persistent_volume(obj, out),
        ("", "PersistentVolumeClaim") => claim_spec(obj.get("spec"), "spec", out),
        ("policy", "PodDisruptionBudget") => disruption_budget(obj, out),
        ("storage.k8s.io", "StorageClass") => storage_class(obj, out),
        ("storage.k8s.io", "VolumeAttributesClass") => {
            provisioner(text(obj, "/driverName"), "driverName", out);
        }
        ("storage.k8s.io", "CSIStorageCapacity") => {
            let class = text(obj, "/storageClassName");
            for e in super::name_errors("StorageClass", class) {
                out.push(cause(
                    "FieldValueInvalid",
                    "storageClassName",
                    format!("Invalid value: {class:?}: {e}"),
                ));
            }
        }
        ("storage.k8s.io", "VolumeAttachment") => volume_attachment(obj, out),
        ("storage.k8s.io", "CSINode") => {
            let drivers = obj.pointer("/spec/drivers").and_then(Value::as_array);
            for (i, d) in drivers.into_iter().flatten().enumerate() {
                csi_driver_name(text(d, "/name"), &format!("spec.drivers[{i}].name"), out);
            }
        }
        ("resource.k8s.io", "ResourceClaim") => {
            device_claim(obj.pointer("/spec/devices"), "spec.devices", out)
        }
        ("resource.k8s.io", "ResourceSlice") => resource_slice(obj, out),
        ("resource.k8s.io", "ResourceClaimTemplate") => {
            device_claim(obj.pointer("/spec/spec/devices"), "spec.spec.devices", out);
        }
        _ => {}
    }
}

/// What may not change on update, by kind.
pub(super) fn update_causes(
    def: &ResourceDef,
    old: &Value,
    new: &Value,
    out: &mut Vec<StatusCause>,
) {
    match (def.group, def.kind) {
        ("", "PersistentVolume") => {
            let sources = |obj: &Value| -> Vec<(String, Value)> {
                PV_SOURCES
                    .iter()
                    .filter_map(|s| {
                        obj.pointer(&format!("/spec/{s}"))
                            .map(|v| ((*s).to_owned(), v.clone()))
                    })
                    .collect()
            };
            if sources(old) != sources(new) {
                out.push(forbidden(
                    "spec.persistentvolumesource",
                    "spec.persistentvolumesource is immutable after creation",
                ));
            }
            volume_mode_immutable(old, new, out);
        }
        ("", "PersistentVolumeClaim") => claim_update(old, new, out),
        ("apps", "StatefulSet") => {
            // ValidateStatefulSetUpdate: only these may change.
            let fixed = |obj: &Value| {
                let mut spec = obj.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(map) = spec.as_object_mut() {
                    for f in [
                        "replicas",
                        "template",
                        "updateStrategy",
                        "minReadySeconds",
                        "ordinals",
                        "revisionHistoryLimit",
                        "persistentVolumeClaimRetentionPolicy",
                    ] {
                        map.remove(f);
                    }
                }
                spec
            };
            if fixed(old) != fixed(new) {
                out.push(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            if !(empty_map(old.get("parameters")) && empty_map(new.get("parameters")))
                && old.get("parameters") != new.get("parameters")
            {
                out.push(forbidden(
                    "parameters",
                    "updates to parameters are forbidden.",
                ));
            }
            if text(old, "/provisioner") != text(new, "/provisioner") {
                out.push(forbidden(
                    "provisioner",
                    "updates to provisioner are forbidden.",
                ));
            }
            if text(old, "/reclaimPolicy") != text(new, "/reclaimPolicy") {
                out.push(forbidden(
                    "reclaimPolicy",
                    "updates to reclaimPolicy are forbidden.",
                ));
            }
            if old.get("volumeBindingMode") != new.get("volumeBindingMode") {
                out.push(immutable("volumeBindingMode", new.get("volumeBindingMode")));
            }
        }
        ("storage.k8s.io", "VolumeAttributesClass") => {
            if text(old, "/driverName") != text(new, "/driverName") {
                out.push(forbidden(
                    "driverName",
                    "updates to driverName are forbidden.",
                ));
            }
            if !(empty_map(old.get("parameters")) && empty_map(new.get("parameters")))
                && old.get("parameters") != new.get("parameters")
            {
                out.push(forbidden(
                    "parameters",
                    "updates to parameters are forbidden.",
                ));
            }
        }
        ("storage.k8s.io", "CSIStorageCapacity") => {
            if old.get("nodeTopology") != new.get("nodeTopology") {
                out.push(cause(
                    "FieldValueInvalid",
                    "nodeTopology",
                    format!(
                        "Invalid value: {}: field is immutable",
                        super::go_selector(new.get("nodeTopology"))
                    ),
                ));
            }
            if text(old, "/storageClassName") != text(new, "/storageClassName") {
                out.push(immutable("storageClassName", new.get("storageClassName")));
            }
        }
        ("storage.k8s.io", "VolumeAttachment") if old.get("spec") != new.get("spec") => {
            // The internal VolumeAttachmentSpec as Go's encoding/json prints it.
            let spec = format!(
                "{{\"Attacher\":{},\"Source\":{{\"PersistentVolumeName\":{},\"InlineVolumeSpec\":{}}},\"NodeName\":{}}}",
                go_value(new.pointer("/spec/attacher").or(Some(&Value::String(String::new())))),
                go_value(new.pointer("/spec/source/persistentVolumeName")),
                go_value(new.pointer("/spec/source/inlineVolumeSpec")),
                go_value(new.pointer("/spec/nodeName").or(Some(&Value::String(String::new())))),
            );
            out.push(cause(
                "FieldValueInvalid",
                "spec",
                format!("Invalid value: {spec}: field is immutable"),
            ));
        }
        ("storage.k8s.io", "CSIDriver") => {
            // kube's path has the typo `attachedRequired`.
            for (field, path) in [
                ("attachRequired", "spec.attachedRequired"),
                ("volumeLifecycleModes", "spec.volumeLifecycleModes"),
            ] {
                let pointer = format!("/spec/{field}");
                if old.pointer(&pointer) != new.pointer(&pointer) {
                    out.push(immutable(path, new.pointer(&pointer)));
                }
            }
        }
        ("resource.k8s.io", "ResourceSlice") => {
            for (pointer, field) in [
                ("/spec/pool/name", "spec.pool.name"),
                ("/spec/driver", "spec.driver"),
                ("/spec/nodeName", "spec.nodeName"),
            ] {
                if old.pointer(pointer) != new.pointer(pointer) {
                    out.push(immutable(field, new.pointer(pointer)));
                }
            }
        }
        ("resource.k8s.io", "ResourceClaim") => {
            if old.get("spec") != new.get("spec") {
                // kube prints the internal ResourceClaimSpec (Go field names); kgate the
                // object's.
                out.push(immutable("spec", new.get("spec")));
            }
            claim_status_update(old, new, out);
        }
        _ => {}
    }
}

/// validateResourceClaimStatusUpdate, its invariants: a claim is reserved only once allocated,
/// and an allocation, once made, does not change (it may be removed).
fn claim_status_update(old: &Value, new: &Value, out: &mut Vec<StatusCause>) {
    fn allocation(obj: &Value) -> Option<&Value> {
        obj.pointer("/status/allocation").filter(|a| !a.is_null())
    }
    let reserved = new
        .pointer("/status/reservedFor")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    if reserved && allocation(new).is_none() {
        out.push(forbidden(
            "status.reservedFor",
            "may not be specified when `allocated` is not set",
        ));
    }
    if let (Some(before), Some(after)) = (allocation(old), allocation(new)) {
        if before != after {
            // kube prints the internal AllocationResult (Go field names); kgate the object's.
            out.push(immutable("status.allocation", Some(after)));
        }
    }
}

fn access_modes(spec: Option<&Value>, path: &str, detail: &str, out: &mut Vec<StatusCause>) {
    let modes = spec
        .and_then(|s| s.get("accessModes"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let field = format!("{path}.accessModes");
    if modes.is_empty() {
        out.push(if detail.is_empty() {
            required(&field)
        } else {
            required_because(&field, detail)
        });
    }
    let (mut once_pod, mut others) = (false, false);
    for mode in modes {
        let m = mode.as_str().unwrap_or("");
        if !ACCESS_MODES.contains(&m) {
            out.push(not_supported(&field, &mode.to_string(), ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            others = true;
        }
    }
    if once_pod && others {
        out.push(forbidden(
            &field,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// ValidatePersistentVolumeSpec, its first rules: access modes, capacity, reclaim policy, and
/// one volume source.
fn persistent_volume(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec");
    access_modes(spec, "spec", "", out);
    let capacity = spec.and_then(|s| s.get("capacity"));
    let entries = capacity.and_then(Value::as_object);
    if entries.is_none_or(Map::is_empty) {
        out.push(required("spec.capacity"));
    }
    if entries.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
        out.push(not_supported(
            "spec.capacity",
            &go_value(capacity.filter(|c| !empty_map(Some(c)))),
            &["storage"],
        ));
    }
    let policy = spec
        .and_then(|s| s.get("persistentVolumeReclaimPolicy"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !policy.is_empty() && !["Delete", "Recycle", "Retain"].contains(&policy) {
        out.push(not_supported(
            "spec.persistentVolumeReclaimPolicy",
            &format!("{policy:?}"),
            &["Delete", "Recycle", "Retain"],
        ));
    }
    let sources: Vec<&&str> = PV_SOURCES
        .iter()
        .filter(|s| {
            spec.and_then(|sp| sp.get(**s))
                .is_some_and(|v| !v.is_null())
        })
        .collect();
    match sources.as_slice() {
        [] => out.push(required_because("spec", "must specify a volume type")),
        [_] => {}
        [_, more @ ..] => {
            for s in more {
                out.push(forbidden(
                    &format!("spec.{s}"),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
}

/// ValidatePersistentVolumeClaimSpec, its first rules: access modes and a storage request.
fn claim_spec(spec: Option<&Value>, path: &str, out: &mut Vec<StatusCause>) {
    access_modes(spec, path, "at least 1 access mode is required", out);
    if spec
        .and_then(|s| s.pointer("/resources/requests/storage"))
        .is_none()
    {
        out.push(required(&format!("{path}.resources[storage]")));
    }
}

/// ValidatePersistentVolumeClaimUpdate: the spec is immutable but for a first volumeName and,
/// once bound, the storage request and the volume attributes class.
fn claim_update(old: &Value, new: &Value, out: &mut Vec<StatusCause>) {
    let mut before = old.get("spec").cloned().unwrap_or(Value::Null);
    let mut after = new.get("spec").cloned().unwrap_or(Value::Null);
    if text(old, "/spec/volumeName").is_empty() {
        if let (Some(b), Some(name)) = (before.as_object_mut(), new.pointer("/spec/volumeName")) {
            b.insert("volumeName".into(), name.clone());
        }
    }
    if text(new, "/status/phase") == "Bound" {
        if let Some(a) = after.as_object_mut() {
            match old.pointer("/spec/volumeAttributesClassName") {
                Some(v) => a.insert("volumeAttributesClassName".into(), v.clone()),
                None => a.remove("volumeAttributesClassName"),
            };
        }
        if let (Some(storage), Some(requests)) = (
            old.pointer("/spec/resources/requests/storage"),
            after
                .pointer_mut("/resources/requests")
                .and_then(Value::as_object_mut),
        ) {
            requests.insert("storage".into(), storage.clone());
        }
    }
    if before != after {
        out.push(forbidden(
            "spec",
            "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
        ));
    }
    volume_mode_immutable(old, new, out);
}

/// A volume's or claim's volumeMode, at kube's path `volumeMode` (no `spec.`).
fn volume_mode_immutable(old: &Value, new: &Value, out: &mut Vec<StatusCause>) {
    let (before, after) = (
        old.pointer("/spec/volumeMode"),
        new.pointer("/spec/volumeMode"),
    );
    if before != after {
        out.push(immutable("volumeMode", after));
    }
}

/// A new StatefulSet's serviceName, when set, is a DNS-1123 label.
pub(super) fn service_name(obj: &Value) -> Vec<StatusCause> {
    let name = text(obj, "/spec/serviceName");
    let mut out = Vec::new();
    if name.is_empty() {
        return out;
    }
    if name.len() > 63 {
        out.push(cause(
            "FieldValueInvalid",
            "spec.serviceName",
            format!("Invalid value: {name:?}: must be no more than 63 characters"),
        ));
    }
    if super::name_errors("Namespace", name)
        .iter()
        .any(|e| e == DNS1123_LABEL_MSG)
    {
        out.push(cause(
            "FieldValueInvalid",
            "spec.serviceName",
            format!("Invalid value: {name:?}: {DNS1123_LABEL_MSG}"),
        ));
    }
    out
}

/// ReplicationControllerSpec: a selector, replicas, a template its selector matches.
pub(super) fn replication_controller(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec");
    let selector = spec
        .and_then(|s| s.get("selector"))
        .and_then(Value::as_object);
    if selector.is_none_or(Map::is_empty) {
        out.push(required("spec.selector"));
    }
    match spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64) {
        None => out.push(required("spec.replicas")),
        Some(r) if r < 0 => out.push(cause(
            "FieldValueInvalid",
            "spec.replicas",
            format!("Invalid value: {r}: must be greater than or equal to 0"),
        )),
        Some(_) => {}
    }
    let Some(template) = spec
        .and_then(|s| s.get("template"))
        .filter(|t| !t.is_null())
    else {
        out.push(required("spec.template"));
        return;
    };
    let labels = template.pointer("/metadata/labels");
    let matches = selector.into_iter().flatten().all(|(k, v)| {
        labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str().unwrap_or(""))
    });
    if !matches {
        out.push(cause(
            "FieldValueInvalid",
            "spec.template.metadata.labels",
            format!(
                "Invalid value: {}: `selector` does not match template `labels`",
                go_value(labels)
            ),
        ));
    }
    super::pod_spec_causes(template.get("spec"), "spec.template.spec", out);
    let restart = text(template, "/spec/restartPolicy");
    if restart != "Always" {
        out.push(not_supported(
            "spec.template.spec.restartPolicy",
            &format!("{restart:?}"),
            &["Always"],
        ));
    }
}

/// PodDisruptionBudgetSpec: not both minAvailable and maxUnavailable.
fn disruption_budget(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec");
    let field = |f: &str| spec.and_then(|s| s.get(f)).filter(|v| !v.is_null());
    if let (Some(min), Some(max)) = (field("minAvailable"), field("maxUnavailable")) {
        // The internal PodDisruptionBudgetSpec as Go's encoding/json prints it.
        let spec = format!(
            "{{\"MinAvailable\":{min},\"Selector\":{},\"MaxUnavailable\":{max},\"UnhealthyPodEvictionPolicy\":{}}}",
            go_value(field("selector")),
            go_value(field("unhealthyPodEvictionPolicy")),
        );
        out.push(cause(
            "FieldValueInvalid",
            "spec",
            format!("Invalid value: {spec}: minAvailable and maxUnavailable cannot be both set"),
        ));
    }
}

/// ValidateStorageClass: a provisioner (a qualified name), and the reclaim policy and binding
/// mode kube knows.
fn storage_class(obj: &Value, out: &mut Vec<StatusCause>) {
    provisioner(text(obj, "/provisioner"), "provisioner", out);
    let policy = text(obj, "/reclaimPolicy");
    if !["Delete", "Retain"].contains(&policy) {
        out.push(not_supported(
            "reclaimPolicy",
            &format!("{policy:?}"),
            &["Delete", "Retain"],
        ));
    }
    let mode = text(obj, "/volumeBindingMode");
    if !["Immediate", "WaitForFirstConsumer"].contains(&mode) {
        out.push(not_supported(
            "volumeBindingMode",
            &format!("{mode:?}"),
            &["Immediate", "WaitForFirstConsumer"],
        ));
    }
}

/// validateProvisioner (a StorageClass's provisioner, a VolumeAttributesClass's driverName):
/// required, a qualified name once lowercased.
fn provisioner(name: &str, field: &str, out: &mut Vec<StatusCause>) {
    if name.is_empty() {
        out.push(required(field));
        return;
    }
    for e in qualified_name_errors(&name.to_lowercase()) {
        out.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {name:?}: {e}"),
        ));
    }
}

/// ValidateCSIDriverName: required, at most 63 characters, a DNS subdomain once lowercased.
fn csi_driver_name(name: &str, field: &str, out: &mut Vec<StatusCause>) {
    if name.is_empty() {
        out.push(required(field));
    }
    if name.len() > 63 {
        out.push(cause(
            "FieldValueTooLong",
            field,
            "Too long: may not be more than 63 bytes".to_owned(),
        ));
    }
    let lower = name.to_lowercase();
    if lower.len() > 253 {
        out.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {name:?}: must be no more than 253 characters"),
        ));
    }
    if !is_dns1123_subdomain(&lower) {
        out.push(cause(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {name:?}: {DNS1123_SUBDOMAIN_MSG}"),
        ));
    }
}

/// ValidateVolumeAttachment and ValidateVolumeAttachmentV1: an attacher (a CSI driver name),
/// exactly one source, a node name.
fn volume_attachment(obj: &Value, out: &mut Vec<StatusCause>) {
    let attacher = text(obj, "/spec/attacher");
    if attacher.is_empty() {
        out.push(required("spec.attacher"));
    }
    let pv = obj
        .pointer("/spec/source/persistentVolumeName")
        .filter(|v| !v.is_null());
    let inline = obj
        .pointer("/spec/source/inlineVolumeSpec")
        .filter(|v| !v.is_null());
    let exactly_one = "must specify exactly one of inlineVolumeSpec and persistentVolumeName";
    match (pv, inline) {
        (None, None) => out.push(required_because("spec.source", exactly_one)),
        (Some(_), Some(_)) => out.push(forbidden("spec.source", exactly_one)),
        (Some(name), None) if name.as_str().unwrap_or("").is_empty() => out.push(required_because(
            "spec.source.persistentVolumeName",
            "must specify non empty persistentVolumeName",
        )),
        _ => {}
    }
    let node = text(obj, "/spec/nodeName");
    for e in super::name_errors("Node", node) {
        out.push(cause(
            "FieldValueInvalid",
            "spec.nodeName",
            format!("Invalid value: {node:?}: {e}"),
        ));
    }
    csi_driver_name(attacher, "spec.attacher", out);
    if let Some(name) = pv.and_then(Value::as_str).filter(|n| !n.is_empty()) {
        for e in super::name_errors("PersistentVolume", name) {
            out.push(cause(
                "FieldValueInvalid",
                "spec.source.persistentVolumeName",
                format!("Invalid value: {name:?}: {e}"),
            ));
        }
    }
}

/// validateResourceSliceSpec, its first rules: a driver (a CSI driver name), a pool, and
/// exactly one way of saying which nodes have the devices.
fn resource_slice(obj: &Value, out: &mut Vec<StatusCause>) {
    csi_driver_name(text(obj, "/spec/driver"), "spec.driver", out);
    let pool = text(obj, "/spec/pool/name");
    if pool.is_empty() {
        out.push(required("spec.pool.name"));
    } else {
        if pool.len() > 253 {
            out.push(cause(
                "FieldValueTooLong",
                "spec.pool.name",
                "Too long: may not be more than 253 bytes".to_owned(),
            ));
        }
        for part in pool.split('/') {
            if !is_dns1123_subdomain(part) {
                out.push(cause(
                    "FieldValueInvalid",
                    "spec.pool.name",
                    format!("Invalid value: {part:?}: {DNS1123_SUBDOMAIN_MSG}"),
                ));
            }
        }
    }
    let count = obj
        .pointer("/spec/pool/resourceSliceCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if count <= 0 {
        out.push(cause(
            "FieldValueInvalid",
            "spec.pool.resourceSliceCount",
            format!("Invalid value: {count}: must be greater than zero"),
        ));
    }
    let mut set = Vec::new();
    match obj.pointer("/spec/nodeName").filter(|v| !v.is_null()) {
        Some(Value::String(node)) if !node.is_empty() => {
            set.push("`nodeName`");
            for e in super::name_errors("Node", node) {
                out.push(cause(
                    "FieldValueInvalid",
                    "spec.nodeName",
                    format!("Invalid value: {node:?}: {e}"),
                ));
            }
        }
        Some(other) => out.push(cause(
            "FieldValueInvalid",
            "spec.nodeName",
            format!("Invalid value: {other}: must be either unset or set to a non-empty string"),
        )),
        None => {}
    }
    if obj
        .pointer("/spec/nodeSelector")
        .is_some_and(|v| !v.is_null())
    {
        set.push("`nodeSelector`");
    }
    for (field, name) in [
        ("allNodes", "`allNodes`"),
        ("perDeviceNodeSelection", "`perDeviceNodeSelection`"),
    ] {
        match obj
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_bool)
        {
            Some(true) => set.push(name),
            Some(false) => out.push(cause(
                "FieldValueInvalid",
                &format!("spec.{field}"),
                "Invalid value: false: must be either unset or set to true".to_owned(),
            )),
            None => {}
        }
    }
    let one_of = "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required";
    match set.len() {
        0 => out.push(required_because("spec", one_of)),
        1 => {}
        _ => out.push(cause(
            "FieldValueInvalid",
            "spec",
            format!(
                "Invalid value: \"{{{}}}\": {one_of}, but multiple fields are set",
                set.join(", ")
            ),
        )),
    }
}

/// validateDeviceClaim, its first rules: each request has exactly one of `exactly` and
/// `firstAvailable`, and names a device class.
fn device_claim(devices: Option<&Value>, path: &str, out: &mut Vec<StatusCause>) {
    let requests = devices
        .and_then(|d| d.get("requests"))
        .and_then(Value::as_array);
    for (i, request) in requests.into_iter().flatten().enumerate() {
        let at = format!("{path}.requests[{i}]");
        let exactly = request.get("exactly").filter(|v| !v.is_null());
        let first = request
            .get("firstAvailable")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty());
        for (j, sub) in first.into_iter().flatten().enumerate() {
            device_class(
                sub,
                &format!("{at}.firstAvailable[{j}].deviceClassName"),
                out,
            );
        }
        if let Some(exactly) = exactly {
            device_class(exactly, &format!("{at}.exactly.deviceClassName"), out);
        }
        match (exactly, first) {
            (None, None) => out.push(required_because(
                &at,
                "exactly one of `exactly` or `firstAvailable` is required",
            )),
            (Some(_), Some(_)) => out.push(cause(
                "FieldValueInvalid",
                &at,
                "Invalid value: null: exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set".to_owned(),
            )),
            _ => {}
        }
    }
}

fn device_class(request: &Value, field: &str, out: &mut Vec<StatusCause>) {
    let class = text(request, "/deviceClassName");
    if class.is_empty() {
        out.push(required(field));
    } else {
        for e in super::name_errors("DeviceClass", class) {
            out.push(cause(
                "FieldValueInvalid",
                field,
                format!("Invalid value: {class:?}: {e}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{validate_create, validate_update};
    use crate::resources::lookup;

    #[test]
    fn claims_need_access_modes_and_storage() {
        let pvcs = lookup("", "v1", "persistentvolumeclaims").expect("pvcs");
        let s = validate_create(pvcs, &json!({"metadata": {"name": "c"}, "spec": {}}))
            .expect_err("an empty claim");
        assert_eq!(
            s.message,
            "PersistentVolumeClaim \"c\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
        );
        let ok = json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        assert!(validate_create(pvcs, &ok).is_ok());
        let mut wider = ok.clone();
        wider["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let s = validate_update(pvcs, &ok, &wider).expect_err("a changed claim");
        assert!(
            s.message
                .contains("spec: Forbidden: spec is immutable after creation"),
            "{}",
            s.message
        );
        // A first volumeName may be set (the binder does).
        let mut bound = ok.clone();
        bound["spec"]["volumeName"] = json!("pv-1");
        assert!(validate_update(pvcs, &ok, &bound).is_ok());
    }

    #[test]
    fn volumes_need_capacity_and_keep_their_source() {
        let pvs = lookup("", "v1", "persistentvolumes").expect("pvs");
        let s = validate_create(
            pvs,
            &json!({"metadata": {"name": "v"}, "spec": {"accessModes": ["ReadWriteOnce"]}}),
        )
        .expect_err("no capacity, no source");
        assert_eq!(
            s.message,
            "PersistentVolume \"v\" is invalid: [spec.capacity: Required value, spec.capacity: Unsupported value: null: supported values: \"storage\", spec: Required value: must specify a volume type]"
        );
        let old = json!({"metadata": {"name": "v"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/a"}}});
        let mut bigger = old.clone();
        bigger["spec"]["capacity"]["storage"] = json!("2Gi");
        assert!(validate_update(pvs, &old, &bigger).is_ok());
        let mut moved = old.clone();
        moved["spec"]["hostPath"]["path"] = json!("/b");
        let s = validate_update(pvs, &old, &moved).expect_err("a new source");
        assert!(s.message.contains("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"), "{}", s.message);
    }

    #[test]
    fn storage_classes_keep_provisioner_and_parameters() {
        let scs = lookup("storage.k8s.io", "v1", "storageclasses").expect("scs");
        let s = validate_create(
            scs,
            &json!({"metadata": {"name": "s"}, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        )
        .expect_err("no provisioner");
        assert_eq!(
            s.message,
            "StorageClass.storage.k8s.io \"s\" is invalid: provisioner: Required value"
        );
        let old = json!({"metadata": {"name": "s"}, "provisioner": "a.io/x", "parameters": {"a": "b"},
            "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"});
        let mut new = old.clone();
        new["parameters"]["a"] = json!("c");
        new["volumeBindingMode"] = json!("WaitForFirstConsumer");
        let s = validate_update(scs, &old, &new).expect_err("changed");
        assert_eq!(
            s.message,
            "StorageClass.storage.k8s.io \"s\" is invalid: [parameters: Forbidden: updates to parameters are forbidden., volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable]"
        );
    }

    #[test]
    fn statefulsets_change_only_what_kube_lets_change() {
        let stss = lookup("apps", "v1", "statefulsets").expect("stss");
        let old = json!({"metadata": {"name": "s"}, "spec": {"serviceName": "a", "replicas": 1,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        assert!(validate_update(stss, &old, &scaled).is_ok());
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("b");
        let s = validate_update(stss, &old, &renamed).expect_err("serviceName changed");
        assert!(
            s.message.contains(
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas'"
            ),
            "{}",
            s.message
        );
    }

    #[test]
    fn attachments_and_claims_are_checked() {
        let vas = lookup("storage.k8s.io", "v1", "volumeattachments").expect("vas");
        let old = json!({"metadata": {"name": "a"}, "spec": {"attacher": "d.example.com",
            "nodeName": "n1", "source": {"persistentVolumeName": "pv"}}});
        assert!(validate_create(vas, &old).is_ok());
        let mut moved = old.clone();
        moved["spec"]["nodeName"] = json!("n2");
        let s = validate_update(vas, &old, &moved).expect_err("spec changed");
        assert_eq!(
            s.message,
            r#"VolumeAttachment.storage.k8s.io "a" is invalid: spec: Invalid value: {"Attacher":"d.example.com","Source":{"PersistentVolumeName":"pv","InlineVolumeSpec":null},"NodeName":"n2"}: field is immutable"#
        );
        let claims = lookup("resource.k8s.io", "v1", "resourceclaims").expect("claims");
        let s = validate_create(
            claims,
            &json!({"metadata": {"name": "c"}, "spec": {"devices": {"requests": [{"name": "r", "exactly": {}}]}}}),
        )
        .expect_err("no class");
        assert_eq!(
            s.message,
            "ResourceClaim.resource.k8s.io \"c\" is invalid: spec.devices.requests[0].exactly.deviceClassName: Required value"
        );
    }

    /// A ResourceSlice says which nodes have its devices exactly one way, and keeps its pool,
    /// driver and node.
    #[test]
    fn resource_slices_name_one_node_selection() {
        let slices = lookup("resource.k8s.io", "v1", "resourceslices").expect("slices");
        let slice = json!({"metadata": {"name": "s"}, "spec": {"driver": "d.example.com",
            "nodeName": "n1", "pool": {"name": "n1", "generation": 1, "resourceSliceCount": 1}}});
        assert!(validate_create(slices, &slice).is_ok());
        let mut both = slice.clone();
        both["spec"]["allNodes"] = json!(true);
        let s = validate_create(slices, &both).expect_err("two selections");
        assert_eq!(
            s.message,
            "ResourceSlice.resource.k8s.io \"s\" is invalid: spec: Invalid value: \"{`nodeName`, `allNodes`}\": exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set"
        );
        let mut moved = slice.clone();
        moved["spec"]["nodeName"] = json!("n2");
        let s = validate_update(slices, &slice, &moved).expect_err("a new node");
        assert_eq!(
            s.message,
            "ResourceSlice.resource.k8s.io \"s\" is invalid: spec.nodeName: Invalid value: \"n2\": field is immutable"
        );
    }

    #[test]
    fn classes_and_capacities_keep_what_drivers_read() {
        let vacs = lookup("storage.k8s.io", "v1", "volumeattributesclasses").expect("vacs");
        let old = json!({"metadata": {"name": "v"}, "driverName": "d.example.com",
            "parameters": {"iops": "1"}});
        let mut new = old.clone();
        new["parameters"]["iops"] = json!("2");
        let s = validate_update(vacs, &old, &new).expect_err("new parameters");
        assert_eq!(
            s.message,
            "VolumeAttributesClass.storage.k8s.io \"v\" is invalid: parameters: Forbidden: updates to parameters are forbidden."
        );
        let capacities = lookup("storage.k8s.io", "v1", "csistoragecapacities").expect("c");
        let s =
            validate_create(capacities, &json!({"metadata": {"name": "c"}})).expect_err("no class");
        assert!(
            s.message
                .starts_with("CSIStorageCapacity.storage.k8s.io \"c\" is invalid: storageClassName: Invalid value: \"\": a lowercase RFC 1123 subdomain"),
            "{}",
            s.message
        );
    }

    /// A claim is reserved only once allocated, and keeps its allocation.
    #[test]
    fn claim_status_keeps_its_invariants() {
        let claims = lookup("resource.k8s.io", "v1", "resourceclaims").expect("claims");
        let old = json!({"metadata": {"name": "c"}, "spec": {"devices": {"requests": [
            {"name": "r", "exactly": {"deviceClassName": "g"}}]}}, "status": {}});
        let mut reserved = old.clone();
        reserved["status"]["reservedFor"] = json!([{"resource": "pods", "name": "p", "uid": "u"}]);
        let s = validate_update(claims, &old, &reserved).expect_err("not allocated");
        assert_eq!(
            s.message,
            "ResourceClaim.resource.k8s.io \"c\" is invalid: status.reservedFor: Forbidden: may not be specified when `allocated` is not set"
        );
        let result = |device: &str| {
            json!({"devices": {"results": [
            {"request": "r", "driver": "d", "pool": "p", "device": device}]}})
        };
        let mut allocated = reserved.clone();
        allocated["status"]["allocation"] = result("a");
        assert!(validate_update(claims, &old, &allocated).is_ok());
        let mut moved = allocated.clone();
        moved["status"]["allocation"] = result("b");
        let s = validate_update(claims, &allocated, &moved).expect_err("a new allocation");
        assert!(
            s.message.contains("status.allocation: Invalid value: "),
            "{}",
            s.message
        );
    }

    #[test]
    fn replication_controllers_need_a_template() {
        let rcs = lookup("", "v1", "replicationcontrollers").expect("rcs");
        let s = validate_create(
            rcs,
            &json!({"metadata": {"name": "r"}, "spec": {"replicas": 1, "selector": {"a": "b"}}}),
        )
        .expect_err("no template");
        assert_eq!(
            s.message,
            "ReplicationController \"r\" is invalid: spec.template: Required value"
        );
    }
}
