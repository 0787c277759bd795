//! Drives the API server's router in-process (tower `oneshot`, no network) over a RedbStore in a
//! temporary directory.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use kgate_controlplane::store::redb::{RedbOptions, RedbStore};
use kgate_controlplane::store::Store;
use kgate_controlplane::ControlPlane;
use serde_json::Value;
use tower::ServiceExt;

pub const JSON: &str = "application/json";
pub const MERGE: &str = "application/merge-patch+json";
pub const STRATEGIC: &str = "application/strategic-merge-patch+json";
pub const JSON_PATCH: &str = "application/json-patch+json";

/// One answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn rv(&self) -> String {
        self.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

pub struct Api {
    pub server: ControlPlane,
    store: Arc<RedbStore>,
    router: Router,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Api {
    /// A server over a fresh store.
    pub async fn new() -> Api {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut api = Api::open(&dir).await;
        api._tmp = Some(tmp);
        api
    }

    /// A server over the store in `dir` (created if absent).
    pub async fn open(dir: &Path) -> Api {
        let store = Arc::new(
            RedbStore::open(&dir.join("store.redb"), RedbOptions::default()).expect("open store"),
        );
        let shared: Arc<dyn Store> = store.clone();
        let server = ControlPlane::start(shared).await.expect("start");
        let router = server.router();
        Api {
            server,
            store,
            router,
            dir: dir.to_owned(),
            _tmp: None,
        }
    }

    /// Stops the server, closes the store (releasing its file) and hands the directory over, to
    /// reopen it.
    pub async fn close(self) -> (PathBuf, Option<tempfile::TempDir>) {
        let Api {
            server,
            store,
            router,
            dir,
            _tmp,
        } = self;
        drop(router);
        drop(server);
        let Ok(store) = Arc::try_unwrap(store) else {
            panic!("something still holds the store");
        };
        store.close().await.expect("close store");
        (dir, _tmp)
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        accept: Option<&str>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let req = req.body(Body::from(body)).expect("request");
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> Answer {
        self.raw(
            method,
            path,
            Some(content_type),
            serde_json::to_vec(body).expect("json"),
            None,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.raw(Method::GET, path, None, Vec::new(), None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::POST, path, JSON, body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send(Method::PUT, path, JSON, body).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: &Value) -> Answer {
        self.send(Method::PATCH, path, content_type, body).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.raw(Method::DELETE, path, None, Vec::new(), None).await
    }
}

pub fn configmap(name: &str, labels: Value) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

pub fn pod(name: &str) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

pub fn deployment(name: &str) -> Value {
    serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
}
