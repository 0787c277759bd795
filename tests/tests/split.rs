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

#[test]
fn split_mode_control_plane_refuses_clients_other_than_the_gateway() {
    let kg = Kgate::split();
    let cp = kg
        .controlplane_addr()
        .expect("split mode has a control plane address");
    // The admin certificate is from the same CA but is not the gateway's front-proxy client: it
    // must not be able to claim an identity with front-proxy headers.
    let admin = kg.admin_kubeconfig();
    let files = kg.files();
    let ca = files.join("cp-ca.crt");
    std::fs::write(
        &ca,
        kgate_e2e::kubeconfig_pem(&admin, "certificate-authority-data"),
    )
    .expect("write");
    let cert = files.join("cp-admin.crt");
    let key = files.join("cp-admin.key");
    std::fs::write(
        &cert,
        kgate_e2e::kubeconfig_pem(&admin, "client-certificate-data"),
    )
    .expect("write");
    std::fs::write(&key, kgate_e2e::kubeconfig_pem(&admin, "client-key-data")).expect("write");
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
    .arg(&cert)
    .arg("--key")
    .arg(&key)
    .args([
        "-H",
        "X-Remote-User: kubernetes-admin",
        "-H",
        "X-Remote-Group: system:masters",
    ])
    .arg(format!(
        "https://{cp}/api/v1/namespaces/kube-system/secrets"
    ));
    let run = kgate_e2e::run_bounded(cmd, None, kgate_e2e::CLIENT_TIMEOUT);
    let code = run.stdout.trim();
    assert!(
        code == "401" || code == "403",
        "the control plane accepted front-proxy headers from a non-gateway certificate:\n{run}"
    );
    // And the gateway still serves.
    let resp = kg
        .request("GET", "/api/v1/namespaces")
        .identity(Identity::Kubeconfig(admin))
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    kg.kubectl_ok(&["get", "ns"]);
}
