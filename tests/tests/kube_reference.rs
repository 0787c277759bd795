//! The referee itself: `scripts/kube-reference.sh up` starts the real kube-apiserver (v1.34.2,
//! from Kubernetes' Go modules) on etcd; the harness reaches it as the admin and as users it
//! makes from the reference's client CA, and drop stops every process it started.

use kgate_e2e::reference::Reference;
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
