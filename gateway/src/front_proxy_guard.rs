//! What stands in front of the control plane's router when it runs as its own process
//! (`kgate controlplane`): the listener has already required a client certificate from the users'
//! CA or the front-proxy CA; this service decides what that certificate may do.
//!
//! Threat model: the control plane believes `X-Remote-*` headers, so only the gateway may send
//! them. As kube-apiserver's requestheader authentication (k8s.io/apiserver
//! `pkg/authentication/request/headerrequest` behind an x509 verifier), a request's headers are
//! believed only when its client certificate chains to the requestheader CA
//! (`--requestheader-client-ca-file`, by default the data directory's front-proxy CA, which signs
//! nothing else) for client authentication and, if `--requestheader-allowed-names` is not empty,
//! its CN is one of those names. A certificate from the users' CA is never the proxy, whatever
//! its name, so a user who obtains a certificate called `kgate-front-proxy` gains nothing. Such
//! a request (and one with a wrong name) gets its identity headers stripped and a 403 `Status`:
//! it proved who it is at the TLS level (so not 401), but the control plane authorizes nobody
//! itself; it must go through the gateway. A proxy request without `X-Remote-User` is 401.
//! `/healthz`, `/livez` and `/readyz` answer any verified client, as kube-apiserver lets
//! `system:public-info-viewer` see them. A panic below is a 500 ([`crate::layers::recovery`]).

use crate::layers::recovery::{PanicRecovery, PanicRecoveryLayer};
use crate::peer::PeerCertificates;
use crate::pki::FRONT_PROXY_CN;
use crate::proxy::strip_identity_headers;
use crate::x509::X509Authenticator;
use axum::body::Body;
use futures::future::BoxFuture;
use http::{header, Request, Response, StatusCode};
use kgate_core::headers::REMOTE_USER;
use kgate_core::Status;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use thiserror::Error;
use tower::{Layer, ServiceExt};

/// Why the requestheader CA cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RequestHeaderError {
    /// `--requestheader-client-ca-file` cannot be read.
    #[error("cannot read --requestheader-client-ca-file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file holds no PEM certificate, or one that cannot be parsed.
    #[error("--requestheader-client-ca-file {} holds no usable PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    /// rustls refused the certificates as trust anchors.
    #[error("the requestheader CA cannot be used to verify client certificates")]
    Verifier(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Who may send front-proxy headers: certificates that chain to these CAs for client
/// authentication and, unless `allowed_names` is empty, carry one of those CNs.
#[derive(Clone)]
pub struct RequestHeaderAuthority {
    ca_ders: Vec<Vec<u8>>,
    /// The chain check, and its memory of chains that verified (the gateway presents the same
    /// certificate on every request; a signature check per request doubled the control
    /// plane's CPU per request).
    verifier: X509Authenticator,
    allowed_names: Vec<String>,
}

impl std::fmt::Debug for RequestHeaderAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHeaderAuthority")
            .field("cas", &self.ca_ders.len())
            .field("allowed_names", &self.allowed_names)
            .finish()
    }
}

impl RequestHeaderAuthority {
    /// Trusts the CAs `ca_ders` (DER) for the names `allowed_names` (empty: any name).
    pub fn new(
        ca_ders: Vec<Vec<u8>>,
        allowed_names: Vec<String>,
    ) -> Result<Self, RequestHeaderError> {
        let verifier = X509Authenticator::new(ca_ders.clone())
            .map_err(|e| RequestHeaderError::Verifier(Box::new(e)))?;
        Ok(Self {
            ca_ders,
            verifier,
            allowed_names,
        })
    }

    /// The CAs of a PEM file (kube-apiserver's `--requestheader-client-ca-file`).
    pub fn from_pem_file(
        path: &Path,
        allowed_names: Vec<String>,
    ) -> Result<Self, RequestHeaderError> {
        let pem = std::fs::read(path).map_err(|source| RequestHeaderError::Read {
            path: path.to_owned(),
            source,
        })?;
        let ders: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&pem)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|_| RequestHeaderError::NoCertificate {
                path: path.to_owned(),
            })?;
        if ders.is_empty() {
            return Err(RequestHeaderError::NoCertificate {
                path: path.to_owned(),
            });
        }
        Self::new(ders, allowed_names)
    }

    /// The default: the front-proxy CA of the data directory, for [`FRONT_PROXY_CN`] only.
    pub fn front_proxy_ca(ca_der: &[u8]) -> Result<Self, RequestHeaderError> {
        Self::new(vec![ca_der.to_vec()], vec![FRONT_PROXY_CN.to_owned()])
    }

    /// The CAs, DER, for the listener's trust store.
    pub fn ca_ders(&self) -> &[Vec<u8>] {
        &self.ca_ders
    }

    /// True when `chain` (leaf first, DER) is a front proxy's: it verifies against the
    /// requestheader CAs now, for client authentication, and its CN is allowed.
    pub fn is_front_proxy(&self, chain: &[Vec<u8>]) -> bool {
        // The user an x509 authenticator makes of the chain is its leaf's CN.
        match self.verifier.verify(chain, UnixTime::now()) {
            Ok(proxy) => self.allowed_names.is_empty() || self.allowed_names.contains(&proxy.name),
            Err(_) => false,
        }
    }
}

/// The guard around the control plane's router, panic recovery included.
#[derive(Clone)]
pub struct FrontProxyGuard {
    inner: PanicRecovery<Guard>,
}

impl FrontProxyGuard {
    pub fn new(inner: axum::Router, authority: RequestHeaderAuthority) -> Self {
        let guard = Guard {
            inner,
            authority: Arc::new(authority),
        };
        Self {
            inner: PanicRecoveryLayer::new().layer(guard),
        }
    }
}

impl tower::Service<Request<Body>> for FrontProxyGuard {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        self.inner.call(request)
    }
}

/// The decision itself; see the module docs.
#[derive(Clone)]
struct Guard {
    inner: axum::Router,
    authority: Arc<RequestHeaderAuthority>,
}

impl tower::Service<Request<Body>> for Guard {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let authority = self.authority.clone();
        Box::pin(async move {
            if matches!(request.uri().path(), "/healthz" | "/livez" | "/readyz") {
                return Ok(Response::new(Body::from("ok")));
            }
            let chain = request
                .extensions()
                .get::<PeerCertificates>()
                .map(|certs| certs.0.clone())
                .unwrap_or_default();
            if !authority.is_front_proxy(&chain) {
                strip_identity_headers(request.headers_mut());
                let client = chain.first().and_then(|leaf| leaf_common_name(leaf));
                tracing::debug!(client = ?client, path = request.uri().path(), "direct call refused");
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

/// The first CN of a DER certificate.
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
    use crate::pki::{IssuedCert, Pki, Validity};

    /// An upstream that echoes the user it was told about, and panics on /panic.
    fn echo() -> axum::Router {
        axum::Router::new()
            .route(
                "/api",
                axum::routing::get(|headers: http::HeaderMap| async move {
                    headers
                        .get(REMOTE_USER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                }),
            )
            .route(
                "/panic",
                axum::routing::get(|| async {
                    if true {
                        panic!("a bug in a handler");
                    }
                    "unreachable"
                }),
            )
    }

    fn request(path: &str, cert: &[u8], user: Option<&str>) -> Request<Body> {
        let mut request = Request::get(path).body(Body::empty()).unwrap_or_default();
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

    async fn call(guard: &FrontProxyGuard, request: Request<Body>) -> (StatusCode, String) {
        let Ok(response) = guard.clone().oneshot(request).await;
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn guard(pki: &Pki) -> FrontProxyGuard {
        let authority =
            RequestHeaderAuthority::front_proxy_ca(pki.front_proxy_ca.cert_der()).expect("ca");
        FrontProxyGuard::new(echo(), authority)
    }

    fn issue(ca: &crate::pki::CertificateAuthority, name: &str) -> IssuedCert {
        ca.issue_client_cert(name, &[], Validity::from_now(time::Duration::hours(1)))
            .expect("issue")
    }

    #[tokio::test]
    async fn only_the_front_proxy_certificate_may_send_identity_headers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("pki");
        let guard = guard(&pki);
        let (status, body) = call(
            &guard,
            request("/api", &pki.front_proxy.cert_der, Some("alice")),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));

        let (status, _) = call(&guard, request("/api", &pki.front_proxy.cert_der, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        let (status, body) = call(
            &guard,
            request("/api", &pki.admin.cert_der, Some("system:admin")),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("\"kind\":\"Status\""), "{body}");

        // The front-proxy CA, another name: not an allowed name.
        let other = issue(&pki.front_proxy_ca, "kgate-front-proxy-not");
        let (status, _) = call(&guard, request("/api", &other.cert_der, Some("alice"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        // With no allowed names, any name the requestheader CA signed is a proxy (kube's rule).
        let any_name =
            RequestHeaderAuthority::new(vec![pki.front_proxy_ca.cert_der().to_vec()], Vec::new())
                .expect("ca");
        let (status, body) = call(
            &FrontProxyGuard::new(echo(), any_name),
            request("/api", &other.cert_der, Some("alice")),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    }

    #[tokio::test]
    async fn the_proxy_name_from_the_users_ca_is_not_the_proxy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("pki");
        // The users' CA refuses the name; a certificate it signed anyway (as the code before the
        // front-proxy CA did) is made here with rcgen.
        let key = rcgen::KeyPair::generate().expect("key");
        let ca_key = rcgen::KeyPair::from_pem(
            &std::fs::read_to_string(pki.dir.join("ca.key")).expect("read"),
        )
        .expect("ca key");
        let issuer =
            rcgen::Issuer::from_ca_cert_der(&pki.ca.cert_der().into(), &ca_key).expect("issuer");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, FRONT_PROXY_CN);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let impostor = params.signed_by(&key, &issuer).expect("sign");
        let (status, body) = call(
            &guard(&pki),
            request("/api", impostor.der(), Some("kubernetes-admin")),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_next_request_is_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("pki");
        let guard = guard(&pki);
        let (status, body) = call(
            &guard,
            request("/panic", &pki.front_proxy.cert_der, Some("alice")),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("\"reason\":\"InternalError\""), "{body}");
        let (status, body) = call(
            &guard,
            request("/api", &pki.front_proxy.cert_der, Some("alice")),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    }
}
