//! Keeps in-memory state in step with the control plane: for each kind of a [`SyncSet`] (the
//! RBAC kinds for the authorizer, [`RBAC`]; others for other consumers) it LISTs, then WATCHes
//! from the list's resourceVersion (with bookmarks), through the same [`Upstream`] the proxy
//! uses, as the privileged internal identity `system:kgate-gateway` (group `system:masters`). A
//! list replaces everything the sink holds of that kind; watch events upsert or remove one object.
//! A watch that ends is resumed from the last resourceVersion seen; a watch error or 410 Gone
//! means a relist. The set's readiness check turns ready after the first full list of all its
//! kinds.
//!
//! A kind marked [`Kind::metadata_only`] is listed and watched as `meta.k8s.io/v1`
//! PartialObjectMetadata (what client-go's metadata informers ask for): the upstream sends only
//! each object's metadata, which is cheaper to send and parse for big objects such as Pods, and
//! keeps what the sink does not need (a Secret's data) off the wire. The sink still gets objects
//! of the real `kind` and `apiVersion`.
//!
//! This is a deliberately small reflector. kube-rs's reflectors would do the same over any tower
//! `Service`, but kube + k8s-openapi cost minutes of compile time on the build machines for four
//! resource types; revisit when the gateway needs more watched kinds.

use crate::proxy::Upstream;
use crate::readiness::Readiness;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use kgate_core::headers;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thiserror::Error;

/// The readiness check of the RBAC set.
pub const READINESS_CHECK: &str = "rbac";
/// The identity the gateway lists and watches with.
pub const SYNC_USER: &str = "system:kgate-gateway";

/// A watch line longer than this is refused (the upstream is trusted, but not unbounded).
const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;
/// `Accept` of a metadata-only list, then of its watch. No fallback to full objects: an upstream
/// that cannot answer metadata only (kube-apiserver can since 1.15) fails the sync with 406,
/// rather than quietly sending what a metadata-only kind promises to keep off the wire.
const ACCEPT_METADATA_LIST: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const ACCEPT_METADATA_WATCH: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
/// `Accept` of a full list or watch.
const ACCEPT_JSON: &str = "application/json";
/// Items per list page.
const PAGE_SIZE: u32 = 500;
/// Asked of the upstream per watch; the watch is resumed after it ends.
const WATCH_TIMEOUT_SECONDS: u32 = 300;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the sync feeds: the RBAC authorizer, another in-memory index, or a test double.
pub trait RbacSink: Send + Sync + 'static {
    /// Replaces every object of `kind` with `objects`.
    fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), SinkError>;
    /// Adds or replaces one object (its `kind` is set).
    fn upsert(&self, object: &Value) -> Result<(), SinkError>;
    /// Removes one object.
    fn remove(&self, kind: &str, namespace: &str, name: &str);
}

/// An object the sink refused, boxed from the sink's own error type.
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// Why one list or watch failed; the loop logs it and relists after a back-off.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The upstream could not be reached.
    #[error("upstream request failed")]
    Upstream(#[from] crate::proxy::UpstreamError),
    /// The upstream answered with an unexpected status.
    #[error("upstream answered {0}")]
    Status(StatusCode),
    /// The body could not be read.
    #[error("reading the response body failed")]
    Body(#[source] axum::Error),
    /// The body is not the expected JSON.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The sink refused a whole list.
    #[error("the authorizer refused the list")]
    Sink(#[source] SinkError),
}

/// One watched kind.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub kind: &'static str,
    pub api_version: &'static str,
    /// The collection path across all namespaces.
    pub path: &'static str,
    /// List and watch metadata only (PartialObjectMetadata): the sink gets objects with `kind`,
    /// `apiVersion` and `metadata` and nothing else. For sinks that need no more than names,
    /// UIDs, labels and the like; the RBAC kinds are full, the authorizer needs their rules.
    pub metadata_only: bool,
    /// A field selector (`type=kubernetes.io/service-account-token`) on the list and the watch:
    /// the sink gets only the objects it needs (objects that stop matching are DELETED).
    pub field_selector: Option<&'static str>,
}

/// Kinds synced together, with the readiness check that waits for all of them.
#[derive(Debug)]
pub struct SyncSet {
    pub readiness_check: &'static str,
    pub kinds: &'static [Kind],
}

const RBAC_V1: &str = "rbac.authorization.k8s.io/v1";

/// Roles, ClusterRoles and their bindings, for the RBAC authorizer.
pub static RBAC: SyncSet = SyncSet {
    readiness_check: READINESS_CHECK,
    kinds: &[
        Kind {
            kind: "ClusterRole",
            api_version: RBAC_V1,
            path: "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            metadata_only: false,
            field_selector: None,
        },
        Kind {
            kind: "ClusterRoleBinding",
            api_version: RBAC_V1,
            path: "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            metadata_only: false,
            field_selector: None,
        },
        Kind {
            kind: "Role",
            api_version: RBAC_V1,
            path: "/apis/rbac.authorization.k8s.io/v1/roles",
            metadata_only: false,
            field_selector: None,
        },
        Kind {
            kind: "RoleBinding",
            api_version: RBAC_V1,
            path: "/apis/rbac.authorization.k8s.io/v1/rolebindings",
            metadata_only: false,
            field_selector: None,
        },
    ],
};

/// Syncs the RBAC kinds into `sink`; see [`spawn_set`].
pub fn spawn(
    upstream: Upstream,
    sink: Arc<dyn RbacSink>,
    readiness: Readiness,
) -> Vec<tokio::task::JoinHandle<()>> {
    spawn_set(&RBAC, upstream, sink, readiness)
}

/// Registers the set's readiness check and starts one list+watch task per kind. The tasks run
/// until the runtime stops or the returned handles are aborted.
pub fn spawn_set(
    set: &'static SyncSet,
    upstream: Upstream,
    sink: Arc<dyn RbacSink>,
    readiness: Readiness,
) -> Vec<tokio::task::JoinHandle<()>> {
    readiness.register(set.readiness_check);
    let progress = Arc::new(Progress {
        set,
        synced: Mutex::new(BTreeSet::new()),
        readiness,
    });
    set.kinds
        .iter()
        .map(|kind| {
            let reflector = Reflector {
                kind: *kind,
                upstream: upstream.clone(),
                sink: sink.clone(),
                progress: progress.clone(),
            };
            tokio::spawn(reflector.run())
        })
        .collect()
}

/// Which kinds have had a full list; sets the readiness check once all have.
struct Progress {
    set: &'static SyncSet,
    synced: Mutex<BTreeSet<&'static str>>,
    readiness: Readiness,
}

impl Progress {
    fn mark(&self, kind: &'static str) {
        let mut synced = self.synced.lock().unwrap_or_else(PoisonError::into_inner);
        if synced.insert(kind) && synced.len() == self.set.kinds.len() {
            tracing::info!(set = self.set.readiness_check, "objects synced");
            self.readiness.set(self.set.readiness_check, true);
        }
    }
}

struct Reflector {
    kind: Kind,
    upstream: Upstream,
    sink: Arc<dyn RbacSink>,
    progress: Arc<Progress>,
}

/// How a watch ended.
enum WatchEnd {
    /// The stream closed normally: resume from this resourceVersion.
    Closed(String),
    /// The resourceVersion is too old (410): relist.
    Expired,
}

impl Reflector {
    async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.list_and_watch().await {
                Ok(()) => backoff = MIN_BACKOFF,
                Err(error) => {
                    tracing::warn!(kind = self.kind.kind, error = %error, retry_in = ?backoff, "sync failed; relisting");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One list, then watches until a relist is needed (`Ok`) or something fails (`Err`).
    async fn list_and_watch(&self) -> Result<(), SyncError> {
        let (items, mut resource_version) = self.list().await?;
        self.sink
            .replace_kind(self.kind.kind, &items)
            .map_err(SyncError::Sink)?;
        self.progress.mark(self.kind.kind);
        loop {
            match self.watch(&resource_version).await? {
                WatchEnd::Closed(latest) => resource_version = latest,
                WatchEnd::Expired => return Ok(()),
            }
        }
    }

    async fn list(&self) -> Result<(Vec<Value>, String), SyncError> {
        let mut items = Vec::new();
        let mut continue_token = String::new();
        loop {
            let mut uri = format!(
                "{}?limit={PAGE_SIZE}{}",
                self.kind.path,
                self.selector_query()
            );
            if !continue_token.is_empty() {
                uri.push_str("&continue=");
                uri.push_str(
                    &percent_encoding::utf8_percent_encode(
                        &continue_token,
                        percent_encoding::NON_ALPHANUMERIC,
                    )
                    .to_string(),
                );
            }
            let accept = if self.kind.metadata_only {
                ACCEPT_METADATA_LIST
            } else {
                ACCEPT_JSON
            };
            let response = self.upstream.send(request(&uri, accept)?).await?;
            if response.status() != StatusCode::OK {
                return Err(SyncError::Status(response.status()));
            }
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(SyncError::Body)?;
            let mut page: Value = serde_json::from_slice(&body.to_bytes())
                .map_err(|e| SyncError::Malformed(e.to_string()))?;
            let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) else {
                return Err(SyncError::Malformed("a list without items".into()));
            };
            items.extend(page_items.into_iter().map(|item| self.with_kind(item)));
            let metadata = page.get("metadata");
            let field = |name: &str| {
                metadata
                    .and_then(|m| m.get(name))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            continue_token = field("continue");
            if continue_token.is_empty() {
                return Ok((items, field("resourceVersion")));
            }
        }
    }

    async fn watch(&self, resource_version: &str) -> Result<WatchEnd, SyncError> {
        let uri = format!(
            "{}?watch=true&resourceVersion={}&allowWatchBookmarks=true&timeoutSeconds={WATCH_TIMEOUT_SECONDS}{}",
            self.kind.path,
            percent_encoding::utf8_percent_encode(resource_version, percent_encoding::NON_ALPHANUMERIC),
            self.selector_query(),
        );
        let accept = if self.kind.metadata_only {
            ACCEPT_METADATA_WATCH
        } else {
            ACCEPT_JSON
        };
        let response = self.upstream.send(request(&uri, accept)?).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::GONE => return Ok(WatchEnd::Expired),
            other => return Err(SyncError::Status(other)),
        }
        let mut body = response.into_body();
        let mut latest = resource_version.to_owned();
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(SyncError::Body)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if let Some(end) = self.apply_event(&line, &mut latest)? {
                    return Ok(end);
                }
            }
            if buffer.len() > MAX_EVENT_BYTES {
                return Err(SyncError::Malformed(
                    "a watch event over the size limit".into(),
                ));
            }
        }
        Ok(WatchEnd::Closed(latest))
    }

    /// Applies one watch line; `Some` when the watch must end.
    fn apply_event(&self, line: &[u8], latest: &mut String) -> Result<Option<WatchEnd>, SyncError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let mut event: Value =
            serde_json::from_slice(line).map_err(|e| SyncError::Malformed(e.to_string()))?;
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let object = event.get_mut("object").map(Value::take).unwrap_or_default();
        if event_type == "ERROR" {
            // The object is a Status; 410 means our resourceVersion was compacted away.
            let code = object
                .get("code")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            if code == 410 {
                return Ok(Some(WatchEnd::Expired));
            }
            let message = object
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(SyncError::Malformed(format!(
                "watch error {code}: {message}"
            )));
        }
        let metadata = |name: &str| {
            object
                .pointer(&format!("/metadata/{name}"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (namespace, name) = (metadata("namespace"), metadata("name"));
        let resource_version = metadata("resourceVersion");
        if !resource_version.is_empty() {
            *latest = resource_version;
        }
        match event_type.as_str() {
            "ADDED" | "MODIFIED" => {
                let object = self.with_kind(object);
                if let Err(error) = self.sink.upsert(&object) {
                    // One bad object must not stop the others from syncing.
                    tracing::warn!(kind = self.kind.kind, %namespace, %name, %error, "object refused");
                }
            }
            "DELETED" => self.sink.remove(self.kind.kind, &namespace, &name),
            "BOOKMARK" => {}
            other => {
                return Err(SyncError::Malformed(format!(
                    "unknown watch event type {other:?}"
                )));
            }
        }
        Ok(None)
    }

    /// `&fieldSelector=...` when the kind has one, else nothing.
    fn selector_query(&self) -> String {
        self.kind
            .field_selector
            .map(|selector| {
                format!(
                    "&fieldSelector={}",
                    percent_encoding::utf8_percent_encode(
                        selector,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                )
            })
            .unwrap_or_default()
    }

    /// List items come without `kind` and `apiVersion`, and metadata-only objects say
    /// `PartialObjectMetadata`; the sink expects both, of the real kind (it dispatches on them).
    fn with_kind(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            if self.kind.metadata_only {
                map.insert("kind".into(), self.kind.kind.into());
                map.insert("apiVersion".into(), self.kind.api_version.into());
            } else {
                map.entry("kind").or_insert_with(|| self.kind.kind.into());
                map.entry("apiVersion")
                    .or_insert_with(|| self.kind.api_version.into());
            }
        }
        object
    }
}

fn request(uri: &str, accept: &'static str) -> Result<Request<Body>, SyncError> {
    Request::get(uri)
        .header(http::header::ACCEPT, accept)
        .header(headers::REMOTE_USER, SYNC_USER)
        .header(
            headers::REMOTE_GROUP,
            kgate_core::user::SYSTEM_PRIVILEGED_GROUP,
        )
        .header(headers::REMOTE_GROUP, kgate_core::user::ALL_AUTHENTICATED)
        .body(Body::empty())
        .map_err(|e| SyncError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests;
