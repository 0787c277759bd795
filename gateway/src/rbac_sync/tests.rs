use super::*;
use axum::extract::Query;
use axum::routing::get;
use bytes::Bytes;
use std::collections::HashMap;

/// What a test sink was told, in order.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn entries(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn push(&self, entry: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry);
    }
}

#[derive(Default)]
struct RecordingSink(Log);

impl RecordingSink {
    fn log(&self) -> Vec<String> {
        self.0.entries()
    }
    fn push(&self, entry: String) {
        self.0.push(entry);
    }
}

impl RbacSink for RecordingSink {
    fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), SinkError> {
        assert!(objects
            .iter()
            .all(|o| o["kind"] == kind && o["apiVersion"] == RBAC_V1));
        self.push(format!("replace {kind} {}", objects.len()));
        Ok(())
    }
    fn upsert(&self, object: &Value) -> Result<(), SinkError> {
        self.push(format!(
            "upsert {} {}",
            object["kind"].as_str().unwrap_or("?"),
            object["metadata"]["name"].as_str().unwrap_or("?")
        ));
        Ok(())
    }
    fn remove(&self, kind: &str, namespace: &str, name: &str) {
        self.push(format!("remove {kind} {namespace}/{name}"));
    }
}

/// A control plane with one ClusterRole whose watch adds one and deletes the first.
fn fake_control_plane() -> axum::Router {
    let handler = |is_cluster_roles: bool| {
        move |headers: http::HeaderMap, Query(query): Query<HashMap<String, String>>| async move {
            if headers.get(headers::REMOTE_USER).map(|v| v.as_bytes()) != Some(SYNC_USER.as_bytes())
            {
                return http::Response::builder()
                    .status(403)
                    .body(Body::empty())
                    .unwrap_or_default();
            }
            // The RBAC kinds are synced in full: the authorizer needs their rules.
            assert_eq!(
                headers.get(http::header::ACCEPT).map(|v| v.as_bytes()),
                Some(ACCEPT_JSON.as_bytes())
            );
            if query.get("watch").map(String::as_str) != Some("true") {
                let list = serde_json::json!({
                    "metadata": {"resourceVersion": "10"},
                    "items": [{"metadata": {"name": "first", "resourceVersion": "5"}}],
                });
                return http::Response::new(Body::from(list.to_string()));
            }
            assert_eq!(query.get("resourceVersion").map(String::as_str), Some("10"));
            let events = if is_cluster_roles {
                concat!(
                    r#"{"type":"ADDED","object":{"metadata":{"name":"second","resourceVersion":"11"}}}"#,
                    "\n",
                    r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"#,
                    "\n",
                    r#"{"type":"DELETED","object":{"metadata":{"name":"first","resourceVersion":"13"}}}"#,
                    "\n"
                )
            } else {
                ""
            };
            // The events, then an open watch that never ends.
            let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
                events.as_bytes(),
            ))])
            .chain(futures::stream::pending());
            http::Response::new(Body::from_stream(stream))
        }
    };
    use futures::StreamExt as _;
    let mut router = axum::Router::new();
    for kind in RBAC.kinds {
        router = router.route(kind.path, get(handler(kind.kind == "ClusterRole")));
    }
    router
}

#[tokio::test]
async fn lists_then_applies_watch_events_and_turns_ready() {
    let sink = Arc::new(RecordingSink::default());
    let readiness = Readiness::default();
    let tasks = spawn(
        Upstream::InProcess(fake_control_plane()),
        sink.clone(),
        readiness.clone(),
    );
    assert!(!readiness.is_ready());

    let expected = "remove ClusterRole /first";
    for _ in 0..200 {
        if readiness.is_ready() && sink.log().iter().any(|e| e == expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = sink.log();
    assert!(readiness.is_ready(), "{log:?}");
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(log.contains(&format!("replace {kind} 1")), "{log:?}");
    }
    let position = |entry: &str| log.iter().position(|e| e == entry);
    assert!(
        position("upsert ClusterRole second") < position(expected),
        "{log:?}"
    );
    for task in tasks {
        task.abort();
    }
}

/// Records every object the sync hands over as `kind/apiVersion/name`, and whether any carried
/// more than metadata.
#[derive(Default)]
struct ObjectSink(Log);

impl ObjectSink {
    fn log(&self) -> Vec<String> {
        self.0.entries()
    }
    fn push(&self, entry: String) {
        self.0.push(entry);
    }
    fn describe(object: &Value) -> String {
        let mut fields: Vec<&str> = object
            .as_object()
            .map(|map| map.keys().map(String::as_str).collect())
            .unwrap_or_default();
        fields.sort_unstable();
        format!(
            "{}/{}/{} {fields:?}",
            object["kind"].as_str().unwrap_or("?"),
            object["apiVersion"].as_str().unwrap_or("?"),
            object["metadata"]["name"].as_str().unwrap_or("?"),
        )
    }
}

impl RbacSink for ObjectSink {
    fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), SinkError> {
        let objects: Vec<String> = objects.iter().map(Self::describe).collect();
        self.push(format!("replace {kind}: {}", objects.join(", ")));
        Ok(())
    }
    fn upsert(&self, object: &Value) -> Result<(), SinkError> {
        self.push(format!("upsert {}", Self::describe(object)));
        Ok(())
    }
    fn remove(&self, kind: &str, namespace: &str, name: &str) {
        self.push(format!("remove {kind} {namespace}/{name}"));
    }
}

static PODS_METADATA: SyncSet = SyncSet {
    readiness_check: "test-pods",
    kinds: &[Kind {
        kind: "Pod",
        api_version: "v1",
        path: "/api/v1/pods",
        metadata_only: true,
        field_selector: None,
    }],
};

/// A control plane that answers Pods only as PartialObjectMetadata (406 to anything else), in
/// two list pages, then a watch; it records the `Accept` of every request.
fn metadata_control_plane(accepts: Arc<Mutex<Vec<String>>>) -> axum::Router {
    let handler = move |headers: http::HeaderMap, Query(query): Query<HashMap<String, String>>| {
        let accepts = accepts.clone();
        async move {
            let accept = headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let watch = query.get("watch").map(String::as_str) == Some("true");
            accepts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{} {accept}", if watch { "watch" } else { "list" }));
            let wanted = if watch {
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            } else {
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            };
            if accept != wanted {
                return http::Response::builder()
                    .status(406)
                    .body(Body::empty())
                    .unwrap_or_default();
            }
            let partial = |name: &str, rv: &str| {
                serde_json::json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"namespace": "ci", "name": name, "uid": format!("uid-{name}"), "resourceVersion": rv},
                })
            };
            if !watch {
                let page = match query.get("continue").map(String::as_str) {
                    None => serde_json::json!({
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": {"resourceVersion": "10", "continue": "page-2"},
                        "items": [partial("web-1", "5")],
                    }),
                    Some(_) => serde_json::json!({
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": {"resourceVersion": "10"},
                        "items": [partial("web-2", "6")],
                    }),
                };
                return http::Response::new(Body::from(page.to_string()));
            }
            assert_eq!(query.get("resourceVersion").map(String::as_str), Some("10"));
            let bookmark = serde_json::json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": "12"},
            });
            let events = [
                serde_json::json!({"type": "ADDED", "object": partial("web-3", "11")}),
                serde_json::json!({"type": "BOOKMARK", "object": bookmark}),
                serde_json::json!({"type": "MODIFIED", "object": partial("web-2", "13")}),
                serde_json::json!({"type": "DELETED", "object": partial("web-1", "14")}),
            ]
            .iter()
            .map(|event| format!("{event}\n"))
            .collect::<String>();
            // The events, then an open watch that never ends.
            let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(events))])
                .chain(futures::stream::pending());
            http::Response::new(Body::from_stream(stream))
        }
    };
    use futures::StreamExt as _;
    axum::Router::new().route("/api/v1/pods", get(handler))
}

#[tokio::test]
async fn metadata_only_kind_asks_for_metadata_and_hands_over_the_real_kind() {
    let sink = Arc::new(ObjectSink::default());
    let readiness = Readiness::default();
    let accepts = Arc::new(Mutex::new(Vec::new()));
    let tasks = spawn_set(
        &PODS_METADATA,
        Upstream::InProcess(metadata_control_plane(accepts.clone())),
        sink.clone(),
        readiness.clone(),
    );

    let expected = "remove Pod ci/web-1";
    for _ in 0..200 {
        if readiness.is_ready() && sink.log().iter().any(|e| e == expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in tasks {
        task.abort();
    }
    let log = sink.log();
    assert!(readiness.is_ready(), "{log:?}");
    // Objects of the real kind and apiVersion, never PartialObjectMetadata; nothing but metadata.
    let fields = r#"["apiVersion", "kind", "metadata"]"#;
    assert_eq!(
        log,
        [
            format!("replace Pod: Pod/v1/web-1 {fields}, Pod/v1/web-2 {fields}"),
            format!("upsert Pod/v1/web-3 {fields}"),
            format!("upsert Pod/v1/web-2 {fields}"),
            expected.to_owned(),
        ]
    );
    let accepts = accepts
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert_eq!(
        accepts,
        [
            "list application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            "list application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            "watch application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        ]
    );
}

#[test]
fn accept_headers_are_what_the_embedded_api_server_negotiates() {
    use kgate_controlplane::apiserver::codec::{negotiate, Negotiated};
    let query = kgate_core::request_info::QueryParams::parse("");
    for (accept, want) in [
        (ACCEPT_METADATA_LIST, Negotiated::Metadata),
        (ACCEPT_METADATA_WATCH, Negotiated::Metadata),
        (ACCEPT_JSON, Negotiated::Json),
    ] {
        assert_eq!(
            negotiate(Some(accept), &query).map_err(|s| s.code),
            Ok(want),
            "{accept}"
        );
    }
}
