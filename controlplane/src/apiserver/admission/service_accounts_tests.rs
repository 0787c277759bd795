//! Tests of [`super`]: kube's ServiceAccount admission cases, over a real embedded store.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::apiserver::codec::encode_object;
use crate::store::redb::{RedbOptions, RedbStore};

struct Fixture {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn fixture(accounts: &[Value]) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(RedbStore::open(&dir.path().join("db"), RedbOptions::default()).expect("open"));
    let def = lookup("", "v1", "serviceaccounts").expect("serviceaccounts");
    for sa in accounts {
        let name = sa["metadata"]["name"].as_str().expect("name");
        let key = object_key(def, Some("ns"), name);
        store
            .create(&key, encode_object(sa).expect("encode"))
            .await
            .expect("create");
    }
    Fixture { store, _dir: dir }
}

fn account(name: &str, automount: Option<bool>) -> Value {
    let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": "ns"}});
    if let Some(automount) = automount {
        sa["automountServiceAccountToken"] = json!(automount);
    }
    sa
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec})
}

fn token_volume(pod: &Value) -> &Value {
    pod["spec"]["volumes"]
        .as_array()
        .and_then(|v| {
            v.iter().find(|v| {
                v["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
            })
        })
        .expect("a token volume")
}

#[tokio::test]
async fn a_pod_gets_the_default_account_and_its_token_volume_in_every_container() {
    let f = fixture(&[account("default", None)]).await;
    let mut p = pod(json!({
        "initContainers": [{"name": "init", "image": "busybox"}],
        "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }));
    admit_pod(f.store.as_ref(), "ns", &mut p)
        .await
        .expect("admitted");
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["serviceAccount"], "default");
    let volume = token_volume(&p);
    let name = volume["name"].as_str().expect("name");
    assert_eq!(name.len(), TOKEN_VOLUME_PREFIX.len() + 5, "{name}");
    assert_eq!(volume["projected"], token_volume_source());
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3607
    );
    for (list, index) in [("initContainers", 0), ("containers", 0), ("containers", 1)] {
        let mounts = p["spec"][list][index]["volumeMounts"]
            .as_array()
            .expect("mounts");
        assert!(
            mounts
                .contains(&json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH})),
            "{list}[{index}]: {mounts:?}"
        );
    }
    assert_eq!(p["spec"]["volumes"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn automounting_follows_the_pod_then_the_account() {
    let f = fixture(&[account("quiet", Some(false)), account("loud", Some(true))]).await;
    let cases = [
        (json!({"serviceAccountName": "quiet"}), false),
        (
            json!({"serviceAccountName": "quiet", "automountServiceAccountToken": true}),
            true,
        ),
        (
            json!({"serviceAccountName": "loud", "automountServiceAccountToken": false}),
            false,
        ),
        (json!({"serviceAccountName": "loud"}), true),
    ];
    for (fields, mounted) in cases {
        let mut spec = json!({"containers": [{"name": "a", "image": "nginx"}]});
        for (k, v) in fields.as_object().expect("object") {
            spec[k] = v.clone();
        }
        let mut p = pod(spec);
        admit_pod(f.store.as_ref(), "ns", &mut p)
            .await
            .expect("admitted");
        assert_eq!(p["spec"]["volumes"].is_array(), mounted, "{fields}");
        assert_eq!(
            p["spec"]["containers"][0]["volumeMounts"].is_array(),
            mounted
        );
    }
}

#[tokio::test]
async fn an_existing_volume_or_mount_is_kept() {
    let f = fixture(&[account("default", None)]).await;
    // A pod written back with its volume (a recreated pod) keeps that volume's name.
    let mut p = pod(json!({
        "containers": [
            {"name": "a", "image": "nginx"},
            {"name": "own", "image": "nginx", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]},
        ],
        "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}, {"name": "mine", "emptyDir": {}}],
    }));
    admit_pod(f.store.as_ref(), "ns", &mut p)
        .await
        .expect("admitted");
    assert_eq!(p["spec"]["volumes"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        p["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}])
    );
    assert_eq!(
        p["spec"]["containers"][1]["volumeMounts"],
        json!([{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}])
    );
}

#[tokio::test]
async fn a_missing_account_is_forbidden_in_kubes_words() {
    let f = fixture(&[]).await;
    let mut p = pod(
        json!({"serviceAccountName": "builder", "containers": [{"name": "a", "image": "nginx"}]}),
    );
    let before = p.clone();
    let refused = admit_pod(f.store.as_ref(), "ns", &mut p)
        .await
        .expect_err("no such account");
    assert_eq!(refused.code, 403);
    assert_eq!(refused.reason, "Forbidden");
    assert_eq!(
        refused.message,
        r#"pods "web" is forbidden: error looking up service account ns/builder: serviceaccount "builder" not found"#
    );
    assert_eq!(p["spec"]["volumes"], before["spec"]["volumes"]);
}

#[tokio::test]
async fn the_default_account_is_waited_for() {
    let f = fixture(&[]).await;
    let store = f.store.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(350)).await;
        let def = lookup("", "v1", "serviceaccounts").expect("serviceaccounts");
        store
            .create(
                &object_key(def, Some("ns"), "default"),
                encode_object(&account("default", None)).expect("encode"),
            )
            .await
            .expect("create");
    });
    let mut p = pod(json!({"containers": [{"name": "a", "image": "nginx"}]}));
    admit_pod(f.store.as_ref(), "ns", &mut p)
        .await
        .expect("admitted once the controller made the account");
    late.await.expect("writer");
    token_volume(&p);
}

#[tokio::test]
async fn mirror_pods_are_left_alone() {
    let f = fixture(&[]).await;
    let mut p = pod(json!({"containers": [{"name": "a", "image": "nginx"}]}));
    p["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "abc"});
    let before = p.clone();
    admit_pod(f.store.as_ref(), "ns", &mut p)
        .await
        .expect("admitted");
    assert_eq!(p, before);
}
