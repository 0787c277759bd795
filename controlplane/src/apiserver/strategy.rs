//! The write strategy of each resource: what kube's registry (`k8s.io/apiserver/pkg/registry/rest`
//! `BeforeCreate` / `BeforeUpdate` with the resource's `RESTCreateStrategy` and
//! `RESTUpdateStrategy`) does to an object between admission and the store, as separate steps
//! that run in one order for every writer: the handlers, the bootstrap and the controllers.
//!
//! # What it owns
//!
//! - **prepare**: the system fields. On create: a `resourceVersion` in the body is refused,
//!   `generateName` becomes a name, `uid` and `creationTimestamp` are set, deletion fields and
//!   (for kinds with a status subresource) `status` are dropped, `generation` starts at 1. On
//!   update: `uid` may not change, no finalizer may be added to an object being deleted, the
//!   system fields and (for a write of the main resource) `status` are carried over from the
//!   stored object, and `generation` moves when the spec changed.
//! - **default**: [`super::defaults`], which only fills what is absent.
//! - **validate**: [`super::validation`], 422 Invalid with kube's field paths.
//!
//! It does not own decoding (type, namespace and name against the URL, unknown fields:
//! [`super::decode`]), admission ([`super::admission`]), or the store write and its retries
//! ([`super::storage`], [`super::registry`]).
//!
//! # The order, and why it is not the summary
//!
//! A write runs: decode → **mutating admission** → prepare → default → validate → **validating
//! admission** → store. This is kube-apiserver's order (`endpoints/handlers/create.go` runs the
//! mutating admission, then `registry.Store.Create` fills the system fields and the generated
//! name and runs `BeforeCreate`, which is `PrepareForCreate` then `Validate`; the validating
//! admission runs after it as `createValidation`, then storage. Update is the same inside
//! `GuaranteedUpdate` with the stored object), with one difference: kube defaults when it
//! decodes, before admission, and here defaulting runs after prepare. Kept so on purpose:
//! kgate's defaults include what kube's pod strategy sets in `PrepareForCreate` (`status.phase`
//! and `status.qosClass`, after the client's status was dropped), the generation bump compares
//! defaulted specs as kube's does (both of kube's objects were defaulted by the decoder), and
//! the objects the built-in admission plugins add (a token volume, tolerations) are defaulted
//! as kube defaults a webhook's patched object. Validation sees the defaulted object in both.

use kgate_core::Status;
use serde_json::{json, Value};

use super::meta::{finalizers, generate_name, is_deleting, meta_mut, meta_str, now_timestamp};
use super::{defaults, validation};
use crate::resources::ResourceDef;

/// Kinds whose metadata.generation starts at 1 and tracks spec changes (their strategies'
/// `PrepareForCreate` and `PrepareForUpdate`).
const GENERATION_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "DaemonSet",
    "Pod",
    "EndpointSlice",
    "ReplicationController",
    "StatefulSet",
    "PodDisruptionBudget",
    "DeviceClass",
    "ResourceSlice",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

/// Kinds whose generation moves with spec changes but is not set on create: kube's CSIDriver
/// strategy bumps it in `PrepareForUpdate` only, so a driver's first spec change makes it 1.
const GENERATION_ON_UPDATE_KINDS: &[&str] = &["CSIDriver"];

/// kube's pod `PrepareForCreate` (`applySchedulingGatedCondition`): a new pod with scheduling
/// gates says why it is not scheduled, `PodScheduled=False` with reason `SchedulingGated`.
fn scheduling_gated_condition(pod: &mut Value) {
    let gated = pod
        .pointer("/spec/schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|gates| !gates.is_empty());
    if !gated {
        return;
    }
    let Value::Object(map) = pod else {
        return;
    };
    let status = map.entry("status").or_insert_with(|| json!({}));
    let Some(status) = status.as_object_mut() else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(conditions) = conditions.as_array_mut() else {
        return;
    };
    if conditions.iter().any(|c| c["type"] == "PodScheduled") {
        return;
    }
    conditions.push(json!({
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": null,
        "lastTransitionTime": now_timestamp(),
        "reason": "SchedulingGated",
        "message": "Scheduling is blocked due to non-empty scheduling gates",
    }));
}

/// Which status an update keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFrom {
    /// A write of the main resource: status is the old one (kinds with a status subresource).
    Old,
    /// A write through a subresource: the caller built the whole object.
    New,
}

/// The strategy of one resource. Every resource served here shares the steps; what differs by
/// kind is inside them (the defaults and validation of that kind).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Strategy {
    def: &'static ResourceDef,
}

/// The strategy of `def`'s resource.
pub(crate) fn for_resource(def: &'static ResourceDef) -> Strategy {
    Strategy { def }
}

impl Strategy {
    /// prepare → default → validate for a new object (after mutating admission).
    pub fn before_create(&self, obj: &mut Value) -> Result<(), Status> {
        self.prepare_for_create(obj)?;
        self.default(obj);
        self.validate(obj)
    }

    /// prepare → default → validate for the successor of `old` (after mutating admission).
    pub fn before_update(
        &self,
        old: &Value,
        new: Value,
        status_from: StatusFrom,
    ) -> Result<Value, Status> {
        let mut next = self.prepare_for_update(old, new, status_from)?;
        defaults::carry_allocated(self.def, old, &mut next);
        self.default(&mut next);
        self.bump_generation(old, &mut next);
        self.validate_update(old, &next)?;
        Ok(next)
    }

    /// The system fields of a new object (its type and namespace already checked): kube's
    /// `PrepareForCreate` and the fields `registry.Store.Create` fills. Fills a generated name
    /// when asked.
    pub fn prepare_for_create(&self, obj: &mut Value) -> Result<(), Status> {
        let meta = meta_mut(obj);
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(Status::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        meta.remove("resourceVersion");
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.is_empty() && !generate.is_empty() {
            let generated = generate_name(generate);
            meta.insert("name".into(), Value::String(generated));
        }
        meta.insert(
            "uid".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        meta.insert("creationTimestamp".into(), Value::String(now_timestamp()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if GENERATION_KINDS.contains(&self.def.kind) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        // Status is the controllers' to write: a new object starts with none (then its defaults).
        if self.def.has_subresource("status") {
            if let Value::Object(map) = obj {
                map.remove("status");
            }
        }
        if self.def.group.is_empty() && self.def.kind == "Pod" {
            scheduling_gated_condition(obj);
        }
        Ok(())
    }

    /// The defaults of the resource's kind.
    pub fn default(&self, obj: &mut Value) {
        defaults::apply(self.def, obj);
    }

    /// The validation of a new object.
    pub fn validate(&self, obj: &Value) -> Result<(), Status> {
        validation::validate_create(self.def, obj)
    }

    /// The warnings kube's strategy gives about an object it writes (`WarningsOnCreate`,
    /// `WarningsOnUpdate`): deprecated fields and values.
    pub fn warnings(&self, obj: &Value) -> Vec<String> {
        validation::warnings(self.def, obj)
    }

    /// The validation of an update.
    pub fn validate_update(&self, old: &Value, new: &Value) -> Result<(), Status> {
        validation::validate_update(self.def, old, new)
    }

    /// The successor of `old` from a client's `new`, before defaults: kube's `PrepareForUpdate`
    /// and the metadata `BeforeUpdate` carries over. The two immutability checks run here, on
    /// the metadata as sent, since carrying the old metadata over would hide what was sent.
    pub fn prepare_for_update(
        &self,
        old: &Value,
        mut new: Value,
        status_from: StatusFrom,
    ) -> Result<Value, Status> {
        let def = self.def;
        let name = meta_str(old, "name").unwrap_or("").to_owned();
        let old_uid = meta_str(old, "uid").unwrap_or("").to_owned();
        let new_uid = meta_str(&new, "uid").unwrap_or("").to_owned();
        if !new_uid.is_empty() && new_uid != old_uid {
            return Err(validation::invalid(
                def,
                &name,
                "metadata.uid",
                format!("Invalid value: {new_uid:?}: field is immutable"),
            ));
        }
        if is_deleting(old) {
            let before = finalizers(old);
            let added: Vec<String> = finalizers(&new)
                .into_iter()
                .filter(|f| !before.contains(f))
                .map(str::to_owned)
                .collect();
            if !added.is_empty() {
                return Err(validation::forbidden_field(
                    def,
                    &name,
                    "metadata.finalizers",
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ")),
                ));
            }
        }
        let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let meta = meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if let (StatusFrom::Old, true) = (status_from, def.has_subresource("status")) {
            if let Value::Object(map) = &mut new {
                match old.get("status") {
                    Some(s) => map.insert("status".into(), s.clone()),
                    None => map.remove("status"),
                };
            }
        }
        Ok(new)
    }

    /// The end of prepare on update: `generation` moves when the (defaulted) spec changed.
    fn bump_generation(&self, old: &Value, new: &mut Value) {
        let changed = if self.def.kind == "EndpointSlice" {
            // An EndpointSlice has no spec: anything but metadata, or its labels (kube's
            // endpointSliceStrategy.PrepareForUpdate).
            let without_meta = |v: &Value| {
                let mut v = v.clone();
                if let Value::Object(map) = &mut v {
                    map.remove("metadata");
                }
                v
            };
            without_meta(old) != without_meta(new)
                || old.pointer("/metadata/labels") != new.pointer("/metadata/labels")
        } else if matches!(
            self.def.kind,
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
        ) {
            // The webhook configurations have no spec: their strategies compare the webhooks.
            old.get("webhooks") != new.get("webhooks")
        } else if self.def.kind == "Pod" {
            // spec.nodeName is set by the binding, which kube writes without the pod strategy,
            // so it moves no generation.
            let spec = |v: &Value| {
                let mut spec = v.get("spec").cloned();
                if let Some(Value::Object(map)) = &mut spec {
                    map.remove("nodeName");
                }
                spec
            };
            spec(old) != spec(new)
        } else {
            old.get("spec") != new.get("spec")
        };
        let tracked = GENERATION_KINDS.contains(&self.def.kind)
            || GENERATION_ON_UPDATE_KINDS.contains(&self.def.kind);
        if tracked && changed {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(new).insert("generation".into(), json!(generation + 1));
        }
    }
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
