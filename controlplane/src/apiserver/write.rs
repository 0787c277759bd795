//! Create (POST), update (PUT) and patch (PATCH) of objects, in kube-apiserver's order: decode
//! (the type, namespace and name against the URL, `fieldValidation`: [`super::decode`]),
//! mutating admission ([`super::admission`]), the RBAC escalation check on the object as
//! admitted, the resource's strategy (prepare, default, validate: [`super::strategy`]),
//! validating admission, then the store (a create-if-absent, or a compare-and-swap through
//! [`guaranteed_update`], inside which an update's steps run against the stored object).
//! `dryRun=All` does everything but the store write.

use std::sync::Arc;

use http::StatusCode;
use kgate_core::Status;
use serde_json::Value;

use kgate_core::UserInfo;

use super::admission::{Attributes, Operation};
use super::codec::{self, encode_object, set_resource_version};
use super::decode::{check_fields, check_name, check_namespace, check_type};
use super::escalation::front_proxy_user;
use super::keys::{precondition_of, store_status, Target};
use super::meta::meta_str;
use super::request::{Reply, Req};
use super::service_ips;
use super::state::Shared;
use super::storage::guaranteed_update;
use super::strategy::{self, StatusFrom};
use crate::resources::ResourceDef;
use crate::schema;
use crate::store::StoreError;

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
    let user = front_proxy_user(&req.headers);
    let name = meta_str(&obj, "name").unwrap_or("").to_owned();
    let mut attrs = Attributes::new(
        Operation::Create,
        req.def,
        req.namespace.as_deref().unwrap_or(""),
        &name,
    )
    .with_object(obj)
    .with_user(user.as_ref())
    .with_dry_run(dry_run);
    // Mutating admission: NamespaceLifecycle, ServiceAccount, DefaultTolerationSeconds.
    shared.admission.admit(&mut attrs).await?;
    let mut obj = attrs.object.take().unwrap_or_default();
    // Services allocate a ClusterIP; one lock keeps two creations from taking the same one.
    let _ip_guard = if req.def.kind == "Service" && !dry_run {
        Some(shared.service_ips.lock().await)
    } else {
        None
    };
    if req.def.kind == "Service" {
        let used = service_ips::in_use(shared.store.as_ref(), None).await?;
        service_ips::allocate_create(req.def, &mut obj, &used)?;
    }
    // On the object as admitted, before system fields and a generated name, as kube's RBAC
    // storage checks it before the generic create.
    check_escalation(shared, req, &obj, None)?;
    let strategy = strategy::for_resource(req.def);
    let attempts = if generated { GENERATE_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let mut candidate = obj.clone();
        // prepare → default → validate, then validating admission on what would be stored.
        strategy.before_create(&mut candidate)?;
        attrs.object = Some(candidate);
        shared.admission.validate(&attrs).await?;
        let mut candidate = attrs.object.take().unwrap_or_default();
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
            let warnings = with_strategy_warnings(req.def, &warnings, &candidate);
            return Ok(Reply::new(StatusCode::CREATED, candidate).with_warnings(warnings));
        }
        match shared
            .store
            .create(&target.key(), encode_object(&candidate)?)
            .await
        {
            Ok(kv) => {
                // What was stored, without parsing it back.
                set_resource_version(&mut candidate, kv.mod_revision);
                let warnings = with_strategy_warnings(req.def, &warnings, &candidate);
                return Ok(Reply::new(StatusCode::CREATED, candidate).with_warnings(warnings));
            }
            Err(StoreError::AlreadyExists) if generated => {
                last = Some(Status::already_exists(target.gr(), &name));
            }
            Err(e) => return Err(store_status(e, Some(&target))),
        }
    }
    Err(last.unwrap_or_else(|| Status::internal("could not generate a unique name")))
}

/// The warnings of a write: the decoder's (unknown fields), then the strategy's on the object
/// written (kube's `WarningsOnCreate` / `WarningsOnUpdate`).
fn with_strategy_warnings(
    def: &'static ResourceDef,
    decoded: &[String],
    obj: &Value,
) -> Vec<String> {
    let mut all = decoded.to_vec();
    all.extend(strategy::for_resource(def).warnings(obj));
    all
}

/// Whether a PUT without a resourceVersion is allowed (kube's `AllowUnconditionalUpdate`):
/// for every resource served here but those whose strategies say false: Leases, whose holders
/// must not overwrite each other, PodDisruptionBudgets, the CSI objects of storage.k8s.io, and
/// the admission configuration of admissionregistration.k8s.io.
fn allows_unconditional_update(def: &ResourceDef) -> bool {
    !matches!(
        (def.group, def.kind),
        ("coordination.k8s.io", "Lease")
            | ("policy", "PodDisruptionBudget")
            | ("admissionregistration.k8s.io", _)
            | (
                "storage.k8s.io",
                "CSIDriver" | "CSINode" | "CSIStorageCapacity" | "VolumeAttachment"
            )
    )
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
    if precondition.is_none() && !allows_unconditional_update(req.def) {
        return Err(Status::invalid(
            req.def.group,
            req.def.plural,
            &req.name,
            vec![kgate_core::status::StatusCause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: 0: must be specified for an update".into(),
                field: "metadata.resourceVersion".into(),
            }],
        ));
    }
    let dry_run = req.dry_run()?;
    let user = front_proxy_user(&req.headers);
    // A Service keeps its ClusterIP and may take node ports: allocated under the one lock.
    let (_ip_guard, used) = service_allocation(shared, req, dry_run).await?;
    let write = UpdateWrite {
        shared,
        req,
        user: user.as_ref(),
        dry_run,
        used: used.as_ref(),
    };
    let obj = &obj;
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &req.target(),
        precondition,
        dry_run,
        |current: Arc<Value>| async move { write.steps(&current, obj.clone()).await },
    )
    .await?;
    let warnings = with_strategy_warnings(req.def, &warnings, &stored);
    Ok(Reply::ok(stored).with_warnings(warnings))
}

/// One update of a main resource (PUT or PATCH) inside its guaranteed update.
#[derive(Clone, Copy)]
struct UpdateWrite<'a> {
    shared: &'a Shared,
    req: &'a Req,
    user: Option<&'a UserInfo>,
    dry_run: bool,
    /// What the other Services hold, for a Service.
    used: Option<&'a service_ips::InUse>,
}

impl UpdateWrite<'_> {
    /// From the object as sent to the one to store, given the stored `current`: mutating
    /// admission, the escalation check (on the object as admitted), the strategy (prepare,
    /// default, validate), a Service's allocation, validating admission.
    async fn steps(&self, current: &Value, new: Value) -> Result<Value, Status> {
        let req = self.req;
        let attrs = Attributes::new(
            Operation::Update,
            req.def,
            req.namespace.as_deref().unwrap_or(""),
            &req.name,
        )
        .with_object(new)
        .with_old(current)
        .with_user(self.user)
        .with_dry_run(self.dry_run);
        self.shared
            .admission
            .around(attrs, |admitted| {
                check_escalation(self.shared, req, &admitted, Some(current))?;
                let mut next = strategy::for_resource(req.def).before_update(
                    current,
                    admitted,
                    StatusFrom::Old,
                )?;
                if let Some(used) = self.used {
                    service_ips::allocate_update(req.def, current, &mut next, used)?;
                }
                Ok(next)
            })
            .await
    }
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
            _ => Err(Status::unsupported_patch_type()),
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
        PatchType::Json => apply_json_patch(current, patch),
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

/// At most this many operations in one JSON patch (kube-apiserver's `maxJSONPatchOperations`).
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;
/// At most this many bytes (of JSON) may the `copy` operations of one JSON patch add
/// (kube-apiserver's default `JSONPatchMaxCopyBytes`): without a bound, forty copies of the
/// object into itself would ask for terabytes.
const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// A JSON patch (RFC 6902) on a copy of `current`, with kube-apiserver's two bounds. Operations
/// are applied one by one without `json_patch::patch`'s undo, which panics when a failed `move`
/// has already removed its source; a failed patch's copy is dropped, so nothing needs undoing.
fn apply_json_patch(current: &Value, patch: &Value) -> Result<Value, Status> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| Status::bad_request(format!("error decoding patch: {e}")))?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(Status::request_entity_too_large(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.0.len()
        )));
    }
    // kube answers a patch that does not apply with the generic 422 of
    // `NewGenericServerResponse` (the cause is not told), and so does this.
    let invalid = |_: &dyn std::fmt::Display| {
        Status::failure(
            422,
            "Invalid",
            "the server rejected our request due to an error in our request",
        )
        .with_details(kgate_core::status::StatusDetails::default())
    };
    let mut doc = current.clone();
    let mut copied = 0usize;
    // An upper bound of the document's depth as the operations apply: each one that writes a
    // value puts it under as many levels as its path has tokens.
    let mut depth = codec::depth(&doc);
    for (index, op) in ops.0.iter().enumerate() {
        if let json_patch::PatchOperation::Copy(copy) = op {
            // A `from` that is missing fails in the patch itself, just below.
            if let Some(source) = doc.pointer(copy.from.as_str()) {
                copied = copied.saturating_add(json_size(source));
                if copied > MAX_JSON_PATCH_COPY_BYTES {
                    return Err(invalid(&format_args!(
                        "Unable to complete the copy, the accumulated size increase of copy is \
                         {copied}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
                    )));
                }
            }
        }
        let written = match op {
            json_patch::PatchOperation::Add(op) => Some((&op.path, Some(&op.value))),
            json_patch::PatchOperation::Replace(op) => Some((&op.path, Some(&op.value))),
            json_patch::PatchOperation::Copy(op) => Some((&op.path, doc.pointer(op.from.as_str()))),
            json_patch::PatchOperation::Move(op) => Some((&op.path, doc.pointer(op.from.as_str()))),
            json_patch::PatchOperation::Remove(_) | json_patch::PatchOperation::Test(_) => None,
        };
        if let Some((path, Some(value))) = written {
            let levels = path.as_str().split('/').count().saturating_sub(1);
            depth = depth.max(levels.saturating_add(codec::depth(value)));
            if depth > codec::MAX_OBJECT_DEPTH {
                return Err(codec::too_deep());
            }
        }
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = index;
            invalid(&e)
        })?;
    }
    Ok(doc)
}

/// The length of `value` written as compact JSON, without writing it.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
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
    let user = front_proxy_user(&req.headers);
    let target = req.target();
    // Set by the last attempt (the one that was stored).
    let warnings = std::sync::Mutex::new(Vec::new());
    let (patch, warnings_ref) = (&patch, &warnings);
    let (_ip_guard, used) = service_allocation(shared, req, dry_run).await?;
    let write = UpdateWrite {
        shared,
        req,
        user: user.as_ref(),
        dry_run,
        used: used.as_ref(),
    };
    let stored = guaranteed_update(
        shared.store.as_ref(),
        &target,
        None,
        dry_run,
        |current: Arc<Value>| async move {
            let current = &*current;
            let mut patched = apply_patch(req.def, kind, current, patch)?;
            check_patched_version(&target, current, &patched)?;
            check_type(req.def, &mut patched)?;
            let found = check_fields(req.def, &mut patched, mode, false)?;
            if let Ok(mut warnings) = warnings_ref.lock() {
                *warnings = found;
            }
            check_namespace(req.def, req.namespace.as_deref(), &mut patched)?;
            check_name(&req.name, &mut patched)?;
            write.steps(current, patched).await
        },
    )
    .await?;
    let warnings = warnings.into_inner().unwrap_or_default();
    let warnings = with_strategy_warnings(req.def, &warnings, &stored);
    Ok(Reply::ok(stored).with_warnings(warnings))
}

/// Refuses an RBAC write that grants more than its writer holds, when the checks are enabled:
/// `new` is the object as the writer sent it, `old` the stored one an update replaces.
fn check_escalation(
    shared: &Shared,
    req: &Req,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), Status> {
    match shared.escalation.get() {
        Some(guard) if req.def.group == "rbac.authorization.k8s.io" => {
            let user = front_proxy_user(&req.headers);
            let write = super::escalation::RbacWrite {
                def: req.def,
                namespace: req.namespace.as_deref().unwrap_or(""),
                name: &req.name,
                new,
                old,
            };
            guard.check(user.as_ref(), &write)
        }
        _ => Ok(()),
    }
}

/// For a write of a Service: the allocation lock (not for a dry run, which stores nothing) and
/// what the other Services hold; `None` for other kinds.
async fn service_allocation<'a>(
    shared: &'a Shared,
    req: &Req,
    dry_run: bool,
) -> Result<
    (
        Option<tokio::sync::MutexGuard<'a, ()>>,
        Option<service_ips::InUse>,
    ),
    Status,
> {
    if req.def.kind != "Service" {
        return Ok((None, None));
    }
    let guard = if dry_run {
        None
    } else {
        Some(shared.service_ips.lock().await)
    };
    let namespace = req.namespace.as_deref().unwrap_or("");
    let used = service_ips::in_use(shared.store.as_ref(), Some((namespace, &req.name))).await?;
    Ok((guard, Some(used)))
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
