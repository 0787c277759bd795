//! The split mode: `kgate controlplane` and `kgate gateway --upstream` as two processes over
//! mutual TLS pass the same kubectl sessions as `kgate up`.

use kgate_e2e::{flows, Identity, Kgate};

#[test]
fn split_mode_admin_session() {
    let kg = Kgate::split();
    flows::admin_flow(&kg);
}

#[test]
fn split_mode_rbac() {
    let kg = Kgate::split();
    flows::alice_flow(&kg);
}

/// curl straight to the control plane with a client certificate and key (PEM) and extra
/// headers; the HTTP status code.
fn curl_controlplane(
    kg: &Kgate,
    name: &str,
    cert: &[u8],
    key: &[u8],
    headers: &[&str],
    path: &str,
) -> String {
    let cp = kg
        .controlplane_addr()
        .expect("split mode has a control plane address");
    let files = kg.files();
    let ca = files.join("cp-ca.crt");
    std::fs::write(
        &ca,
        kgate_e2e::kubeconfig_pem(&kg.admin_kubeconfig(), "certificate-authority-data"),
    )
    .expect("write");
    let cert_path = files.join(format!("cp-{name}.crt"));
    let key_path = files.join(format!("cp-{name}.key"));
    std::fs::write(&cert_path, cert).expect("write");
    std::fs::write(&key_path, key).expect("write");
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "30",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ])
    .arg("--cacert")
    .arg(&ca)
    .arg("--cert")
    .arg(&cert_path)
    .arg("--key")
    .arg(&key_path);
    for header in headers {
        cmd.arg("-H").arg(header);
    }
    cmd.arg(format!("https://{cp}{path}"));
    let run = kgate_e2e::run_bounded(cmd, None, kgate_e2e::CLIENT_TIMEOUT);
    assert!(run.success(), "curl failed:\n{run}");
    run.stdout.trim().to_owned()
}

const ADMIN_HEADERS: [&str; 2] = [
    "X-Remote-User: kubernetes-admin",
    "X-Remote-Group: system:masters",
];

#[test]
fn split_mode_control_plane_refuses_clients_other_than_the_gateway() {
    let kg = Kgate::split();
    // The admin certificate is from the users' CA and is not the gateway's front-proxy client:
    // it must not be able to claim an identity with front-proxy headers.
    let admin = kg.admin_kubeconfig();
    let code = curl_controlplane(
        &kg,
        "admin",
        &kgate_e2e::kubeconfig_pem(&admin, "client-certificate-data"),
        &kgate_e2e::kubeconfig_pem(&admin, "client-key-data"),
        &ADMIN_HEADERS,
        "/api/v1/namespaces/kube-system/secrets",
    );
    assert!(
        code == "401" || code == "403",
        "the control plane accepted front-proxy headers from a non-gateway certificate: {code}"
    );
    // And the gateway still serves.
    let resp = kg
        .request("GET", "/api/v1/namespaces")
        .identity(Identity::Kubeconfig(admin))
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    kg.kubectl_ok(&["get", "ns"]);
}

/// A client certificate for `name` signed with the data directory's users' CA key, as anyone
/// who got a certificate for that name from `kgate kubeconfig` (before it refused the name) or
/// from another tool holding the CA would have: (certificate PEM, key PEM).
fn users_ca_certificate(kg: &Kgate, name: &str) -> (String, String) {
    let pki = kg.data_dir().join("pki");
    let ca_cert = std::fs::read_to_string(pki.join("ca.crt")).expect("read ca.crt");
    let ca_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(pki.join("ca.key")).expect("read ca.key"),
    )
    .expect("CA key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert, ca_key).expect("CA");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

#[test]
fn split_mode_the_front_proxy_name_from_the_users_ca_cannot_claim_an_identity_nor_be_issued() {
    let kg = Kgate::split();
    let (cert, key) = users_ca_certificate(&kg, "kgate-front-proxy");
    let code = curl_controlplane(
        &kg,
        "impostor",
        cert.as_bytes(),
        key.as_bytes(),
        &ADMIN_HEADERS,
        "/api/v1/namespaces/kube-system/secrets",
    );
    assert_eq!(
        code, "403",
        "a users' CA certificate named kgate-front-proxy was believed as the gateway"
    );
    // The gateway's own front-proxy certificate still works: kubectl through the gateway.
    kg.kubectl_ok(&["get", "secrets", "-n", "kube-system"]);

    // And `kgate kubeconfig` does not hand out the name.
    let mut cmd = std::process::Command::new(kgate_e2e::kgate_bin());
    cmd.arg("kubeconfig")
        .arg("--data-dir")
        .arg(kg.data_dir())
        .args(["--user", "kgate-front-proxy", "--server", &kg.url()]);
    let run = kgate_e2e::run_bounded(cmd, None, kgate_e2e::CLIENT_TIMEOUT);
    run.fails_with("reserved");
    assert!(!run.stdout.contains("client-certificate-data"), "{run}");
}

#[test]
fn split_mode_a_connection_header_cannot_remove_the_identity_the_gateway_set() {
    let kg = Kgate::split();
    // HTTP/1.1 (HTTP/2 has no Connection header). Were the hop-by-hop headers removed after the
    // identity headers were set, the control plane would see no user (401)...
    let resp = kg
        .request("GET", "/api/v1/namespaces")
        .http1()
        .header("Connection: keep-alive, X-Remote-User, X-Remote-Group, X-Remote-Uid")
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    // ... or kubernetes-admin without system:masters, whom the control plane's escalation check
    // would refuse a role granting everything.
    let role = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole",
        "metadata":{"name":"connection-header-test"},
        "rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#;
    let resp = kg
        .request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles")
        .http1()
        .header("Connection: X-Remote-Group")
        .json(role)
        .send();
    assert_eq!(resp.status, 201, "{resp}");
}
