//! Health: `GET /healthz`, `/livez` and `/readyz` are answered here, before authentication, as
//! kube-apiserver lets anyone read them (the `system:public-info-viewer` ClusterRole is bound to
//! `system:unauthenticated`). Load balancers and `kgate up` probe them without credentials.
//!
//! `/healthz` and `/livez` say the process serves; `/readyz` is 200 only once every
//! [`Readiness`] check has passed, and otherwise 503 listing every check in kube-apiserver's
//! plain-text format (k8s.io/apiserver `pkg/server/healthz`): `[+]rbac ok`,
//! `[-]oidc:jwt[0] failed: reason withheld`, then `readyz check failed`. With `?verbose` a
//! passing `/readyz` lists the checks too (`readyz check passed`). kube-apiserver answers a
//! failure with 500; kgate keeps 503, what load balancers read as "not yet".
//!
//! Threat model: anyone may ask, so the answers hold check names only, never why a check fails
//! (an OIDC issuer's URL, a fetch error, an address): the reasons go to the log, where
//! [`Readiness`] writes each change. Nothing here reads a credential, so a probe with a garbage
//! token is still answered.

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
            "/readyz" => readyz(&self.readiness, verbose(request.uri().query())),
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

/// Whether the query asks for the per-check lines (`?verbose`, any value, as kube).
fn verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("verbose"))
    })
}

/// The `/readyz` answer: check names and pass/fail only; see the module docs.
fn readyz(readiness: &Readiness, verbose: bool) -> (StatusCode, String) {
    let checks = readiness.checks();
    let mut lines = String::new();
    let mut failed = Vec::new();
    for (name, problem) in &checks {
        if problem.is_some() {
            lines.push_str(&format!("[-]{name} failed: reason withheld\n"));
            failed.push(name.as_str());
        } else {
            lines.push_str(&format!("[+]{name} ok\n"));
        }
    }
    if !failed.is_empty() {
        // The reasons were logged when each check started failing.
        tracing::debug!(failed = ?failed, "readyz check failed");
        lines.push_str("readyz check failed");
        (StatusCode::SERVICE_UNAVAILABLE, lines)
    } else if verbose {
        lines.push_str("readyz check passed\n");
        (StatusCode::OK, lines)
    } else {
        (StatusCode::OK, "ok".to_owned())
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
    async fn readyz_lists_the_checks_and_withholds_every_reason() {
        let readiness = Readiness::default();
        readiness.register("rbac");
        readiness.register("store");
        readiness.set("store", true);
        readiness.set_problem(
            "oidc:jwt[0]",
            Some("discovery of https://idp.internal.example failed: connection refused".into()),
        );
        let (code, body, _) = get(&readiness, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            "[-]oidc:jwt[0] failed: reason withheld\n\
             [-]rbac failed: reason withheld\n\
             [+]store ok\n\
             readyz check failed"
        );
        assert!(!body.contains("idp.internal") && !body.contains("not ready"));

        readiness.set_problem("oidc:jwt[0]", None);
        readiness.set("rbac", true);
        assert_eq!(
            get(&readiness, "/readyz").await,
            (StatusCode::OK, "ok".to_owned(), false)
        );
        let (code, body, _) = get(&readiness, "/readyz?verbose").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            "[+]oidc:jwt[0] ok\n[+]rbac ok\n[+]store ok\nreadyz check passed\n"
        );
        assert!(verbose(Some("a=b&verbose=1")) && !verbose(Some("verbosely")) && !verbose(None));
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
