//! Health: `GET /healthz`, `/livez` and `/readyz` are answered here, before authentication, as
//! kube-apiserver lets anyone read them (the `system:public-info-viewer` ClusterRole is bound to
//! `system:unauthenticated`). Load balancers and `kgate up` probe them without credentials.
//!
//! `/healthz` and `/livez` say the process serves; `/readyz` is 200 only once every
//! [`Readiness`] check has passed, and otherwise 503 naming the checks still missing, in
//! kube-apiserver's plain-text format (`[-]rbac failed: not ready`).
//!
//! Threat model: the answers hold only check names, which are no secret; nothing here reads a
//! credential, so a probe with a garbage token is still answered.

use crate::error::GatewayError;
use crate::layers::{proceed, StageFuture};
use crate::readiness::Readiness;
use axum::body::Body;
use futures::future::Either;
use http::header::{HeaderValue, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::{Method, Request, Response, StatusCode};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Answers the health endpoints; see the module docs.
#[derive(Debug, Clone)]
pub struct HealthLayer {
    readiness: Readiness,
}

impl HealthLayer {
    pub fn new(readiness: Readiness) -> Self {
        Self { readiness }
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = Health<S>;
    fn layer(&self, inner: S) -> Health<S> {
        Health {
            inner,
            readiness: self.readiness.clone(),
        }
    }
}

/// The health service.
#[derive(Debug, Clone)]
pub struct Health<S> {
    inner: S,
    readiness: Readiness,
}

impl<S> Health<S> {
    /// The answer for a health path, or `None` for any other request.
    fn answer(&self, request: &Request<Body>) -> Option<Response<Body>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return None;
        }
        let (code, body) = match request.uri().path() {
            "/healthz" | "/livez" => (StatusCode::OK, "ok".to_owned()),
            "/readyz" => {
                let failures = self.readiness.failures();
                if failures.is_empty() {
                    (StatusCode::OK, "ok".to_owned())
                } else {
                    let mut body: String = failures
                        .iter()
                        .map(|(name, problem)| format!("[-]{name} failed: {problem}\n"))
                        .collect();
                    body.push_str("readyz check failed");
                    (StatusCode::SERVICE_UNAVAILABLE, body)
                }
            }
            _ => return None,
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = code;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        Some(response)
    }
}

impl<S> Service<Request<Body>> for Health<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = StageFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match self.answer(&request) {
            Some(response) => Either::Left(futures::future::ready(Ok(response))),
            None => proceed(self.inner.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{body_text, Recorder};
    use tower::ServiceExt;

    async fn get(readiness: &Readiness, path: &str) -> (StatusCode, String, bool) {
        let recorder = Recorder::default();
        let request = Request::get(path)
            .body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()));
        let response = HealthLayer::new(readiness.clone())
            .layer(recorder.clone())
            .oneshot(request)
            .await;
        match response {
            Ok(response) => {
                let code = response.status();
                (code, body_text(response).await, recorder.seen().is_some())
            }
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
        }
    }

    #[tokio::test]
    async fn healthz_and_livez_answer_ok_without_the_handler() {
        let readiness = Readiness::default();
        readiness.register("rbac");
        for path in ["/healthz", "/livez"] {
            assert_eq!(
                get(&readiness, path).await,
                (StatusCode::OK, "ok".to_owned(), false)
            );
        }
    }

    #[tokio::test]
    async fn readyz_names_what_is_missing_until_ready() {
        let readiness = Readiness::default();
        readiness.register("rbac");
        readiness.register("store");
        readiness.set("store", true);
        let (code, body, _) = get(&readiness, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "[-]rbac failed: not ready\nreadyz check failed");
        readiness.set("rbac", true);
        assert_eq!(
            get(&readiness, "/readyz").await,
            (StatusCode::OK, "ok".to_owned(), false)
        );
    }

    #[tokio::test]
    async fn other_paths_reach_the_handler() {
        let readiness = Readiness::default();
        for path in ["/api", "/healthz/etcd", "/readyzz"] {
            let (_, _, reached) = get(&readiness, path).await;
            assert!(reached, "{path}");
        }
    }
}
