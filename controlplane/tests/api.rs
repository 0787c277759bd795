//! The API server's REST verbs through its router: create, get, list (selectors, paging), update
//! conflicts, the three patch types, delete with finalizers, generateName, dryRun, subresources
//! and a restart over the same store.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use http::Method;
use serde_json::json;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test]
async fn create_get_list_and_restart_keep_objects_and_versions() {
    let api = Api::new().await;
    let created = api.post(CMS, &configmap("a", json!({"app": "x"}))).await;
    assert_eq!(created.code(), 201, "{:?}", created.body);
    let meta = &created.body["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    assert!(meta["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(!created.rv().is_empty());

    let got = api.get(&format!("{CMS}/a")).await;
    assert_eq!(got.code(), 200);
    assert_eq!(got.body, created.body);
    assert_eq!(api.post(CMS, &configmap("a", json!({}))).await.code(), 409);

    let list = api.get(CMS).await;
    assert_eq!(list.body["kind"], "ConfigMapList");
    assert_eq!(list.body["apiVersion"], "v1");
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(list.rv().parse::<i64>().unwrap() >= created.rv().parse::<i64>().unwrap());
    let missing = api.get(&format!("{CMS}/nope")).await;
    assert_eq!(missing.code(), 404);
    assert_eq!(missing.message(), r#"configmaps "nope" not found"#);

    // Restart over the same store: same objects, same resourceVersions, bootstrap untouched.
    let ns_before = api.get("/api/v1/namespaces/default").await;
    let (dir, tmp) = api.close().await;
    let api = Api::open(&dir).await;
    assert_eq!(api.get(&format!("{CMS}/a")).await.body, created.body);
    assert_eq!(
        api.get("/api/v1/namespaces/default").await.body,
        ns_before.body
    );
    drop(tmp);
}

#[tokio::test]
async fn bootstrap_objects_exist() {
    let api = Api::new().await;
    let ns = api.get("/api/v1/namespaces").await;
    let names: Vec<&str> = ns.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let default = api.get("/api/v1/namespaces/default").await;
    assert_eq!(default.body["status"]["phase"], "Active");
    assert_eq!(default.body["spec"]["finalizers"], json!(["kubernetes"]));
    let admin = api
        .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin")
        .await;
    assert_eq!(admin.code(), 200);
    let binding = api
        .get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/cluster-admin")
        .await;
    assert_eq!(binding.code(), 200);
}

#[tokio::test]
async fn update_needs_the_current_resource_version() {
    let api = Api::new().await;
    let created = api.post(CMS, &configmap("a", json!({}))).await;
    let mut next = created.body.clone();
    next["data"]["k"] = json!("v2");
    let updated = api.put(&format!("{CMS}/a"), &next).await;
    assert_eq!(updated.code(), 200, "{:?}", updated.body);
    assert_ne!(updated.rv(), created.rv());
    assert_eq!(
        updated.body["metadata"]["uid"],
        created.body["metadata"]["uid"]
    );
    // The same stale body again: 409 with kube's words.
    let stale = api.put(&format!("{CMS}/a"), &next).await;
    assert_eq!(stale.code(), 409);
    assert_eq!(stale.body["reason"], "Conflict");
    assert_eq!(
        stale.message(),
        r#"Operation cannot be fulfilled on configmaps "a": the object has been modified; please apply your changes to the latest version and try again"#
    );
    // Without a resourceVersion the update is unconditional.
    next["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    next["data"]["k"] = json!("v3");
    let forced = api.put(&format!("{CMS}/a"), &next).await;
    assert_eq!(forced.code(), 200);
    assert_eq!(forced.body["data"]["k"], "v3");
    // A name that differs from the URL is 400.
    let renamed = api.put(&format!("{CMS}/b"), &next).await;
    assert_eq!(renamed.code(), 400);
}

#[tokio::test]
async fn deployment_generation_and_scale() {
    let api = Api::new().await;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let d = api.post(path, &deployment("web")).await;
    assert_eq!(d.code(), 201, "{:?}", d.body);
    assert_eq!(d.body["metadata"]["generation"], 1);
    assert_eq!(d.body["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d.body["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        d.body["spec"]["template"]["spec"]["restartPolicy"],
        "Always"
    );
    let scale = api.get(&format!("{path}/web/scale")).await;
    assert_eq!(scale.body["kind"], "Scale");
    assert_eq!(scale.body["spec"]["replicas"], 2);
    assert_eq!(scale.body["status"]["selector"], "app=web");
    let scaled = api
        .patch(
            &format!("{path}/web/scale"),
            MERGE,
            &json!({"spec": {"replicas": 5}}),
        )
        .await;
    assert_eq!(scaled.code(), 200, "{:?}", scaled.body);
    assert_eq!(scaled.body["spec"]["replicas"], 5);
    let after = api.get(&format!("{path}/web")).await;
    assert_eq!(after.body["spec"]["replicas"], 5);
    assert_eq!(after.body["metadata"]["generation"], 2);
    let mut put = scale.body.clone();
    put["spec"]["replicas"] = json!(1);
    assert_eq!(
        api.put(&format!("{path}/web/scale"), &put).await.code(),
        409,
        "stale scale RV"
    );
    // Status writes go through the status subresource only.
    let status = api
        .patch(
            &format!("{path}/web/status"),
            MERGE,
            &json!({"status": {"replicas": 5}, "spec": {"replicas": 9}}),
        )
        .await;
    assert_eq!(status.code(), 200, "{:?}", status.body);
    assert_eq!(status.body["status"]["replicas"], 5);
    assert_eq!(status.body["spec"]["replicas"], 5);
    let main = api
        .patch(
            &format!("{path}/web"),
            MERGE,
            &json!({"status": {"replicas": 0}}),
        )
        .await;
    assert_eq!(main.body["status"]["replicas"], 5);
    // A status write takes the metadata but the labels (kube's deploymentStatusStrategy): the
    // deployment controller records the revision annotation through it.
    let annotated = api
        .patch(
            &format!("{path}/web/status"),
            MERGE,
            &json!({"metadata": {"annotations": {"deployment.kubernetes.io/revision": "1"},
                                 "labels": {"changed": "no"}}}),
        )
        .await;
    assert_eq!(annotated.code(), 200, "{:?}", annotated.body);
    assert_eq!(
        annotated.body["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert!(annotated.body["metadata"]["labels"]
        .get("changed")
        .is_none());
    assert_eq!(api.get(&format!("{path}/web/nope")).await.code(), 404);
}

#[tokio::test]
async fn the_three_patch_types() {
    let api = Api::new().await;
    let path = "/api/v1/namespaces/default/pods";
    let p = pod("p");
    assert_eq!(api.post(path, &p).await.code(), 201);
    let merged = api
        .patch(
            &format!("{path}/p"),
            MERGE,
            &json!({"metadata": {"labels": {"a": "1"}}}),
        )
        .await;
    assert_eq!(merged.code(), 200);
    assert_eq!(merged.body["metadata"]["labels"]["a"], "1");
    // Strategic merge: containers merge by name.
    let smp = api
        .patch(
            &format!("{path}/p"),
            STRATEGIC,
            &json!({"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}),
        )
        .await;
    assert_eq!(smp.code(), 200, "{:?}", smp.body);
    assert_eq!(smp.body["spec"]["containers"][0]["image"], "nginx:2");
    assert_eq!(
        smp.body["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    let jp = api
        .patch(
            &format!("{path}/p"),
            JSON_PATCH,
            &json!([{"op": "replace", "path": "/metadata/labels/a", "value": "2"}]),
        )
        .await;
    assert_eq!(jp.code(), 200, "{:?}", jp.body);
    assert_eq!(jp.body["metadata"]["labels"]["a"], "2");
    assert_eq!(jp.body["metadata"]["generation"], 2);
    // A failed test op is 422 and changes nothing.
    let failed = api
        .patch(
            &format!("{path}/p"),
            JSON_PATCH,
            &json!([{"op": "test", "path": "/metadata/labels/a", "value": "9"}]),
        )
        .await;
    assert_eq!(failed.code(), 422);
    // A patch that carries a stale resourceVersion is a precondition.
    let stale = api
        .patch(
            &format!("{path}/p"),
            MERGE,
            &json!({"metadata": {"resourceVersion": "1"}}),
        )
        .await;
    assert_eq!(stale.code(), 409);
    let apply = api
        .patch(
            &format!("{path}/p"),
            "application/apply-patch+yaml",
            &json!({}),
        )
        .await;
    assert_eq!(apply.code(), 415);
    assert_eq!(
        api.patch(&format!("{path}/zz"), MERGE, &json!({}))
            .await
            .code(),
        404
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let api = Api::new().await;
    let mut cm = configmap("f", json!({}));
    cm["metadata"]["finalizers"] = json!(["example.com/hold"]);
    api.post(CMS, &cm).await;
    let deleted = api.delete(&format!("{CMS}/f")).await;
    assert_eq!(deleted.code(), 200);
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleted.body["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(api.get(&format!("{CMS}/f")).await.code(), 200);
    let adding = api
        .patch(
            &format!("{CMS}/f"),
            MERGE,
            &json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}}),
        )
        .await;
    assert_eq!(adding.code(), 422);
    let released = api
        .patch(
            &format!("{CMS}/f"),
            MERGE,
            &json!({"metadata": {"finalizers": null}}),
        )
        .await;
    assert_eq!(released.code(), 200, "{:?}", released.body);
    assert_eq!(api.get(&format!("{CMS}/f")).await.code(), 404);
    // Without finalizers a delete removes at once and answers, as kube's ConfigMap storage,
    // a Status of Success naming the object.
    api.post(CMS, &configmap("g", json!({}))).await;
    let gone = api.delete(&format!("{CMS}/g")).await;
    assert_eq!(gone.body["status"], "Success", "{:?}", gone.body);
    assert_eq!(gone.body["details"]["name"], "g");
    assert_eq!(api.get(&format!("{CMS}/g")).await.code(), 404);
    assert_eq!(api.delete(&format!("{CMS}/g")).await.code(), 404);
}

#[tokio::test]
async fn delete_preconditions() {
    let api = Api::new().await;
    let created = api.post(CMS, &configmap("a", json!({}))).await;
    let wrong = api
        .send(
            Method::DELETE,
            &format!("{CMS}/a"),
            JSON,
            &json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "nope"}}),
        )
        .await;
    assert_eq!(wrong.code(), 409);
    assert!(
        wrong
            .message()
            .contains("the UID in the precondition (nope) does not match the UID in record"),
        "{}",
        wrong.message()
    );
    let right = api.send(Method::DELETE, &format!("{CMS}/a"), JSON,
        &json!({"preconditions": {"uid": created.body["metadata"]["uid"], "resourceVersion": created.rv()}})).await;
    assert_eq!(right.code(), 200, "{:?}", right.body);
}

#[tokio::test]
async fn generate_name_and_dry_run() {
    let api = Api::new().await;
    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "job-"}});
    let a = api.post(CMS, &body).await;
    assert_eq!(a.code(), 201, "{:?}", a.body);
    let name = a.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("job-") && name.len() == 9, "{name}");
    assert!(name[4..]
        .chars()
        .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));

    let dry = api
        .post(&format!("{CMS}?dryRun=All"), &configmap("dry", json!({})))
        .await;
    assert_eq!(dry.code(), 201);
    assert_eq!(api.get(&format!("{CMS}/dry")).await.code(), 404);
    let dry_patch = api
        .patch(
            &format!("{CMS}/{name}?dryRun=All"),
            MERGE,
            &json!({"data": {"x": "y"}}),
        )
        .await;
    assert_eq!(dry_patch.body["data"]["x"], "y");
    assert!(api.get(&format!("{CMS}/{name}")).await.body["data"]
        .get("x")
        .is_none());
    assert_eq!(
        api.delete(&format!("{CMS}/{name}?dryRun=All")).await.code(),
        200
    );
    assert_eq!(api.get(&format!("{CMS}/{name}")).await.code(), 200);
    assert_eq!(
        api.post(&format!("{CMS}?dryRun=Bogus"), &configmap("x", json!({})))
            .await
            .code(),
        422
    );
}

#[tokio::test]
async fn selectors_paging_and_deletecollection() {
    let api = Api::new().await;
    for i in 0..7 {
        let tier = if i % 2 == 0 { "web" } else { "db" };
        assert_eq!(
            api.post(CMS, &configmap(&format!("cm{i}"), json!({"tier": tier})))
                .await
                .code(),
            201
        );
    }
    let web = api.get(&format!("{CMS}?labelSelector=tier%3Dweb")).await;
    assert_eq!(web.body["items"].as_array().unwrap().len(), 4);
    let by_name = api
        .get(&format!("{CMS}?fieldSelector=metadata.name%3Dcm3"))
        .await;
    assert_eq!(by_name.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(&format!("{CMS}?labelSelector=%3D%3D")).await.code(),
        400
    );

    // Pages of 2 across a write between pages: one snapshot, every item once.
    let mut seen = Vec::new();
    let first = api.get(&format!("{CMS}?limit=2")).await;
    let list_rv = first.rv();
    let mut page = first;
    api.post(CMS, &configmap("late", json!({}))).await;
    loop {
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["metadata"]["name"].as_str().unwrap().to_owned());
        }
        let token = page.body["metadata"]["continue"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        if token.is_empty() {
            break;
        }
        assert_eq!(page.rv(), list_rv);
        page = api.get(&format!("{CMS}?limit=2&continue={token}")).await;
        assert_eq!(page.code(), 200, "{:?}", page.body);
    }
    assert_eq!(seen, (0..7).map(|i| format!("cm{i}")).collect::<Vec<_>>());
    // Selective selector with a limit still fills pages.
    let db = api
        .get(&format!("{CMS}?labelSelector=tier%3Ddb&limit=2"))
        .await;
    assert_eq!(db.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        api.get(&format!("{CMS}?continue=garbage")).await.code(),
        400
    );

    let removed = api.delete(&format!("{CMS}?labelSelector=tier%3Ddb")).await;
    assert_eq!(removed.code(), 200);
    assert_eq!(removed.body["kind"], "ConfigMapList");
    assert_eq!(removed.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        api.get(CMS).await.body["items"].as_array().unwrap().len(),
        5
    );
    // Across namespaces.
    let all = api.get("/api/v1/configmaps").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn pods_binding_and_tables() {
    let api = Api::new().await;
    let path = "/api/v1/namespaces/default/pods";
    let p = api.post(path, &pod("p")).await;
    assert_eq!(p.body["status"]["phase"], "Pending");
    assert_eq!(p.body["spec"]["schedulerName"], "default-scheduler");
    let bind = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let bound = api.post(&format!("{path}/p/binding"), &bind).await;
    assert_eq!(bound.code(), 201, "{:?}", bound.body);
    assert_eq!(
        api.get(&format!("{path}/p")).await.body["spec"]["nodeName"],
        "n1"
    );
    let again = api.post(&format!("{path}/p/binding"), &bind).await;
    assert_eq!(again.code(), 409);
    assert_eq!(
        again.message(),
        r#"Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1""#
    );

    let table = api
        .raw(
            Method::GET,
            path,
            None,
            Vec::new(),
            Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
        )
        .await;
    assert_eq!(table.body["kind"], "Table");
    assert_eq!(table.body["rows"].as_array().unwrap().len(), 1);
    assert!(!table.rv().is_empty());

    // Metadata only, as metadata informers ask (client-go's metadata client, kube-rs).
    let meta_list = api
        .raw(
            Method::GET,
            path,
            None,
            Vec::new(),
            Some("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
        )
        .await;
    assert_eq!(meta_list.body["kind"], "PartialObjectMetadataList");
    assert_eq!(meta_list.body["apiVersion"], "meta.k8s.io/v1");
    assert!(!meta_list.rv().is_empty());
    let item = &meta_list.body["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata");
    assert_eq!(item["metadata"]["name"], "p");
    assert!(item.get("spec").is_none());
    let meta_one = api
        .raw(
            Method::GET,
            &format!("{path}/p"),
            None,
            Vec::new(),
            Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
        )
        .await;
    assert_eq!(meta_one.body["kind"], "PartialObjectMetadata");
    assert_eq!(meta_one.body["metadata"]["name"], "p");
    assert!(meta_one.body.get("status").is_none());
    let head = api
        .raw(Method::HEAD, &format!("{path}/p"), None, Vec::new(), None)
        .await;
    assert_eq!(head.code(), 200);
    assert!(head.body.is_null());
}

#[tokio::test]
async fn services_get_cluster_ips() {
    let api = Api::new().await;
    let path = "/api/v1/namespaces/default/services";
    let svc = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    };
    let a = api.post(path, &svc("a")).await;
    let b = api.post(path, &svc("b")).await;
    let ip_a = a.body["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(ip_a.starts_with("10."), "{ip_a}");
    assert_ne!(ip_a, b.body["spec"]["clusterIP"].as_str().unwrap());
    assert_eq!(a.body["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(a.body["spec"]["type"], "ClusterIP");
    // A replace without the clusterIP keeps it.
    let mut next = a.body.clone();
    next["spec"].as_object_mut().unwrap().remove("clusterIP");
    next["spec"].as_object_mut().unwrap().remove("clusterIPs");
    let replaced = api.put(&format!("{path}/a"), &next).await;
    assert_eq!(replaced.body["spec"]["clusterIP"], ip_a.as_str());
}
