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
use std::time::Duration;

use futures::stream::BoxStream;
use futures::StreamExt;
use thiserror::Error;

use super::keys::collection_prefix;
use super::selectors::{field_value, FieldSelector};
use crate::resources::ResourceDef;
use crate::store::{Revision, Store, StoreError, WatchEvent};
use bytes::Bytes;
use kgate_core::Status;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::OnceLock;

mod feed;

use feed::{Feed, Interest, Join};

/// The field by which the cache routes `def`'s events to the watches that require one value of
/// it (kube-apiserver's cacher has the same trigger for pods: `spec.nodeName`).
pub fn trigger_field(def: &ResourceDef) -> Option<&'static str> {
    match (def.group, def.kind) {
        ("", "Pod") => Some("spec.nodeName"),
        _ => None,
    }
}

/// How the cache behaves. `Default` gives the values documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchCacheConfig {
    /// Recent events kept per resource for watches that resume from a revision. Default 1,000.
    pub buffer: usize,
    /// Events queued per subscriber before it counts as slow. Default 1,024: a burst (a
    /// namespace deletion) fits without cutting off readers that are merely scheduled late.
    pub subscriber_capacity: usize,
    /// The most a feed waits for full subscribers before cutting them off; refilled at a tenth of
    /// the time passed. Default 100 ms, as kube's cacher.
    pub dispatch_budget: Duration,
    /// How long a feed without subscribers keeps its store watch, so that clients re-watching
    /// after a timeout find it running. Default 30 s.
    pub idle: Duration,
    /// The least time between two rounds of [`Update::Progress`] to the subscribers that events
    /// passed by. Default 250 ms: progress only feeds bookmarks (every 10 s at most), and a round
    /// after every burst meant waking every node agent's watch for every other node's pod.
    pub progress_every: Duration,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        WatchCacheConfig {
            buffer: 1000,
            subscriber_capacity: 1024,
            dispatch_budget: Duration::from_millis(100),
            idle: Duration::from_secs(30),
            progress_every: Duration::from_millis(250),
        }
    }
}

/// A store event as every watcher it goes to shares it: its objects are decoded at most once,
/// by the first watcher that needs them. A thousand node agents watching pods with a
/// `spec.nodeName` field selector must not parse every pod a thousand times to find that it is
/// not theirs.
#[derive(Debug)]
pub struct SharedEvent {
    event: WatchEvent,
    current: OnceLock<Result<Value, Status>>,
    previous: OnceLock<Option<Result<Value, Status>>>,
    current_json: OnceLock<Result<Vec<u8>, Status>>,
}

impl SharedEvent {
    pub fn new(event: WatchEvent) -> Self {
        Self {
            event,
            current: OnceLock::new(),
            previous: OnceLock::new(),
            current_json: OnceLock::new(),
        }
    }

    /// The object after the change (the last state, for a delete), at the event's revision.
    pub fn current(&self) -> Result<&Value, &Status> {
        self.current
            .get_or_init(|| super::codec::decode_object(&self.event.kv))
            .as_ref()
    }

    /// The object before the change, if the event carries it.
    pub fn previous(&self) -> Option<Result<&Value, &Status>> {
        self.previous
            .get_or_init(|| self.event.prev.as_ref().map(super::codec::decode_object))
            .as_ref()
            .map(Result::as_ref)
    }

    /// The values of `field` in the object after and before the change; `None` when an object
    /// does not decode (every watch must then hear of the event, to report the error).
    fn field_values(&self, field: &str) -> Option<FieldValues<'_>> {
        let current = field_value(self.current().ok()?, field);
        let previous = match self.previous() {
            None => None,
            Some(prev) => Some(field_value(prev.ok()?, field)),
        };
        Some(FieldValues { current, previous })
    }

    /// The event as one line of a JSON watch stream, `{"type":kind,"object":...}`, with the
    /// object after the change serialized once for every watcher that sends it.
    pub fn json_line(&self, kind: &str) -> Result<Bytes, &Status> {
        let object = self
            .current_json
            .get_or_init(|| {
                let object = self.current().map_err(Status::clone)?;
                Ok(serde_json::to_vec(object).unwrap_or_else(|_| b"{}".to_vec()))
            })
            .as_ref()?;
        let mut line = Vec::with_capacity(object.len() + kind.len() + 24);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(object);
        line.extend_from_slice(b"}\n");
        Ok(Bytes::from(line))
    }
}

/// A trigger field's values in one event's objects.
struct FieldValues<'a> {
    current: Cow<'a, str>,
    previous: Option<Cow<'a, str>>,
}

impl FieldValues<'_> {
    fn contains(&self, value: &str) -> bool {
        self.current == value || self.previous.as_deref() == Some(value)
    }
}

impl std::ops::Deref for SharedEvent {
    type Target = WatchEvent;
    fn deref(&self) -> &WatchEvent {
        &self.event
    }
}

impl PartialEq for SharedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
    }
}

impl Eq for SharedEvent {}

/// One item of a subscriber's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// A change under the subscriber's prefix, after its revision, in revision order.
    Event(Arc<SharedEvent>),
    /// Every matching event at or below this revision has been sent (a bookmark may say so).
    Progress(Revision),
}

/// Why a subscriber's stream ended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum WatchCacheError {
    /// The subscriber did not read fast enough and its channel filled. Every event before the
    /// end was delivered: the client can watch again from the last revision it saw.
    #[error("the watcher did not keep up with the events of its resource")]
    Lagged,
    /// The store's watch ended (compacted, store unavailable).
    #[error("the store's watch ended")]
    Store(#[source] StoreError),
}

/// A subscriber's stream; it ends after an `Err`.
pub type Updates = BoxStream<'static, Result<Update, WatchCacheError>>;

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
