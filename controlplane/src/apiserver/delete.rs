//! DELETE of one object and of collections, with `DeleteOptions` (body or query): preconditions
//! on uid and resourceVersion, `propagationPolicy`, `dryRun`.
//!
//! An object with finalizers is not removed: it gets `deletionTimestamp` (and
//! `deletionGracePeriodSeconds: 0`) and stays until an update empties its finalizers, which
//! [`super::storage::guaranteed_update`] then turns into the removal. Namespaces have their own
//! lifecycle ([`super::namespaces`]). Pods are removed at once: there is no kubelet to wait for.

use std::sync::Arc;

use kgate_core::Status;
use serde_json::{json, Value};

use super::codec::{decode_object, encode_object};
use super::namespaces;
use super::objects::{finalizers, is_deleting, meta_mut, meta_str, now_timestamp};
use super::read::{list_object, list_page, ListOptions};
use super::request::{dry_run_values, Reply, Req};
use super::storage::{get_current, store_status, Target};
use super::Shared;
use crate::store::{Revision, StoreError};

/// How many times a delete retries after losing a race with another writer.
const MAX_ATTEMPTS: usize = 8;

/// `metav1.DeleteOptions`, as far as this server acts on it.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From the body (optional) and the query, as kube merges them.
    pub fn from_request(req: &Req) -> Result<Self, Status> {
        let mut opts = DeleteOptions {
            dry_run: req.dry_run()?,
            ..Self::default()
        };
        let mut policy = req.query.get("propagationPolicy").map(str::to_owned);
        if !req.body.iter().all(u8::is_ascii_whitespace) {
            let body = req.body_value()?;
            opts.uid = body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            opts.resource_version = body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(values) = body.get("dryRun").and_then(Value::as_array) {
                opts.dry_run |= dry_run_values(values.iter().filter_map(Value::as_str))?;
            }
            if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
                policy = Some(p.to_owned());
            }
        }
        match policy.as_deref() {
            None | Some("Orphan" | "Background" | "Foreground") => Ok(opts),
            Some(other) => Err(Status::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![kgate_core::status::StatusCause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""),
                    field: "propagationPolicy".into(),
                }],
            )),
        }
    }
}

fn precondition_failed(target: &Target<'_>, what: &str, want: &str, have: &str) -> Status {
    Status::conflict(
        target.gr(),
        target.name,
        &format!(
            "Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
        ),
    )
}

/// Checks the preconditions of `opts` against the current object.
pub(crate) fn check_preconditions(
    target: &Target<'_>,
    opts: &DeleteOptions,
    obj: &Value,
) -> Result<(), Status> {
    if let Some(uid) = &opts.uid {
        let have = meta_str(obj, "uid").unwrap_or("");
        if uid != have {
            return Err(precondition_failed(target, "UID", uid, have));
        }
    }
    if let Some(rv) = &opts.resource_version {
        let have = meta_str(obj, "resourceVersion").unwrap_or("");
        if rv != have {
            return Err(precondition_failed(target, "ResourceVersion", rv, have));
        }
    }
    Ok(())
}

/// Deletes one object (not a namespace); returns it as it was last.
pub(crate) async fn delete_object(
    shared: &Arc<Shared>,
    target: &Target<'_>,
    opts: &DeleteOptions,
) -> Result<Value, Status> {
    let store = shared.store.as_ref();
    let key = target.key();
    for _ in 0..MAX_ATTEMPTS {
        let (kv, obj) = get_current(store, target).await?;
        check_preconditions(target, opts, &obj)?;
        if !finalizers(&obj).is_empty() {
            if is_deleting(&obj) {
                return Ok(obj);
            }
            let marked = mark_deleting(obj);
            if opts.dry_run {
                return Ok(marked);
            }
            match store
                .update(&key, encode_object(&marked)?, kv.mod_revision)
                .await
            {
                Ok(kv) => return decode_object(&kv),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_status(e, Some(target))),
            }
        }
        if opts.dry_run {
            return Ok(obj);
        }
        match store.delete(&key, Some(kv.mod_revision)).await {
            Ok(_) => return Ok(obj),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_status(e, Some(target))),
        }
    }
    Err(target.conflict())
}

/// The object with `deletionTimestamp` now and a zero grace period.
pub(crate) fn mark_deleting(mut obj: Value) -> Value {
    let meta = meta_mut(&mut obj);
    meta.insert("deletionTimestamp".into(), json!(now_timestamp()));
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    obj
}

/// DELETE of one object: 200 with the object (marked, or as it was before removal).
pub(crate) async fn delete(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let opts = DeleteOptions::from_request(req)?;
    if req.def.kind == "Namespace" {
        return namespaces::delete(shared, &req.name, &opts)
            .await
            .map(Reply::ok);
    }
    delete_object(shared, &req.target(), &opts)
        .await
        .map(Reply::ok)
}

/// DELETE of a collection (with selectors): deletes each match, answers the `<Kind>List` of
/// what was deleted or marked.
pub(crate) async fn delete_collection(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let opts = DeleteOptions::from_request(req)?;
    let mut list_opts = ListOptions::from_request(req)?;
    list_opts.limit = 0;
    list_opts.continue_token = None;
    let page = list_page(
        shared.store.as_ref(),
        req.def,
        req.namespace.as_deref(),
        &list_opts,
    )
    .await?;
    let mut deleted = Vec::with_capacity(page.items.len());
    let mut revision: Revision = page.revision;
    for obj in &page.items {
        let name = meta_str(obj, "name").unwrap_or("").to_owned();
        let target = Target {
            def: req.def,
            namespace: meta_str(obj, "namespace"),
            name: &name,
        };
        match delete_object(shared, &target, &opts).await {
            Ok(o) => deleted.push(o),
            // Gone meanwhile: someone else deleted it, which is what was asked.
            Err(s) if s.code == 404 => {}
            Err(s) => return Err(s),
        }
    }
    if let Ok(rev) = shared.store.current_revision().await {
        revision = rev;
    }
    Ok(Reply::ok(list_object(req.def, deleted, revision, None)))
}
