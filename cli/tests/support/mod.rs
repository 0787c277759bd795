//! Shared test helpers: HTTPS clients with or without a client certificate, built on the
//! gateway's own upstream client.

#![allow(dead_code)] // each test binary uses a different subset

use axum::body::Body;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kgate_gateway::pki::{IssuedCert, Pki, Validity};
use kgate_gateway::upstream::RemoteUpstream;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;

/// A client that trusts `pki`'s CA and presents `cert` (or nothing).
pub fn client(pki: &Pki, addr: SocketAddr, cert: Option<&IssuedCert>) -> RemoteUpstream {
    let tls = match cert {
        Some(cert) => {
            kgate_gateway::tls::client_config(pki.ca.cert_der(), cert).expect("client TLS config")
        }
        None => {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from(pki.ca.cert_der().to_vec()))
                .expect("CA");
            let mut config =
                rustls::ClientConfig::builder_with_provider(kgate_gateway::tls::provider())
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Arc::new(config)
        }
    };
    let base: http::Uri = format!("https://{addr}").parse().expect("uri");
    RemoteUpstream::new(&base, tls)
}

/// A certificate from the CA that expired yesterday.
pub fn expired_cert(pki: &Pki, user: &str) -> IssuedCert {
    let now = time::OffsetDateTime::now_utc();
    let validity = Validity {
        not_before: now - time::Duration::days(2),
        not_after: now - time::Duration::days(1),
    };
    pki.ca
        .issue_client_cert(user, &[], validity)
        .expect("issue expired cert")
}

/// An admin-looking certificate from a CA nobody trusts.
pub fn foreign_cert() -> IssuedCert {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = Pki::load_or_create(dir.path()).expect("other PKI");
    other.admin.clone()
}

/// GETs `path`; returns status, HTTP version and body text.
pub async fn get(client: &RemoteUpstream, path: &str) -> (StatusCode, http::Version, String) {
    let request = Request::get(path).body(Body::empty()).expect("request");
    let response: Response<Body> = client.send(request).await.expect("response");
    let status = response.status();
    let version = response.version();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, version, String::from_utf8_lossy(&body).into_owned())
}
