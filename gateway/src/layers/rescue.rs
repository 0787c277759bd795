//! Rescue: the one place a [`GatewayError`] or a panic becomes an HTTP response, a
//! `metav1.Status` with the Kubernetes reason and code so kubectl prints it as it prints
//! kube-apiserver's errors. Panics are caught by [`PanicRecovery`] inside this stage (a 500,
//! logged once, kube's `WithPanicRecovery`), so every failure below answers from here.
//!
//! Threat model: error bodies go to whoever sent the request, authenticated or not. A 401 says
//! only "Unauthorized" (which check failed is for the log); a 500 or an upstream failure says
//! nothing of the cause (paths, addresses and library errors go to the log, not the body).
//! Errors are classified by who caused them, as Pingora does: the client (4xx), the upstream
//! (502/503/504), or us (500).

use crate::error::GatewayError;
use crate::layers::recovery::{PanicRecovery, PanicRecoveryLayer};
use axum::body::Body;
use futures::future::{FutureExt, Map};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use kgate_core::Status;
use std::convert::Infallible;
use std::task::{ready, Context, Poll};
use tower::{Layer, Service};

/// Wraps a stack whose error is [`GatewayError`] into one that never fails, and never panics.
#[derive(Debug, Clone, Copy)]
pub struct RescueLayer {
    recovery: PanicRecoveryLayer,
}

impl RescueLayer {
    pub fn new() -> Self {
        Self {
            recovery: PanicRecoveryLayer::new(),
        }
    }
}

impl Default for RescueLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Rescue<S> {
        Rescue {
            inner: self.recovery.layer(inner),
            ready_error: None,
        }
    }
}

/// The rescue service; see the module docs.
#[derive(Debug)]
pub struct Rescue<S> {
    inner: PanicRecovery<S>,
    /// An error the inner service reported from `poll_ready`: this service is infallible, so it
    /// reports ready and answers the next request with the error's Status instead.
    ready_error: Option<GatewayError>,
}

impl<S> Clone for Rescue<S>
where
    PanicRecovery<S>: Clone,
{
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            // The error belongs to the instance whose inner service failed; a clone starts afresh.
            ready_error: None,
        }
    }
}

type RescueFn = fn(Result<Response<Body>, GatewayError>) -> Result<Response<Body>, Infallible>;

impl<S> Service<Request<Body>> for Rescue<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = futures::future::Either<
        futures::future::Ready<Result<Response<Body>, Infallible>>,
        Map<<PanicRecovery<S> as Service<Request<Body>>>::Future, RescueFn>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.ready_error.is_none() {
            if let Err(error) = ready!(self.inner.poll_ready(cx)) {
                self.ready_error = Some(error);
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if let Some(error) = self.ready_error.take() {
            return futures::future::Either::Left(futures::future::ready(Ok(error_response(
                &error,
            ))));
        }
        let rescue: RescueFn = |result| Ok(result.unwrap_or_else(|error| error_response(&error)));
        futures::future::Either::Right(self.inner.call(request).map(rescue))
    }
}

/// The `metav1.Status` for an error, logging what the body leaves out.
pub fn error_status(error: &GatewayError) -> Status {
    match error {
        GatewayError::RequestInfo(e) => Status::bad_request(e.to_string()),
        GatewayError::NoRoute(no_route) => no_route.to_status(),
        GatewayError::Unauthenticated(_) => {
            // The authentication stage logged the reason; the body must not carry it.
            Status::unauthorized()
        }
        GatewayError::Forbidden(denied) => Status::forbidden(&denied.attributes, &denied.reason),
        GatewayError::TooLarge(message) => Status::request_entity_too_large(message.clone()),
        GatewayError::HeadersTooLarge { size, limit } => {
            // kube has no StatusReason for 431 (Go's net/http answers it before any handler), so
            // the reason is left unknown and the message says what to fix.
            Status::failure(
                431,
                "",
                format!(
                    "Request Header Fields Too Large: the request line and headers are {size} bytes, over the limit of {limit} bytes"
                ),
            )
        }
        GatewayError::BodyTooLarge { limit } => {
            Status::request_entity_too_large(format!("limit is {limit} bytes"))
        }
        GatewayError::BadRequest(message) => Status::bad_request(message.clone()),
        GatewayError::Undecodable(status) | GatewayError::Invalid(status) => (**status).clone(),
        GatewayError::UpstreamUnavailable(source) => {
            tracing::warn!(error = %error, cause = %source, "upstream unavailable");
            Status::service_unavailable("the control plane is unavailable, try again later")
        }
        GatewayError::UpstreamTimeout => {
            tracing::warn!(error = %error, "upstream timed out");
            Status::timeout("the control plane did not answer in time")
        }
        GatewayError::UpstreamProtocol(source) => {
            tracing::warn!(error = %error, cause = %source, "upstream protocol error");
            Status::bad_gateway("the connection to the control plane failed")
        }
        GatewayError::MissingProof { .. } | GatewayError::Internal(_) => {
            // A bug of ours: the details help us and could help an attacker map the gateway.
            tracing::error!(error = %error, "internal error");
            Status::internal("the gateway could not handle the request, see its log")
        }
    }
}

/// The HTTP response for an error: its Status as JSON, with the Status's code.
pub fn error_response(error: &GatewayError) -> Response<Body> {
    let status = error_status(error);
    tracing::debug!(code = status.code, reason = %status.reason, "request refused");
    status_response(&status)
}

/// A Status as an HTTP response.
pub fn status_response(status: &Status) -> Response<Body> {
    let mut response = Response::new(Body::from(status.to_json()));
    *response.status_mut() =
        StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::body_text;
    use kgate_core::authn::AuthnError;
    use kgate_core::authz::Denied;
    use kgate_core::{Attributes, UserInfo};
    use serde_json::{json, Value};
    use tower::ServiceExt;

    /// A service that always fails with the error `make` builds.
    fn failing(
        make: fn() -> GatewayError,
    ) -> impl Service<
        Request<Body>,
        Response = Response<Body>,
        Error = GatewayError,
        Future = futures::future::Ready<Result<Response<Body>, GatewayError>>,
    > + Clone {
        tower::service_fn(move |_: Request<Body>| futures::future::ready(Err(make())))
    }

    async fn rescued(make: fn() -> GatewayError) -> (u16, Value) {
        let response = RescueLayer::new()
            .layer(failing(make))
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap_or_else(|never| match never {});
        let code = response.status().as_u16();
        assert_eq!(
            response.headers().get(CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
        let body: Value = serde_json::from_str(&body_text(response).await).unwrap_or(Value::Null);
        (code, body)
    }

    #[tokio::test]
    async fn unauthorized_is_only_unauthorized() {
        let (code, body) = rescued(|| {
            GatewayError::Unauthenticated(AuthnError::Invalid {
                authenticator: "x509",
                reason: "x509: certificate has expired or is not yet valid".into(),
            })
        })
        .await;
        assert_eq!(code, 401);
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
    }

    #[tokio::test]
    async fn forbidden_uses_kube_wording() {
        let (code, body) = rescued(|| {
            GatewayError::Forbidden(Box::new(Denied {
                attributes: Attributes::resource(
                    UserInfo::new("alice"),
                    "list",
                    "",
                    "pods",
                    "team",
                ),
                reason: String::new(),
            }))
        })
        .await;
        assert_eq!(code, 403);
        assert_eq!(body["reason"], "Forbidden");
        assert_eq!(
            body["message"],
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team""#
        );
        assert_eq!(body["details"], json!({"kind": "pods"}));
    }

    #[tokio::test]
    async fn client_errors_have_their_codes() {
        let (code, body) = rescued(|| GatewayError::BadRequest("no".into())).await;
        assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
        let (code, body) = rescued(|| GatewayError::BodyTooLarge { limit: 10 }).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (413, Some("RequestEntityTooLarge"))
        );
        let (code, body) = rescued(|| GatewayError::HeadersTooLarge {
            size: 20,
            limit: 10,
        })
        .await;
        assert_eq!(code, 431);
        assert_eq!(body["code"], 431);
        assert!(body.get("reason").is_none());
        assert!(body["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit of 10 bytes")));
    }

    #[tokio::test]
    async fn upstream_failures_are_5xx_without_details() {
        let (code, body) =
            rescued(|| GatewayError::UpstreamUnavailable("connect 10.0.0.7:6443 refused".into()))
                .await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (503, Some("ServiceUnavailable"))
        );
        assert!(!body.to_string().contains("10.0.0.7"));
        let (code, body) = rescued(|| GatewayError::UpstreamTimeout).await;
        assert_eq!((code, body["reason"].as_str()), (504, Some("Timeout")));
        let (code, body) =
            rescued(|| GatewayError::UpstreamProtocol("h2 GOAWAY at 10.0.0.7".into())).await;
        assert_eq!(code, 502);
        assert!(!body.to_string().contains("10.0.0.7"));
    }

    #[tokio::test]
    async fn our_bugs_are_500_with_a_generic_message() {
        let (code, body) = rescued(|| GatewayError::MissingProof {
            stage: "authorization",
            proof: "Authenticated",
        })
        .await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (500, Some("InternalError"))
        );
        assert!(!body.to_string().contains("Authenticated"));
        let (code, body) = rescued(|| GatewayError::Internal("lock at /var/x".into())).await;
        assert_eq!(code, 500);
        assert!(!body.to_string().contains("/var/x"));
    }

    #[tokio::test]
    async fn a_poll_ready_error_answers_the_next_request() {
        #[derive(Clone)]
        struct NotReady;
        impl Service<Request<Body>> for NotReady {
            type Response = Response<Body>;
            type Error = GatewayError;
            type Future = futures::future::Ready<Result<Response<Body>, GatewayError>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
                Poll::Ready(Err(GatewayError::UpstreamTimeout))
            }
            fn call(&mut self, _: Request<Body>) -> Self::Future {
                futures::future::ready(Ok(Response::new(Body::empty())))
            }
        }
        let response = RescueLayer::new()
            .layer(NotReady)
            .oneshot(Request::new(Body::empty()))
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
