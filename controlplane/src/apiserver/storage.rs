//! [`guaranteed_update`], the read-modify-CAS loop every write of an existing object goes
//! through (kube's `GuaranteedUpdate`), and [`get_current`], the read it starts with.

use std::future::Future;
use std::sync::Arc;

use kgate_core::Status;
use serde_json::Value;

use super::codec::{decode_object, encode_object, set_resource_version};
use super::keys::{store_status, Target};
use super::meta::finalizers_done;
use crate::store::{KeyValue, Revision, Store, StoreError};

/// How many times a write retries after losing a compare-and-swap race.
const MAX_ATTEMPTS: usize = 8;

/// The current object at `target`, or 404.
pub(crate) async fn get_current(
    store: &dyn Store,
    target: &Target<'_>,
) -> Result<(KeyValue, Value), Status> {
    let kv = store
        .get(&target.key())
        .await
        .map_err(|e| store_status(e, Some(target)))?
        .ok_or_else(|| target.not_found())?;
    let obj = decode_object(&kv)?;
    Ok((kv, obj))
}

/// Reads the object, computes its successor with `apply`, and stores it with a compare-and-swap
/// on the revision read, retrying from the read when another writer won the race. With a
/// `precondition` (the client's resourceVersion) a stale read is a 409 and never retried.
///
/// An object being deleted whose last finalizer `apply` removed is deleted, and returned as it
/// was last. A successor equal to the current object is not written (kube skips no-op writes,
/// so the resourceVersion does not move). With `dry_run`, nothing is written.
pub(crate) async fn guaranteed_update<F, Fut>(
    store: &dyn Store,
    target: &Target<'_>,
    precondition: Option<Revision>,
    dry_run: bool,
    mut apply: F,
) -> Result<Value, Status>
where
    F: FnMut(Arc<Value>) -> Fut,
    Fut: Future<Output = Result<Value, Status>>,
{
    let key = target.key();
    for _ in 0..MAX_ATTEMPTS {
        let (kv, current) = get_current(store, target).await?;
        if precondition.is_some_and(|p| p != kv.mod_revision) {
            return Err(target.conflict());
        }
        let current = Arc::new(current);
        let mut next = apply(current.clone()).await?;
        let current = &*current;
        set_resource_version(&mut next, kv.mod_revision);
        if finalizers_done(target.def, current, &next) {
            if dry_run {
                return Ok(next);
            }
            match store.delete(&key, Some(kv.mod_revision)).await {
                Ok(_) => return Ok(next),
                Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                Err(e) => return Err(store_status(e, Some(target))),
            }
        }
        if &next == current || dry_run {
            return Ok(next);
        }
        match store
            .update(&key, encode_object(&next)?, kv.mod_revision)
            .await
        {
            Ok(kv) => {
                // What was stored, without parsing it back.
                set_resource_version(&mut next, kv.mod_revision);
                return Ok(next);
            }
            Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
            Err(e) => return Err(store_status(e, Some(target))),
        }
    }
    Err(target.conflict())
}
