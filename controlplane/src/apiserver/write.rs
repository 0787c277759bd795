//! Create (POST), update (PUT) and patch (PATCH) of objects, in kube-apiserver's order: decode,
//! check the type and namespace against the URL, field validation, namespace lifecycle
//! (admission), system metadata and defaults, validation, then the store (a create-if-absent,
//! or a compare-and-swap through [`guaranteed_update`]). `dryRun=All` does everything but the
//! store write.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use http::StatusCode;
use kgate_core::Status;
use rand::Rng;
use serde_json::{json, Value};

use super::codec::{decode_object, encode_object};
use super::namespaces;
use super::objects::{
    check_fields, check_name, check_namespace, check_type, meta_str, prepare_create,
    prepare_update, StatusFrom,
};
use super::request::{Reply, Req};
use super::storage::{guaranteed_update, precondition_of, store_status, Target};
use super::Shared;
use crate::resources::{self, ResourceDef};
use crate::schema;
use crate::store::{RangeRequest, Store, StoreError};

/// How many generated names to try before giving up on a collision (kube retries too).
const GENERATE_ATTEMPTS: usize = 8;

/// POST: creates an object; 201 with the stored object.
pub(crate) async fn create(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let mut obj = req.body_value()?;
    check_type(req.def, &mut obj)?;
    let warnings = check_fields(req.def, &mut obj, req.field_validation()?, true)?;
    check_namespace(req.def, req.namespace.as_deref(), &mut obj)?;
    let dry_run = req.dry_run()?;
    let generated = meta_str(&obj, "name").unwrap_or("").is_empty();
    if let Some(ns) = req.namespace.as_deref() {
        let name = meta_str(&obj, "name").unwrap_or("");
        namespaces::check_writable(shared.store.as_ref(), req.def, ns, name).await?;
    }
    // Services allocate a ClusterIP; one lock keeps two creations from taking the same one.
    let _ip_guard = if req.def.kind == "Service" && !dry_run {
        Some(shared.service_ips.lock().await)
    } else {
        None
    };
    if req.def.kind == "Service" {
        allocate_cluster_ip(shared.store.as_ref(), &mut obj).await?;
    }
    let attempts = if generated { GENERATE_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let mut candidate = obj.clone();
        prepare_create(req.def, &mut candidate)?;
        check_escalation(shared, req, &candidate, None)?;
        let name = meta_str(&candidate, "name").unwrap_or("").to_owned();
        let target = Target {
            def: req.def,
            namespace: req.namespace.as_deref(),
            name: &name,
        };
        if dry_run {
            if shared
                .store
                .get(&target.key())
                .await
                .map_err(|e| store_status(e, Some(&target)))?
                .is_some()
            {
                return Err(Status::already_exists(target.gr(), &name));
            }
            return Ok(Reply::new(StatusCode::CREATED, candidate).with_warnings(warnings));
        }
        match shared
            .store
            .create(&target.key(), encode_object(&candidate)?)
            .await
        {
            Ok(kv) => {
                return Ok(
                    Reply::new(StatusCode::CREATED, decode_object(&kv)?).with_warnings(warnings)
                )
            }
            Err(StoreError::AlreadyExists) if generated => {
                last = Some(Status::already_exists(target.gr(), &name));
            }
            Err(e) => return Err(store_status(e, Some(&target))),
        }
    }
    Err(last.unwrap_or_else(|| Status::internal("could not generate a unique name")))
}

/// PUT: replaces an object. A resourceVersion in the body must be the current one (409
/// otherwise); without one the update is unconditional.
pub(crate) async fn update(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let mut obj = req.body_value()?;
    check_type(req.def, &mut obj)?;
    let warnings = check_fields(req.def, &mut obj, req.field_validation()?, true)?;
    check_namespace(req.def, req.namespace.as_deref(), &mut obj)?;
    check_name(&req.name, &mut obj)?;
    let precondition = precondition_of(&obj)?;
    let dry_run = req.dry_run()?;
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &req.target(),
        precondition,
        dry_run,
        |current| {
            let next = prepare_update(req.def, current, obj.clone(), StatusFrom::Old)?;
            check_escalation(shared, req, &next, Some(current))?;
            Ok(next)
        },
    )
    .await?;
    Ok(Reply::ok(stored).with_warnings(warnings))
}

/// The patch formats kube serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    /// From the Content-Type; server-side apply and anything else are 415.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, Status> {
        let raw = content_type.unwrap_or("");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            _ => Err(Status::unsupported_media_type(raw)),
        }
    }
}

/// Applies a parsed patch to `current` (an object of `def`'s kind, or any JSON for JSON and
/// merge patches).
pub(crate) fn apply_patch(
    def: &ResourceDef,
    kind: PatchType,
    current: &Value,
    patch: &Value,
) -> Result<Value, Status> {
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                Status::failure(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Strategic => {
            let group_kind = if current.get("kind").and_then(Value::as_str) == Some(def.kind) {
                (def.group, def.version, def.kind)
            } else {
                // A subresource object (Scale) has no strategies: plain merge semantics.
                ("", "", "")
            };
            schema::strategic_merge(group_kind.0, group_kind.1, group_kind.2, current, patch)
                .map_err(|e| Status::bad_request(e.to_string()))
        }
    }
}

/// A patched object must still be an object whose resourceVersion, if the patch set one, is the
/// current one (a patch carrying a resourceVersion is a precondition, as in kube).
pub(crate) fn check_patched_version(
    target: &Target<'_>,
    current: &Value,
    patched: &Value,
) -> Result<(), Status> {
    if !patched.is_object() {
        return Err(Status::bad_request(
            "the patched object is not a JSON object",
        ));
    }
    let want = meta_str(current, "resourceVersion");
    match meta_str(patched, "resourceVersion") {
        None | Some("") => Ok(()),
        got if got == want => Ok(()),
        _ => Err(target.conflict()),
    }
}

/// PATCH: JSON patch, merge patch or strategic merge patch, retried on a lost race.
pub(crate) async fn patch(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let kind = PatchType::from_content_type(req.content_type())?;
    let patch = req.body_value()?;
    let mode = req.field_validation()?;
    let dry_run = req.dry_run()?;
    let target = req.target();
    let mut warnings = Vec::new();
    let stored = guaranteed_update(shared.store.as_ref(), &target, None, dry_run, |current| {
        let mut patched = apply_patch(req.def, kind, current, &patch)?;
        check_patched_version(&target, current, &patched)?;
        check_type(req.def, &mut patched)?;
        warnings = check_fields(req.def, &mut patched, mode, false)?;
        check_namespace(req.def, req.namespace.as_deref(), &mut patched)?;
        check_name(&req.name, &mut patched)?;
        let next = prepare_update(req.def, current, patched, StatusFrom::Old)?;
        check_escalation(shared, req, &next, Some(current))?;
        Ok(next)
    })
    .await?;
    Ok(Reply::ok(stored).with_warnings(warnings))
}

/// Refuses an RBAC write that grants more than its writer holds, when the checks are enabled.
fn check_escalation(
    shared: &Shared,
    req: &Req,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), Status> {
    match shared.escalation.get() {
        Some(guard) if req.def.group == "rbac.authorization.k8s.io" => {
            let user = super::escalation::front_proxy_user(&req.headers);
            guard.check(user.as_ref(), req.def, new, old)
        }
        _ => Ok(()),
    }
}

/// The Service ClusterIP range, as kube's default `--service-cluster-ip-range`.
const SERVICE_NET: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_NET_BITS: u32 = 12;

/// Gives a Service without one a free ClusterIP from 10.96.0.0/12 (kube's default range). The
/// first address after the network one is the `kubernetes` Service's, as in kube. Headless
/// (`None`) and ExternalName Services get none. A requested IP must be free and in range.
async fn allocate_cluster_ip(store: &dyn Store, obj: &mut Value) -> Result<(), Status> {
    let spec_type = obj
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if spec_type == "ExternalName" {
        return Ok(());
    }
    let requested = obj
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if requested == "None" {
        return Ok(());
    }
    let services = resources::lookup("", "v1", "services").ok_or_else(Status::path_not_found)?;
    let used: HashSet<String> = store
        .range(RangeRequest {
            prefix: services.key_prefix(),
            ..RangeRequest::default()
        })
        .await
        .map_err(|e| store_status(e, None))?
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter_map(|s| {
            s.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    let name = meta_str(obj, "name").unwrap_or("").to_owned();
    let size = 1u32 << (32 - SERVICE_NET_BITS);
    let ip = if requested.is_empty() {
        let mut rng = rand::rng();
        let start = rng.random_range(2..size - 1);
        (0..size - 3)
            .map(|i| 2 + (start - 2 + i) % (size - 3))
            .map(|off| Ipv4Addr::from(SERVICE_NET + off).to_string())
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| Status::internal("failed to allocate a serviceIP: range is full"))?
    } else {
        let in_range = requested.parse::<Ipv4Addr>().is_ok_and(|ip| {
            u32::from(ip) >> (32 - SERVICE_NET_BITS) == SERVICE_NET >> (32 - SERVICE_NET_BITS)
        });
        let def = services;
        if !in_range {
            return Err(super::validation::invalid(def, &name, "spec.clusterIPs", format!(
                "Invalid value: []string{{{requested:?}}}: failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is 10.96.0.0/12"
            )));
        }
        if used.contains(&requested) {
            return Err(super::validation::invalid(def, &name, "spec.clusterIPs", format!(
                "Invalid value: []string{{{requested:?}}}: failed to allocate IP {requested}: provided IP is already allocated"
            )));
        }
        requested
    };
    if let Some(map) = obj.as_object_mut() {
        map.entry("spec").or_insert_with(|| json!({}));
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    Ok(())
}
