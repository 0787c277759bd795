//! The token controller over a bare store: what it fills, keeps, deletes, and which events it
//! looks at again (never its own writes).

use std::time::Duration;

use kgate_tokens::{Algorithm, IssuerConfig, KeySet, SharedKeys};

use super::*;
use crate::store::redb::{RedbOptions, RedbStore};

const CA: &str = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    controller: TokenSecrets,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).unwrap());
    let keys = KeySet::load_or_create(&dir.path().join("keys"), Algorithm::Es256).unwrap();
    let issuer = TokenIssuer::new(
        SharedKeys::new(keys),
        IssuerConfig {
            issuer: "https://kubernetes.default.svc.cluster.local".to_owned(),
            api_audiences: vec!["https://kubernetes.default.svc.cluster.local".to_owned()],
            max_expiration: Duration::from_secs(3600),
        },
    );
    let controller = TokenSecrets::new(
        TokenSecretsConfig {
            issuer: Arc::new(issuer),
            root_ca_pem: CA.to_owned(),
        },
        super::super::test_writer(&store),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        store,
        controller,
    }
}

impl Fixture {
    async fn put_account(&self, name: &str, uid: &str) {
        let key = object_key(self.controller.accounts, Some("ci"), name);
        let obj = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": "ci", "uid": uid}});
        self.store
            .create(&key, serde_json::to_vec(&obj).unwrap())
            .await
            .unwrap();
    }

    async fn put_secret(&self, name: &str, annotations: Value, data: Value) -> KeyValue {
        let key = object_key(self.controller.secrets, Some("ci"), name);
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "type": SERVICE_ACCOUNT_TOKEN_TYPE,
            "metadata": {"name": name, "namespace": "ci", "uid": "s-uid",
                "creationTimestamp": "2024-01-01T00:00:00Z", "annotations": annotations},
            "data": data});
        self.store
            .create(&key, serde_json::to_vec(&obj).unwrap())
            .await
            .unwrap()
    }

    async fn secret(&self, name: &str) -> Option<KeyValue> {
        let key = object_key(self.controller.secrets, Some("ci"), name);
        self.store.get(&key).await.unwrap()
    }
}

#[tokio::test]
async fn a_token_secret_is_filled_once_and_its_own_write_is_not_looked_at_again() {
    let f = fixture();
    f.put_account("builder", "sa-1").await;
    let kv = f
        .put_secret("t", json!({NAME_ANNOTATION: "builder"}), json!({}))
        .await;
    f.controller.reconcile(f.store.as_ref(), &kv).await.unwrap();
    let filled = f.secret("t").await.unwrap();
    let obj = decode_object(&filled).unwrap();
    assert!(!data_bytes(&obj, "token").is_empty());
    assert_eq!(data_bytes(&obj, "ca.crt"), CA.as_bytes());
    assert_eq!(data_bytes(&obj, "namespace"), b"ci");
    assert_eq!(obj["metadata"]["annotations"][UID_ANNOTATION], "sa-1");
    // Server-set metadata is kept.
    assert_eq!(obj["metadata"]["uid"], "s-uid");

    let own = WatchEvent {
        kind: EventKind::Update,
        kv: filled.clone(),
        prev: Some(kv),
    };
    assert!(!f.controller.wants(&own));
    // Reconciling a complete Secret writes nothing.
    f.controller
        .reconcile(f.store.as_ref(), &filled)
        .await
        .unwrap();
    assert_eq!(
        f.secret("t").await.unwrap().mod_revision,
        filled.mod_revision
    );
}

#[tokio::test]
async fn an_existing_token_is_kept_and_a_stale_ca_replaced() {
    let f = fixture();
    f.put_account("builder", "sa-1").await;
    let data = json!({"token": BASE64.encode("kept"), "ca.crt": BASE64.encode("old CA")});
    let kv = f
        .put_secret("t", json!({NAME_ANNOTATION: "builder"}), data)
        .await;
    f.controller.reconcile(f.store.as_ref(), &kv).await.unwrap();
    let obj = decode_object(&f.secret("t").await.unwrap()).unwrap();
    assert_eq!(data_bytes(&obj, "token"), b"kept");
    assert_eq!(data_bytes(&obj, "ca.crt"), CA.as_bytes());
}

#[tokio::test]
async fn secrets_of_missing_or_other_accounts_are_deleted() {
    let f = fixture();
    f.put_account("builder", "sa-1").await;
    let orphan = f
        .put_secret("orphan", json!({NAME_ANNOTATION: "nobody"}), json!({}))
        .await;
    let stale = f
        .put_secret(
            "stale",
            json!({NAME_ANNOTATION: "builder", UID_ANNOTATION: "sa-0"}),
            json!({}),
        )
        .await;
    let unnamed = f.put_secret("unnamed", json!({}), json!({})).await;
    for kv in [&orphan, &stale, &unnamed] {
        f.controller.reconcile(f.store.as_ref(), kv).await.unwrap();
    }
    assert!(f.secret("orphan").await.is_none());
    assert!(f.secret("stale").await.is_none());
    // A token Secret naming no account is left alone (kube's validation refuses it).
    assert!(f.secret("unnamed").await.is_some());
}

#[tokio::test]
async fn only_changes_that_matter_are_looked_at() {
    let f = fixture();
    let kv = f
        .put_secret("t", json!({NAME_ANNOTATION: "builder"}), json!({}))
        .await;
    let create = WatchEvent {
        kind: EventKind::Create,
        kv: kv.clone(),
        prev: None,
    };
    assert!(f.controller.wants(&create));
    let deleted = WatchEvent {
        kind: EventKind::Delete,
        kv,
        prev: None,
    };
    assert!(!f.controller.wants(&deleted));
    let account_key = object_key(f.controller.accounts, Some("ci"), "builder");
    let account = |kind| WatchEvent {
        kind,
        kv: KeyValue {
            key: account_key.clone(),
            value: b"{}".to_vec(),
            create_revision: 1,
            mod_revision: 2,
        },
        prev: None,
    };
    assert!(f.controller.wants(&account(EventKind::Delete)));
    assert!(!f.controller.wants(&account(EventKind::Create)));
}
