//! The ServiceAccount controller over a bare store: namespaces written straight to the store,
//! a store whose first creates fail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::store::intercept::{Intercept, Intercepted};
use crate::store::redb::{RedbOptions, RedbStore};
use crate::store::KeyValue;

/// Fails the first `failures` creates of serviceaccounts as if the store were down.
struct Flaky {
    failures: usize,
    creates: AtomicUsize,
}

#[async_trait]
impl Intercept for Flaky {
    async fn create(
        &self,
        _inner: &dyn Store,
        key: &str,
        _value: &[u8],
    ) -> Option<Result<KeyValue, StoreError>> {
        if key.starts_with("/registry/serviceaccounts/")
            && self.creates.fetch_add(1, Ordering::SeqCst) < self.failures
        {
            return Some(Err(StoreError::Unavailable("injected".into())));
        }
        None
    }
}

fn flaky(failures: usize) -> (tempfile::TempDir, Arc<Intercepted<Flaky>>) {
    let dir = tempfile::tempdir().unwrap();
    let inner = RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).unwrap();
    let flaky = Flaky {
        failures,
        creates: AtomicUsize::new(0),
    };
    let store = Arc::new(Intercepted::new(Arc::new(inner), flaky));
    (dir, store)
}

async fn put_namespace(store: &dyn Store, name: &str, terminating: bool) {
    let mut ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
        "status": {"phase": "Active"}});
    if terminating {
        ns["status"]["phase"] = json!("Terminating");
        ns["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    }
    let key = object_key(core("namespaces").unwrap(), None, name);
    store
        .create(&key, serde_json::to_vec(&ns).unwrap())
        .await
        .unwrap();
}

fn default_key(namespace: &str) -> String {
    object_key(
        core("serviceaccounts").unwrap(),
        Some(namespace),
        DEFAULT_SERVICE_ACCOUNT,
    )
}

/// The `default` account of `namespace`, waited for up to five seconds.
async fn wait_default(store: &dyn Store, namespace: &str) -> Option<Value> {
    for _ in 0..500 {
        if let Some(kv) = store.get(&default_key(namespace)).await.unwrap() {
            return Some(decode_object(&kv).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn every_namespace_gets_a_complete_default_account() {
    let (_dir, store) = flaky(0);
    put_namespace(store.as_ref(), "before", false).await;
    put_namespace(store.as_ref(), "leaving", true).await;
    let dyn_store: Arc<dyn Store> = store.clone();
    let task = spawn(
        Arc::downgrade(&dyn_store),
        super::super::test_writer(&dyn_store),
    )
    .await;

    // The first pass is done when spawn returns.
    let kv = store.get(&default_key("before")).await.unwrap().unwrap();
    let account = decode_object(&kv).unwrap();
    assert_eq!(account["kind"], "ServiceAccount");
    assert_eq!(account["apiVersion"], "v1");
    assert_eq!(account["metadata"]["namespace"], "before");
    assert_eq!(account["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(account["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert!(store.get(&default_key("leaving")).await.unwrap().is_none());

    // A new namespace, then a deleted account: both come (back).
    put_namespace(store.as_ref(), "after", false).await;
    assert!(wait_default(store.as_ref(), "after").await.is_some());
    store.delete(&default_key("before"), None).await.unwrap();
    let back = wait_default(store.as_ref(), "before").await.unwrap();
    assert_ne!(back["metadata"]["uid"], account["metadata"]["uid"]);

    // Nothing goes into a Terminating namespace, even after a delete event there.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(store.get(&default_key("leaving")).await.unwrap().is_none());
    task.abort();
}

#[tokio::test]
async fn a_failed_create_is_retried() {
    let (_dir, store) = flaky(2);
    put_namespace(store.as_ref(), "team", false).await;
    let dyn_store: Arc<dyn Store> = store.clone();
    let task = spawn(
        Arc::downgrade(&dyn_store),
        super::super::test_writer(&dyn_store),
    )
    .await;
    assert!(wait_default(store.as_ref(), "team").await.is_some());
    assert_eq!(store.intercept.creates.load(Ordering::SeqCst), 3);
    task.abort();
}

#[tokio::test]
async fn the_controller_ends_with_the_store() {
    let (_dir, store) = flaky(0);
    let dyn_store: Arc<dyn Store> = store.clone();
    let task = spawn(
        Arc::downgrade(&dyn_store),
        super::super::test_writer(&dyn_store),
    )
    .await;
    drop(dyn_store);
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the controller stopped")
        .unwrap();
}
