//! What stands in front of the control plane's router when it runs as its own process
//! (`kgate controlplane`): the listener has already required a client certificate from kgate's
//! CA; this service decides what that certificate may do.
//!
//! Threat model: the control plane believes `X-Remote-*` headers, so only the gateway may send
//! them. A request whose certificate CN is [`FRONT_PROXY_CN`] is passed on with its headers
//! (and must name a user: 401 otherwise). Any other certificate, even one from the same CA (an
//! admin or developer certificate used directly), gets its identity headers stripped and a 403
//! `Status`: it has proven who it is at the TLS level (so not 401), but the control plane
//! authorizes nobody itself; it must go through the gateway. `/healthz`, `/livez` and `/readyz`
//! answer any verified client, as kube-apiserver lets `system:public-info-viewer` see them.

use crate::peer::PeerCertificates;
use crate::pki::FRONT_PROXY_CN;
use crate::proxy::strip_identity_headers;
use axum::body::Body;
use futures::future::BoxFuture;
use http::{header, Request, Response, StatusCode};
use kgate_core::headers::REMOTE_USER;
use kgate_core::Status;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::ServiceExt;

/// The guard around the control plane's router.
#[derive(Clone)]
pub struct FrontProxyGuard {
    inner: axum::Router,
}

impl FrontProxyGuard {
    pub fn new(inner: axum::Router) -> Self {
        Self { inner }
    }
}

impl tower::Service<Request<Body>> for FrontProxyGuard {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            if matches!(request.uri().path(), "/healthz" | "/livez" | "/readyz") {
                return Ok(Response::new(Body::from("ok")));
            }
            let common_name = request
                .extensions()
                .get::<PeerCertificates>()
                .and_then(|certs| certs.0.first().and_then(|leaf| leaf_common_name(leaf)));
            if common_name.as_deref() != Some(FRONT_PROXY_CN) {
                strip_identity_headers(request.headers_mut());
                tracing::debug!(client = ?common_name, path = request.uri().path(), "direct call refused");
                let status = Status::failure(
                    403,
                    "Forbidden",
                    "the control plane serves only the kgate gateway; send requests through the gateway",
                );
                return Ok(status_response(StatusCode::FORBIDDEN, &status));
            }
            if !request.headers().contains_key(REMOTE_USER) {
                let status = Status::unauthorized();
                return Ok(status_response(StatusCode::UNAUTHORIZED, &status));
            }
            inner.oneshot(request).await
        })
    }
}

/// The first CN of a DER certificate the listener has verified.
fn leaf_common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

fn status_response(code: StatusCode, status: &Status) -> Response<Body> {
    let mut response = Response::new(Body::from(status.to_json()));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{Pki, Validity};
    use std::sync::Arc;

    /// An upstream that echoes the user it was told about.
    fn echo() -> axum::Router {
        axum::Router::new().route(
            "/api",
            axum::routing::get(|headers: http::HeaderMap| async move {
                headers
                    .get(REMOTE_USER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            }),
        )
    }

    fn request(cert: &[u8], user: Option<&str>) -> Request<Body> {
        let mut request = Request::get("/api").body(Body::empty()).unwrap_or_default();
        request
            .extensions_mut()
            .insert(PeerCertificates(Arc::new(vec![cert.to_vec()])));
        if let Some(user) = user {
            request.headers_mut().insert(
                REMOTE_USER,
                http::HeaderValue::from_str(user).unwrap_or(http::HeaderValue::from_static("x")),
            );
        }
        request
    }

    async fn call(request: Request<Body>) -> (StatusCode, String) {
        let Ok(response) = FrontProxyGuard::new(echo()).oneshot(request).await;
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn only_the_front_proxy_certificate_may_send_identity_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("pki");
        let (status, body) = call(request(&pki.front_proxy.cert_der, Some("alice"))).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));

        let (status, _) = call(request(&pki.front_proxy.cert_der, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, body) = call(request(&pki.admin.cert_der, Some("system:admin"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("\"kind\":\"Status\""), "{body}");

        let other = pki
            .ca
            .issue_client_cert(
                "kgate-front-proxy-not",
                &[],
                Validity::from_now(time::Duration::hours(1)),
            )
            .expect("issue");
        let (status, _) = call(request(&other.cert_der, Some("alice"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
