use super::*;
use axum::extract::Query;
use axum::routing::get;
use bytes::Bytes;
use std::collections::HashMap;

#[derive(Default)]
struct RecordingSink(Mutex<Vec<String>>);

impl RecordingSink {
    fn log(&self) -> Vec<String> {
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
