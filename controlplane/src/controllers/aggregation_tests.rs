//! The controller over a store that fails or races its writes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::apiserver::object_key;
use crate::store::intercept::{Intercept, Intercepted};
use crate::store::redb::{RedbOptions, RedbStore};
use crate::store::KeyValue;

/// How the wrapped store treats the controller's first ClusterRole updates.
#[derive(Clone, Copy)]
enum Trouble {
    /// The first two fail as if the store were down.
    Unavailable,
    /// Another writer changes the role just before the first one (a real lost race).
    Race,
}

struct Troubled {
    trouble: Trouble,
    updates: AtomicUsize,
}

#[async_trait]
impl Intercept for Troubled {
    async fn update(
        &self,
        inner: &dyn Store,
        key: &str,
        value: &[u8],
        expected: Revision,
    ) -> Option<Result<KeyValue, StoreError>> {
        let n = self.updates.fetch_add(1, Ordering::SeqCst);
        match self.trouble {
            Trouble::Unavailable if n < 2 => {
                return Some(Err(StoreError::Unavailable("injected".into())));
            }
            Trouble::Race if n == 0 => {
                let mut other: Value = serde_json::from_slice(value).unwrap();
                other["metadata"]["labels"] = json!({"touched": "yes"});
                other["rules"] = json!([]);
                let bytes = serde_json::to_vec(&other).unwrap();
                // The other writer wins; the controller's write then goes on and conflicts.
                if let Err(error) = inner.update(key, bytes, expected).await {
                    return Some(Err(error));
                }
            }
            _ => {}
        }
        None
    }
}

fn rule() -> Value {
    json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]})
}

async fn aggregates_despite(trouble: Trouble) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let inner = RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).unwrap();
    let troubled = Troubled {
        trouble,
        updates: AtomicUsize::new(0),
    };
    let store = Arc::new(Intercepted::new(Arc::new(inner), troubled));
    let def = cluster_roles().unwrap();
    let put = |name: &str, obj: Value| {
        let store = store.clone();
        let key = object_key(def, None, name);
        async move {
            store
                .create(&key, serde_json::to_vec(&obj).unwrap())
                .await
                .unwrap()
        }
    };
    put(
        "source",
        json!({"kind": "ClusterRole", "metadata": {"name": "source", "labels": {"agg": "true"}},
               "rules": [rule()]}),
    )
    .await;
    put(
        "target",
        json!({"kind": "ClusterRole", "metadata": {"name": "target"},
               "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "true"}}]}}),
    )
    .await;
    let dyn_store: Arc<dyn Store> = store.clone();
    let task = spawn(
        Arc::downgrade(&dyn_store),
        super::super::test_writer(&dyn_store),
    )
    .await;
    let key = object_key(def, None, "target");
    let mut done = false;
    for _ in 0..500 {
        let kv = store.get(&key).await.unwrap().unwrap();
        let obj: Value = serde_json::from_slice(&kv.value).unwrap();
        if obj["rules"] == json!([rule()]) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(done, "the target was never aggregated");
    store.intercept.updates.load(Ordering::SeqCst)
}

#[tokio::test]
async fn a_failed_write_is_retried() {
    // Two failures, then the write that lands.
    assert_eq!(aggregates_despite(Trouble::Unavailable).await, 3);
}

#[tokio::test]
async fn a_lost_race_is_resolved_by_the_next_pass() {
    // The raced write loses, the change that won starts a new pass, whose write lands.
    assert_eq!(aggregates_despite(Trouble::Race).await, 2);
}
