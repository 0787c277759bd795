//! Resource scope in the URL: a cluster-scoped resource does not exist under
//! `/namespaces/{ns}/`, and a namespaced one has no object paths outside a namespace, as in
//! kube-apiserver, whose routes are made from each resource's scope. kgate answers such a path
//! 404 before authorization, so a grant in one namespace never reaches cluster-scoped objects.

use kgate_e2e::{Identity, Kgate};

/// Review finding 2: a user who may read (and delete) namespaces in `team` only, as a
/// RoleBinding there can grant, listed and deleted every namespace through
/// `/api/v1/namespaces/team/namespaces[/NAME]`, and the cluster-scoped review APIs answered
/// under a namespace too.
#[test]
fn cluster_scoped_resources_do_not_answer_under_a_namespace() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    kg.kubectl_ok(&["create", "namespace", "other"]);
    kg.kubectl_ok(&[
        "create",
        "role",
        "namespace-keeper",
        "-n",
        "team",
        "--verb=get,list,patch,delete",
        "--resource=namespaces",
    ]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-keeper",
        "-n",
        "team",
        "--role=namespace-keeper",
        "--user=alice",
    ]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "-n",
        "team",
        "--clusterrole=view",
        "--user=alice",
    ]);
    let alice = kg.kubeconfig_for("alice", &[], "24h");
    let as_alice = Identity::Kubeconfig(alice.clone());
    // Her own namespace she may read, as in Kubernetes (the namespace of a namespace is itself).
    kg.kubectl_as_eventually(&alice, &["get", "namespace", "team"]);
    kg.kubectl_as(&alice, &["get", "namespaces"]).fails_with(
        r#"User "alice" cannot list resource "namespaces" in API group "" at the cluster scope"#,
    );

    for (method, path) in [
        ("GET", "/api/v1/namespaces/team/namespaces"),
        ("GET", "/api/v1/namespaces/team/namespaces/other"),
        (
            "GET",
            "/api/v1/namespaces/team/namespaces?watch=true&timeoutSeconds=1",
        ),
        ("DELETE", "/api/v1/namespaces/team/namespaces/other"),
    ] {
        let status = kg
            .request(method, path)
            .identity(as_alice.clone())
            .send()
            .assert_status(404);
        assert_eq!(status["reason"], "NotFound", "{method} {path}: {status}");
    }
    let status = kg
        .request("PATCH", "/api/v1/namespaces/team/namespaces/other")
        .identity(as_alice.clone())
        .body(
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"owned-by":"alice"}}}"#,
        )
        .send()
        .assert_status(404);
    assert_eq!(status["reason"], "NotFound", "{status}");
    // The admin gets the same answer: the path does not exist.
    kg.request("GET", "/api/v1/namespaces/team/namespaces/other")
        .send()
        .assert_status(404);
    kg.request("GET", "/api/v1/namespaces/team/nodes")
        .send()
        .assert_status(404);

    // The review APIs are cluster-scoped (LocalSubjectAccessReview aside).
    let review = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
        "spec":{"user":"bob","resourceAttributes":{"verb":"get","resource":"secrets","namespace":"team"}}}"#;
    kg.request(
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/team/subjectaccessreviews",
    )
    .json(review)
    .send()
    .assert_status(404);
    let token_review = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"not-a-token"}}"#;
    kg.request(
        "POST",
        "/apis/authentication.k8s.io/v1/namespaces/team/tokenreviews",
    )
    .json(token_review)
    .send()
    .assert_status(404);
    // ...and at the right path they answer.
    let answered = kg
        .request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .json(review)
        .send();
    assert_eq!(answered.status, 201, "{answered}");

    // Nothing changed: `other` is still there, unlabelled.
    let labels = kg.kubectl_ok(&[
        "get",
        "namespace",
        "other",
        "-o",
        "jsonpath={.status.phase} {.metadata.labels}",
    ]);
    assert!(labels.starts_with("Active"), "{labels}");
    assert!(!labels.contains("owned-by"), "{labels}");
}
