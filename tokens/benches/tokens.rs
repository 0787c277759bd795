//! ServiceAccount token costs: issuing (RS256, ES256), verifying without the cache (RS256,
//! ES256) and a cached authentication through the `Authenticator` trait.
//!
//! cargo bench -p kgate-tokens -- --warm-up-time 1 --measurement-time 3

#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use kgate_core::authn::{Authenticator, BearerToken, Credentials};
use kgate_tokens::{
    Algorithm, BoundKind, BoundObject, IssuerConfig, KeySet, ObjectKind, ObjectLookup, ObjectState,
    ServiceAccountAuthenticator, SharedKeys, TokenDigest, TokenDigester, TokenIssuer,
    TokenRequestSpec, TokenSecretState,
};
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// A watch-fed index as the gateway would keep one: kind → namespace → name → uid, behind a
/// lock, looked up without allocating keys.
#[derive(Default)]
struct Index(RwLock<HashMap<ObjectKind, Namespaces>>, TokenDigester);

/// namespace → name → uid.
type Namespaces = HashMap<String, HashMap<String, String>>;

impl Index {
    fn put(&self, kind: ObjectKind, namespace: &str, name: &str, uid: &str) {
        self.0
            .write()
            .unwrap()
            .entry(kind)
            .or_default()
            .entry(namespace.into())
            .or_default()
            .insert(name.into(), uid.into());
    }
}

impl ObjectLookup for Index {
    fn object(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<ObjectState> {
        let uid = self
            .0
            .read()
            .ok()?
            .get(&kind)?
            .get(namespace)?
            .get(name)
            .cloned()?;
        Some(ObjectState {
            uid,
            deletion_timestamp: None,
        })
    }
    /// Bound tokens only here.
    fn token_secret(&self, _namespace: &str, _name: &str) -> Option<TokenSecretState> {
        None
    }
    fn token_digest(&self, token: &[u8]) -> TokenDigest {
        self.1.digest(token)
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    issuer: TokenIssuer,
    keys: SharedKeys,
    config: IssuerConfig,
    index: Arc<Index>,
}

fn setup(algorithm: Algorithm) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let keys = SharedKeys::new(KeySet::load_or_create(dir.path(), algorithm).unwrap());
    let config = IssuerConfig::new("https://kubernetes.default.svc.cluster.local");
    let index = Arc::new(Index::default());
    index.put(
        ObjectKind::ServiceAccount,
        "ci",
        "jenkins",
        "0b5ad1c6-6d5e-4b47-8f0c-1a2b3c4d5e6f",
    );
    index.put(
        ObjectKind::Pod,
        "ci",
        "agent-7f9c",
        "5f1e3a7b-2c4d-4e6f-8a9b-0c1d2e3f4a5b",
    );
    Setup {
        _dir: dir,
        issuer: TokenIssuer::new(keys.clone(), config.clone()),
        keys,
        config,
        index,
    }
}

/// A pod-bound token request, as a node agent makes for a projected volume.
fn spec() -> TokenRequestSpec {
    TokenRequestSpec {
        namespace: "ci".into(),
        service_account_name: "jenkins".into(),
        service_account_uid: "0b5ad1c6-6d5e-4b47-8f0c-1a2b3c4d5e6f".into(),
        audiences: vec![],
        expiration_seconds: 3600,
        bound: Some(BoundObject {
            kind: BoundKind::Pod,
            name: "agent-7f9c".into(),
            uid: "5f1e3a7b-2c4d-4e6f-8a9b-0c1d2e3f4a5b".into(),
        }),
        pod_node: Some((
            "node-1".into(),
            "9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a".into(),
        )),
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn bench(c: &mut Criterion) {
    for (name, algorithm) in [("RS256", Algorithm::Rs256), ("ES256", Algorithm::Es256)] {
        let s = setup(algorithm);
        let spec = spec();
        c.bench_function(&format!("issue/{name}"), |b| {
            b.iter(|| black_box(s.issuer.issue(black_box(&spec), SystemTime::now()).unwrap()))
        });

        let token = s.issuer.issue(&spec, SystemTime::now()).unwrap().token;
        let uncached =
            ServiceAccountAuthenticator::new(s.keys.clone(), s.config.clone(), s.index.clone())
                .with_cache_capacity(0);
        c.bench_function(&format!("verify_uncached/{name}"), |b| {
            b.iter(|| black_box(uncached.verify_token(black_box(&token)).unwrap().unwrap()))
        });

        let cached =
            ServiceAccountAuthenticator::new(s.keys.clone(), s.config.clone(), s.index.clone());
        let credentials = Credentials {
            bearer_token: Some(BearerToken::new(token.clone())),
            ..Credentials::default()
        };
        assert!(block_on(cached.authenticate(&credentials))
            .unwrap()
            .is_some());
        c.bench_function(&format!("authenticate_cached/{name}"), |b| {
            b.iter(|| black_box(block_on(cached.authenticate(black_box(&credentials))).unwrap()))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
