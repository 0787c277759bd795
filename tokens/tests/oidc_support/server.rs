//! A small HTTPS OpenID provider on loopback for tests and benches: a discovery document and a
//! JWKS that can be changed while it runs, a switch that makes it answer 503, hit counters.
//! Certificates come from rcgen: a CA ([`Server::ca_pem`]) and a leaf for 127.0.0.1.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the provider serves, changeable while it runs.
pub struct Provider {
    pub issuer: String,
    /// The issuer the discovery document claims (normally `issuer`).
    pub claimed_issuer: Mutex<String>,
    pub jwks: Mutex<String>,
    /// Answer 503 to everything.
    pub down: AtomicBool,
    pub jwks_hits: AtomicUsize,
    pub discovery_hits: AtomicUsize,
}

pub struct Server {
    pub provider: Arc<Provider>,
    pub ca_pem: String,
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test provider CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (Arc::new(config), ca.as_ref().pem())
}

async fn serve(provider: Arc<Provider>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if provider.down.load(Ordering::SeqCst) {
        return reply(StatusCode::SERVICE_UNAVAILABLE, "{}".into());
    }
    match request.uri().path() {
        "/.well-known/openid-configuration" | "/custom-discovery" => {
            provider.discovery_hits.fetch_add(1, Ordering::SeqCst);
            let document = serde_json::json!({
                "issuer": *provider.claimed_issuer.lock().unwrap(),
                "jwks_uri": format!("{}/jwks", provider.issuer),
                "authorization_endpoint": format!("{}/auth", provider.issuer),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            });
            reply(StatusCode::OK, document.to_string())
        }
        "/jwks" => {
            provider.jwks_hits.fetch_add(1, Ordering::SeqCst);
            reply(StatusCode::OK, provider.jwks.lock().unwrap().clone())
        }
        "/redirect" => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", "/jwks")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        _ => reply(StatusCode::NOT_FOUND, "{}".into()),
    }
}

pub async fn start(jwks: String) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let (tls, ca_pem) = tls_config();
    let provider = Arc::new(Provider {
        claimed_issuer: Mutex::new(issuer.clone()),
        issuer,
        jwks: Mutex::new(jwks),
        down: AtomicBool::new(false),
        jwks_hits: AtomicUsize::new(0),
        discovery_hits: AtomicUsize::new(0),
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let shared = Arc::clone(&provider);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let provider = Arc::clone(&shared);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let provider = Arc::clone(&provider);
                    async move { Ok::<_, std::convert::Infallible>(serve(provider, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Server {
        provider,
        ca_pem,
        task,
    }
}
