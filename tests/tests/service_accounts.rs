//! The Jenkins path end to end with the real kubectl: a ServiceAccount, a Role bound to it, a
//! token from `kubectl create token`, used by a plain HTTPS client (bearer token only) and by
//! kubectl through a kubeconfig with `token:`; deleting the ServiceAccount revokes the token at
//! once. The same with a legacy token Secret (revoked by deleting the Secret, and only valid
//! while its Secret, of the token type and not being deleted, still holds that very token), and
//! a token bound to a Pod (revoked by deleting the Pod, or a minute after a Pod stuck
//! terminating was marked for deletion, as kube-apiserver does).

use base64::Engine as _;
use kgate_e2e::{flows, poll, Identity, Kgate};
use std::path::PathBuf;

const DEPLOYMENTS_CI: &str = "/apis/apps/v1/namespaces/ci/deployments";
const DEPLOYMENTS_DEFAULT: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"{name}"}},
            "spec":{{"selector":{{"matchLabels":{{"app":"{name}"}}}},
                     "template":{{"metadata":{{"labels":{{"app":"{name}"}}}},
                                 "spec":{{"containers":[{{"name":"c","image":"nginx"}}]}}}}}}}}"#
    )
}

/// ci with a ServiceAccount `sa` that may manage Deployments there, and nothing elsewhere.
fn jenkins_namespace(kg: &Kgate, sa: &str) {
    if !kg.kubectl(&["get", "ns", "ci"]).success() {
        kg.kubectl_ok(&["create", "namespace", "ci"]);
        kg.kubectl_ok(&[
            "create",
            "role",
            "deployer",
            "-n",
            "ci",
            "--verb=create,get,list,watch,update,patch,delete",
            "--resource=deployments.apps",
        ]);
    }
    kg.kubectl_ok(&["create", "serviceaccount", sa, "-n", "ci"]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        &format!("{sa}-deployer"),
        "-n",
        "ci",
        "--role=deployer",
        &format!("--serviceaccount=ci:{sa}"),
    ]);
}

/// A kubeconfig with only the server, its CA and `token:`.
fn token_kubeconfig(kg: &Kgate, name: &str, token: &str) -> PathBuf {
    let ca = kgate_e2e::kubeconfig_pem(&kg.admin_kubeconfig(), "certificate-authority-data");
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    kg.write_file(
        name,
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kgate\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {token}\ncontexts:\n- name: sa\n  context: {{cluster: kgate, user: sa}}\ncurrent-context: sa\n",
            kg.url()
        ),
    )
}

/// Creates a Deployment with the bearer token alone; the response code.
fn create_with_token(kg: &Kgate, path: &str, token: &str, name: &str) -> u16 {
    let resp = kg
        .request("POST", path)
        .identity(Identity::Bearer(token.to_owned()))
        .json(deployment(name))
        .send();
    assert!(
        !resp.body.contains(token),
        "a response echoes the token:\n{resp}"
    );
    resp.status
}

/// Polls until the token is refused with 401.
fn until_revoked(kg: &Kgate, token: &str, what: &str) {
    poll(what, flows::RBAC_PROPAGATION_BOUND, || {
        let resp = kg
            .request("GET", DEPLOYMENTS_CI)
            .identity(Identity::Bearer(token.to_owned()))
            .send();
        if resp.status == 401 {
            Ok(())
        } else {
            Err(resp.to_string())
        }
    });
}

fn assert_token_absent_from_logs(kg: &Kgate, token: &str) {
    let logs = kg.output();
    // The signature alone identifies the token; neither it nor the whole token may be logged.
    let signature = token.rsplit('.').next().unwrap_or(token);
    assert!(
        !logs.contains(signature),
        "the token appears in kgate's output"
    );
}

#[test]
fn jenkins_with_a_requested_token() {
    requested_token_flow(&Kgate::up());
}

#[test]
fn split_mode_jenkins_with_a_requested_token() {
    // The control plane signs, the gateway verifies, with the keys of the shared data directory.
    requested_token_flow(&Kgate::split());
}

fn requested_token_flow(kg: &Kgate) {
    jenkins_namespace(kg, "jenkins");
    let token = kg
        .kubectl_ok(&["create", "token", "jenkins", "-n", "ci", "--duration", "1h"])
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "not a JWT");

    // A plain client with only the bearer token.
    assert_eq!(
        create_with_token(kg, DEPLOYMENTS_CI, &token, "by-curl"),
        201
    );
    assert_eq!(
        create_with_token(kg, DEPLOYMENTS_DEFAULT, &token, "nope"),
        403
    );

    // kubectl with a token kubeconfig.
    let kubeconfig = token_kubeconfig(kg, "jenkins.kubeconfig", &token);
    kg.kubectl_as(
        &kubeconfig,
        &[
            "create",
            "deployment",
            "by-kubectl",
            "--image=nginx",
            "-n",
            "ci",
        ],
    )
    .ok();
    kg.kubectl_as(
        &kubeconfig,
        &[
            "create",
            "deployment",
            "nope",
            "--image=nginx",
            "-n",
            "default",
        ],
    )
    .fails_with(r#"User "system:serviceaccount:ci:jenkins" cannot create resource "deployments""#);
    let who = kg.kubectl_as(&kubeconfig, &["auth", "whoami"]);
    let who = who.ok();
    assert!(who.contains("system:serviceaccount:ci:jenkins"), "{who}");
    assert!(who.contains("system:serviceaccounts:ci"), "{who}");
    assert!(
        who.contains("authentication.kubernetes.io/credential-id"),
        "{who}"
    );

    // TokenReview answers for the token (as the admin asks).
    let review = kg
        .request("POST", "/apis/authentication.k8s.io/v1/tokenreviews")
        .json(format!(
            r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{token}"}}}}"#
        ))
        .send();
    assert_eq!(review.status, 201, "{review}");
    let body: serde_json::Value = serde_json::from_str(&review.body).expect("a TokenReview");
    assert_eq!(body["status"]["authenticated"], true, "{review}");
    assert_eq!(
        body["status"]["user"]["username"],
        "system:serviceaccount:ci:jenkins"
    );
    assert!(!review.body.contains(&token), "the review echoes the token");

    kg.kubectl_ok(&["delete", "serviceaccount", "jenkins", "-n", "ci"]);
    until_revoked(
        kg,
        &token,
        "the token is refused once its ServiceAccount is deleted",
    );
    // Re-creating a ServiceAccount of the same name does not bring the old token back.
    kg.kubectl_ok(&["create", "serviceaccount", "jenkins", "-n", "ci"]);
    let resp = kg
        .request("GET", DEPLOYMENTS_CI)
        .identity(Identity::Bearer(token.clone()))
        .send();
    assert_eq!(resp.status, 401, "{resp}");
    assert_token_absent_from_logs(kg, &token);
}

#[test]
fn jenkins_with_a_legacy_token_secret() {
    let kg = Kgate::up();
    jenkins_namespace(&kg, "legacy");
    let secret = kg.write_file(
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: legacy-token\n  namespace: ci\n  annotations:\n    kubernetes.io/service-account.name: legacy\ntype: kubernetes.io/service-account-token\n",
    );
    kg.kubectl_ok(&["apply", "-f", secret.to_str().expect("utf-8")]);
    let token = poll(
        "the token controller fills the Secret",
        flows::RBAC_PROPAGATION_BOUND,
        || {
            let run = kg.kubectl(&[
                "get",
                "secret",
                "legacy-token",
                "-n",
                "ci",
                "-o",
                "jsonpath={.data.token}",
            ]);
            let encoded = run.stdout.trim().to_owned();
            if run.success() && !encoded.is_empty() {
                Ok(encoded)
            } else {
                Err(run.to_string())
            }
        },
    );
    let token = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .expect("base64 token"),
    )
    .expect("utf-8 token");
    let namespace = kg.kubectl_ok(&[
        "get",
        "secret",
        "legacy-token",
        "-n",
        "ci",
        "-o",
        "jsonpath={.data.namespace}",
    ]);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(namespace.trim())
            .expect("base64"),
        b"ci"
    );
    assert_eq!(
        create_with_token(&kg, DEPLOYMENTS_CI, &token, "by-legacy"),
        201
    );
    assert_eq!(
        create_with_token(&kg, DEPLOYMENTS_DEFAULT, &token, "nope"),
        403
    );
    kg.kubectl_ok(&["delete", "secret", "legacy-token", "-n", "ci"]);
    until_revoked(
        &kg,
        &token,
        "the legacy token is refused once its Secret is deleted",
    );
    assert_token_absent_from_logs(&kg, &token);
}

#[test]
fn a_pod_bound_token_dies_with_its_pod() {
    let kg = Kgate::up();
    jenkins_namespace(&kg, "builder");
    kg.kubectl_ok(&[
        "run",
        "agent",
        "--image=nginx",
        "-n",
        "ci",
        "--overrides",
        r#"{"spec":{"serviceAccountName":"builder"}}"#,
    ]);
    let token = kg
        .kubectl_ok(&[
            "create",
            "token",
            "builder",
            "-n",
            "ci",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "agent",
        ])
        .trim()
        .to_owned();
    let kubeconfig = token_kubeconfig(&kg, "builder.kubeconfig", &token);
    let who = kg.kubectl_as(&kubeconfig, &["auth", "whoami"]);
    let who = who.ok();
    assert!(
        who.contains("authentication.kubernetes.io/pod-name"),
        "{who}"
    );
    assert!(who.contains("agent"), "{who}");
    assert_eq!(
        create_with_token(&kg, DEPLOYMENTS_CI, &token, "by-pod"),
        201
    );

    // A token bound to a pod that does not exist is not issued.
    kg.kubectl(&[
        "create",
        "token",
        "builder",
        "-n",
        "ci",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "ghost",
    ])
    .fails_with("not found");

    kg.kubectl_ok(&["delete", "pod", "agent", "-n", "ci", "--wait=false"]);
    until_revoked(
        &kg,
        &token,
        "the pod-bound token is refused once its Pod is deleted",
    );
}

/// The status of a GET of Deployments in ci with the bearer `token` alone.
fn status_with(kg: &Kgate, token: &str) -> u16 {
    kg.request("GET", DEPLOYMENTS_CI)
        .identity(Identity::Bearer(token.to_owned()))
        .send()
        .status
}

/// Polls until `token` is accepted (the gateway has seen what it needs).
fn until_accepted(kg: &Kgate, token: &str, what: &str) {
    poll(what, flows::RBAC_PROPAGATION_BOUND, || {
        match status_with(kg, token) {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        }
    });
}

/// The token the controller wrote into the legacy token Secret `name` in ci.
fn legacy_token_of(kg: &Kgate, name: &str) -> String {
    let encoded = poll(
        "the token controller fills the Secret",
        flows::RBAC_PROPAGATION_BOUND,
        || {
            let run = kg.kubectl(&[
                "get",
                "secret",
                name,
                "-n",
                "ci",
                "-o",
                "jsonpath={.data.token}",
            ]);
            let encoded = run.stdout.trim().to_owned();
            if run.success() && !encoded.is_empty() {
                Ok(encoded)
            } else {
                Err(run.to_string())
            }
        },
    );
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64 token"),
    )
    .expect("utf-8 token")
}

/// A Secret `name` in ci of `type_` for the ServiceAccount `legacy`, with `data` (JSON).
fn secret_yaml(name: &str, type_: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: ci\n  annotations:\n    kubernetes.io/service-account.name: legacy\ntype: {type_}\ndata: {data}\n"
    )
}

#[test]
fn a_legacy_token_lives_only_while_its_secret_holds_it() {
    let kg = Kgate::up();
    jenkins_namespace(&kg, "legacy");
    let apply = |file: &str, yaml: &str| {
        let path = kg.write_file(file, yaml);
        kg.kubectl_ok(&["apply", "-f", path.to_str().expect("utf-8")]);
    };
    apply(
        "token.yaml",
        &secret_yaml("legacy-token", "kubernetes.io/service-account-token", "{}"),
    );
    let token = legacy_token_of(&kg, "legacy-token");
    until_accepted(&kg, &token, "the legacy token is accepted");

    // Revoked by deleting its Secret; someone who kept the token (and may create Secrets)
    // makes an Opaque Secret of the same name holding it: it must stay revoked.
    kg.kubectl_ok(&["delete", "secret", "legacy-token", "-n", "ci"]);
    until_revoked(
        &kg,
        &token,
        "the token is refused once its Secret is deleted",
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(&token);
    apply(
        "opaque.yaml",
        &secret_yaml("legacy-token", "Opaque", &format!("{{token: {encoded}}}")),
    );
    // A token bound to the new Secret works once the gateway has seen that Secret...
    let bound = kg
        .kubectl_ok(&[
            "create",
            "token",
            "legacy",
            "-n",
            "ci",
            "--bound-object-kind",
            "Secret",
            "--bound-object-name",
            "legacy-token",
        ])
        .trim()
        .to_owned();
    until_accepted(
        &kg,
        &bound,
        "a token bound to the Opaque Secret is accepted",
    );
    // ...and by then the legacy token is judged against it: not a token Secret.
    assert_eq!(status_with(&kg, &token), 401);
    assert!(
        kg.logs()
            .contains("secret ci/legacy-token is not of type kubernetes.io/service-account-token"),
        "the refusal is not logged with its reason"
    );

    // Back to a token Secret of that name: legacy tokens carry no time nor random claim, so the
    // controller writes the same token again, which is accepted again (as in Kubernetes).
    kg.kubectl_ok(&["delete", "secret", "legacy-token", "-n", "ci"]);
    apply(
        "token-2.yaml",
        &secret_yaml("legacy-token", "kubernetes.io/service-account-token", "{}"),
    );
    assert!(legacy_token_of(&kg, "legacy-token") == token);
    until_accepted(&kg, &token, "the token is accepted from its Secret again");

    // The Secret's token rewritten: the old one is refused; written back, accepted.
    let patch_token = |value: &str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        kg.kubectl_ok(&[
            "patch",
            "secret",
            "legacy-token",
            "-n",
            "ci",
            "--type=merge",
            "-p",
            &format!(r#"{{"data":{{"token":"{encoded}"}}}}"#),
        ]);
    };
    patch_token("another-token");
    until_revoked(
        &kg,
        &token,
        "the token is refused once its Secret holds another",
    );
    assert!(
        kg.logs()
            .contains("secret ci/legacy-token no longer holds this token"),
        "the refusal is not logged with its reason"
    );
    patch_token(&token);
    until_accepted(
        &kg,
        &token,
        "the token is accepted once its Secret holds it again",
    );

    // A Secret being deleted (held by a finalizer) revokes its token at once (legacy.go).
    kg.kubectl_ok(&[
        "patch",
        "secret",
        "legacy-token",
        "-n",
        "ci",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    kg.kubectl_ok(&[
        "delete",
        "secret",
        "legacy-token",
        "-n",
        "ci",
        "--wait=false",
    ]);
    until_revoked(
        &kg,
        &token,
        "the token is refused once its Secret is being deleted",
    );
    kg.kubectl_ok(&[
        "patch",
        "secret",
        "legacy-token",
        "-n",
        "ci",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert_token_absent_from_logs(&kg, &token);
}

#[test]
fn a_pod_bound_token_ends_a_leeway_after_its_pod_starts_terminating() {
    let kg = Kgate::up();
    jenkins_namespace(&kg, "stuck");
    // A finalizer keeps the pod terminating, as a stuck node or a controller would.
    kg.kubectl_ok(&[
        "run",
        "held",
        "--image=nginx",
        "-n",
        "ci",
        "--overrides",
        r#"{"metadata":{"finalizers":["example.com/hold"]},"spec":{"serviceAccountName":"stuck"}}"#,
    ]);
    let token = kg
        .kubectl_ok(&[
            "create",
            "token",
            "stuck",
            "-n",
            "ci",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "held",
        ])
        .trim()
        .to_owned();
    until_accepted(&kg, &token, "the pod-bound token is accepted");
    kg.kubectl_ok(&["delete", "pod", "held", "-n", "ci", "--wait=false"]);
    let marked = kg.kubectl_ok(&[
        "get",
        "pod",
        "held",
        "-n",
        "ci",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!marked.trim().is_empty(), "the pod is not terminating");
    // kube-apiserver's rule: invalid once deletionTimestamp is more than a minute (the JWT
    // leeway) past. The bound leaves room for the minute and the watch.
    poll(
        "the token is refused a minute after its pod started terminating",
        std::time::Duration::from_secs(150),
        || match status_with(&kg, &token) {
            401 => Ok(()),
            other => Err(format!("status {other}")),
        },
    );
    assert!(
        kg.logs().contains("pod ci/held is being deleted"),
        "the refusal is not logged with its reason"
    );
    kg.kubectl_ok(&[
        "patch",
        "pod",
        "held",
        "-n",
        "ci",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

#[test]
fn token_requests_are_validated_and_authorized() {
    let kg = Kgate::up();
    jenkins_namespace(&kg, "short");
    kg.kubectl(&["create", "token", "short", "-n", "ci", "--duration", "5m"])
        .fails_with("may not specify a duration less than 10 minutes");
    kg.kubectl(&["create", "token", "nobody", "-n", "ci"])
        .fails_with("not found");
    // alice has no RBAC on serviceaccounts/token.
    let alice = kg.kubeconfig_for("alice", &["dev"], "24h");
    kg.kubectl_as(&alice, &["create", "token", "short", "-n", "ci"])
        .fails_with(r#"cannot create resource "serviceaccounts/token""#);
    // Every namespace gets a default ServiceAccount, and it comes back when deleted.
    poll(
        "ci has a default ServiceAccount",
        flows::RBAC_PROPAGATION_BOUND,
        || {
            let run = kg.kubectl(&["get", "serviceaccount", "default", "-n", "ci"]);
            if run.success() {
                Ok(())
            } else {
                Err(run.to_string())
            }
        },
    );
    kg.kubectl_ok(&["delete", "serviceaccount", "default", "-n", "ci"]);
    poll(
        "the default ServiceAccount comes back",
        flows::RBAC_PROPAGATION_BOUND,
        || {
            let run = kg.kubectl(&["get", "serviceaccount", "default", "-n", "ci"]);
            if run.success() {
                Ok(())
            } else {
                Err(run.to_string())
            }
        },
    );
}
