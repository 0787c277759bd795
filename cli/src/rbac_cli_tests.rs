#![allow(clippy::unwrap_used)]

//! The commands as `main` runs them: parsed by clap, answered by [`run`], against files and
//! against a small HTTPS server that answers the four list requests (paged) as kube-apiserver
//! would.

use super::*;
use crate::args::{Cli, Command};
use bytes::Bytes;
use clap::Parser as _;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use kgate_gateway::pki::Pki;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: view}
rules:
- {apiGroups: [""], resources: ["pods", "pods/log"], verbs: ["get", "list", "watch"]}
- {nonResourceURLs: ["/healthz"], verbs: ["get"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: scaler}
rules:
- {apiGroups: ["apps"], resources: ["deployments/scale"], verbs: ["update"], resourceNames: ["web"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-view, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ci-scale, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: scaler}
subjects: [{kind: ServiceAccount, name: ci}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: health}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}]
"#;

/// Runs `kgate rbac ARGS...`: (outcome or error text, stdout).
async fn kgate_rbac(args: &[&str]) -> (Result<Outcome, String>, String) {
    let mut argv = vec!["kgate", "rbac"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    let Command::Rbac(options) = cli.command else {
        panic!("not rbac");
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = run(options, &mut out, &mut err).await.map_err(|e| {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    });
    (result, String::from_utf8(out).unwrap())
}

fn policy_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), POLICY).unwrap();
    dir
}

#[tokio::test]
async fn who_can_from_files_prints_the_table() {
    let dir = policy_folder();
    let from = dir.path().to_str().unwrap();
    let (outcome, out) =
        kgate_rbac(&["who-can", "list", "pods", "-n", "team", "--from", from]).await;
    assert_eq!(outcome, Ok(Outcome::Listed));
    let want = r#"who can list resource "pods" in API group "" in the namespace "team":
SUBJECT KIND   SUBJECT                NAMESPACE   BINDING                         ROLE
Group          system:authenticated               ClusterRoleBinding "health"     ClusterRole "view"
User           alice                              RoleBinding "alice-view/team"   ClusterRole "view"

Also allowed: members of group "system:masters", who may do anything whatever RBAC says (kube-apiserver's privileged group).
"#;
    assert_eq!(out, want);

    // resource.group/subresource with a name, and a ServiceAccount's namespace column.
    let (_, out) = kgate_rbac(&[
        "who-can",
        "update",
        "deployments.apps/scale",
        "web",
        "-n",
        "team",
        "--from",
        from,
    ])
    .await;
    assert!(
        out.contains("ServiceAccount   ci        team        RoleBinding \"ci-scale/team\"   ClusterRole \"scaler\""),
        "{out}"
    );
    let (_, out) = kgate_rbac(&[
        "who-can",
        "update",
        "deployments.apps/scale",
        "--name",
        "api",
        "-n",
        "team",
        "--from",
        from,
    ])
    .await;
    assert!(out.contains("no subject"), "{out}");

    // A non-resource URL.
    let (_, out) = kgate_rbac(&["who-can", "get", "/healthz", "--from", from]).await;
    assert!(out.starts_with("who can get path \"/healthz\":\n"), "{out}");
    assert!(out.contains("Group          system:authenticated"), "{out}");
}

#[tokio::test]
async fn explain_exit_codes_follow_kubectl_auth_can_i() {
    let dir = policy_folder();
    let from = dir.path().to_str().unwrap();
    let (outcome, out) = kgate_rbac(&[
        "explain",
        "--as",
        "alice",
        "--as-group",
        "dev",
        "list",
        "pods",
        "-n",
        "team",
        "--from",
        from,
    ])
    .await;
    assert_eq!(outcome, Ok(Outcome::Allowed));
    assert_eq!(Outcome::Allowed.exit_code(), 0);
    assert!(out.starts_with(
        "request:  User \"alice\" (groups=[\"dev\" \"system:authenticated\"]) list resource \"pods\""
    ), "{out}");
    assert!(out.contains(
        "result:   allowed: RBAC: allowed by ClusterRoleBinding \"health\" of ClusterRole \"view\" to Group \"system:authenticated\""
    ), "{out}");

    // Without system:authenticated, the RoleBinding is what allows it.
    let (outcome, out) = kgate_rbac(&[
        "explain",
        "--as",
        "alice",
        "--no-authenticated-group",
        "list",
        "pods",
        "-n",
        "team",
        "--from",
        from,
    ])
    .await;
    assert_eq!(outcome, Ok(Outcome::Allowed));
    assert!(out.contains(
        "result:   allowed: RBAC: allowed by RoleBinding \"alice-view/team\" of ClusterRole \"view\" to User \"alice\""
    ), "{out}");

    let (outcome, out) = kgate_rbac(&[
        "explain", "--as", "alice", "delete", "pods", "-n", "team", "--from", from,
    ])
    .await;
    assert_eq!(outcome, Ok(Outcome::Denied));
    assert_eq!(Outcome::Denied.exit_code(), 1);
    assert!(out.contains(
        "result:   denied: pods is forbidden: User \"alice\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\""
    ), "{out}");

    let (outcome, out) = kgate_rbac(&[
        "explain",
        "--as",
        "root",
        "--as-group",
        "system:masters",
        "delete",
        "nodes",
        "--from",
        from,
    ])
    .await;
    assert_eq!(outcome, Ok(Outcome::Allowed));
    assert!(out.contains("is in group \"system:masters\""), "{out}");
}

#[tokio::test]
async fn errors_are_reported_not_answered() {
    let dir = policy_folder();
    let from = dir.path().to_str().unwrap();
    let (outcome, _) = kgate_rbac(&["who-can", "get", "pods/log/x", "--from", from]).await;
    assert!(outcome.unwrap_err().starts_with("RESOURCE: "));
    let (outcome, _) =
        kgate_rbac(&["who-can", "get", "/healthz", "-n", "team", "--from", from]).await;
    assert_eq!(
        outcome.unwrap_err(),
        "--namespace: does not apply to a non-resource URL"
    );
    let (outcome, _) = kgate_rbac(&["who-can", "get", "pods", "--from", "/nonexistent/x"]).await;
    assert!(outcome
        .unwrap_err()
        .starts_with("cannot read /nonexistent/x"));
    let (outcome, _) = kgate_rbac(&[
        "who-can",
        "get",
        "pods",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ])
    .await;
    assert!(outcome
        .unwrap_err()
        .starts_with("cannot use the kubeconfig: cannot read /nonexistent/kubeconfig"),);
}

#[test]
fn the_source_flags_exclude_each_other() {
    let parse = |args: &[&str]| {
        let mut argv = vec!["kgate", "rbac"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).map(|_| ())
    };
    assert!(parse(&["who-can", "get", "pods", "--from", "d", "--kubeconfig", "k"]).is_err());
    assert!(parse(&["who-can", "get", "pods", "--with-bootstrap"]).is_err());
    assert!(parse(&["who-can", "get", "pods", "web", "--name", "api"]).is_err());
    assert!(
        parse(&["explain", "get", "pods"]).is_err(),
        "--as is required"
    );
    assert!(parse(&[
        "explain",
        "--as",
        "a",
        "--as-group",
        "g",
        "--as-group",
        "h",
        "get",
        "pods"
    ])
    .is_ok());
}

/// Serves the four lists from `objects`, one item per page (so paging is exercised), and
/// records each request's path and Authorization header.
async fn fake_apiserver(
    pki: &Pki,
    objects: Vec<Value>,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<Vec<(String, Option<String>)>>>,
) {
    let tls = kgate_gateway::tls::gateway_server_config(&pki.serving).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let objects = Arc::new(objects);
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let objects = objects.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request: http::Request<_>| {
                    let objects = objects.clone();
                    let log = log.clone();
                    async move {
                        let auth = request
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_owned());
                        let uri = request.uri().clone();
                        log.lock().unwrap().push((uri.to_string(), auth));
                        Ok::<_, std::convert::Infallible>(list_page(&objects, &uri))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn list_page(objects: &[Value], uri: &http::Uri) -> http::Response<Full<Bytes>> {
    let plural = uri.path().rsplit('/').next().unwrap_or_default();
    let kind = KINDS.iter().find(|(p, _)| *p == plural).map(|(_, k)| *k);
    let Some(kind) = kind else {
        let status = json!({"kind": "Status", "code": 404, "message": "not found"});
        return http::Response::builder()
            .status(404)
            .body(Full::new(Bytes::from(status.to_string())))
            .unwrap();
    };
    let items: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| {
            // List items come without kind and apiVersion.
            let mut o = o.clone();
            o.as_object_mut().unwrap().remove("kind");
            o.as_object_mut().unwrap().remove("apiVersion");
            o
        })
        .collect();
    let page: usize = uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("continue=")))
        .map(|c| c.trim_start_matches("page%2F").parse().unwrap())
        .unwrap_or(0);
    let next = if page + 1 < items.len() {
        format!("page/{}", page + 1)
    } else {
        String::new()
    };
    let body = json!({
        "kind": format!("{kind}List"),
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"resourceVersion": "7", "continue": next},
        "items": items.get(page..(page + 1).min(items.len())).unwrap_or_default(),
    });
    http::Response::new(Full::new(Bytes::from(body.to_string())))
}

#[tokio::test]
async fn a_cluster_gives_the_same_answers_as_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&dir.path().join("data")).unwrap();
    let objects: Vec<Value> = serde_yaml::Deserializer::from_str(POLICY)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let (addr, seen) = fake_apiserver(&pki, objects).await;
    let kubeconfig = crate::kubeconfig::Kubeconfig::new(
        &format!("https://{addr}"),
        pki.ca.cert_pem(),
        "admin",
        pki.admin.clone(),
    );
    let path = dir.path().join("admin.kubeconfig");
    kubeconfig.write_private(&path).unwrap();
    let folder = policy_folder();

    for question in [
        &["who-can", "list", "pods", "-n", "team"][..],
        &[
            "who-can",
            "update",
            "deployments.apps/scale",
            "web",
            "-n",
            "team",
        ],
        &["explain", "--as", "alice", "list", "pods", "-n", "team"],
        &["explain", "--as", "alice", "delete", "pods", "-n", "team"],
    ] {
        let mut remote = question.to_vec();
        remote.extend(["--kubeconfig", path.to_str().unwrap()]);
        let mut local = question.to_vec();
        local.extend(["--from", folder.path().to_str().unwrap()]);
        let (remote_outcome, remote_out) = kgate_rbac(&remote).await;
        let (local_outcome, local_out) = kgate_rbac(&local).await;
        assert_eq!(remote_outcome, local_outcome, "{question:?}");
        assert_eq!(remote_out, local_out, "{question:?}");
    }
    // A bearer token instead of a client certificate.
    let token_kubeconfig = dir.path().join("token.kubeconfig");
    std::fs::write(
        &token_kubeconfig,
        format!(
            "current-context: t\ncontexts: [{{name: t, context: {{cluster: k, user: u}}}}]\n\
             clusters: [{{name: k, cluster: {{server: \"https://{addr}\", certificate-authority-data: {}}}}}]\n\
             users: [{{name: u, user: {{token: t0k3n}}}}]\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pki.ca.cert_pem())
        ),
    )
    .unwrap();
    let (outcome, _) = kgate_rbac(&[
        "who-can",
        "get",
        "pods",
        "--kubeconfig",
        token_kubeconfig.to_str().unwrap(),
    ])
    .await;
    assert_eq!(outcome, Ok(Outcome::Listed));
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.iter()
            .filter(|(_, auth)| auth.as_deref() == Some("Bearer t0k3n"))
            .count(),
        6,
        "every page asked with the token: {seen:?}"
    );
    // Two RoleBindings: two pages, the second asked for with the (encoded) continue token.
    assert!(
        seen.iter().any(|(uri, _)| uri
            == "/apis/rbac.authorization.k8s.io/v1/rolebindings?limit=500&continue=page%2F1"),
        "{seen:?}"
    );
    assert!(
        seen.iter().filter(|(_, auth)| auth.is_none()).count() >= 4 * 6,
        "no token in the admin kubeconfig"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&dir.path().join("data")).unwrap();
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.path().join("admin.kubeconfig");
    crate::kubeconfig::Kubeconfig::new(
        &format!("https://127.0.0.1:{port}"),
        pki.ca.cert_pem(),
        "admin",
        pki.admin.clone(),
    )
    .write_private(&path)
    .unwrap();
    let (outcome, _) = kgate_rbac(&[
        "who-can",
        "get",
        "pods",
        "--kubeconfig",
        path.to_str().unwrap(),
    ])
    .await;
    let text = outcome.unwrap_err();
    assert!(
        text.starts_with(&format!(
            "cannot list the RBAC objects of the cluster of context \"kgate\": cannot connect to https://127.0.0.1:{port}/"
        )),
        "{text}"
    );
}
