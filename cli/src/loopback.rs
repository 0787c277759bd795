//! In-process API clients for `kgate up`'s own components (simulated nodes, scheduler,
//! controllers): their requests enter the same pipeline the TLS listener feeds —
//! authentication, authorization, the API server — without a socket.
//!
//! Each client carries a client certificate issued by kgate's CA, handed to the pipeline as the
//! connection's [`PeerCertificates`], exactly as [`kgate_gateway::serve`] hands over what a TLS peer
//! presented; the X.509 authenticator verifies it and RBAC judges its user as for any client.
//! What is skipped is only what a network needs: TCP, the TLS record layer, HTTP framing. With
//! 1,000 simulated nodes on a 2-core machine that cut kgate's CPU per pod by about 30%
//! (BENCHMARKS.md, "The cluster under load").
//!
//! Trust: the TLS handshake proves the peer holds the certificate's key; here the certificate
//! never leaves the process that issued it, and nothing outside the process can reach this
//! path, so holding the certificate is the proof.

use crate::wiring::PipelineService;
use axum::body::Body;
use http::{Request, Response};
use kgate_core::Status;
use kgate_gateway::peer::PeerCertificates;
use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use tower::{Service, ServiceExt};

/// A `kube::Client` transport into `pipeline` with the identity of the certificate `cert_der`.
///
/// The client holds the pipeline weakly: the components' tasks must not keep the API server
/// (and the store file it holds) alive past [`crate::up::Running::shutdown`], which drops the
/// last strong reference. A request after that is answered 503.
pub fn client(pipeline: Weak<PipelineService>, cert_der: Vec<u8>) -> kube::Client {
    let transport = Loopback {
        pipeline,
        peer: PeerCertificates(Arc::new(vec![cert_der])),
    };
    // Namespaced calls in the components always name their namespace; kube's default otherwise.
    kube::Client::new(transport, "default")
}

/// The transport: each request gets the peer certificate and goes into the pipeline.
#[derive(Clone)]
struct Loopback {
    pipeline: Weak<PipelineService>,
    peer: PeerCertificates,
}

impl Service<Request<kube::client::Body>> for Loopback {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = <PipelineService as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the pipeline's, awaited per request by `oneshot` in `call`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<kube::client::Body>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(self.peer.clone());
        match self.pipeline.upgrade() {
            Some(pipeline) => Box::pin(PipelineService::clone(&pipeline).oneshot(request)),
            None => Box::pin(std::future::ready(Ok(
                kgate_gateway::layers::rescue::status_response(&Status::service_unavailable(
                    "kgate is shutting down",
                )),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::util::BoxCloneSyncService;

    /// A pipeline that answers with the size of the peer certificate it was handed.
    fn echo_pipeline() -> Arc<PipelineService> {
        let service = tower::service_fn(|request: Request<Body>| async move {
            let certificates = request
                .extensions()
                .get::<PeerCertificates>()
                .map(|p| p.0.iter().map(Vec::len).sum::<usize>())
                .unwrap_or_default();
            Ok::<_, Infallible>(Response::new(Body::from(format!(
                "{} {certificates}",
                request.uri().path()
            ))))
        });
        Arc::new(BoxCloneSyncService::new(service))
    }

    fn get(path: &str) -> Request<Vec<u8>> {
        Request::get(path).body(Vec::new()).expect("a request")
    }

    #[tokio::test]
    async fn requests_reach_the_pipeline_with_the_certificate() {
        let pipeline = echo_pipeline();
        let client = client(Arc::downgrade(&pipeline), vec![7; 42]);
        let answer = client
            .request_text(get("/api/v1/pods"))
            .await
            .expect("an answer");
        assert_eq!(answer, "/api/v1/pods 42");
    }

    #[tokio::test]
    async fn after_shutdown_requests_are_refused_with_a_status() {
        let pipeline = echo_pipeline();
        let client = client(Arc::downgrade(&pipeline), vec![7; 42]);
        drop(pipeline);
        match client.request_text(get("/api/v1/pods")).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 503);
                assert_eq!(status.message, "kgate is shutting down");
            }
            other => panic!("expected a 503 Status, got {other:?}"),
        }
    }
}
