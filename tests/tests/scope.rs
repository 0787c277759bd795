//! Resource scope in the URL: a cluster-scoped resource does not exist under
//! `/namespaces/{ns}/`, and a namespaced one has no object paths outside a namespace, as in
//! kube-apiserver, whose routes are made from each resource's scope. kgate answers such a path
//! 404 before authorization, so a grant in one namespace never reaches cluster-scoped objects.
//! The scope matrix also runs on the real kube-apiserver (v1.34.2), compared request by request
//! (differential suite `scope`).

use kgate_e2e::reference::{Differences, Reference};
use kgate_e2e::{request, ApiServer, Identity, Kgate};

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

/// One resource as discovery lists it.
#[derive(Debug, Clone)]
struct Discovered {
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    base: String,
    api_version: String,
    kind: String,
    /// `pods`, or `pods/status` for a subresource.
    name: String,
    namespaced: bool,
    verbs: Vec<String>,
}

impl Discovered {
    fn resource(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }
    fn subresource(&self) -> Option<&str> {
        self.name.split_once('/').map(|(_, sub)| sub)
    }
}

/// Every resource and subresource of every group version in discovery.
fn discover(kg: &Kgate) -> Vec<Discovered> {
    let get = |path: &str| -> serde_json::Value {
        let response = kg.request("GET", path).send();
        assert_eq!(response.status, 200, "{response}");
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {response}"))
    };
    let mut bases = vec!["/api/v1".to_owned()];
    let groups = get("/apis");
    for group in groups["groups"].as_array().into_iter().flatten() {
        for version in group["versions"].as_array().into_iter().flatten() {
            if let Some(gv) = version["groupVersion"].as_str() {
                bases.push(format!("/apis/{gv}"));
            }
        }
    }
    let mut found = Vec::new();
    for base in bases {
        let list = get(&base);
        let api_version = list["groupVersion"].as_str().unwrap_or("").to_owned();
        for r in list["resources"].as_array().into_iter().flatten() {
            found.push(Discovered {
                base: base.clone(),
                api_version: api_version.clone(),
                kind: r["kind"].as_str().unwrap_or("").to_owned(),
                name: r["name"].as_str().unwrap_or("").to_owned(),
                namespaced: r["namespaced"].as_bool().unwrap_or(false),
                verbs: r["verbs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            });
        }
    }
    found
}

/// The methods of every verb, on a collection path and on an object path.
const COLLECTION_METHODS: [(&str, &str); 5] = [
    ("GET", ""),
    ("GET", "?watch=true&timeoutSeconds=1"),
    ("POST", ""),
    ("PUT", ""),
    ("DELETE", ""),
];
const OBJECT_METHODS: [(&str, &str); 5] = [
    ("GET", ""),
    ("GET", "?watch=true&timeoutSeconds=1"),
    ("PUT", ""),
    ("PATCH", ""),
    ("DELETE", ""),
];

/// One request of the scope matrix.
struct Case<'r> {
    method: &'static str,
    path: String,
    /// The answer written from kube-apiserver's routes.
    code: u16,
    resource: &'r Discovered,
}

/// `case` sent to `server` as the admin: the HTTP status and whether the body is a Status
/// carrying the same code.
fn send(server: &dyn ApiServer, case: &Case<'_>) -> (u16, bool, String) {
    let r = case.resource;
    let body = serde_json::json!({
        "apiVersion": r.api_version, "kind": r.kind,
        "metadata": {"name": "x", "namespace": "scope",
                     "labels": {"scope-matrix": "written"}},
    });
    let request = request(server, case.method, &case.path);
    let request = match case.method {
        "POST" | "PUT" => request.json(body.to_string()),
        "PATCH" => request.body(
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"scope-matrix":"patched"}}}"#,
        ),
        _ => request,
    };
    let response = request.send();
    let status: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
    let is_status = status["kind"] == "Status" && status["code"] == response.status;
    (response.status, is_status, response.body)
}

/// Every case sent to `server` by four clients; the answers in the cases' order.
fn send_all(server: &dyn ApiServer, cases: &[Case<'_>]) -> Vec<(u16, bool, String)> {
    std::thread::scope(|scope| {
        let workers: Vec<_> = cases
            .chunks(cases.len().div_ceil(4))
            .map(|chunk| {
                scope.spawn(move || chunk.iter().map(|c| send(server, c)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// The scope matrix: every resource in discovery, under the wrong scope's path, with every
/// method, as the admin (who may do anything that routes): 404, and nothing changes (the store's
/// revision stays where it was). The one exception is kube-apiserver's own: a namespaced
/// resource's collection outside a namespace exists for list and watch, so its other methods
/// are 405 there (go-restful's answer), not 404.
///
/// The same requests (made from kgate's discovery; resources only kube-apiserver serves are not
/// asked) go to the real kube-apiserver v1.34.2: it is held to the same written answers, and the
/// two are compared per request (differential suite `scope`: status code and whether the body
/// is a Status of that code). The store-revision check is kgate's only: kube-apiserver writes
/// its own Leases meanwhile.
#[test]
fn every_resource_at_the_wrong_scope_has_no_route() {
    let (kg, reference) = std::thread::scope(|scope| {
        let reference = scope.spawn(Reference::up);
        // No simulated nodes and no controllers: nothing else writes while the matrix runs.
        let kg = Kgate::up_with(kgate_e2e::Options {
            gateway_args: vec!["--nodes=0".to_owned(), "--controllers=".to_owned()],
            ..kgate_e2e::Options::default()
        });
        (
            kg,
            reference
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    });
    kg.kubectl_ok(&["create", "namespace", "scope"]);
    reference.kubectl_ok(&["create", "namespace", "scope"]);
    let resources = discover(&kg);
    assert!(resources.len() > 30, "discovery lists {}", resources.len());
    let revision = |kg: &Kgate| -> String {
        let response = kg.request("GET", "/api/v1/namespaces?limit=1").send();
        assert_eq!(response.status, 200, "{response}");
        let list: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
        list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let before = revision(&kg);

    let mut cases = Vec::new();
    for r in &resources {
        let object_path = |base: &str| match r.subresource() {
            Some(sub) => format!("{base}/{}/x/{sub}", r.resource()),
            None => format!("{base}/{}/x", r.resource()),
        };
        let mut add = |method, path: String, code| {
            cases.push(Case {
                method,
                path,
                code,
                resource: r,
            })
        };
        if r.namespaced {
            // Outside a namespace: no object (or subresource) paths at all.
            for (method, query) in OBJECT_METHODS {
                add(method, format!("{}{query}", object_path(&r.base)), 404);
            }
            if r.subresource().is_none() {
                let listable = r.verbs.iter().any(|v| v == "list");
                for (method, query) in COLLECTION_METHODS {
                    if method == "GET" && listable {
                        continue; // list and watch across namespaces: the right scope.
                    }
                    let code = if listable { 405 } else { 404 };
                    add(method, format!("{}/{}{query}", r.base, r.name), code);
                }
            }
        } else {
            let under = format!("{}/namespaces/scope", r.base);
            for (method, query) in OBJECT_METHODS {
                add(method, format!("{}{query}", object_path(&under)), 404);
            }
            if r.subresource().is_none() {
                for (method, query) in COLLECTION_METHODS {
                    add(method, format!("{under}/{}{query}", r.name), 404);
                }
            }
        }
    }
    let namespaced = resources.iter().filter(|r| r.namespaced).count();
    assert!(
        namespaced > 10 && namespaced < resources.len() - 10,
        "both scopes are in discovery"
    );

    let (ours, theirs) = std::thread::scope(|scope| {
        let theirs = scope.spawn(|| send_all(&reference, &cases));
        let ours = send_all(&kg, &cases);
        (
            ours,
            theirs
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p)),
        )
    });
    let wrong = |answers: &[(u16, bool, String)]| -> Vec<String> {
        cases
            .iter()
            .zip(answers)
            .filter(|(case, (code, is_status, _))| *code != case.code || !is_status)
            .map(|(case, (code, _, body))| {
                format!(
                    "{} {} ({}): {code} {body}",
                    case.method, case.path, case.resource.name
                )
            })
            .collect()
    };
    let failures = wrong(&ours);
    let reference_failures = wrong(&theirs);
    let mut differences = Differences::new("scope");
    for (case, (a, b)) in cases.iter().zip(ours.iter().zip(&theirs)) {
        let difference = ((a.0, a.1) != (b.0, b.1)).then(|| {
            format!(
                "kgate {} (Status: {}), kube-apiserver {} (Status: {}): {}",
                a.0, a.1, b.0, b.1, b.2
            )
        });
        differences.case(&format!("{} {}", case.method, case.path), difference);
    }
    kgate_e2e::note(&format!(
        "scope matrix: {} of {} requests refused as Kubernetes refuses them ({} resources); kube-apiserver {}",
        cases.len() - failures.len(),
        cases.len(),
        resources.len(),
        cases.len() - reference_failures.len(),
    ));
    differences.assert_only_known();
    assert!(
        reference_failures.is_empty(),
        "{} of {} written answers are not kube-apiserver's:\n{}",
        reference_failures.len(),
        cases.len(),
        reference_failures.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} wrong-scope requests were answered otherwise:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        revision(&kg),
        before,
        "a wrong-scope request wrote to the store"
    );
}
