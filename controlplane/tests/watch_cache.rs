//! The watch cache through the API server's router: many `?watch=true` requests on one resource
//! cost one store watch, and each still gets the events of its own namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::Router;
use common::{configmap, JSON};
use futures::stream::BoxStream;
use futures::StreamExt;
use http::{Method, Request};
use kgate_controlplane::store::intercept::{Intercept, Intercepted};
use kgate_controlplane::store::redb::{RedbOptions, RedbStore};
use kgate_controlplane::store::{Revision, Store, StoreError, WatchStream};
use kgate_controlplane::ControlPlane;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Records the prefix of every `watch` call.
struct Counting {
    watches: Mutex<Vec<String>>,
}

impl Counting {
    fn watches_of(&self, prefix: &str) -> usize {
        let watches = self.watches.lock().unwrap();
        watches.iter().filter(|p| p.starts_with(prefix)).count()
    }
}

#[async_trait]
impl Intercept for Counting {
    async fn watch(
        &self,
        _inner: &dyn Store,
        prefix: &str,
        _after: Revision,
    ) -> Option<Result<WatchStream, StoreError>> {
        self.watches.lock().unwrap().push(prefix.to_owned());
        None
    }
}

/// A watch response body, read one JSON line at a time.
struct Lines {
    body: BoxStream<'static, Result<bytes::Bytes, axum::Error>>,
    pending: Vec<u8>,
}

impl Lines {
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("a watch event in time")
                .expect("the watch is open")
                .unwrap();
            self.pending.extend_from_slice(&chunk);
        }
    }

    /// The name of the next ADDED object, skipping bookmarks.
    async fn next_added(&mut self) -> String {
        loop {
            let event = self.next().await;
            match event["type"].as_str() {
                Some("BOOKMARK") => continue,
                Some("ADDED") => {
                    return event["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                }
                _ => panic!("unexpected event {event}"),
            }
        }
    }
}

async fn watch(router: &Router, path: &str) -> Lines {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    Lines {
        body: resp.into_body().into_data_stream().boxed(),
        pending: Vec::new(),
    }
}

async fn create(router: &Router, namespace: &str, name: &str) -> String {
    let body = serde_json::to_vec(&configmap(name, json!({}))).unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/namespaces/{namespace}/configmaps"))
        .header("content-type", JSON)
        .body(Body::from(body))
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 201);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let created: Value = serde_json::from_slice(&bytes).unwrap();
    created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn many_http_watches_cost_one_store_watch() {
    let dir = tempfile::tempdir().unwrap();
    let inner = RedbStore::open(&dir.path().join("store.redb"), RedbOptions::default()).unwrap();
    let counting = Counting {
        watches: Mutex::new(Vec::new()),
    };
    let store = Arc::new(Intercepted::new(Arc::new(inner), counting));
    let server = ControlPlane::start(store.clone()).await.unwrap();
    let router = server.router();
    let first = create(&router, "default", "first").await;

    // Lists then watches, watches from a resourceVersion, with bookmarks, across namespaces.
    let mut default = Vec::new();
    let mut system = Vec::new();
    for i in 0..60 {
        let query = match i % 3 {
            0 => "watch=true".to_owned(),
            1 => format!("watch=true&resourceVersion={first}"),
            _ => "watch=true&allowWatchBookmarks=true".to_owned(),
        };
        default.push(
            watch(
                &router,
                &format!("/api/v1/namespaces/default/configmaps?{query}"),
            )
            .await,
        );
        system.push(
            watch(
                &router,
                &format!("/api/v1/namespaces/kube-system/configmaps?{query}"),
            )
            .await,
        );
    }
    let mut all = watch(
        &router,
        &format!("/api/v1/configmaps?watch=true&resourceVersion={first}"),
    )
    .await;
    assert_eq!(
        store.intercept.watches_of("/registry/configmaps/"),
        1,
        "one store watch"
    );

    create(&router, "default", "a").await;
    create(&router, "kube-system", "b").await;
    for (i, w) in default.iter_mut().enumerate() {
        if i % 3 != 1 {
            // The initial list, before the watch proper.
            assert_eq!(w.next_added().await, "first");
        }
        assert_eq!(w.next_added().await, "a");
    }
    for w in &mut system {
        // "a" in default came first: a watch of kube-system that saw it would fail here.
        assert_eq!(w.next_added().await, "b");
    }
    for want in ["a", "b"] {
        assert_eq!(all.next_added().await, want);
    }
    assert_eq!(
        store.intercept.watches_of("/registry/configmaps/"),
        1,
        "still one"
    );
}
