//! The referee itself: `scripts/kube-reference.sh up` starts the real kube-apiserver (v1.34.2,
//! from Kubernetes' Go modules) on etcd; the harness reaches it as the admin and as users it
//! makes from the reference's client CA, and drop stops every process it started.

use kgate_e2e::reference::{Reference, ReferenceOptions};
use kgate_e2e::{ApiServer, Identity};

#[test]
fn the_reference_serves_kubernetes_1_34_to_the_admin_and_to_users_of_its_client_ca() {
    let reference = Reference::up();

    let version = reference.request("GET", "/version").send();
    assert_eq!(version.status, 200, "{version}");
    let version: serde_json::Value = serde_json::from_str(&version.body).expect("JSON");
    assert_eq!(version["gitVersion"], "v1.34.2", "{version}");

    let namespaces = reference.kubectl_ok(&["get", "namespaces", "-o", "name"]);
    assert!(namespaces.contains("namespace/kube-system"), "{namespaces}");

    // A user of the client CA is who its certificate says, and RBAC holds them to nothing.
    let alice = reference.kubeconfig_for("alice", &["dev", "ops"], "1h");
    let review = reference
        .request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .identity(Identity::Kubeconfig(alice.clone()))
        .json(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#)
        .send();
    assert_eq!(review.status, 201, "{review}");
    let review: serde_json::Value = serde_json::from_str(&review.body).expect("JSON");
    assert_eq!(
        review["status"]["userInfo"]["username"], "alice",
        "{review}"
    );
    let groups = review["status"]["userInfo"]["groups"].to_string();
    for group in ["dev", "ops", "system:authenticated"] {
        assert!(groups.contains(group), "{group} missing from {groups}");
    }
    let denied = reference.kubectl_as(&alice, &["get", "secrets", "-n", "kube-system"]);
    denied.fails_with("Forbidden");
    // The default authorization is Node,RBAC.
    assert!(node_may_read_its_node(&reference));

    // Drop stops the whole process group: the server stops answering.
    let url = reference.url();
    let ca = reference.dir().join("ca.crt");
    drop(reference);
    let after = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(&ca)
        .arg(format!("{url}/healthz"))
        .output()
        .expect("curl runs");
    assert!(
        !after.status.success(),
        "kube-apiserver still answers after drop"
    );
}

/// Flags after `--` replace the script's defaults: an authorization configuration file replaces
/// `--authorization-mode` (kube-apiserver refuses both at once), here RBAC alone, without the
/// Node authorizer, which the default `Node,RBAC` would consult first.
#[test]
fn extra_flags_replace_the_defaults_they_name() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = dir.path().join("authorization.yaml");
    std::fs::write(
        &config,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n- type: RBAC\n  name: rbac\n",
    )
    .expect("write the authorization config");
    let reference = Reference::up_with(ReferenceOptions {
        apiserver_args: vec![format!("--authorization-config={}", config.display())],
        ..ReferenceOptions::default()
    });
    let pid = std::fs::read_to_string(reference.dir().join("logs/kube-apiserver.pid"))
        .expect("the script writes kube-apiserver's pid");
    let args = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).expect("its command line");
    let args = String::from_utf8_lossy(&args).replace('\0', " ");
    assert!(args.contains("--authorization-config="), "{args}");
    assert!(!args.contains("--authorization-mode"), "{args}");
    // Without the Node authorizer nothing lets a node read its own Node (no binding of
    // system:node), where the defaults do (see the first test).
    assert!(!node_may_read_its_node(&reference));
}

/// Whether `system:node:n1` may get Node n1: the Node authorizer allows a node its own Node;
/// RBAC binds the system:node role to nobody.
fn node_may_read_its_node(reference: &Reference) -> bool {
    let review = reference
        .request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .json(
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:node:n1","groups":["system:nodes","system:authenticated"],"resourceAttributes":{"verb":"get","resource":"nodes","name":"n1"}}}"#,
        )
        .send();
    assert_eq!(review.status, 201, "{review}");
    let review: serde_json::Value = serde_json::from_str(&review.body).expect("JSON");
    review["status"]["allowed"] == true
}
