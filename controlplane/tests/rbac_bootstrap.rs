//! The bootstrap RBAC policy through the API server: the whole policy after the first start, its
//! reconciliation at every restart (user edits kept, removed policy back, autoupdate=false
//! respected, nothing rewritten that agrees), the ClusterRole aggregation controller, and the
//! immutability of a binding's roleRef.

// Tests may unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use http::{Method, Request};
use http_body_util::BodyExt;
use kgate_authz::aggregation::rules_equal;
use kgate_controlplane::store::redb::{RedbOptions, RedbStore};
use kgate_controlplane::store::Store;
use kgate_controlplane::ControlPlane;
use serde_json::{json, Value};
use tower::ServiceExt;

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

/// A control plane over a RedbStore in a directory, that can be closed and opened again.
struct Plane {
    store: Arc<RedbStore>,
    server: ControlPlane,
    router: Router,
}

impl Plane {
    async fn open(dir: &Path) -> Plane {
        let store = Arc::new(
            RedbStore::open(&dir.join("store.redb"), RedbOptions::default()).expect("open store"),
        );
        let shared: Arc<dyn Store> = store.clone();
        let server = ControlPlane::start(shared).await.expect("start");
        let router = server.router();
        Plane {
            store,
            server,
            router,
        }
    }

    /// Stops the server and closes the store. The controllers let go of the store when they stop,
    /// which is asynchronous: wait for that, as the gateway's shutdown does.
    async fn close(self) {
        let Plane {
            mut store,
            server,
            router,
        } = self;
        drop(router);
        drop(server);
        for _ in 0..500 {
            match Arc::try_unwrap(store) {
                Ok(owned) => return owned.close().await.expect("close store"),
                Err(shared) => store = shared,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("something still holds the store");
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (code, body) = self.call(Method::GET, path, JSON, None).await;
        assert_eq!(code, 200, "GET {path}: {body}");
        body
    }

    async fn write(&self, method: Method, path: &str, body: &Value) -> Value {
        let (code, out) = self.call(method.clone(), path, JSON, Some(body)).await;
        assert!(code == 200 || code == 201, "{method} {path}: {code} {out}");
        out
    }

    async fn delete(&self, path: &str) {
        let (code, out) = self.call(Method::DELETE, path, JSON, None).await;
        assert_eq!(code, 200, "DELETE {path}: {out}");
    }

    /// Polls `path` until `done` holds (the aggregation controller works in the background).
    async fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            let obj = self.get(path).await;
            if done(&obj) {
                return obj;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{path}: never {what}: {}", self.get(path).await);
    }
}

fn rules(obj: &Value) -> Vec<Value> {
    obj["rules"].as_array().cloned().unwrap_or_default()
}

fn has_rule(obj: &Value, rule: &Value) -> bool {
    rules(obj)
        .iter()
        .any(|r| rules_equal(std::slice::from_ref(r), std::slice::from_ref(rule)))
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn versions(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            (
                m["name"].as_str().unwrap().to_owned(),
                m["resourceVersion"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_whole_policy_exists_after_the_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Plane::open(dir.path()).await;
    let roles = cp.get(&format!("{RBAC}/clusterroles")).await;
    let policy = kgate_authz::bootstrap::cluster_roles();
    assert_eq!(names(&roles).len(), policy.len());
    for name in [
        "system:controller:clusterrole-aggregation-controller",
        "system:node",
        "system:monitoring",
    ] {
        assert!(names(&roles).iter().any(|n| n == name), "{name}");
    }
    // admin, edit and view hold the aggregation of the bootstrap roles.
    for name in ["admin", "edit", "view"] {
        let stored = cp.get(&format!("{RBAC}/clusterroles/{name}")).await;
        let want = policy
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .unwrap();
        assert!(!rules(&stored).is_empty(), "{name}");
        assert!(rules_equal(&rules(&stored), &rules(want)), "{name}");
    }
    let bindings = cp.get(&format!("{RBAC}/clusterrolebindings")).await;
    assert_eq!(
        names(&bindings).len(),
        kgate_authz::bootstrap::cluster_role_bindings().len()
    );
    let issuer = cp
        .get(&format!(
            "{RBAC}/clusterrolebindings/system:service-account-issuer-discovery"
        ))
        .await;
    assert_eq!(issuer["subjects"][0]["name"], "system:serviceaccounts");
    let system_roles = cp
        .get(&format!("{RBAC}/namespaces/kube-system/roles"))
        .await;
    assert!(names(&system_roles).contains(&"extension-apiserver-authentication-reader".to_owned()));
    let public = cp
        .get(&format!("{RBAC}/namespaces/kube-public/rolebindings"))
        .await;
    assert_eq!(names(&public), ["system:controller:bootstrap-signer"]);
    cp.close().await;
}

#[tokio::test]
async fn restarts_reconcile_the_policy_and_keep_user_edits() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Plane::open(dir.path()).await;
    let basic = format!("{RBAC}/clusterroles/system:basic-user");
    let original = cp.get(&basic).await;
    let removed = original["rules"][0].clone();
    let extra = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]});
    // An admin removes a bootstrap rule, adds one and labels the role.
    let mut edited = original.clone();
    edited["rules"] = json!([original["rules"][1].clone(), extra.clone()]);
    edited["metadata"]["labels"]["team"] = json!("platform");
    cp.write(Method::PUT, &basic, &edited).await;
    // ...drops a subject of a binding and adds another...
    let discovery = format!("{RBAC}/clusterrolebindings/system:discovery");
    let mut binding = cp.get(&discovery).await;
    binding["subjects"] =
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]);
    cp.write(Method::PUT, &discovery, &binding).await;
    // ...opts a role out of updates and empties it...
    let info = format!("{RBAC}/clusterroles/system:public-info-viewer");
    let mut protected = cp.get(&info).await;
    protected["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] =
        json!("false");
    protected["rules"] = json!([]);
    let protected = cp.write(Method::PUT, &info, &protected).await;
    // ...and re-points a bootstrap binding (a roleRef only changes by recreating the binding).
    let dns = format!("{RBAC}/clusterrolebindings/system:kube-dns");
    let mut moved = cp.get(&dns).await;
    cp.delete(&dns).await;
    moved["roleRef"]["name"] = json!("view");
    moved["metadata"] = json!({"name": "system:kube-dns"});
    cp.write(Method::POST, &format!("{RBAC}/clusterrolebindings"), &moved)
        .await;
    let untouched = cp.get(&format!("{RBAC}/clusterroles/cluster-admin")).await;
    cp.close().await;

    let cp = Plane::open(dir.path()).await;
    let basic_now = cp.get(&basic).await;
    assert!(
        has_rule(&basic_now, &removed),
        "the removed rule is back: {basic_now}"
    );
    assert!(
        has_rule(&basic_now, &extra),
        "the admin's rule stays: {basic_now}"
    );
    assert_eq!(basic_now["metadata"]["labels"]["team"], "platform");
    assert_eq!(
        basic_now["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    let subjects: Vec<Value> = cp.get(&discovery).await["subjects"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        subjects,
        [
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}),
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"})
        ]
    );
    assert_eq!(
        cp.get(&info).await,
        protected,
        "autoupdate=false is left alone"
    );
    let dns_now = cp.get(&dns).await;
    assert_eq!(dns_now["roleRef"]["name"], "system:kube-dns");
    assert_eq!(
        dns_now["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
    assert_eq!(
        cp.get(&format!("{RBAC}/clusterroles/cluster-admin")).await["metadata"]["resourceVersion"],
        untouched["metadata"]["resourceVersion"]
    );
    // A restart over a reconciled store writes nothing at all.
    let mut before = Vec::new();
    for kind in [
        "clusterroles",
        "clusterrolebindings",
        "roles",
        "rolebindings",
    ] {
        before.push(versions(&cp.get(&format!("{RBAC}/{kind}")).await));
    }
    cp.close().await;
    let cp = Plane::open(dir.path()).await;
    for (kind, before) in [
        "clusterroles",
        "clusterrolebindings",
        "roles",
        "rolebindings",
    ]
    .iter()
    .zip(before)
    {
        assert_eq!(
            versions(&cp.get(&format!("{RBAC}/{kind}")).await),
            before,
            "{kind}"
        );
    }
    cp.close().await;
}

#[tokio::test]
async fn the_aggregation_controller_follows_labelled_roles() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Plane::open(dir.path()).await;
    let view = format!("{RBAC}/clusterroles/view");
    let admin = format!("{RBAC}/clusterroles/admin");
    let read = json!({"apiGroups": ["stable.example.com"], "resources": ["crontabs"], "verbs": ["get", "list"]});
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "crontab-reader", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [read.clone()]});
    cp.write(Method::POST, &format!("{RBAC}/clusterroles"), &role)
        .await;
    cp.until(&view, "gets the crontab rule", |v| has_rule(v, &read))
        .await;
    // view feeds edit, edit feeds admin.
    cp.until(&admin, "gets the crontab rule", |v| has_rule(v, &read))
        .await;

    // An update of the source changes what view holds.
    let path = format!("{RBAC}/clusterroles/crontab-reader");
    let watch =
        json!({"apiGroups": ["stable.example.com"], "resources": ["crontabs"], "verbs": ["watch"]});
    let (code, _) = cp
        .call(
            Method::PATCH,
            &path,
            MERGE,
            Some(&json!({"rules": [watch.clone()]})),
        )
        .await;
    assert_eq!(code, 200);
    cp.until(&view, "follows the update", |v| {
        has_rule(v, &watch) && !has_rule(v, &read)
    })
    .await;

    // A role selected by matchExpressions, aggregated by a role of the user's.
    let team = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "team-reader"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [
            {"key": "rbac.authorization.k8s.io/aggregate-to-view", "operator": "Exists"},
            {"key": "kubernetes.io/bootstrapping", "operator": "DoesNotExist"}]}]}});
    cp.write(Method::POST, &format!("{RBAC}/clusterroles"), &team)
        .await;
    let team_now = cp
        .until(
            &format!("{RBAC}/clusterroles/team-reader"),
            "aggregates",
            |v| has_rule(v, &watch),
        )
        .await;
    assert_eq!(
        rules(&team_now),
        std::slice::from_ref(&watch),
        "only the user's labelled role"
    );

    // Deleting the source takes its rules away again.
    cp.delete(&path).await;
    cp.until(&view, "drops the crontab rule", |v| !has_rule(v, &watch))
        .await;
    cp.until(&admin, "drops the crontab rule", |v| !has_rule(v, &watch))
        .await;
    let view_now = cp.get(&view).await;
    let policy = kgate_authz::bootstrap::cluster_roles();
    let want = policy
        .iter()
        .find(|r| r["metadata"]["name"] == "view")
        .unwrap();
    assert!(rules_equal(&rules(&view_now), &rules(want)));
    cp.until(
        &format!("{RBAC}/clusterroles/team-reader"),
        "empties",
        |v| rules(v).is_empty(),
    )
    .await;
    cp.close().await;
}

#[tokio::test]
async fn a_binding_role_ref_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Plane::open(dir.path()).await;
    let path = format!("{RBAC}/namespaces/default/rolebindings/readers");
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "readers"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]});
    let created = cp
        .write(
            Method::POST,
            &format!("{RBAC}/namespaces/default/rolebindings"),
            &binding,
        )
        .await;
    let want = r#"RoleBinding.rbac.authorization.k8s.io "readers" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef"#;
    let mut changed = created.clone();
    changed["roleRef"]["name"] = json!("edit");
    let (code, status) = cp.call(Method::PUT, &path, JSON, Some(&changed)).await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(status["message"], want);
    assert_eq!(status["details"]["causes"][0]["field"], "roleRef");
    let (code, status) = cp
        .call(
            Method::PATCH,
            &path,
            MERGE,
            Some(&json!({"roleRef": {"name": "edit"}})),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(status["message"], want);
    // The same roleRef with other subjects is an ordinary update.
    let mut more = created.clone();
    more["subjects"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}));
    cp.write(Method::PUT, &path, &more).await;
    assert_eq!(cp.get(&path).await["roleRef"]["name"], "view");
    cp.close().await;
}
