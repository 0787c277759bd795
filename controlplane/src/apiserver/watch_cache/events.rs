//! The watch cache's vocabulary, shared by the cache ([`super`]) and its feeds ([`super::feed`]):
//! its settings, the events it fans out, what a subscriber receives, and why a stream ends. A leaf
//! of the watch cache, so that the cache and its feeds import it and not each other.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use kgate_core::Status;
use serde_json::Value;
use thiserror::Error;

use crate::apiserver::selectors::field_value;
use crate::resources::ResourceDef;
use crate::store::{Revision, StoreError, WatchEvent};

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
            .get_or_init(|| crate::apiserver::codec::decode_object(&self.event.kv))
            .as_ref()
    }

    /// The object before the change, if the event carries it.
    pub fn previous(&self) -> Option<Result<&Value, &Status>> {
        self.previous
            .get_or_init(|| {
                self.event
                    .prev
                    .as_ref()
                    .map(crate::apiserver::codec::decode_object)
            })
            .as_ref()
            .map(Result::as_ref)
    }

    /// The values of `field` in the object after and before the change; `None` when an object
    /// does not decode (every watch must then hear of the event, to report the error).
    pub(super) fn field_values(&self, field: &str) -> Option<FieldValues<'_>> {
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
pub(super) struct FieldValues<'a> {
    pub(super) current: Cow<'a, str>,
    pub(super) previous: Option<Cow<'a, str>>,
}

impl FieldValues<'_> {
    pub(super) fn contains(&self, value: &str) -> bool {
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
