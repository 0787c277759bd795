//! Request info: the method and the raw path become a [`RequestInfo`] in the request's
//! extensions, as k8s.io/apiserver's `WithRequestInfo`.
//!
//! Threat model: the path is the client's. A non-canonical one (`..`, `//`, `%2F`) is refused
//! here with 400, before any other stage reads it, so the authorizer and the upstream can never
//! disagree about which object a request addresses. Later stages read the parsed info, not the
//! path.

use crate::error::GatewayError;
use crate::layers::{proceed, refuse, trace, StageFuture};
use axum::body::Body;
use http::{Request, Response};
use kgate_core::RequestInfo;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Parses every request's path; see the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestInfoLayer;

impl RequestInfoLayer {
    pub fn new() -> Self {
        Self
    }
}

impl<S> Layer<S> for RequestInfoLayer {
    type Service = RequestInfoStage<S>;
    fn layer(&self, inner: S) -> RequestInfoStage<S> {
        RequestInfoStage { inner }
    }
}

/// The request-info service.
#[derive(Debug, Clone)]
pub struct RequestInfoStage<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for RequestInfoStage<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = StageFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let uri = request.uri();
        let info = match RequestInfo::parse(request.method().as_str(), uri.path(), uri.query()) {
            Ok(info) => info,
            Err(e) => return refuse(GatewayError::RequestInfo(e)),
        };
        trace::record("verb", &info.verb);
        if info.is_resource_request {
            trace::record("resource", &info.resource);
            trace::record("namespace", &info.namespace);
        }
        request.extensions_mut().insert(info);
        // This service was polled ready: calling it, not a clone, keeps tower's contract.
        proceed(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Recorder;
    use tower::ServiceExt;

    async fn run(uri: &str) -> (Result<Response<Body>, GatewayError>, Recorder) {
        let recorder = Recorder::default();
        let request = Request::get(uri)
            .body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()));
        let result = RequestInfoLayer::new()
            .layer(recorder.clone())
            .oneshot(request)
            .await;
        (result, recorder)
    }

    #[tokio::test]
    async fn parsed_info_reaches_the_handler() {
        let (result, recorder) = run("/api/v1/namespaces/team/pods?watch=true").await;
        assert!(result.is_ok());
        let seen = recorder.seen().and_then(|s| s.extensions);
        let info = seen.as_ref().and_then(|e| e.get::<RequestInfo>());
        assert_eq!(
            info.map(|i| (i.verb.as_str(), i.namespace.as_str(), i.name.as_str())),
            Some(("watch", "team", ""))
        );
    }

    #[tokio::test]
    async fn non_canonical_paths_are_refused_before_the_handler() {
        for uri in [
            "/api/v1/namespaces/team/pods/../secrets",
            "/api/v1/namespaces/team%2Fx/pods",
            "/api//v1/pods",
        ] {
            let (result, recorder) = run(uri).await;
            assert!(
                matches!(result, Err(GatewayError::RequestInfo(_))),
                "{uri} was accepted"
            );
            assert!(recorder.seen().is_none(), "{uri} reached the handler");
        }
    }

    #[tokio::test]
    async fn non_canonical_paths_are_400_statuses() {
        let service = crate::layers::rescue::RescueLayer::new()
            .layer(RequestInfoLayer::new().layer(Recorder::default()));
        let request = Request::get("/api/v1/namespaces/a/pods/%2e%2e")
            .body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()));
        let response = service
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), http::StatusCode::BAD_REQUEST);
        let body = crate::layers::testing::body_text(response).await;
        assert!(body.contains(r#""reason":"BadRequest""#), "{body}");
    }
}
