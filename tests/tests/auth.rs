//! `kubectl auth can-i` (with `--list`, `--as`, `--as-group`, `-n`, `--subresource`),
//! `kubectl auth whoami` and `kubectl auth reconcile -f` against `kgate up`, for the admin, for
//! alice (a certificate with O=dev) and for a group binding; and the review APIs' refusals.

use kgate_e2e::{flows, poll, Kgate};

/// Polls `kubectl auth can-i ARGS` (as `kubeconfig`, or the admin) until it prints `want`.
fn can_i(kg: &Kgate, kubeconfig: Option<&std::path::Path>, args: &[&str], want: &str) {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    poll(
        &format!("kubectl auth can-i {} says {want}", args.join(" ")),
        flows::RBAC_PROPAGATION_BOUND,
        || {
            let run = match kubeconfig {
                Some(k) => kg.kubectl_as(k, &full),
                None => kg.kubectl(&full),
            };
            // can-i exits 1 for "no": the answer is on stdout either way.
            if run.stdout.trim() == want {
                Ok(())
            } else {
                Err(run.to_string())
            }
        },
    );
}

#[test]
fn the_admin_can_do_everything_and_whoami_names_it() {
    let kg = Kgate::up();
    can_i(&kg, None, &["*", "*"], "yes");
    can_i(&kg, None, &["delete", "nodes"], "yes");
    can_i(&kg, None, &["get", "/healthz"], "yes");
    let list = kg.kubectl_ok(&["auth", "can-i", "--list"]);
    let star = list
        .lines()
        .find(|l| l.starts_with("*.*"))
        .unwrap_or_else(|| panic!("no *.* row in:\n{list}"));
    assert!(star.contains("[*]"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with('*') && l.contains("[*]")),
        "{list}"
    );
    let who = kg.kubectl_ok(&["auth", "whoami"]);
    assert!(who.contains("kubernetes-admin"), "{who}");
    assert!(who.contains("system:masters"), "{who}");
    assert!(who.contains("system:authenticated"), "{who}");
    let json = kg.kubectl_ok(&["auth", "whoami", "-o", "json"]);
    let review: serde_json::Value = serde_json::from_str(&json).expect("whoami -o json");
    assert_eq!(review["kind"], "SelfSubjectReview");
    assert_eq!(review["status"]["userInfo"]["username"], "kubernetes-admin");
}

#[test]
fn alice_can_i_follows_her_rolebinding() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    let alice = kg.kubeconfig_for("alice", &["dev"], "24h");
    let who = kg.kubectl_as(&alice, &["auth", "whoami"]);
    let who = who.ok();
    assert!(who.contains("alice") && who.contains("dev"), "{who}");

    can_i(&kg, Some(&alice), &["get", "pods", "-n", "team"], "no");
    // The admin asks on alice's behalf through impersonation.
    can_i(
        &kg,
        None,
        &[
            "get",
            "pods",
            "-n",
            "team",
            "--as",
            "alice",
            "--as-group",
            "dev",
        ],
        "no",
    );
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "team",
    ]);
    can_i(&kg, Some(&alice), &["get", "pods", "-n", "team"], "yes");
    can_i(
        &kg,
        Some(&alice),
        &["get", "pods", "--subresource=log", "-n", "team"],
        "yes",
    );
    can_i(&kg, Some(&alice), &["delete", "pods", "-n", "team"], "no");
    can_i(&kg, Some(&alice), &["get", "pods", "-n", "default"], "no");
    can_i(&kg, Some(&alice), &["get", "secrets", "-n", "team"], "no");
    can_i(
        &kg,
        None,
        &["list", "pods", "-n", "team", "--as", "alice"],
        "yes",
    );

    let list = kg.kubectl_as(&alice, &["auth", "can-i", "--list", "-n", "team"]);
    let list = list.ok();
    let pods = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some("pods"))
        .unwrap_or_else(|| panic!("no pods row in:\n{list}"));
    assert!(pods.contains("[get list watch]"), "{pods}");
    // system:basic-user's self reviews, from the bootstrap policy.
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );
    assert!(!list.contains("secrets "), "view lists no secrets:\n{list}");
}

#[test]
fn a_group_binding_shows_in_can_i_for_every_member() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    let bob = kg.kubeconfig_for("bob", &["qa"], "24h");
    can_i(
        &kg,
        Some(&bob),
        &["create", "configmaps", "-n", "team"],
        "no",
    );
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "qa-edit",
        "--clusterrole=edit",
        "--group=qa",
        "-n",
        "team",
    ]);
    can_i(
        &kg,
        Some(&bob),
        &["create", "configmaps", "-n", "team"],
        "yes",
    );
    can_i(
        &kg,
        None,
        &[
            "create",
            "configmaps",
            "-n",
            "team",
            "--as",
            "carol",
            "--as-group",
            "qa",
        ],
        "yes",
    );
    can_i(
        &kg,
        None,
        &["create", "configmaps", "-n", "team", "--as", "carol"],
        "no",
    );
}

#[test]
fn subject_access_reviews_answer_for_the_named_user_and_refuse_empty_questions() {
    let kg = Kgate::up();
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let allowed = kg
        .request("POST", path)
        .json(
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
                "spec":{"user":"someone","groups":["system:authenticated"],
                        "nonResourceAttributes":{"path":"/version","verb":"get"}}}"#,
        )
        .send();
    assert_eq!(allowed.status, 201, "{allowed}");
    let body: serde_json::Value = serde_json::from_str(&allowed.body).expect("a review");
    assert_eq!(body["status"]["allowed"], true, "{allowed}");
    assert!(
        body["status"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("RBAC: allowed by ClusterRoleBinding ")
                && r.ends_with(r#" to Group "system:authenticated""#)),
        "{allowed}"
    );

    let denied = kg
        .request("POST", path)
        .json(
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
                "spec":{"user":"someone","resourceAttributes":{"verb":"list","resource":"secrets","namespace":"kube-system"}}}"#,
        )
        .send();
    assert_eq!(denied.status, 201, "{denied}");
    let body: serde_json::Value = serde_json::from_str(&denied.body).expect("a review");
    assert_eq!(body["status"]["allowed"], false, "{denied}");

    let empty = kg
        .request("POST", path)
        .json(r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"someone"}}"#)
        .send();
    // kube-apiserver's answer (differential_rbac: invalid-no-attributes): 422 Invalid.
    let status = empty.assert_status(422);
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.resourceAttributes"
    );
    assert!(
        status["message"].as_str().is_some_and(
            |m| m.contains("exactly one of nonResourceAttributes or resourceAttributes")
        ),
        "{empty}"
    );

    // Reviews are never stored.
    let get = kg.request("GET", path).send();
    assert!(get.status == 405 || get.status == 404, "{get}");
}

#[test]
fn auth_reconcile_creates_then_extends_rbac_objects() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    let first = kg.write_file(
        "rbac.yaml",
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: team}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: dana}
"#,
    );
    let out = kg.kubectl_ok(&["auth", "reconcile", "-f", first.to_str().expect("utf-8")]);
    assert!(out.contains("reconciled"), "{out}");
    can_i(
        &kg,
        None,
        &["get", "configmaps", "-n", "team", "--as", "dana"],
        "yes",
    );
    can_i(
        &kg,
        None,
        &["list", "configmaps", "-n", "team", "--as", "dana"],
        "no",
    );
    let second = kg.write_file(
        "rbac2.yaml",
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: team}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [list]}
"#,
    );
    kg.kubectl_ok(&["auth", "reconcile", "-f", second.to_str().expect("utf-8")]);
    // Reconcile adds rules and keeps the ones already there.
    can_i(
        &kg,
        None,
        &["list", "configmaps", "-n", "team", "--as", "dana"],
        "yes",
    );
    can_i(
        &kg,
        None,
        &["get", "configmaps", "-n", "team", "--as", "dana"],
        "yes",
    );
}
