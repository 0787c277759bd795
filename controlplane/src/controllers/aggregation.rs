//! The ClusterRole aggregation controller, as kube-controller-manager's
//! clusterrole-aggregation controller: it keeps the rules of every ClusterRole that has an
//! `aggregationRule` equal to the rules of the ClusterRoles its selectors select (the computation
//! is `kgate_authz::aggregation`).
//!
//! It works in passes: list every ClusterRole at one store revision, compute, write each role
//! whose rules must change with a compare-and-swap on the revision it was listed at, then watch
//! ClusterRoles from that revision and start a new pass at the first change. A write that lost a
//! race needs nothing more (the watch brings the change that won, and the next pass starts from
//! it); a write that failed otherwise is logged and the pass retried after a backoff, as is a
//! list or watch that failed.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use futures::StreamExt;
use kgate_authz::aggregation::aggregate_settled;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apiserver::codec::decode_object;
use crate::apiserver::registry::{WriteError, Writer};
use crate::resources::{self, ResourceDef};
use crate::store::{KeyValue, RangeRequest, Revision, Store, StoreError};

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Starts the controller; returns its task once the first pass is done and the controller waits
/// for changes (or retries after a failure).
pub(crate) async fn spawn(store: Weak<dyn Store>, writer: Writer) -> JoinHandle<()> {
    let (first, done) = oneshot::channel();
    let task = tokio::spawn(run(store, writer, first));
    // An error means the task ended before its first pass (the store is gone): nothing to wait for.
    let _ = done.await;
    task
}

fn cluster_roles() -> Option<&'static ResourceDef> {
    resources::lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
}

async fn run(store: Weak<dyn Store>, writer: Writer, first: oneshot::Sender<()>) {
    let Some(def) = cluster_roles() else {
        tracing::error!("ClusterRole aggregation: clusterroles are not served; not running");
        return;
    };
    let mut first = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        // The store is held only for the pass, never while waiting (see the module docs).
        let pass = match store.upgrade() {
            Some(s) => sync(s.as_ref(), &writer, def).await,
            None => return,
        };
        let waited = match pass {
            Ok(Pass {
                revision,
                failed_writes: 0,
            }) => wait_for_change(&store, def, revision, &mut first).await,
            Ok(Pass { failed_writes, .. }) => {
                tracing::warn!(
                    failed_writes,
                    retry_in = ?backoff,
                    "ClusterRole aggregation: some roles could not be written; retrying"
                );
                Err(None)
            }
            Err(error) => Err(Some(error)),
        };
        started(&mut first);
        match waited {
            Ok(true) => backoff = MIN_BACKOFF,
            Ok(false) => return,
            Err(error) => {
                if let Some(error) = error {
                    tracing::warn!(%error, retry_in = ?backoff, "ClusterRole aggregation: store failure; retrying");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Tells `spawn` the first pass is done (once).
fn started(first: &mut Option<oneshot::Sender<()>>) {
    if let Some(tx) = first.take() {
        let _ = tx.send(());
    }
}

/// What one pass did.
struct Pass {
    /// The store revision the ClusterRoles were listed at.
    revision: Revision,
    /// Writes that failed for another reason than a lost race.
    failed_writes: usize,
}

/// One pass: list, aggregate, write what changed.
async fn sync(
    store: &dyn Store,
    writer: &Writer,
    def: &'static ResourceDef,
) -> Result<Pass, StoreError> {
    let listed = store
        .range(RangeRequest {
            prefix: def.key_prefix(),
            ..RangeRequest::default()
        })
        .await?;
    let mut roles = Vec::with_capacity(listed.items.len());
    let mut stored: HashMap<String, (&KeyValue, Value)> = HashMap::new();
    for kv in &listed.items {
        // An undecodable object was logged by the decoder; it takes no part.
        let Ok(obj) = decode_object(kv) else { continue };
        if let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) {
            stored.insert(name.to_owned(), (kv, obj.clone()));
        }
        roles.push(obj);
    }
    let aggregation = aggregate_settled(&roles);
    for error in &aggregation.errors {
        tracing::warn!(%error, "ClusterRole aggregation: role skipped");
    }
    let mut failed_writes = 0;
    for change in aggregation.changed {
        let Some((kv, obj)) = stored.remove(&change.name) else {
            continue;
        };
        let mut next = obj.clone();
        next["rules"] = Value::Array(change.rules);
        // Through the API server's write path (admission, strategy), a compare-and-swap on the
        // revision listed.
        match writer.update(store, def, kv, &obj, next).await {
            Ok(_) => tracing::info!(clusterrole = %change.name, "ClusterRole aggregated"),
            // Changed or deleted since the list: the watch brings that change, then a new pass.
            Err(WriteError::Store(StoreError::Conflict { .. } | StoreError::NotFound)) => {}
            Err(error) => {
                tracing::warn!(clusterrole = %change.name, %error, "ClusterRole aggregation: write failed");
                failed_writes += 1;
            }
        }
    }
    Ok(Pass {
        revision: listed.revision,
        failed_writes,
    })
}

/// Waits for the first ClusterRole change after `revision`: `Ok(true)` on a change, `Ok(false)`
/// when the store is gone, `Err` when the watch failed (it is then retried from a new list).
/// The first pass counts as done once the watch is open, when the store is no longer held.
async fn wait_for_change(
    store: &Weak<dyn Store>,
    def: &ResourceDef,
    revision: Revision,
    first: &mut Option<oneshot::Sender<()>>,
) -> Result<bool, Option<StoreError>> {
    let mut events = {
        let Some(store) = store.upgrade() else {
            return Ok(false);
        };
        store
            .watch(&def.key_prefix(), revision)
            .await
            .map_err(Some)?
    };
    started(first);
    match events.next().await {
        Some(Ok(_)) => Ok(true),
        // The watch ends with an error when the store closes under it.
        _ if store.strong_count() == 0 => Ok(false),
        Some(Err(error)) => Err(Some(error)),
        None => Err(Some(StoreError::Unavailable(
            "the ClusterRole watch ended".to_owned(),
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "aggregation_tests.rs"]
mod tests;
