//! `?watch=true`: a chunked stream of newline-delimited JSON watch events with kube-apiserver's
//! semantics, served from the [`WatchCache`] (one store watch per resource, shared).
//!
//! - `resourceVersion` unset or "0": synthetic ADDED events for every matching object of a range
//!   read at revision R, then the changes after R; `resourceVersion=N`: the changes after N; N
//!   compacted: one ERROR event carrying a 410 `Expired` Status (what kube's watch cache does for
//!   an old revision at watch start; clients relist).
//! - Selectors filter as kube's watch cache does: an update that makes an object match is ADDED,
//!   one that makes it stop matching is DELETED (carrying the old object at the new revision).
//! - `allowWatchBookmarks`: a BOOKMARK every [`BOOKMARK_EVERY`] with the last revision this
//!   watch has covered (the cache's progress on the whole resource, so it advances even when
//!   nothing matches this watch), and, with `sendInitialEvents=true`, one at the end of the
//!   initial events annotated `k8s.io/initial-events-end: "true"`.
//! - A watch that does not read its events fast enough is closed without an ERROR event, as
//!   kube's cacher closes it: the client watches again from the last revision it saw.
//! - Table mode: each object becomes a one-row `meta.k8s.io/v1` Table; only the first carries
//!   column definitions, as kube sends them.
//!
//! No task is spawned per watch: the response body is the watch itself, so when the client goes
//! away hyper drops the body and with it the cache subscription. `timeoutSeconds` (or kube's
//! default of 30 to 60 minutes) ends the body cleanly.

// `Status` is the error type of the HTTP edge by contract (the handlers send it as the body);
// boxing it here would only move the allocation into every caller.
#![allow(clippy::result_large_err)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Response, StatusCode};
use kgate_core::Status;
use serde_json::{json, Value};
use tokio::time::{Instant, Interval, Sleep};

use super::codec::{decode_object, set_resource_version, Negotiated, JSON};
use super::keys::collection_prefix;
use super::selectors::{FieldSelector, LabelSelector};
use super::watch_cache::{SharedEvent, Update, Updates, WatchCache, WatchCacheError};
use crate::resources::ResourceDef;
use crate::schema::{self, IncludeObject};
use crate::store::{EventKind, KeyValue, RangeRequest, Revision, Store, StoreError};

/// How often a watch with bookmarks sends one.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
/// kube-apiserver's `--min-request-timeout`: a watch without `timeoutSeconds` ends after a random
/// time between this and twice this, so that clients rebalance across servers.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);

/// Everything a watch request asked for, already parsed and validated by the REST handler.
pub struct WatchContext {
    pub store: Arc<dyn Store>,
    /// Where the events come from; over the same store.
    pub cache: Arc<WatchCache>,
    pub def: &'static ResourceDef,
    /// The namespace of a namespaced request; `None` for all namespaces.
    pub namespace: Option<String>,
    /// One object's name (`.../pods/x?watch` or `fieldSelector=metadata.name=x`).
    pub name: Option<String>,
    pub resource_version: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    pub negotiated: Negotiated,
}

/// Watch options beyond [`WatchContext`] (kept apart so that adding one does not break callers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// `sendInitialEvents`: `Some(true)` sends the current objects first whatever the
    /// resourceVersion, then the initial-events-end bookmark (the caller has checked, as kube
    /// does, that bookmarks are allowed and `resourceVersionMatch=NotOlderThan`); `Some(false)`
    /// never sends them; `None` is the legacy rule (only for resourceVersion unset or "0").
    pub send_initial_events: Option<bool>,
    /// How often to send a bookmark; [`BOOKMARK_EVERY`] when `None`.
    pub bookmark_every: Option<Duration>,
}

impl WatchOptions {
    pub fn send_initial_events(mut self, send: Option<bool>) -> Self {
        self.send_initial_events = send;
        self
    }

    pub fn bookmark_every(mut self, every: Duration) -> Self {
        self.bookmark_every = Some(every);
        self
    }
}

/// `sendInitialEvents` of a watch (client-go's watch-list: the current objects, then a bookmark
/// marking their end, instead of a list then a watch), checked as kube's `validateWatchOptions`:
/// it needs `resourceVersionMatch=NotOlderThan`, which is allowed only with it and without
/// `continue`. A refusal is kube's 422 on `ListOptions.meta.k8s.io`.
pub fn send_initial_events(
    send_initial_events: Option<&str>,
    resource_version_match: Option<&str>,
    continue_token: Option<&str>,
) -> Result<Option<bool>, Status> {
    let send = match send_initial_events.unwrap_or("") {
        "" => None,
        // strconv.ParseBool, as kube's query decoding.
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        other => {
            return Err(Status::bad_request(format!(
                "invalid sendInitialEvents: {other:?}"
            )))
        }
    };
    let matching = resource_version_match.unwrap_or("");
    let cause = |field: &str, reason: &str, message: String| kgate_core::status::StatusCause {
        reason: reason.to_owned(),
        message,
        field: field.to_owned(),
    };
    let mut causes = Vec::new();
    if send.is_some() && matching != "NotOlderThan" {
        causes.push(cause(
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                .to_owned(),
        ));
    }
    if !matching.is_empty() {
        if send.is_none() {
            causes.push(cause(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided".to_owned(),
            ));
        }
        if matching != "NotOlderThan" {
            causes.push(cause(
                "resourceVersionMatch",
                "FieldValueNotSupported",
                format!("Unsupported value: {matching:?}: supported values: \"NotOlderThan\""),
            ));
        }
        if continue_token.is_some_and(|c| !c.is_empty()) {
            causes.push(cause(
                "resourceVersionMatch",
                "FieldValueForbidden",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided".to_owned(),
            ));
        }
    }
    if causes.is_empty() {
        Ok(send)
    } else {
        Err(Status::invalid("meta.k8s.io", "ListOptions", "", causes))
    }
}

/// Serves a watch with the legacy initial-events rule.
pub async fn serve_watch(ctx: WatchContext) -> Result<Response<Body>, Status> {
    serve_watch_with(ctx, WatchOptions::default()).await
}

/// Serves a watch. Errors before the stream starts (a malformed resourceVersion, the store
/// unreachable) are returned as a Status for the caller to send; later ones are ERROR events.
pub async fn serve_watch_with(
    ctx: WatchContext,
    options: WatchOptions,
) -> Result<Response<Body>, Status> {
    let rv = parse_resource_version(ctx.resource_version.as_deref())?;
    let initial = match options.send_initial_events {
        Some(send) => send,
        None => rv.is_none(),
    };
    let prefix = collection_prefix(ctx.def, ctx.namespace.as_deref());
    let (items, after) = if initial {
        let list = ctx
            .store
            .range(RangeRequest {
                prefix: prefix.clone(),
                ..RangeRequest::default()
            })
            .await
            .map_err(store_status)?;
        (list.items, list.revision)
    } else {
        let after = match rv {
            Some(n) => n,
            None => ctx.store.current_revision().await.map_err(store_status)?,
        };
        (Vec::new(), after)
    };
    let mut queued = VecDeque::new();
    let events = match ctx
        .cache
        .watch_selected(ctx.def, ctx.namespace.as_deref(), after, &ctx.fields)
        .await
    {
        Ok(stream) => Some(stream),
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            let status = Status::gone(format!(
                "too old resource version: {requested} ({compacted})"
            ));
            queued.push_back(line("ERROR", &status_value(&status)));
            None
        }
        Err(e) => return Err(store_status(e)),
    };
    let timeout = ctx
        .timeout
        .unwrap_or_else(|| MIN_REQUEST_TIMEOUT.mul_f64(1.0 + rand::random::<f64>()));
    let every = options.bookmark_every.unwrap_or(BOOKMARK_EVERY);
    let ticker = ctx.bookmarks.then(|| {
        let mut t = tokio::time::interval_at(Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let watcher = Watcher {
        def: ctx.def,
        name: ctx.name,
        labels: ctx.labels,
        fields: ctx.fields,
        negotiated: ctx.negotiated,
        initial: items.into_iter(),
        // kube's cacher marks the end only for a client that allowed bookmarks.
        initial_end_bookmark: options.send_initial_events == Some(true) && ctx.bookmarks,
        events,
        queued,
        last_revision: after,
        ticker,
        deadline: Box::pin(tokio::time::sleep(timeout)),
        columns_sent: false,
        done: false,
    };
    let body = futures::stream::unfold(watcher, |mut w| async move {
        let bytes = w.next_line().await?;
        Some((Ok::<Bytes, Infallible>(bytes), w))
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    // hyper sends a body of unknown length chunked on HTTP/1.1 (and as DATA frames on HTTP/2,
    // where a Transfer-Encoding header is forbidden), so it is not set by hand.
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(response)
}

/// `None` for unset, empty or "0" (start from the current state); a revision otherwise.
fn parse_resource_version(rv: Option<&str>) -> Result<Option<Revision>, Status> {
    match rv {
        None | Some("") | Some("0") => Ok(None),
        Some(s) => match s.parse::<Revision>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(Status::bad_request(format!(
                "resourceVersion: Invalid value: {s:?}: strconv.ParseUint: parsing {s:?}: invalid syntax"
            ))),
        },
    }
}

/// A store failure before the stream starts, as kube-apiserver reports its storage errors.
fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::Compacted {
            requested,
            compacted,
        } => Status::gone(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => Status::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %e, "watch: storage unavailable");
            Status::service_unavailable("storage is unavailable, please try again later")
        }
        other => {
            tracing::error!(error = %other, "watch: storage error");
            Status::internal("storage error")
        }
    }
}

fn status_value(s: &Status) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

/// One watch event as a line of JSON.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The state of one watch response.
struct Watcher {
    def: &'static ResourceDef,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    negotiated: Negotiated,
    /// The synthetic ADDED events still to send.
    initial: std::vec::IntoIter<KeyValue>,
    initial_end_bookmark: bool,
    /// `None` once the cache's stream cannot continue.
    events: Option<Updates>,
    queued: VecDeque<Bytes>,
    /// The newest revision this watch has covered: a bookmark never claims more.
    last_revision: Revision,
    ticker: Option<Interval>,
    deadline: Pin<Box<Sleep>>,
    columns_sent: bool,
    done: bool,
}

/// The next tick, or never when bookmarks are off.
async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

impl Watcher {
    async fn next_line(&mut self) -> Option<Bytes> {
        loop {
            if let Some(bytes) = self.queued.pop_front() {
                return Some(bytes);
            }
            if self.done {
                return None;
            }
            if let Some(kv) = self.initial.next() {
                match decode_object(&kv) {
                    Ok(obj) if self.matches(&obj) => return Some(self.object_line("ADDED", obj)),
                    Ok(_) => continue,
                    Err(status) => return Some(self.fail(&status)),
                }
            }
            if std::mem::take(&mut self.initial_end_bookmark) {
                return Some(self.bookmark(true));
            }
            let Some(events) = self.events.as_mut() else {
                self.done = true;
                continue;
            };
            tokio::select! {
                biased;
                _ = &mut self.deadline => self.done = true,
                _ = tick(&mut self.ticker) => return Some(self.bookmark(false)),
                next = events.next() => match next {
                    None => self.done = true,
                    Some(Ok(Update::Progress(revision))) => {
                        self.last_revision = self.last_revision.max(revision);
                    }
                    Some(Ok(Update::Event(event))) => {
                        self.last_revision = self.last_revision.max(event.revision());
                        if let Some(bytes) = self.event_line(&event) {
                            return Some(bytes);
                        }
                    }
                    Some(Err(WatchCacheError::Lagged)) => {
                        // kube closes such a watch without an ERROR event; the client watches
                        // again from its last revision instead of relisting.
                        tracing::debug!(
                            resource = self.def.plural,
                            "watch closed: the client did not keep up"
                        );
                        self.done = true;
                        self.events = None;
                    }
                    Some(Err(WatchCacheError::Store(e))) => {
                        let status = match e {
                            StoreError::Compacted { .. } => store_status(e),
                            other => {
                                tracing::warn!(error = %other, "watch stream ended by the store");
                                Status::internal("the watch was interrupted by a storage error")
                            }
                        };
                        return Some(self.fail(&status));
                    }
                },
            }
        }
    }

    /// An ERROR event, after which the stream ends.
    fn fail(&mut self, status: &Status) -> Bytes {
        self.done = true;
        self.events = None;
        line("ERROR", &status_value(status))
    }

    /// Whether every object matches (no name, label or field selector).
    fn selects_everything(&self) -> bool {
        self.name.is_none() && self.labels.is_everything() && self.fields.is_everything()
    }

    fn matches(&self, obj: &Value) -> bool {
        if let Some(name) = &self.name {
            let have = obj.pointer("/metadata/name").and_then(Value::as_str);
            if have != Some(name.as_str()) {
                return false;
            }
        }
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The line for a store event after selector filtering, or `None` when the client should not
    /// hear of it.
    fn event_line(&mut self, event: &SharedEvent) -> Option<Bytes> {
        // Decoded once for all watchers (see `SharedEvent`); cloned only by those that send it.
        let current = match event.current() {
            Ok(obj) => obj,
            Err(status) => return Some(self.fail(status)),
        };
        let now_matches = self.matches(current);
        match event.kind {
            EventKind::Create => now_matches.then(|| self.current_line("ADDED", event)),
            EventKind::Delete => now_matches.then(|| self.current_line("DELETED", event)),
            // Without selectors an update is a MODIFIED whatever the object was: its previous
            // state need not be decoded.
            EventKind::Update if self.selects_everything() && event.prev.is_some() => {
                Some(self.current_line("MODIFIED", event))
            }
            EventKind::Update => {
                let previous = match event.previous() {
                    None => None,
                    Some(Ok(prev)) => Some(prev),
                    Some(Err(status)) => return Some(self.fail(status)),
                };
                let was_matching = previous.is_some_and(|p| self.matches(p));
                match (was_matching, now_matches) {
                    (true, true) => Some(self.current_line("MODIFIED", event)),
                    (false, true) => Some(self.current_line("ADDED", event)),
                    (true, false) => {
                        // kube sends the last state the client could see, at the new revision.
                        let mut old = previous.unwrap_or(current).clone();
                        set_resource_version(&mut old, event.kv.mod_revision);
                        Some(self.object_line("DELETED", old))
                    }
                    (false, false) => None,
                }
            }
        }
    }

    /// The event's object after the change as a `kind` line: as JSON, serialized once for all
    /// watchers (see [`SharedEvent::json_line`]).
    fn current_line(&mut self, kind: &str, event: &SharedEvent) -> Bytes {
        match self.negotiated {
            Negotiated::Json => match event.json_line(kind) {
                Ok(line) => line,
                Err(status) => self.fail(status),
            },
            Negotiated::Table(_) => match event.current() {
                Ok(current) => self.object_line(kind, current.clone()),
                Err(status) => self.fail(status),
            },
            Negotiated::Metadata => match event.current() {
                Ok(current) => line(kind, &schema::partial_object_metadata(current)),
                Err(status) => self.fail(status),
            },
        }
    }

    fn object_line(&mut self, kind: &str, obj: Value) -> Bytes {
        match self.negotiated {
            Negotiated::Json => line(kind, &obj),
            Negotiated::Table(include) => {
                let table = self.one_row_table(&obj, include);
                line(kind, &table)
            }
            Negotiated::Metadata => line(kind, &schema::partial_object_metadata(&obj)),
        }
    }

    fn one_row_table(&mut self, obj: &Value, include: IncludeObject) -> Value {
        let columns = if std::mem::replace(&mut self.columns_sent, true) {
            Value::Null
        } else {
            schema::table::column_definitions(self.def.kind)
        };
        let rv = obj
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        let row = schema::table_row(self.def.kind, obj, include, time::OffsetDateTime::now_utc());
        json!({
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": rv},
            "columnDefinitions": columns,
            "rows": [row],
        })
    }

    /// A BOOKMARK: an object of the kind with only `metadata.resourceVersion` (a Table without
    /// rows in Table mode).
    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": self.last_revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = match self.negotiated {
            Negotiated::Json => json!({
                "kind": self.def.kind,
                "apiVersion": self.def.api_version(),
                "metadata": metadata,
            }),
            Negotiated::Table(_) => json!({
                "kind": "Table",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "columnDefinitions": null,
                "rows": null,
            }),
            Negotiated::Metadata => json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
            }),
        };
        line("BOOKMARK", &object)
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
