//! Differential: what the real kube-scheduler and kube-controller-manager (client-go 1.34) rely
//! on, sent to kgate and to the real kube-apiserver and compared. Both servers run no
//! controllers, so nothing but the requests here changes the objects.
//! - `watch-list`: a watch with `sendInitialEvents` (client-go 1.34's informers list this way),
//!   event by event: the initial ADDED events, the BOOKMARK annotated
//!   `k8s.io/initial-events-end` that ends them (only for a client that allows bookmarks), and
//!   the 422 of `validateWatchOptions` for the combinations kube refuses.
//! - `status-writes`: what a write of a status subresource keeps of the client's object (kube's
//!   status strategies: all but the spec; a Deployment keeps its labels, a Pod its
//!   ownerReferences). The deployment controller records its revision annotation this way.
//! - `daemonsets`: a DaemonSet as stored (kube-controller-manager's node lifecycle controller
//!   watches them; kgate stores them without a controller): its defaulted spec.
//! - `authentication-info`: the ConfigMap `kube-system/extension-apiserver-authentication` the
//!   components' own ports authenticate client certificates with: its keys, and that its
//!   `client-ca-file` is the CA of the server's own client certificates.

use kgate_e2e::reference::{Differences, Reference};
use kgate_e2e::{request, ApiServer, Kgate, Options, Response};
use serde_json::{json, Value};

/// What a watch answered, comparable across servers: the status code and Status of a refusal,
/// else the events in order as (type, name) — a BOOKMARK as its annotations, periodic ones
/// (timing, not semantics) left out.
fn summary(resp: &Response) -> Value {
    if resp.status != 200 {
        let status: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        return json!({
            "code": resp.status,
            "reason": status["reason"],
            "message": status["message"],
            "causes": status["details"]["causes"],
        });
    }
    let events: Vec<Value> = resp
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| match e["type"].as_str() {
            Some("BOOKMARK") => {
                let annotations = &e["object"]["metadata"]["annotations"];
                (!annotations.is_null()).then(|| json!(["BOOKMARK", annotations]))
            }
            Some(t) => Some(json!([t, e["object"]["metadata"]["name"]])),
            None => None,
        })
        .collect();
    json!({"code": 200, "events": events})
}

fn watch_list(kg: &Kgate, reference: &Reference) {
    let cases = [
        (
            "initial-events-then-end-bookmark",
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ),
        (
            "initial-events-without-bookmarks",
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        ),
        (
            "no-initial-events",
            "sendInitialEvents=false&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ),
        (
            "initial-events-need-not-older-than",
            "sendInitialEvents=true&allowWatchBookmarks=true",
        ),
        (
            "not-older-than-needs-initial-events",
            "resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ),
        (
            "exact-is-not-supported",
            "sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true",
        ),
    ];
    let mut differences = Differences::new("watch-list");
    for (id, query) in cases {
        // The system namespaces, the same four in both.
        let path = format!("/api/v1/namespaces?watch=true&timeoutSeconds=1&{query}");
        let servers: [&dyn ApiServer; 2] = [kg, reference];
        let [ours, theirs] = servers.map(|server| summary(&request(server, "GET", &path).send()));
        differences.case(
            id,
            (ours != theirs).then(|| format!("kgate {ours}\nkube-apiserver {theirs}")),
        );
    }
    differences.assert_only_known();
}

/// The objects of the status-writes suite, created alike on both servers (a YAML stream: a
/// `kind: List` is validated through /openapi/v2, which kgate does not serve).
const OBJECTS: &str = r#"# YAML (JSON documents), so that kubectl reads a stream
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","labels":{"app":"d"}},
 "spec":{"replicas":1,"selector":{"matchLabels":{"app":"d"}},
         "template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}
---
{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r","labels":{"app":"r"}},
 "spec":{"replicas":1,"selector":{"matchLabels":{"app":"r"}},
         "template":{"metadata":{"labels":{"app":"r"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}
---
{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"status-test"}}
---
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"p"}},
 "spec":{"serviceAccountName":"status-test","automountServiceAccountToken":false,
         "containers":[{"name":"c","image":"nginx"}]}}
"#;

fn status_writes(kg: &Kgate, reference: &Reference) {
    let servers: [&dyn ApiServer; 2] = [kg, reference];
    for server in servers {
        let file = server.files().join("status-objects.yaml");
        std::fs::write(&file, OBJECTS).expect("write the objects");
        server.kubectl_ok(&["create", "-f", &file.display().to_string()]);
    }
    let owner = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                        "uid": "6b0e6a52-3f0c-4a59-9a4b-3b1d7c1f0a01"}]);
    // (case, status path, merge patch, the fields compared afterwards)
    let cases = [
        (
            "deployment-takes-annotations-keeps-labels-and-spec",
            "/apis/apps/v1/namespaces/default/deployments/d/status",
            json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": "1"},
                                "labels": {"app": "d", "extra": "x"}},
                   "spec": {"replicas": 5}, "status": {"observedGeneration": 1}}),
        ),
        (
            "replicaset-takes-labels-keeps-spec",
            "/apis/apps/v1/namespaces/default/replicasets/r/status",
            json!({"metadata": {"labels": {"app": "r", "extra": "x"}},
                   "spec": {"replicas": 5}, "status": {"replicas": 0, "observedGeneration": 1}}),
        ),
        (
            "pod-takes-labels-keeps-owner-references-and-spec",
            "/api/v1/namespaces/default/pods/p/status",
            json!({"metadata": {"labels": {"app": "p", "extra": "x"}, "ownerReferences": owner},
                   "spec": {"activeDeadlineSeconds": 5}, "status": {"message": "m"}}),
        ),
    ];
    let mut differences = Differences::new("status-writes");
    for (id, path, patch) in cases {
        let [ours, theirs] = servers.map(|server| {
            let resp = request(server, "PATCH", path)
                .body("application/merge-patch+json", patch.to_string())
                .send();
            let obj: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
            json!({
                "code": resp.status,
                "annotations": obj["metadata"]["annotations"],
                "labels": obj["metadata"]["labels"],
                "ownerReferences": obj["metadata"]["ownerReferences"],
                "replicas": obj["spec"]["replicas"],
                "activeDeadlineSeconds": obj["spec"]["activeDeadlineSeconds"],
                "status.message": obj["status"]["message"],
                "status.observedGeneration": obj["status"]["observedGeneration"],
            })
        });
        differences.case(
            id,
            (ours != theirs).then(|| format!("kgate {ours}\nkube-apiserver {theirs}")),
        );
    }
    differences.assert_only_known();
}

fn daemonsets(kg: &Kgate, reference: &Reference) {
    let servers: [&dyn ApiServer; 2] = [kg, reference];
    let daemonset = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "labels": {"app": "agent"}},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    });
    let [ours, theirs] = servers.map(|server| {
        let resp = request(server, "POST", "/apis/apps/v1/namespaces/default/daemonsets")
            .json(daemonset.to_string())
            .send();
        let created: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        json!({"code": resp.status, "spec": created["spec"], "generation": created["metadata"]["generation"]})
    });
    let mut differences = Differences::new("daemonsets");
    differences.case(
        "created-with-kubes-defaults",
        (ours != theirs).then(|| format!("kgate {ours}\nkube-apiserver {theirs}")),
    );
    differences.assert_only_known();
}

fn authentication_info(kg: &Kgate, reference: &Reference) {
    let servers: [&dyn ApiServer; 2] = [kg, reference];
    let [ours, theirs] = servers.map(|server| {
        let resp = request(
            server,
            "GET",
            "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
        )
        .send();
        let map: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        let keys: Vec<&String> = map["data"]
            .as_object()
            .map(|d| d.keys().collect())
            .unwrap_or_default();
        // The CA that signed the admin's certificate is the one published.
        let admin_ca = kgate_e2e::kubeconfig_pem(&server.admin_kubeconfig(), "client-certificate-data");
        let published = map["data"]["client-ca-file"].as_str().unwrap_or("").to_owned();
        json!({"code": resp.status, "keys": keys, "issuer-published": issuer_in(&admin_ca, &published)})
    });
    let mut differences = Differences::new("authentication-info");
    differences.case(
        "client-ca-file-only-without-requestheader",
        (ours != theirs).then(|| format!("kgate {ours}\nkube-apiserver {theirs}")),
    );
    differences.assert_only_known();
}

/// Whether `bundle` (PEM) holds the issuer of `cert` (PEM): `openssl verify` of one against
/// the other.
fn issuer_in(cert: &[u8], bundle: &str) -> bool {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (cert_path, bundle_path) = (dir.path().join("cert.pem"), dir.path().join("ca.pem"));
    std::fs::write(&cert_path, cert).expect("write the certificate");
    std::fs::write(&bundle_path, bundle).expect("write the bundle");
    std::process::Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&bundle_path)
        .arg(&cert_path)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn what_client_go_relies_on_is_answered_as_kube_apiserver_answers_it() {
    let (kg, reference) = std::thread::scope(|s| {
        // No components: nothing but these requests writes the objects, as on the reference.
        let kg = s.spawn(|| {
            Kgate::up_with(Options {
                gateway_args: vec!["--controllers=".to_owned()],
                ..Options::default()
            })
        });
        let reference = s.spawn(Reference::up);
        (
            kg.join().expect("kgate starts"),
            reference.join().expect("the reference starts"),
        )
    });
    watch_list(&kg, &reference);
    status_writes(&kg, &reference);
    daemonsets(&kg, &reference);
    authentication_info(&kg, &reference);
}
