//! Watch streams over etcd watches.
//!
//! One etcd watch (its own gRPC stream) per Store watch, created with `prev_kv` so updates and
//! deletes carry the value before, from `after + 1` over the prefix's key range. etcd sends
//! events in revision order with none missing, so the stream only translates them. It ends
//! with `Compacted` when the watcher fell behind compaction (etcd cancels the watch, or sends
//! updates and deletes without their previous values, which it could not read any more), and
//! with `Unavailable` when the stream breaks (etcd gone, connection lost): the API server
//! then ends the client's watch, and the client watches again from its last revision (or
//! relists after `Compacted`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Event, EventType, WatchClient, WatchOptions, WatchResponseStream};
use futures::StreamExt;

use super::errors::{classify, timed_out, Failure};
use super::keys::{prefix_end, Keys, Root};
use super::{to_kv, COMPACTED_PROBE_WAIT};
use crate::store::{EventKind, Revision, StoreError, WatchEvent, WatchStream};

/// What a watch needs from the store, shared by its streams.
pub(super) struct Context {
    pub(super) client: WatchClient,
    pub(super) keys: Keys,
    pub(super) endpoints: String,
    pub(super) request_timeout: Duration,
}

impl Context {
    /// How long to wait for etcd to name its compacted revision for a `Compacted` error.
    pub(super) fn probe_wait(&self) -> Duration {
        self.request_timeout.min(COMPACTED_PROBE_WAIT)
    }
}

struct Watch {
    /// Dropping the request half would half-close the gRPC stream; keep it for the stream's life.
    _requests: etcd_client::WatchRequestSender,
    responses: WatchResponseStream,
    context: Arc<Context>,
    root: Root,
    /// The revision of the last event delivered (or the start), for the `Compacted` error.
    pos: Revision,
    /// The revision of an event that came without its previous value (see [`Watch::event`]).
    lost_prev: Option<Revision>,
    ready: VecDeque<Result<WatchEvent, StoreError>>,
    done: bool,
}

/// Starts an etcd watch of `prefix` from `after + 1` and waits until etcd confirms it, so the
/// watch is in place when this returns. A start revision that etcd has already compacted fails
/// here when etcd says so at once, else as the stream's first item.
pub(super) async fn start(
    context: Arc<Context>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StoreError> {
    let key = context.keys.etcd_key(prefix);
    let options = WatchOptions::new()
        .with_range(prefix_end(&key))
        .with_start_revision(after + 1)
        .with_prev_key();
    let mut client = context.client.clone();
    let endpoints = context.endpoints.clone();
    let established = async {
        let (requests, mut responses) = client
            .watch(key, Some(options))
            .await
            .map_err(|e| classify(e, &endpoints))?
            .split();
        let created = responses
            .message()
            .await
            .map_err(|e| classify(e, &endpoints))?;
        Ok::<_, Failure>((requests, responses, created))
    };
    let (requests, responses, created) = tokio::time::timeout(context.request_timeout, established)
        .await
        .unwrap_or_else(|_| Err(timed_out(&endpoints, context.request_timeout)))
        .map_err(|f| f.into_store_error(&endpoints))?;
    let mut watch = Watch {
        _requests: requests,
        responses,
        root: Root::of(prefix),
        context,
        pos: after,
        lost_prev: None,
        ready: VecDeque::new(),
        done: false,
    };
    match created {
        Some(response) if response.created() => watch.take(response),
        Some(response) => {
            // etcd answers a create with `created` before anything else; anything else first
            // means we do not understand this etcd.
            return Err(StoreError::Backend(format!(
                "etcd at {} answered a new watch without confirming it (watch id {})",
                watch.context.endpoints,
                response.watch_id()
            )));
        }
        None => return Err(watch.closed()),
    }
    if let Some(Err(error)) = watch.ready.front() {
        return Err(error.clone());
    }
    Ok(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next().await?;
        Some((item, watch))
    })
    .boxed())
}

impl Watch {
    fn closed(&self) -> StoreError {
        StoreError::Unavailable(format!(
            "etcd at {} closed the watch stream",
            self.context.endpoints
        ))
    }

    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.responses.message().await {
                Ok(Some(response)) => {
                    self.take(response);
                    if let Some(revision) = self.lost_prev.take() {
                        let compacted =
                            compacted_revision(&self.context, self.context.probe_wait())
                                .await
                                .filter(|&c| c >= revision)
                                .unwrap_or(revision);
                        self.fail(StoreError::Compacted {
                            requested: self.pos,
                            compacted,
                        });
                    }
                }
                Ok(None) => self.fail(self.closed()),
                // Whatever broke the stream (etcd killed, the connection reset), the watch is
                // over and a new one may work: the stream's end is Unavailable.
                Err(error) => {
                    let error = match classify(error, &self.context.endpoints) {
                        Failure::Other(StoreError::Unavailable(m)) => StoreError::Unavailable(m),
                        other => StoreError::Unavailable(
                            other.into_store_error(&self.context.endpoints).to_string(),
                        ),
                    };
                    self.fail(error)
                }
            }
        }
    }

    fn fail(&mut self, error: StoreError) {
        self.ready.push_back(Err(error));
        self.done = true;
    }

    /// Queues a response's events, or the error that ends the stream.
    fn take(&mut self, response: etcd_client::WatchResponse) {
        for event in response.events() {
            match self.event(event) {
                Ok(Some(event)) => {
                    self.pos = event.revision();
                    self.ready.push_back(Ok(event));
                }
                Ok(None) => {
                    // The caller asks etcd for the compacted revision and ends the stream.
                    self.lost_prev = event.kv().map(|kv| kv.mod_revision());
                    self.done = true;
                    return;
                }
                Err(error) => return self.fail(error),
            }
        }
        let end = cancellation(
            self.pos,
            response.compact_revision(),
            response.canceled().then(|| response.cancel_reason()),
            &self.context.endpoints,
        );
        if let Some(error) = end {
            self.fail(error);
        }
    }

    /// The Store event of an etcd event; `None` if etcd left out the previous value of an
    /// update or delete, which it does when that value has been compacted (a watcher that fell
    /// behind compaction): without it a delete cannot say what was deleted, so the watcher
    /// must start over, as after a compaction.
    fn event(&self, event: &Event) -> Result<Option<WatchEvent>, StoreError> {
        let (keys, root) = (&self.context.keys, self.root);
        let kv = event.kv().ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd at {} sent a watch event without a key",
                self.context.endpoints
            ))
        })?;
        let prev = event.prev_kv().map(|p| to_kv(keys, root, p)).transpose()?;
        let revision = kv.mod_revision();
        let event = match (event.event_type(), prev) {
            (EventType::Put, _) if kv.create_revision() == revision => WatchEvent {
                kind: EventKind::Create,
                kv: to_kv(keys, root, kv)?,
                prev: None,
            },
            (EventType::Put, Some(prev)) => WatchEvent {
                kind: EventKind::Update,
                kv: to_kv(keys, root, kv)?,
                prev: Some(prev),
            },
            (EventType::Delete, Some(prev)) => {
                let mut kv = prev.clone();
                kv.mod_revision = revision;
                WatchEvent {
                    kind: EventKind::Delete,
                    kv,
                    prev: Some(prev),
                }
            }
            (_, None) => return Ok(None),
        };
        Ok(Some(event))
    }
}

/// The error that ends a watch whose last response had this compact revision and, if etcd
/// canceled it, this reason; `None` if the watch goes on. `pos` is the last revision delivered.
fn cancellation(
    pos: Revision,
    compact_revision: Revision,
    canceled: Option<&str>,
    endpoints: &str,
) -> Option<StoreError> {
    if compact_revision > 0 {
        // The watcher asked for (or fell behind to) history etcd no longer has.
        Some(StoreError::Compacted {
            requested: pos,
            compacted: compact_revision,
        })
    } else {
        canceled.map(|reason| {
            StoreError::Backend(format!("etcd at {endpoints} canceled the watch: {reason}"))
        })
    }
}

/// The revision etcd has compacted to, if any: a watch from revision 1 of a key nobody writes
/// is canceled at once with it (etcd has no other API that tells it). `None` if etcd does not
/// say within `wait`.
pub(super) async fn compacted_revision(context: &Context, wait: Duration) -> Option<Revision> {
    let mut client = context.client.clone();
    let probe = async {
        // The prefix itself: no Store key maps to it but `/registry/`, which nothing writes.
        let options = WatchOptions::new().with_start_revision(1);
        let (_requests, mut responses) = client
            .watch(context.keys.prefix().as_bytes().to_vec(), Some(options))
            .await
            .ok()?
            .split();
        loop {
            let response = responses.message().await.ok()??;
            if response.compact_revision() > 0 {
                return Some(response.compact_revision());
            }
            if response.canceled() {
                return None;
            }
        }
    };
    tokio::time::timeout(wait, probe).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    // etcd cancels a watch for compaction only when compaction races the watch's start (the
    // store checks the start revision first) or a slow watcher's history (etcd then usually
    // drops the previous values first, see the etcd tests): the mapping is checked here.
    #[test]
    fn a_compacted_cancel_ends_the_watch_with_compacted() {
        assert_eq!(
            cancellation(41, 50, Some(""), "e"),
            Some(StoreError::Compacted {
                requested: 41,
                compacted: 50
            })
        );
        assert_eq!(
            cancellation(41, 50, None, "e"),
            Some(StoreError::Compacted {
                requested: 41,
                compacted: 50
            })
        );
    }

    #[test]
    fn another_cancel_ends_the_watch_with_the_reason() {
        let error = cancellation(41, 0, Some("permission denied"), "http://e:2379");
        assert!(
            matches!(&error, Some(StoreError::Backend(m))
                if m.contains("permission denied") && m.contains("http://e:2379")),
            "{error:?}"
        );
        assert_eq!(cancellation(41, 0, None, "e"), None);
    }
}
