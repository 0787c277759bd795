//! Trace: one `tracing` span per request, and one log line when the response is ready.
//!
//! The span is opened before anything is known about the request; later stages fill in its empty
//! fields as they learn them (`verb`, `resource`, `namespace` from request info, `user.name` from
//! authentication, `impersonated.name` from impersonation) with [`record`]. It sits outside rescue
//! so its line carries the final status code of every response, refusals included.
//!
//! Threat model: the span holds the path but never the query or any header, so no credential can
//! reach the log through it.

use axum::body::Body;
use futures::future::BoxFuture;
use http::{Request, Response};
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing::Instrument;

/// Opens the request span; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl TraceLayer {
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;
    fn layer(&self, inner: S) -> Trace<S> {
        Trace { inner }
    }
}

/// The trace service.
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
}

/// Records a field of the current request span. Stages call it with the fields the span
/// declares: `verb`, `resource`, `namespace`, `user.name`, `impersonated.name`.
pub fn record(field: &'static str, value: &str) {
    tracing::Span::current().record(field, value);
}

impl<S> Service<Request<Body>> for Trace<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let span = tracing::info_span!(
            "request",
            http.method = %request.method(),
            url.path = %request.uri().path(),
            verb = Empty,
            resource = Empty,
            namespace = Empty,
            user.name = Empty,
            impersonated.name = Empty,
        );
        let started = Instant::now();
        // The stages that decide synchronously run inside `call`, so the span is entered here
        // as well as around the future.
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let result = future.await;
                if let Ok(response) = &result {
                    tracing::debug!(
                        code = response.status().as_u16(),
                        elapsed_us = started.elapsed().as_micros() as u64,
                        "request finished"
                    );
                }
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn passes_requests_and_responses_through() {
        let inner = tower::service_fn(|_: Request<Body>| async {
            record("verb", "get");
            Ok::<_, std::convert::Infallible>(Response::new(Body::from("x")))
        });
        let response = TraceLayer::new()
            .layer(inner)
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), http::StatusCode::OK);
    }
}
