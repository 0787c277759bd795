//! The garbage collector against a real kgate: background, foreground and orphan deletion by
//! owner references, and dependents of an owner that never existed.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use support::eventually_some;

const WITHIN: Duration = Duration::from_secs(20);

async fn owner(cms: &Api<ConfigMap>, name: &str) -> OwnerReference {
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: name.into(),
        uid: cm.uid().unwrap(),
        block_owner_deletion: Some(true),
        controller: None,
    }
}

async fn pod(pods: &Api<Pod>, name: &str, owners: &[&OwnerReference]) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.unwrap().is_none().then_some(())
}

fn owner_uids<K: kube::Resource>(obj: &K) -> Vec<String> {
    obj.owner_references()
        .iter()
        .map(|r| r.uid.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn background_deletes_dependents_and_strays() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let gc = kgate_cluster::controllers::gc::spawn(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let bg = owner(&cms, "bg-owner").await;
    let keeper = owner(&cms, "keeper").await;
    pod(&pods, "bg-a", &[&bg]).await;
    pod(&pods, "bg-b", &[&bg]).await;
    pod(&pods, "bg-shared", &[&bg, &keeper]).await;
    // An owner uid that never existed (the name exists, as another object).
    let mut ghost = keeper.clone();
    ghost.uid = "00000000-0000-0000-0000-000000000000".into();
    pod(&pods, "stray", &[&ghost]).await;
    eventually_some("the stray pod is collected", WITHIN, || {
        gone(&pods, "stray")
    })
    .await;

    kg.kubectl_ok(&["delete", "configmap", "bg-owner"]);
    eventually_some("bg-a is collected", WITHIN, || gone(&pods, "bg-a")).await;
    eventually_some("bg-b is collected", WITHIN, || gone(&pods, "bg-b")).await;
    let shared = eventually_some("bg-shared lets go of its gone owner", WITHIN, || async {
        let p = pods.get("bg-shared").await.unwrap();
        (owner_uids(&p) == vec![keeper.uid.clone()]).then_some(p)
    })
    .await;
    assert!(shared.metadata.deletion_timestamp.is_none());
    assert!(cms.get_opt("keeper").await.unwrap().is_some());
    gc.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn foreground_keeps_the_owner_until_its_dependents_are_gone() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let gc = kgate_cluster::controllers::gc::spawn(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let fg = owner(&cms, "fg-owner").await;
    pod(&pods, "fg-a", &[&fg]).await;
    // A dependent held by a finalizer of its own: the owner must wait for it.
    let held: ConfigMap = serde_json::from_value(json!({"metadata": {
        "name": "fg-held", "ownerReferences": [fg], "finalizers": ["example.com/hold"]}}))
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();

    kg.kubectl_ok(&[
        "delete",
        "configmap",
        "fg-owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    eventually_some("fg-a is deleted", WITHIN, || gone(&pods, "fg-a")).await;
    eventually_some("fg-held is being deleted", WITHIN, || async {
        let h = cms.get("fg-held").await.unwrap();
        h.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    let waiting = cms.get("fg-owner").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(waiting.finalizers(), ["foregroundDeletion".to_owned()]);
    // Still there a moment later: fg-held blocks it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(cms.get_opt("fg-owner").await.unwrap().is_some());

    let release = json!({"metadata": {"finalizers": null}});
    cms.patch("fg-held", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    eventually_some("fg-held is gone", WITHIN, || gone(&cms, "fg-held")).await;
    eventually_some("the owner is gone once its dependents are", WITHIN, || {
        gone(&cms, "fg-owner")
    })
    .await;
    gc.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn orphan_keeps_the_dependents_without_the_reference() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let gc = kgate_cluster::controllers::gc::spawn(client.clone());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let or = owner(&cms, "or-owner").await;
    let other = owner(&cms, "other").await;
    pod(&pods, "or-a", &[&or]).await;
    pod(&pods, "or-b", &[&or, &other]).await;

    kg.kubectl_ok(&["delete", "configmap", "or-owner", "--cascade=orphan"]);
    eventually_some("the owner is gone", WITHIN, || gone(&cms, "or-owner")).await;
    let a = pods.get("or-a").await.unwrap();
    assert!(a.owner_references().is_empty(), "{a:?}");
    assert!(a.metadata.deletion_timestamp.is_none());
    let b = pods.get("or-b").await.unwrap();
    assert_eq!(owner_uids(&b), vec![other.uid.clone()]);
    // Orphans stay orphans: nothing collects them later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(pods.get_opt("or-a").await.unwrap().is_some());
    gc.abort();
}
