//! The stages of the request pipeline, one tower `Layer` per module, in the order
//! [`crate::chain::build`] stacks them (k8s.io/apiserver's `DefaultBuildHandlerChain`):
//!
//! | module | stage | fails with |
//! |---|---|---|
//! | [`trace`] | the request span and the access log line | never |
//! | [`rescue`] | every [`GatewayError`] becomes a `metav1.Status`; a panic below a 500 ([`recovery`]) | never |
//! | [`request_info`] | method and path → [`kgate_core::RequestInfo`] | 400 |
//! | [`limits`] | header bytes, Content-Length, streamed body | 431, 413 |
//! | [`health`] | `/healthz`, `/livez`, `/readyz` without credentials | never (503 is an answer) |
//! | [`authentication`] | credentials → [`kgate_core::authn::Authenticated`] | 401 |
//! | [`impersonation`] | `Impersonate-*` checked with the `impersonate` verb | 400, 403 |
//! | [`scope`] | a resource at the wrong scope in the path has no route | 404, 405 |
//! | [`authorization`] | [`crate::authorized::AuthorizedRequest`] or a denial | 403 |
//!
//! Behind authorization, [`crate::chain::build`] places the handlers, which take an
//! [`crate::authorized::AuthorizedRequest`]: the review APIs ([`crate::reviews`]), issuer
//! discovery ([`crate::issuer_discovery`]) and the upstream handler.
//!
//! Every stage below rescue speaks `Result<Response<Body>, GatewayError>`; only rescue turns an
//! error into a response, so the wire format of every failure is decided in one place.

use crate::error::GatewayError;
use axum::body::Body;
use futures::future::{Either, Ready};
use http::Response;

pub mod authentication;
pub mod authorization;
pub mod health;
pub mod impersonation;
pub mod limits;
pub mod recovery;
pub mod request_info;
pub mod rescue;
pub mod scope;
pub mod trace;

/// What a stage that decides synchronously returns: its own refusal, or the inner service's future.
/// An enum rather than a box, so stages that need no `await` cost no allocation.
pub type StageFuture<F> = Either<Ready<Result<Response<Body>, GatewayError>>, F>;

/// A stage's refusal, as a [`StageFuture`].
pub(crate) fn refuse<F>(error: GatewayError) -> StageFuture<F> {
    Either::Left(futures::future::ready(Err(error)))
}

/// The inner service's answer, as a [`StageFuture`].
pub(crate) fn proceed<F>(future: F) -> StageFuture<F> {
    Either::Right(future)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A handler that records what reached it, for the stages' tests.

    use crate::error::GatewayError;
    use axum::body::Body;
    use http::{HeaderMap, Request, Response};
    use http_body_util::BodyExt;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Context, Poll};

    /// What the handler saw of the last request.
    #[derive(Debug, Clone, Default)]
    pub struct Seen {
        pub headers: HeaderMap,
        pub extensions: Option<http::Extensions>,
        pub body: Vec<u8>,
    }

    /// Answers 200 "handled" after reading the whole body; a body error is returned as the
    /// handler error an upstream failure would be.
    #[derive(Clone, Default)]
    pub struct Recorder {
        pub seen: Arc<Mutex<Option<Seen>>>,
    }

    impl Recorder {
        pub fn seen(&self) -> Option<Seen> {
            self.seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    impl tower::Service<Request<Body>> for Recorder {
        type Response = Response<Body>;
        type Error = GatewayError;
        type Future = futures::future::BoxFuture<'static, Result<Response<Body>, GatewayError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<Body>) -> Self::Future {
            let seen = self.seen.clone();
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map_err(|e| GatewayError::UpstreamProtocol(Box::new(e)))?
                    .to_bytes()
                    .to_vec();
                *seen.lock().unwrap_or_else(PoisonError::into_inner) = Some(Seen {
                    headers: parts.headers,
                    extensions: Some(parts.extensions),
                    body,
                });
                Ok(Response::new(Body::from("handled")))
            })
        }
    }

    /// Behind the authorization stage: records the request with its proof put in the recorded
    /// extensions, so a test can look at what was authorized.
    impl tower::Service<crate::authorized::AuthorizedRequest> for Recorder {
        type Response = Response<Body>;
        type Error = GatewayError;
        type Future = futures::future::BoxFuture<'static, Result<Response<Body>, GatewayError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: crate::authorized::AuthorizedRequest) -> Self::Future {
            let (proof, mut request) = request.into_parts();
            request.extensions_mut().insert(proof);
            tower::Service::<Request<Body>>::call(self, request)
        }
    }

    /// The body of a response, as text.
    pub async fn body_text(response: Response<Body>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
