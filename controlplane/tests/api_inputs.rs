//! Bad input gets a clear Status and stores nothing; namespace lifecycle (existence, Terminating,
//! protected namespaces, background content deletion); discovery routing and path checks.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use http::Method;
use serde_json::json;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

async fn count(api: &Api, path: &str) -> usize {
    api.get(path).await.body["items"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn bad_bodies_are_refused_and_nothing_is_stored() {
    let api = Api::new().await;
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let too_large = api.raw(Method::POST, CMS, Some(JSON), big, None).await;
    assert_eq!(too_large.code(), 413);
    assert_eq!(too_large.body["reason"], "RequestEntityTooLarge");

    let malformed = api
        .raw(Method::POST, CMS, Some(JSON), b"{\"kind\":".to_vec(), None)
        .await;
    assert_eq!(malformed.code(), 400);
    let yaml = api
        .raw(
            Method::POST,
            CMS,
            Some("application/yaml"),
            b"kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: y\n".to_vec(),
            None,
        )
        .await;
    assert_eq!(yaml.code(), 201, "{:?}", yaml.body);

    let mut wrong_version = configmap("a", json!({}));
    wrong_version["apiVersion"] = json!("apps/v1");
    let s = api.post(CMS, &wrong_version).await;
    assert_eq!(s.code(), 400);
    assert_eq!(
        s.message(),
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );

    let wrong_kind = pod("a");
    let s = api.post(CMS, &wrong_kind).await;
    assert_eq!(s.code(), 400);
    assert!(
        s.message().contains("cannot be handled as a ConfigMap"),
        "{}",
        s.message()
    );

    let mut other_ns = configmap("a", json!({}));
    other_ns["metadata"]["namespace"] = json!("kube-system");
    let s = api.post(CMS, &other_ns).await;
    assert_eq!(s.code(), 400);
    assert_eq!(
        s.message(),
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    let s = api
        .post(
            CMS,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
        )
        .await;
    assert_eq!(s.code(), 422);
    assert_eq!(s.body["reason"], "Invalid");
    assert_eq!(
        s.message(),
        r#"ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required"#
    );

    let s = api.post(CMS, &configmap("Not_Valid", json!({}))).await;
    assert_eq!(s.code(), 422);
    assert!(s.message().starts_with(r#"ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain"#), "{}", s.message());

    let s = api
        .post(
            "/api/v1/namespaces/default/pods",
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}),
        )
        .await;
    assert_eq!(s.code(), 422);
    assert_eq!(
        s.message(),
        r#"Pod "p" is invalid: spec.containers: Required value"#
    );

    let mut d = deployment("web");
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let s = api
        .post("/apis/apps/v1/namespaces/default/deployments", &d)
        .await;
    assert_eq!(s.code(), 422);
    assert!(
        s.message()
            .contains("`selector` does not match template `labels`"),
        "{}",
        s.message()
    );

    let s = api
        .raw(Method::POST, CMS, Some("text/plain"), b"x".to_vec(), None)
        .await;
    assert_eq!(s.code(), 415);
    // Only the YAML one was stored.
    assert_eq!(count(&api, CMS).await, 1);
}

#[tokio::test]
async fn field_validation_strict_warn_ignore() {
    let api = Api::new().await;
    let mut cm = configmap("a", json!({}));
    cm["spec"] = json!({"foo": 1});
    let strict = api
        .post(&format!("{CMS}?fieldValidation=Strict"), &cm)
        .await;
    assert_eq!(strict.code(), 400);
    assert_eq!(strict.body["reason"], "BadRequest");
    assert_eq!(
        strict.message(),
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "spec""#
    );
    let warn = api.post(&format!("{CMS}?fieldValidation=Warn"), &cm).await;
    assert_eq!(warn.code(), 201);
    assert_eq!(
        warn.headers.get("warning").unwrap(),
        r#"299 - "unknown field \"spec\"""#
    );
    assert!(warn.body.get("spec").is_none());
    cm["metadata"]["name"] = json!("b");
    let ignore = api
        .post(&format!("{CMS}?fieldValidation=Ignore"), &cm)
        .await;
    assert_eq!(ignore.code(), 201);
    assert!(ignore.headers.get("warning").is_none());
    let strict_patch = api
        .patch(
            &format!("{CMS}/a?fieldValidation=Strict"),
            MERGE,
            &json!({"bogus": true}),
        )
        .await;
    assert_eq!(strict_patch.code(), 400);
    assert_eq!(
        strict_patch.message(),
        r#"strict decoding error: unknown field "bogus""#
    );
}

#[tokio::test]
async fn namespaces_gate_creation() {
    let api = Api::new().await;
    let s = api
        .post(
            "/api/v1/namespaces/nope/configmaps",
            &configmap("a", json!({})),
        )
        .await;
    assert_eq!(s.code(), 404);
    assert_eq!(s.message(), r#"namespaces "nope" not found"#);
    for protected in ["default", "kube-system", "kube-public"] {
        let s = api.delete(&format!("/api/v1/namespaces/{protected}")).await;
        assert_eq!(s.code(), 403);
        assert_eq!(s.body["reason"], "Forbidden");
        assert_eq!(
            s.message(),
            format!(r#"namespaces "{protected}" is forbidden: this namespace may not be deleted"#)
        );
    }
    assert_eq!(api.delete("/api/v1/namespaces").await.code(), 405);
}

#[tokio::test]
async fn namespace_deletion_removes_content_then_the_namespace() {
    let api = Api::new().await;
    let ns = api
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        )
        .await;
    assert_eq!(ns.code(), 201);
    assert_eq!(ns.body["status"]["phase"], "Active");
    assert_eq!(
        ns.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    let team = "/api/v1/namespaces/team/configmaps";
    let mut held = configmap("held", json!({}));
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(api.post(team, &held).await.code(), 201);
    assert_eq!(api.post(team, &configmap("b", json!({}))).await.code(), 201);
    assert_eq!(
        api.post("/api/v1/namespaces/team/pods", &pod("p"))
            .await
            .code(),
        201
    );

    let deleting = api.delete("/api/v1/namespaces/team").await;
    assert_eq!(deleting.code(), 200);
    assert_eq!(deleting.body["status"]["phase"], "Terminating");
    assert!(deleting.body["metadata"]["deletionTimestamp"].is_string());
    let refused = api.post(team, &configmap("c", json!({}))).await;
    assert_eq!(refused.code(), 403);
    assert_eq!(
        refused.message(),
        r#"configmaps "c" is forbidden: unable to create new content in namespace team because it is being terminated"#
    );

    // Content without finalizers goes; the held one is marked and keeps the namespace.
    wait_until(|| async {
        count(&api, team).await == 1 && count(&api, "/api/v1/namespaces/team/pods").await == 0
    })
    .await;
    let held = api.get(&format!("{team}/held")).await;
    assert!(held.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(api.get("/api/v1/namespaces/team").await.code(), 200);
    // Releasing it lets the namespace finish.
    api.patch(
        &format!("{team}/held"),
        MERGE,
        &json!({"metadata": {"finalizers": null}}),
    )
    .await;
    wait_until(|| async { api.get("/api/v1/namespaces/team").await.code() == 404 }).await;
}

async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 5 s");
}

#[tokio::test]
async fn routing_and_paths() {
    let api = Api::new().await;
    assert_eq!(api.get("/api").await.body["kind"], "APIVersions");
    assert_eq!(
        api.get("/apis/apps/v1").await.body["kind"],
        "APIResourceList"
    );
    assert_eq!(api.get("/nothing/here").await.code(), 404);
    assert_eq!(
        api.get("/api/v1/namespaces/default/widgets").await.code(),
        404
    );
    assert_eq!(
        api.get("/api/v1/namespaces/default/configmaps/a/b/c")
            .await
            .code(),
        404
    );
    assert_eq!(
        api.get("/api/v1/namespaces/default/configmaps/a/nosuch")
            .await
            .code(),
        404
    );
    let dots = api.get("/api/v1/namespaces/default/../secrets").await;
    assert_eq!(dots.code(), 400);
    assert_eq!(
        api.get("/api/v1/namespaces/default%2Fx/pods").await.code(),
        400
    );
    assert_eq!(
        api.get("/api/v1/namespaces/default/nodes").await.code(),
        404
    );
    assert_eq!(
        api.post(
            "/api/v1/namespaces/default/configmaps/a",
            &configmap("a", json!({}))
        )
        .await
        .code(),
        405
    );
}

#[tokio::test]
async fn watch_is_routed_to_the_watch_server() {
    let api = Api::new().await;
    api.post(CMS, &configmap("w", json!({}))).await;
    let watch = api.get(&format!("{CMS}?watch=true&timeoutSeconds=1")).await;
    assert_eq!(watch.code(), 200);
    let text = watch
        .body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| watch.body.to_string());
    assert!(text.contains("ADDED") && text.contains("\"w\""), "{text}");
    let bad = api
        .get(&format!("{CMS}?watch=true&labelSelector=%3D%3D"))
        .await;
    assert_eq!(bad.code(), 400);
}
