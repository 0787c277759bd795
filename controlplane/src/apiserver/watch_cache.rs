//! The watch cache: one [`Store::watch`] per resource, fanned out to every API watch of that
//! resource (kube-apiserver's `cacher`, in small). Without it each `?watch=true` opened its own
//! store watch, so 1,000 `kubectl get -w` cost 1,000 store watches, each decoding every event.
//!
//! Per resource (its collection prefix across namespaces, `/registry/pods/`) it owns a **feed**:
//! - one store watch, started lazily at the revision of the first subscriber and stopped
//!   [`WatchCacheConfig::idle`] after the last one left;
//! - a ring buffer of the last [`WatchCacheConfig::buffer`] events, so a watch from
//!   resourceVersion N inside it starts without touching the store;
//! - one bounded channel per subscriber, filled only with the events under its key prefix (its
//!   namespace) and, for a watch whose field selector requires one value of the resource's
//!   [`trigger_field`] (pods by `spec.nodeName`, as kube's cacher indexes them), only with the
//!   events whose object had or has that value, found by an index on that value. A thousand node
//!   agents each watching their own pods are then neither woken nor even tested for every pod.
//!   Selectors are matched in full in [`super::watch`]; the routing only spares the watches
//!   that could not match.
//!
//! What a subscriber can rely on: every matching event after its revision, in order, or the end
//! of its stream with an error; never a silent gap.
//! - **Slow subscribers.** Dispatch `try_send`s. A full channel gets a short wait taken from a
//!   time budget (kube's `timeBudget`: waiting costs the feed at most about a tenth of its time),
//!   then that subscriber is cut off with [`WatchCacheError::Lagged`] after the events already
//!   queued for it. Others wait at most the budget; memory is bounded by the channel capacity.
//! - **Store failure.** When the shared store watch ends (store unavailable, compacted), every
//!   subscriber ends with that error and the next subscription starts a new store watch.
//! - **Progress.** A subscriber that none of the dispatched events matched gets
//!   [`Update::Progress`] through the same channel, behind the events before it, so a bookmark at
//!   that revision never claims an event not yet sent; at the end of a burst, and no more often
//!   than [`WatchCacheConfig::progress_every`].
//! - **N older than the buffer.** kube answers 410 Gone and the client relists. Here that
//!   subscriber gets its own store watch from N instead (still 410 if the store has compacted N):
//!   the same events without a relist. It stays direct until it ends; the watch timeout (30 to 60
//!   minutes) brings the client back at a recent revision, into the cache. N inside the buffer is
//!   served from it even if the store has compacted N since, as kube's cache does: the buffer
//!   holds every event after N.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;

use super::keys::collection_prefix;
use super::selectors::FieldSelector;
use crate::resources::ResourceDef;
use crate::store::{Revision, Store, StoreError};

mod events;
mod feed;

pub use events::{trigger_field, SharedEvent, Update, Updates, WatchCacheConfig, WatchCacheError};
use feed::{Feed, Interest, Join};

/// The feed of each resource, keyed by its collection prefix. Held in the API server's state.
pub struct WatchCache {
    store: Arc<dyn Store>,
    config: WatchCacheConfig,
    /// One slot per resource ever watched (bounded by the resource table). Its async lock
    /// serializes starting a feed, so that concurrent first watches start one store watch.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// The feed of one resource, if one was started (it may have stopped since).
type Slot = tokio::sync::Mutex<Option<Arc<Feed>>>;

impl std::fmt::Debug for WatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchCache")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WatchCache {
    pub fn new(store: Arc<dyn Store>, config: WatchCacheConfig) -> WatchCache {
        WatchCache {
            store,
            config,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The events of `def` in `namespace` (all namespaces for `None`) with revision greater than
    /// `after`. Fails as [`Store::watch`] does: `Compacted` when the events after `after` are
    /// neither in the buffer nor in the store.
    pub async fn watch(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        after: Revision,
    ) -> Result<Updates, StoreError> {
        self.watch_selected(def, namespace, after, &FieldSelector::everything())
            .await
    }

    /// [`WatchCache::watch`] for a watch that will match `fields`: the events that `fields`
    /// cannot select by the resource's [`trigger_field`] are left out. The caller still matches
    /// its selectors on what it gets.
    pub async fn watch_selected(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        after: Revision,
        fields: &FieldSelector,
    ) -> Result<Updates, StoreError> {
        let resource = def.key_prefix();
        let prefix = collection_prefix(def, namespace);
        let trigger = trigger_field(def).and_then(|field| {
            let value = fields.required_value(field)?;
            Some((field, value.to_owned()))
        });
        let interest = Interest { prefix, trigger };
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots.entry(resource.clone()).or_default().clone()
        };
        let mut current_feed = slot.lock().await;
        if let Some(feed) = current_feed.as_ref() {
            match feed.join(&interest, after, self.config.subscriber_capacity) {
                Join::Joined(updates) => return Ok(updates),
                Join::TooOld => {
                    drop(current_feed);
                    return self.direct(&interest.prefix, after).await;
                }
                Join::Stopped => {}
            }
        }
        // Start at the subscriber's revision, so that it is served from the feed; but not past
        // the store's, so that a revision from the future does not push later watchers out.
        let start = after.min(self.store.current_revision().await?);
        let stream = self.store.watch(&resource, start).await?;
        let (feed, updates) = Feed::start(resource, start, stream, &interest, after, &self.config);
        *current_feed = Some(feed);
        Ok(updates)
    }

    /// A store watch for one subscriber whose revision is older than the buffer.
    async fn direct(&self, prefix: &str, after: Revision) -> Result<Updates, StoreError> {
        tracing::debug!(
            prefix,
            after,
            "watch older than the watch cache: watching the store"
        );
        let stream = self.store.watch(prefix, after).await?;
        Ok(stream
            .map(|item| {
                item.map(|event| Update::Event(Arc::new(SharedEvent::new(event))))
                    .map_err(WatchCacheError::Store)
            })
            .boxed())
    }
}

#[cfg(test)]
#[path = "watch_cache_tests.rs"]
mod tests;
