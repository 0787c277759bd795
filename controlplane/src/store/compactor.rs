//! Periodic compaction for a backend that does not compact itself (etcd), as kube-apiserver's
//! compactor does it: at every tick, compact to the revision seen at the previous tick, so any
//! watcher has at least one interval of history to resume from, and history does not grow
//! without bound. (The embedded store compacts itself by a revision window.)
//!
//! Several kgate processes may share one etcd; compacting the same revision twice is harmless,
//! so no coordination is needed.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Revision, Store, StoreError};

/// Starts the compactor; abort the handle to stop it.
pub fn spawn(store: Arc<dyn Store>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: Option<Revision> = None;
        loop {
            ticks.tick().await;
            previous = tick(store.as_ref(), previous).await;
        }
    })
}

/// One tick: compacts to `previous` and returns the revision to compact to next time.
async fn tick(store: &dyn Store, previous: Option<Revision>) -> Option<Revision> {
    if let Some(revision) = previous.filter(|r| *r > 0) {
        match store.compact(revision).await {
            Ok(()) => tracing::debug!(revision, "store compacted"),
            // Another process (or an earlier tick) got there first.
            Err(StoreError::Compacted { .. }) => {}
            Err(error) => tracing::warn!(%error, revision, "store compaction failed"),
        }
    }
    match store.current_revision().await {
        Ok(current) => Some(current),
        Err(error) => {
            tracing::warn!(%error, "cannot read the store revision for compaction");
            // Try again from scratch at the next tick rather than compact a stale guess.
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::redb::{RedbOptions, RedbStore};
    use crate::store::RangeRequest;

    #[tokio::test]
    async fn each_tick_compacts_to_the_revision_seen_one_tick_before() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = RedbOptions {
            compaction_window: 0,
            ..RedbOptions::default()
        };
        let store = RedbStore::open(&dir.path().join("s.redb"), options).expect("open");
        // An earlier key, so the revision just before `first` is a real one (0 means "latest").
        store.create("/c/0", b"0".to_vec()).await.expect("create");
        let first = store.create("/c/a", b"1".to_vec()).await.expect("create");
        // First tick: nothing to compact yet, remembers the current revision.
        let seen = tick(&store, None).await;
        assert_eq!(seen, Some(first.mod_revision));
        store
            .update("/c/a", b"2".to_vec(), first.mod_revision)
            .await
            .expect("update");
        let at_first = RangeRequest {
            prefix: "/c/".into(),
            revision: Some(first.mod_revision - 1),
            ..RangeRequest::default()
        };
        assert!(store.range(at_first.clone()).await.is_ok());
        // Second tick: compacts to what the first saw; older reads are gone, newer stay.
        let next = tick(&store, seen).await;
        assert_eq!(next, Some(first.mod_revision + 1));
        assert!(matches!(
            store.range(at_first).await,
            Err(StoreError::Compacted { .. })
        ));
        let latest = store.get("/c/a").await.expect("get").expect("present");
        assert_eq!(latest.value, b"2");
        // Compacting the same revision again (another kgate did) is not an error.
        assert_eq!(tick(&store, seen).await, next);
    }
}
