//! The namespace deletion, as kube's namespace controller: once a namespace is marked
//! Terminating (by [`super::delete`]), a background task deletes everything in it, then drops the
//! `kubernetes` finalizer and the namespace. A server restarted mid-deletion resumes it
//! ([`resume_terminating`]). The admission half of the lifecycle (no content in a missing or
//! Terminating namespace, the system namespaces kept) is the NamespaceLifecycle plugin
//! ([`super::admission::namespace_lifecycle`]).

use std::sync::Arc;
use std::time::Duration;

use kgate_core::Status;
use serde_json::Value;

use super::codec::{decode_object, encode_object};
use super::keys::{collection_prefix, store_status, Target};
use super::meta::{finalizers, is_deleting, mark_deleting};
use super::state::Shared;
use super::storage::guaranteed_update;
use crate::resources::{self, ResourceDef, RESOURCES};
use crate::store::{RangeRequest, Store, StoreError};

/// Namespaces that always exist.
pub(crate) const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];
/// The finalizer the namespace controller owns.
const KUBERNETES_FINALIZER: &str = "kubernetes";
/// The longest pause between two sweeps of a namespace whose content is not gone yet.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

fn namespaces_def() -> Result<&'static ResourceDef, Status> {
    resources::lookup("", "v1", "namespaces").ok_or_else(Status::path_not_found)
}

pub(crate) fn namespace_target(name: &str) -> Result<Target<'_>, Status> {
    Ok(Target {
        def: namespaces_def()?,
        namespace: None,
        name,
    })
}

/// Starts the background deletion of a Terminating namespace's content.
pub(crate) fn spawn_finalizer(store: Arc<dyn Store>, name: String) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(50);
        loop {
            match finalize_once(store.as_ref(), &name).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e.message, "namespace deletion step failed; retrying")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    });
}

/// One pass: deletes the namespace's content; when none is left, removes the `kubernetes`
/// finalizer (and with it, when nothing else holds it, the namespace). True when done.
async fn finalize_once(store: &dyn Store, name: &str) -> Result<bool, Status> {
    let target = namespace_target(name)?;
    match store.get(&target.key()).await {
        Ok(None) => return Ok(true),
        Ok(Some(_)) => {}
        Err(e) => return Err(store_status(e, Some(&target))),
    }
    if !delete_content(store, name).await? {
        return Ok(false);
    }
    let result = guaranteed_update(
        store,
        &target,
        None,
        false,
        |current: Arc<Value>| async move {
            let current = &*current;
            let mut next = current.clone();
            if let Some(list) = next
                .pointer_mut("/spec/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|f| f.as_str() != Some(KUBERNETES_FINALIZER));
            }
            Ok(next)
        },
    )
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(s) if s.code == 404 => Ok(true),
        Err(s) => Err(s),
    }
}

/// Deletes every namespaced object in `namespace`; objects with finalizers are marked and
/// waited for. True when the namespace is empty.
async fn delete_content(store: &dyn Store, namespace: &str) -> Result<bool, Status> {
    let mut empty = true;
    for def in RESOURCES.iter().filter(|d| d.namespaced) {
        let resp = store
            .range(RangeRequest {
                prefix: collection_prefix(def, Some(namespace)),
                ..RangeRequest::default()
            })
            .await
            .map_err(|e| store_status(e, None))?;
        for kv in resp.items {
            let obj = decode_object(&kv)?;
            if finalizers(&obj).is_empty() {
                match store.delete(&kv.key, Some(kv.mod_revision)).await {
                    Ok(_) | Err(StoreError::NotFound) => {}
                    Err(StoreError::Conflict { .. }) => empty = false,
                    Err(e) => return Err(store_status(e, None)),
                }
                continue;
            }
            empty = false;
            if !is_deleting(&obj) {
                let marked = mark_deleting(obj);
                match store
                    .update(&kv.key, encode_object(&marked)?, kv.mod_revision)
                    .await
                {
                    Ok(_) | Err(StoreError::NotFound | StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(store_status(e, None)),
                }
            }
        }
    }
    Ok(empty)
}

/// At start: resumes the deletion of every namespace a previous run left Terminating.
pub(crate) async fn resume_terminating(shared: &Arc<Shared>) {
    let Ok(def) = namespaces_def() else {
        return;
    };
    let listed = shared
        .store
        .range(RangeRequest {
            prefix: def.key_prefix(),
            ..RangeRequest::default()
        })
        .await;
    let Ok(listed) = listed else {
        tracing::warn!("could not list namespaces to resume their deletion");
        return;
    };
    for kv in listed.items {
        let Ok(ns) = decode_object(&kv) else { continue };
        if is_deleting(&ns) {
            if let Some(name) = ns.pointer("/metadata/name").and_then(Value::as_str) {
                spawn_finalizer(shared.store.clone(), name.to_owned());
            }
        }
    }
}
