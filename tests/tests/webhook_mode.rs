//! Webhook mode end to end: the real kube-apiserver v1.34.2 (the referee's build) started with
//! the files `kgate webhook config` writes, calling `kgate webhook` for TokenReviews and
//! SubjectAccessReviews; ID tokens from the real `oidc-provider`; kgate machine tokens.
//!
//! - alice logs in with an ID token and is `alice` with her groups; the cluster's RoleBinding
//!   lets her list pods in one namespace and not another; kgate's deny line forbids her
//!   `delete namespaces` although a ClusterRoleBinding makes her cluster-admin;
//! - `kgate rbac who-can` and `explain` answer for the real cluster (its RBAC objects, and
//!   kgate's policy file);
//! - a machine token works, is revoked, and is refused; a key rotation keeps tokens valid
//!   until their key is pruned, without restarting the webhook;
//! - with the webhook stopped, tokens are refused (401), authorization follows
//!   `failurePolicy: Deny`, and the control plane's own identities keep working (the
//!   matchConditions skip them); restarted, everything works again without restarting
//!   kube-apiserver;
//! - callers without an allowed certificate and malformed reviews get a clear error, and the
//!   webhook keeps serving.

use kgate_e2e::oidc::{ClientSpec, IssuerSpec, OidcProvider, ProviderSpec, UserSpec};
use kgate_e2e::reference::{Reference, ReferenceOptions};
use kgate_e2e::{
    default_kubectl, kgate_bin, kubeconfig_pem, poll, run_bounded, ApiServer, Run, Streaming,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SCOPES: &[&str] = &["openid", "profile", "groups"];
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn kgate(args: &[&str]) -> Run {
    let mut cmd = Command::new(kgate_bin());
    cmd.args(args);
    run_bounded(cmd, None, Duration::from_secs(60))
}

/// A running `kgate webhook` (killed on drop).
struct Webhook {
    _process: Streaming,
}

fn start_webhook(data_dir: &Path, port: u16, policy: &Path, authn: &Path) -> Webhook {
    let mut cmd = Command::new(kgate_bin());
    cmd.arg("webhook")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--authorization-policy-file")
        .arg(policy)
        .arg("--authentication-config")
        .arg(authn);
    let mut process = Streaming::spawn(cmd);
    // Ready once the OIDC issuer's keys are fetched.
    process.wait_for("the webhook ready", WAIT, |l| {
        l.starts_with("kgate is ready")
    });
    Webhook { _process: process }
}

/// kubectl against the reference with a bearer token (no kubeconfig).
fn kubectl_token(reference: &Reference, token: &str, args: &[&str]) -> Run {
    let mut cmd = Command::new(default_kubectl());
    cmd.env("KUBECONFIG", "/dev/null")
        .env("HOME", reference.root())
        .arg(format!("--server={}", reference.url()))
        .arg(format!(
            "--certificate-authority={}",
            reference.dir().join("ca.crt").display()
        ))
        .arg(format!("--token={token}"))
        .args(args);
    run_bounded(cmd, None, Duration::from_secs(30))
}

/// Polls until `kubectl_token` answers as `want` says (kube-apiserver caches answers for the
/// configured TTL, 1 s here).
fn eventually(
    reference: &Reference,
    token: &str,
    args: &[&str],
    what: &str,
    want: impl Fn(&Run) -> bool,
) -> Run {
    poll(what, WAIT, || {
        let run = kubectl_token(reference, token, args);
        if want(&run) {
            Ok(run)
        } else {
            Err(format!("{run}"))
        }
    })
}

fn unauthorized(run: &Run) -> bool {
    !run.success() && run.err().contains("Unauthorized")
}

fn forbidden(run: &Run) -> bool {
    !run.success() && run.err().contains("Forbidden")
}

fn authentication_config(op: &OidcProvider) -> String {
    let ca: String = op
        .ca_pem()
        .lines()
        .map(|l| format!("        {l}\n"))
        .collect();
    format!(
        r#"apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
  - issuer:
      url: {url}
      audiences: [kgate]
      certificateAuthority: |
{ca}    claimMappings:
      username:
        claim: sub
        prefix: ""
      groups:
        claim: groups
        prefix: "oidc:"
"#,
        url = op.issuer_url("corp")
    )
}

const POLICY: &str = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  \
- p, deny, alice, *, delete, \"\", namespaces, *, *, *\n";

/// curl to the webhook with an optional client certificate; returns the HTTP code.
fn webhook_call(port: u16, ca: &Path, client: Option<(&Path, &Path)>, body: &str) -> String {
    let mut curl = Command::new("curl");
    curl.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("--cacert")
        .arg(ca)
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
        ]);
    if let Some((cert, key)) = client {
        curl.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    curl.arg(format!("https://127.0.0.1:{port}/authenticate"));
    run_bounded(curl, Some(body.as_bytes()), Duration::from_secs(30))
        .ok()
        .to_owned()
}

fn write(path: PathBuf, bytes: &[u8]) -> PathBuf {
    std::fs::write(&path, bytes).expect("write");
    path
}

#[test]
fn kube_apiserver_authenticates_and_authorizes_through_kgate_webhook() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    let out = root.path().join("out");
    let op = OidcProvider::start(
        ProviderSpec::new().issuer(
            IssuerSpec::new("corp")
                .client(ClientSpec::public("kgate"))
                .user(
                    UserSpec::new("alice", "alice-pw")
                        .with_sub("alice")
                        .groups(&["dev"]),
                ),
        ),
    );
    let authn = write(
        root.path().join("authentication.yaml"),
        authentication_config(&op).as_bytes(),
    );
    let policy = write(root.path().join("policy.yaml"), POLICY.as_bytes());
    let port = free_port();
    let server = format!("https://127.0.0.1:{port}");
    let config = kgate(&[
        "webhook",
        "config",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--server",
        &server,
        "--out",
        out.to_str().expect("utf-8"),
        "--cache-ttl",
        "1s",
    ]);
    let flags: Vec<String> = config
        .ok()
        .lines()
        .filter(|l| l.starts_with("--"))
        .map(str::to_owned)
        .collect();
    assert_eq!(flags.len(), 4, "{config}");
    let webhook = start_webhook(&data, port, &policy, &authn);
    let reference = Reference::up_with(ReferenceOptions {
        apiserver_args: flags,
        ..ReferenceOptions::default()
    });

    // alice, from her ID token.
    let alice = op
        .login("corp", "kgate", "alice", "alice-pw", SCOPES)
        .id_token;
    let whoami = kubectl_token(&reference, &alice, &["auth", "whoami", "-o", "json"]);
    let review: Value = serde_json::from_str(whoami.ok()).expect("json");
    assert_eq!(review["status"]["userInfo"]["username"], "alice");
    let groups = review["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("oidc:dev"), "{groups}");
    // The cluster's own RBAC decides what kgate has no opinion on (a Role of its own: without
    // kube-controller-manager, the aggregated `view` has no rules).
    for ns in ["team-a", "team-b"] {
        reference.kubectl_ok(&["create", "namespace", ns]);
    }
    reference.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "team-a",
        "--verb=get,list",
        "--resource=pods",
    ]);
    reference.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "-n",
        "team-a",
        "--role=pod-reader",
        "--user=alice",
    ]);
    eventually(
        &reference,
        &alice,
        &["get", "pods", "-n", "team-a"],
        "alice lists team-a",
        |r| r.success(),
    );
    assert!(forbidden(&kubectl_token(
        &reference,
        &alice,
        &["get", "pods", "-n", "team-b"]
    )));
    // kgate's deny line beats cluster-admin.
    reference.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "alice-admin",
        "--clusterrole=cluster-admin",
        "--user=alice",
    ]);
    eventually(
        &reference,
        &alice,
        &["get", "pods", "-n", "team-b"],
        "alice is admin",
        |r| r.success(),
    );
    let refused = kubectl_token(&reference, &alice, &["delete", "namespace", "team-b"]);
    assert!(forbidden(&refused), "{refused}");
    assert!(
        refused.err().contains("policy: denied by line"),
        "{refused}"
    );
    reference.kubectl_ok(&["get", "namespace", "team-b"]);
    // `kgate rbac` answers for the real cluster, from its RBAC objects, and with the policy file
    // says why the webhook refuses.
    let admin = reference.admin_kubeconfig();
    let admin = admin.to_str().expect("utf-8");
    let policy_path = policy.to_str().expect("utf-8");
    let who = kgate(&[
        "rbac",
        "who-can",
        "delete",
        "namespaces",
        "--kubeconfig",
        admin,
    ]);
    assert!(who.ok().contains("alice-admin"), "{who}");
    let explain = [
        "rbac",
        "explain",
        "--as",
        "alice",
        "delete",
        "namespaces",
        "--kubeconfig",
        admin,
    ];
    let rbac_alone = kgate(&explain);
    assert!(
        rbac_alone.ok().contains("result:   allowed"),
        "{rbac_alone}"
    );
    let mut with_policy = explain.to_vec();
    with_policy.extend(["--authorization-policy-file", policy_path]);
    let refused = kgate(&with_policy);
    assert_eq!(refused.status.code(), Some(1), "{refused}");
    assert!(
        refused
            .stdout
            .contains("result:   denied: policy: denied by line"),
        "{refused}"
    );

    // A machine token: works, then revoked, refused.
    let created = kgate(&[
        "token",
        "create",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--user",
        "jenkins",
        "--group",
        "ci",
        "--duration",
        "1h",
    ]);
    let token = created.ok().trim().to_owned();
    let id = created
        .stderr
        .split_whitespace()
        .nth(2)
        .expect("the token id")
        .to_owned();
    let whoami = kubectl_token(&reference, &token, &["auth", "whoami", "-o", "json"]);
    let review: Value = serde_json::from_str(whoami.ok()).expect("json");
    assert_eq!(review["status"]["userInfo"]["username"], "jenkins");
    kgate(&[
        "token",
        "revoke",
        "--data-dir",
        data.to_str().expect("utf-8"),
        &id,
    ])
    .ok();
    eventually(
        &reference,
        &token,
        &["auth", "whoami"],
        "the revoked token refused",
        unauthorized,
    );
    // A key rotation keeps old tokens valid until their key is pruned; the running webhook
    // follows both without a restart.
    let data_arg = data.to_str().expect("utf-8");
    let create = || {
        kgate(&[
            "token",
            "create",
            "--data-dir",
            data_arg,
            "--user",
            "ci-bot",
            "--duration",
            "1h",
        ])
        .ok()
        .trim()
        .to_owned()
    };
    let before = create();
    kgate(&["token", "rotate-keys", "--data-dir", data_arg]).ok();
    let after = create();
    eventually(
        &reference,
        &after,
        &["auth", "whoami"],
        "a token of the new key",
        |r| r.success(),
    );
    assert!(kubectl_token(&reference, &before, &["auth", "whoami"]).success());
    kgate(&["token", "prune-keys", "--data-dir", data_arg, "--keep", "1"]).ok();
    eventually(
        &reference,
        &before,
        &["auth", "whoami"],
        "the pruned key's token refused",
        unauthorized,
    );
    assert!(kubectl_token(&reference, &after, &["auth", "whoami"]).success());

    // Callers and bodies the webhook refuses; it keeps serving.
    let ca = write(
        root.path().join("webhook-ca.crt"),
        &kubeconfig_pem(
            &out.join("authentication-webhook.kubeconfig"),
            "certificate-authority-data",
        ),
    );
    let apiserver_cert = write(
        root.path().join("apiserver.crt"),
        &kubeconfig_pem(
            &out.join("authentication-webhook.kubeconfig"),
            "client-certificate-data",
        ),
    );
    let apiserver_key = write(
        root.path().join("apiserver.key"),
        &kubeconfig_pem(
            &out.join("authentication-webhook.kubeconfig"),
            "client-key-data",
        ),
    );
    let mallory = kgate(&[
        "kubeconfig",
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--user",
        "mallory",
    ]);
    let mallory_kubeconfig = write(
        root.path().join("mallory.kubeconfig"),
        mallory.ok().as_bytes(),
    );
    let mallory_cert = write(
        root.path().join("mallory.crt"),
        &kubeconfig_pem(&mallory_kubeconfig, "client-certificate-data"),
    );
    let mallory_key = write(
        root.path().join("mallory.key"),
        &kubeconfig_pem(&mallory_kubeconfig, "client-key-data"),
    );
    let review =
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"x"}}"#;
    assert_eq!(webhook_call(port, &ca, None, review), "401");
    assert_eq!(
        webhook_call(port, &ca, Some((&mallory_cert, &mallory_key)), review),
        "403"
    );
    let apiserver = Some((apiserver_cert.as_path(), apiserver_key.as_path()));
    assert_eq!(webhook_call(port, &ca, apiserver, "{not json"), "400");
    assert_eq!(
        webhook_call(port, &ca, apiserver, &review.replace("/v1\"", "/v2\"")),
        "400"
    );
    let oversized = review.replace("\"x\"", &format!("\"{}\"", "x".repeat(100_000)));
    assert_eq!(webhook_call(port, &ca, apiserver, &oversized), "413");
    assert_eq!(webhook_call(port, &ca, apiserver, review), "200");

    // The webhook stops: tokens are refused, authorization fails closed for users, the
    // control plane's identities keep working.
    let carol = reference.kubeconfig_for("carol", &[], "1h");
    reference.kubectl_ok(&[
        "create",
        "rolebinding",
        "carol-view",
        "-n",
        "team-a",
        "--role=pod-reader",
        "--user=carol",
    ]);
    poll("carol lists team-a", WAIT, || {
        let run = reference.kubectl_as(&carol, &["get", "pods", "-n", "team-a"]);
        run.success().then_some(()).ok_or(format!("{run}"))
    });
    let scheduler = reference.kubeconfig_for("system:kube-scheduler", &[], "1h");
    drop(webhook);
    eventually(
        &reference,
        &alice,
        &["get", "pods", "-n", "team-a"],
        "alice refused",
        unauthorized,
    );
    // failurePolicy Deny: kube-apiserver refuses, with a 500 that names the unreachable
    // webhook (its authorization filter answers an authorizer error so).
    poll("carol refused (failurePolicy Deny)", WAIT, || {
        let run = reference.kubectl_as(&carol, &["get", "pods", "-n", "team-a"]);
        let refused = !run.success()
            && run.err().contains("InternalError")
            && run.err().contains("/authorize");
        refused.then_some(()).ok_or(format!("{run}"))
    });
    let run = reference.kubectl_as(&scheduler, &["get", "nodes"]);
    assert!(
        run.success(),
        "the scheduler's identity skips the webhook: {run}"
    );

    // Restarted: everything works again, kube-apiserver untouched.
    let _webhook = start_webhook(&data, port, &policy, &authn);
    eventually(
        &reference,
        &alice,
        &["get", "pods", "-n", "team-b"],
        "alice back",
        |r| r.success(),
    );
    poll("carol back", WAIT, || {
        let run = reference.kubectl_as(&carol, &["get", "pods", "-n", "team-a"]);
        run.success().then_some(()).ok_or(format!("{run}"))
    });
    let refused = kubectl_token(&reference, &alice, &["delete", "namespace", "team-b"]);
    assert!(forbidden(&refused), "{refused}");
}
