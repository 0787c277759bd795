//! Test fixtures shared by the unit tests: a key directory, an issuer, an authenticator and a
//! cluster made of a map.

use crate::authenticator::{
    ObjectKind, ObjectLookup, ObjectState, ServiceAccountAuthenticator, TokenSecretState,
};
use crate::digest::TokenDigester;
use crate::issuer::{BoundKind, BoundObject, IssuerConfig, TokenIssuer, TokenRequestSpec};
use crate::keys::{Algorithm, KeySet, SharedKeys};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const ISSUER: &str = "https://kgate.test";
pub const NOW: i64 = 1_800_000_000;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW as u64)
}

/// The cluster: (kind, namespace, name) → its state, plus the token Secrets. Counts lookups.
#[derive(Default)]
pub struct FakeCluster {
    objects: Mutex<HashMap<(ObjectKind, String, String), ObjectState>>,
    token_secrets: Mutex<HashMap<(String, String), TokenSecretState>>,
    digester: TokenDigester,
    pub lookups: AtomicUsize,
}

impl FakeCluster {
    pub fn put(&self, kind: ObjectKind, namespace: &str, name: &str, uid: &str) {
        self.objects.lock().unwrap().insert(
            (kind, namespace.into(), name.into()),
            ObjectState {
                uid: uid.into(),
                deletion_timestamp: None,
            },
        );
    }
    pub fn delete(&self, kind: ObjectKind, namespace: &str, name: &str) {
        self.objects
            .lock()
            .unwrap()
            .remove(&(kind, namespace.into(), name.into()));
        if kind == ObjectKind::Secret {
            self.token_secrets
                .lock()
                .unwrap()
                .remove(&(namespace.into(), name.into()));
        }
    }
    /// Gives the object a `deletionTimestamp` (`at`, Unix seconds).
    pub fn mark_deleting(&self, kind: ObjectKind, namespace: &str, name: &str, at: i64) {
        if let Some(state) =
            self.objects
                .lock()
                .unwrap()
                .get_mut(&(kind, namespace.into(), name.into()))
        {
            state.deletion_timestamp = Some(at);
        }
        if kind == ObjectKind::Secret {
            if let Some(secret) = self
                .token_secrets
                .lock()
                .unwrap()
                .get_mut(&(namespace.into(), name.into()))
            {
                secret.deleting = true;
            }
        }
    }
    /// A Secret of type kubernetes.io/service-account-token holding `token` (an empty one
    /// holds none).
    pub fn put_token_secret(&self, namespace: &str, name: &str, uid: &str, token: &str) {
        self.put(ObjectKind::Secret, namespace, name, uid);
        let state = TokenSecretState {
            uid: uid.into(),
            deleting: false,
            invalidated: false,
            token: (!token.is_empty()).then(|| self.digester.digest(token.as_bytes())),
        };
        self.token_secrets
            .lock()
            .unwrap()
            .insert((namespace.into(), name.into()), state);
    }
    /// Changes a token Secret in place.
    pub fn edit_token_secret(
        &self,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut TokenSecretState),
    ) {
        if let Some(secret) = self
            .token_secrets
            .lock()
            .unwrap()
            .get_mut(&(namespace.into(), name.into()))
        {
            edit(secret);
        }
    }
    /// The digest this cluster keeps for a token.
    pub fn digest(&self, token: &str) -> crate::TokenDigest {
        self.digester.digest(token.as_bytes())
    }
}

impl ObjectLookup for FakeCluster {
    fn object(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<ObjectState> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.objects
            .lock()
            .unwrap()
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .cloned()
    }
    fn token_secret(&self, namespace: &str, name: &str) -> Option<TokenSecretState> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.token_secrets
            .lock()
            .unwrap()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
    fn token_digest(&self, token: &[u8]) -> crate::TokenDigest {
        self.digester.digest(token)
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub keys: SharedKeys,
    pub config: IssuerConfig,
    pub issuer: TokenIssuer,
    pub cluster: Arc<FakeCluster>,
    pub authn: ServiceAccountAuthenticator,
}

impl Fixture {
    pub fn new(algorithm: Algorithm) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys =
            SharedKeys::new(KeySet::load_or_create(&dir.path().join("keys"), algorithm).unwrap());
        let config = IssuerConfig {
            issuer: ISSUER.into(),
            api_audiences: vec![ISSUER.into(), "kgate".into()],
            max_expiration: Duration::from_secs(24 * 3600),
        };
        let cluster = Arc::new(FakeCluster::default());
        cluster.put(ObjectKind::ServiceAccount, "ci", "jenkins", "sa-uid");
        cluster.put(ObjectKind::Pod, "ci", "agent-1", "pod-uid");
        cluster.put(ObjectKind::Node, "", "node-a", "node-uid");
        cluster.put(ObjectKind::Secret, "ci", "jenkins-token", "secret-uid");
        let issuer = TokenIssuer::new(keys.clone(), config.clone());
        let authn = ServiceAccountAuthenticator::new(keys.clone(), config.clone(), cluster.clone());
        Self {
            dir,
            keys,
            config,
            issuer,
            cluster,
            authn,
        }
    }

    pub fn key_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("keys")
    }

    /// A token for ci/jenkins bound to pod agent-1 on node-a, issued at [`NOW`] for an hour.
    pub fn pod_token(&self) -> String {
        self.issuer.issue(&pod_spec(), now()).unwrap().token
    }

    /// Signs arbitrary claims with the current signing key, as the issuer would.
    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_with_kid(claims, true)
    }

    pub fn sign_with_kid(&self, claims: &serde_json::Value, with_kid: bool) -> String {
        let keys = self.keys.current();
        let key = keys.signing();
        let mut header = jsonwebtoken::Header::new(key.algorithm.jwt());
        header.typ = None;
        header.kid = with_kid.then(|| key.kid.clone());
        jsonwebtoken::encode(&header, claims, key.encoding.as_ref().unwrap()).unwrap()
    }
}

pub fn pod_spec() -> TokenRequestSpec {
    TokenRequestSpec {
        namespace: "ci".into(),
        service_account_name: "jenkins".into(),
        service_account_uid: "sa-uid".into(),
        audiences: vec![],
        expiration_seconds: 3600,
        bound: Some(BoundObject {
            kind: BoundKind::Pod,
            name: "agent-1".into(),
            uid: "pod-uid".into(),
        }),
        pod_node: Some(("node-a".into(), "node-uid".into())),
    }
}

/// Valid bound claims for ci/jenkins (no bound object), to be altered by a test.
pub fn claims() -> serde_json::Value {
    serde_json::json!({
        "aud": [ISSUER],
        "exp": NOW + 3600,
        "iat": NOW,
        "iss": ISSUER,
        "jti": "11111111-2222-4333-8444-555555555555",
        "kubernetes.io": {
            "namespace": "ci",
            "serviceaccount": {"name": "jenkins", "uid": "sa-uid"}
        },
        "nbf": NOW,
        "sub": "system:serviceaccount:ci:jenkins"
    })
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The (header, payload, signature) parts of a token.
pub fn parts(token: &str) -> (String, String, String) {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3);
    (v[0].into(), v[1].into(), v[2].into())
}

pub fn decode_part(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
