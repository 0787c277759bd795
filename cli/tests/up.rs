//! `kgate up` in-process on a free port with a fresh data directory, called over TLS with the
//! admin certificate and with bad ones; and the split mode (`controlplane` + `gateway`).

// The gateway's own test helpers (HTTPS clients over its upstream client), shared rather than copied.
#[path = "../../gateway/tests/support/mod.rs"]
mod support;

use clap::Parser as _;
use http::StatusCode;
use kgate_cli::args::{Cli, Command};
use kgate_cli::up::{self, Running};
use kgate_gateway::pki::Pki;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::{client, expired_cert, foreign_cert, get};

fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(args).expect("arguments parse").command
}

async fn start_up(data_dir: &std::path::Path) -> Running {
    let dir = data_dir.to_str().expect("utf-8 path");
    let Command::Up(options) =
        parse(&["kgate", "up", "--data-dir", dir, "--listen", "127.0.0.1:0"])
    else {
        panic!("not up");
    };
    let running = up::start_up(options.validate().expect("valid"))
        .await
        .expect("kgate up starts");
    assert!(
        running.wait_ready(Duration::from_secs(30)).await,
        "{:?}",
        running.readiness().missing()
    );
    running
}

fn assert_unauthorized(status: StatusCode, body: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("\"kind\":\"Status\""), "{body}");
}

#[tokio::test]
async fn up_serves_the_admin_and_refuses_bad_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start_up(dir.path()).await;
    let addr = running.local_addr();
    let kubeconfig = running
        .kubeconfig_path()
        .expect("kubeconfig written")
        .to_owned();
    let mode = std::fs::metadata(&kubeconfig)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&kubeconfig).expect("read kubeconfig");
    assert!(text.contains(&format!("server: https://{addr}")), "{text}");

    let pki = Pki::load_or_create(dir.path()).expect("pki");
    let admin = client(&pki, addr, Some(&pki.admin));
    assert_eq!(get(&admin, "/readyz").await.0, StatusCode::OK);
    let (status, _, body) = get(&admin, "/api/v1/namespaces").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("NamespaceList"), "{body}");

    let (status, _, body) = get(&client(&pki, addr, None), "/api/v1/namespaces").await;
    assert_unauthorized(status, &body);
    let (status, _, body) = get(
        &client(&pki, addr, Some(&expired_cert(&pki, "kubernetes-admin"))),
        "/api/v1/namespaces",
    )
    .await;
    assert_unauthorized(status, &body);
    let (status, _, body) = get(
        &client(&pki, addr, Some(&foreign_cert())),
        "/api/v1/namespaces",
    )
    .await;
    assert_unauthorized(status, &body);

    running.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );

    // A restart reuses the CA: the old admin certificate still works.
    let running = start_up(dir.path()).await;
    let admin = client(&pki, running.local_addr(), Some(&pki.admin));
    assert_eq!(get(&admin, "/api/v1/namespaces").await.0, StatusCode::OK);
    running.shutdown().await;
}

#[tokio::test]
async fn split_mode_passes_identity_over_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().to_str().expect("utf-8 path");
    let Command::Controlplane(options) = parse(&[
        "kgate",
        "controlplane",
        "--data-dir",
        data_dir,
        "--listen",
        "127.0.0.1:0",
    ]) else {
        panic!("not controlplane");
    };
    let control_plane = up::start_controlplane(options.validate().expect("valid"))
        .await
        .expect("control plane starts");
    let upstream = format!("https://{}", control_plane.local_addr());
    let Command::Gateway(options) = parse(&[
        "kgate",
        "gateway",
        "--data-dir",
        data_dir,
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
    ]) else {
        panic!("not gateway");
    };
    let gateway = up::start_gateway(options.validate().expect("valid"))
        .await
        .expect("gateway starts");
    assert!(
        gateway.wait_ready(Duration::from_secs(30)).await,
        "{:?}",
        gateway.readiness().missing()
    );

    let pki = Pki::load_or_create(dir.path()).expect("pki");
    let admin = client(&pki, gateway.local_addr(), Some(&pki.admin));
    let (status, _, body) = get(&admin, "/api/v1/namespaces").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The admin certificate straight at the control plane: refused, front-proxy headers or not.
    let direct = client(&pki, control_plane.local_addr(), Some(&pki.admin));
    assert_eq!(
        get(&direct, "/api/v1/namespaces").await.0,
        StatusCode::FORBIDDEN
    );

    gateway.shutdown().await;
    control_plane.shutdown().await;
}

#[tokio::test]
async fn kubeconfig_command_issues_a_certificate_from_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("pki");
    let Command::Kubeconfig(options) = parse(&[
        "kgate",
        "kubeconfig",
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
        "--user",
        "alice",
        "--group",
        "dev",
        "--group",
        "qa",
        "--expiration",
        "24h",
    ]) else {
        panic!("not kubeconfig");
    };
    let text = up::issue_kubeconfig(&options.validate().expect("valid")).expect("issued");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    assert_eq!(doc["users"][0]["name"], "alice");
    assert_eq!(
        doc["clusters"][0]["cluster"]["server"],
        "https://127.0.0.1:6443"
    );
    use base64::Engine as _;
    let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
        .as_str()
        .expect("ca data");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca)
        .expect("base64");
    assert_eq!(String::from_utf8_lossy(&ca), pki.ca.cert_pem());
}
