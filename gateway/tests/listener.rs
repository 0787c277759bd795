//! The TLS listener on its own: client certificates are requested, recorded and never judged at
//! the handshake (the pipeline judges them); HTTP/2 by ALPN; graceful shutdown. The control
//! plane's listener, in contrast, requires a certificate from the CA.

mod support;

use axum::body::Body;
use http::{Request, Response, StatusCode};
use kgate_gateway::front_proxy_guard::{FrontProxyGuard, RequestHeaderAuthority};
use kgate_gateway::peer::{PeerAddr, PeerCertificates};
use kgate_gateway::pki::Pki;
use kgate_gateway::serve::{serve, ServeOptions};
use std::convert::Infallible;
use support::{client, expired_cert, foreign_cert, get};
use tokio::net::TcpListener;

/// Answers with how many certificates the peer presented and whether its address was recorded.
async fn echo_peer(request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let certs = request
        .extensions()
        .get::<PeerCertificates>()
        .map(|c| c.0.len())
        .unwrap_or(usize::MAX);
    let addr = request.extensions().get::<PeerAddr>().is_some();
    Ok(Response::new(Body::from(format!(
        "certs={certs} addr={addr}"
    ))))
}

#[tokio::test]
async fn certificates_are_recorded_not_judged_and_h2_is_negotiated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("pki");
    let tls = kgate_gateway::tls::gateway_server_config(&pki.serving).expect("tls");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        tls,
        tower::service_fn(echo_peer),
        ServeOptions::new(64 * 1024),
        async move {
            let _ = stopped.await;
        },
    ));

    let (status, version, body) = get(&client(&pki, addr, Some(&pki.admin)), "/").await;
    assert_eq!(
        (status, version, body.as_str()),
        (StatusCode::OK, http::Version::HTTP_2, "certs=1 addr=true")
    );

    let (_, _, body) = get(&client(&pki, addr, None), "/").await;
    assert_eq!(body, "certs=0 addr=true");

    // Neither an expired nor a foreign certificate fails the handshake: the X.509 authenticator
    // turns them into 401 Status objects later.
    let (_, _, body) = get(&client(&pki, addr, Some(&expired_cert(&pki, "old"))), "/").await;
    assert_eq!(body, "certs=1 addr=true");
    let (_, _, body) = get(&client(&pki, addr, Some(&foreign_cert())), "/").await;
    assert_eq!(body, "certs=1 addr=true");

    let _ = stop.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("shutdown finishes")
        .expect("server task");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn the_control_plane_listener_requires_a_ca_certificate_and_the_front_proxy_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("pki");
    let client_cas = [
        pki.ca.cert_der().to_vec(),
        pki.front_proxy_ca.cert_der().to_vec(),
    ];
    let tls =
        kgate_gateway::tls::controlplane_server_config(&pki.serving, &client_cas).expect("tls");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = axum::Router::new().route("/api", axum::routing::get(|| async { "api" }));
    tokio::spawn(serve(
        listener,
        tls,
        FrontProxyGuard::new(
            router,
            RequestHeaderAuthority::front_proxy_ca(pki.front_proxy_ca.cert_der()).expect("ca"),
        ),
        ServeOptions::new(64 * 1024),
        std::future::pending(),
    ));

    // No certificate, or one from another CA: the handshake itself fails.
    for cert in [None, Some(foreign_cert())] {
        let request = Request::get("/readyz")
            .body(Body::empty())
            .expect("request");
        let result = client(&pki, addr, cert.as_ref()).send(request).await;
        assert!(result.is_err(), "handshake should fail");
    }

    // A CA certificate that is not the gateway's: health yes, API no.
    let admin = client(&pki, addr, Some(&pki.admin));
    assert_eq!(get(&admin, "/readyz").await.0, StatusCode::OK);
    assert_eq!(get(&admin, "/api").await.0, StatusCode::FORBIDDEN);

    // The gateway's certificate with a user: passed on.
    let gateway = client(&pki, addr, Some(&pki.front_proxy));
    let request = Request::get("/api")
        .header("x-remote-user", "alice")
        .body(Body::empty())
        .expect("request");
    let response = gateway.send(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
}
