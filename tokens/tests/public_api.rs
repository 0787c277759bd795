//! kgate-tokens through its public API, as the control plane and the gateway use it: keys on
//! disk, TokenRequest and legacy tokens, the authenticator in an AuthenticatorUnion, rotation
//! picked up by a running process, the discovery documents.

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use kgate_core::authn::{AuthenticatorUnion, AuthnError, BearerToken, Credentials};
use kgate_tokens::{
    discovery_document, discovery_document_for, Algorithm, BoundKind, BoundObject, IssueError,
    IssuerConfig, KeySet, ObjectKind, ObjectLookup, ObjectState, ServiceAccountAuthenticator,
    SharedKeys, TokenDigest, TokenDigester, TokenIssuer, TokenRequestSpec, TokenSecretState,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The objects (kind, namespace, name) → uid, and the token Secrets' digests.
#[derive(Default)]
struct Cluster {
    objects: Mutex<HashMap<(ObjectKind, String, String), String>>,
    token_secrets: Mutex<HashMap<(String, String), TokenSecretState>>,
    digester: TokenDigester,
}

impl Cluster {
    fn put(&self, kind: ObjectKind, ns: &str, name: &str, uid: &str) {
        self.objects
            .lock()
            .unwrap()
            .insert((kind, ns.into(), name.into()), uid.into());
    }

    /// A kubernetes.io/service-account-token Secret holding `token`.
    fn put_token_secret(&self, ns: &str, name: &str, uid: &str, token: &str) {
        self.put(ObjectKind::Secret, ns, name, uid);
        let state = TokenSecretState {
            uid: uid.into(),
            deleting: false,
            invalidated: false,
            token: Some(self.digester.digest(token.as_bytes())),
        };
        self.token_secrets
            .lock()
            .unwrap()
            .insert((ns.into(), name.into()), state);
    }
}

impl ObjectLookup for Cluster {
    fn object(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<ObjectState> {
        let uid = self
            .objects
            .lock()
            .unwrap()
            .get(&(kind, namespace.into(), name.into()))
            .cloned()?;
        Some(ObjectState {
            uid,
            deletion_timestamp: None,
        })
    }
    fn token_secret(&self, namespace: &str, name: &str) -> Option<TokenSecretState> {
        self.token_secrets
            .lock()
            .unwrap()
            .get(&(namespace.into(), name.into()))
            .cloned()
    }
    fn token_digest(&self, token: &[u8]) -> TokenDigest {
        self.digester.digest(token)
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

fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn spec() -> TokenRequestSpec {
    TokenRequestSpec {
        namespace: "default".into(),
        service_account_name: "jenkins".into(),
        service_account_uid: "9a1c".into(),
        audiences: vec![],
        expiration_seconds: 3600,
        bound: None,
        pod_node: None,
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    keys: SharedKeys,
    issuer: TokenIssuer,
    cluster: Arc<Cluster>,
    authn: Arc<ServiceAccountAuthenticator>,
}

fn setup(algorithm: Algorithm) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sa-keys");
    let keys = SharedKeys::new(KeySet::load_or_create(&dir, algorithm).unwrap());
    let config = IssuerConfig::new(ISSUER);
    let cluster = Arc::new(Cluster::default());
    cluster.put(ObjectKind::ServiceAccount, "default", "jenkins", "9a1c");
    cluster.put(ObjectKind::Pod, "default", "web-0", "p0");
    cluster.put(ObjectKind::Secret, "default", "jenkins-token", "s0");
    let authn = Arc::new(ServiceAccountAuthenticator::new(
        keys.clone(),
        config.clone(),
        cluster.clone(),
    ));
    Setup {
        _dir: tmp,
        dir,
        issuer: TokenIssuer::new(keys.clone(), config),
        keys,
        cluster,
        authn,
    }
}

#[test]
fn bound_tokens_carry_kubernetes_claims() {
    let s = setup(Algorithm::Rs256);
    let now = UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let mut request = spec();
    request.bound = Some(BoundObject {
        kind: BoundKind::Pod,
        name: "web-0".into(),
        uid: "p0".into(),
    });
    request.pod_node = Some(("node-1".into(), "n1".into()));
    let issued = s.issuer.issue(&request, now).unwrap();
    assert_eq!(issued.expiration_unix, 1_900_003_600);

    assert_eq!(
        header(&issued.token),
        json!({"alg": "RS256", "kid": s.keys.current().signing_kid()})
    );
    let claims = payload(&issued.token);
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "aud",
            "exp",
            "iat",
            "iss",
            "jti",
            "kubernetes.io",
            "nbf",
            "sub"
        ]
    );
    assert_eq!(claims["aud"], json!([ISSUER]));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:default:jenkins");
    assert_eq!(claims["iat"], 1_900_000_000);
    assert_eq!(claims["nbf"], 1_900_000_000);
    assert_eq!(claims["exp"], 1_900_003_600);
    assert_eq!(
        claims["kubernetes.io"],
        json!({
            "namespace": "default",
            "serviceaccount": {"name": "jenkins", "uid": "9a1c"},
            "pod": {"name": "web-0", "uid": "p0"},
            "node": {"name": "node-1", "uid": "n1"}
        })
    );
    // jti is a fresh random UUID per token.
    let again = s.issuer.issue(&request, now).unwrap();
    assert_ne!(payload(&again.token)["jti"], claims["jti"]);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
}

#[test]
fn expiration_is_capped_and_audiences_default() {
    let s = setup(Algorithm::Es256);
    let now = SystemTime::now();
    let mut request = spec();
    request.expiration_seconds = 365 * 86400;
    request.audiences = vec!["vault".into(), "api".into()];
    let issued = s.issuer.issue(&request, now).unwrap();
    let claims = payload(&issued.token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        48 * 3600
    );
    assert_eq!(issued.expiration_unix, claims["exp"].as_i64().unwrap());
    assert_eq!(claims["aud"], json!(["vault", "api"]));

    let uncapped = TokenIssuer::new(
        s.keys.clone(),
        IssuerConfig {
            max_expiration: Duration::ZERO,
            ..s.issuer.config().clone()
        },
    );
    let claims = payload(&uncapped.issue(&request, now).unwrap().token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        365 * 86400
    );

    for broken in [
        TokenRequestSpec {
            namespace: String::new(),
            ..spec()
        },
        TokenRequestSpec {
            service_account_uid: String::new(),
            ..spec()
        },
        TokenRequestSpec {
            expiration_seconds: 0,
            ..spec()
        },
        TokenRequestSpec {
            audiences: vec![String::new()],
            ..spec()
        },
    ] {
        assert!(matches!(
            s.issuer.issue(&broken, now),
            Err(IssueError::InvalidRequest(_))
        ));
    }
}

#[test]
fn legacy_tokens_carry_the_legacy_claims() {
    let s = setup(Algorithm::Rs256);
    let token = s
        .issuer
        .issue_legacy("default", "jenkins", "9a1c", "jenkins-token")
        .unwrap();
    assert_eq!(
        payload(&token),
        json!({
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": "default",
            "kubernetes.io/serviceaccount/secret.name": "jenkins-token",
            "kubernetes.io/serviceaccount/service-account.name": "jenkins",
            "kubernetes.io/serviceaccount/service-account.uid": "9a1c",
            "sub": "system:serviceaccount:default:jenkins"
        })
    );
    assert!(s
        .issuer
        .issue_legacy("default", "jenkins", "9a1c", "")
        .is_err());
}

#[test]
fn issued_tokens_do_not_print() {
    let s = setup(Algorithm::Es256);
    let issued = s.issuer.issue(&spec(), SystemTime::now()).unwrap();
    let shown = format!("{issued:?} {:?} {:?}", s.issuer, s.authn);
    for part in issued.token.split('.') {
        assert!(!shown.contains(part), "{shown}");
    }
    assert!(shown.contains("redacted"));
}

#[test]
fn the_authenticator_answers_in_a_union() {
    let s = setup(Algorithm::Es256);
    let union = AuthenticatorUnion::new(vec![s.authn.clone()]);
    let bearer = |t: &str| Credentials {
        bearer_token: Some(BearerToken::new(t)),
        ..Credentials::default()
    };

    let token = s.issuer.issue(&spec(), SystemTime::now()).unwrap().token;
    let authenticated = block_on(union.authenticate(&bearer(&token))).unwrap();
    assert_eq!(authenticated.authenticator(), "serviceaccount");
    let user = authenticated.user();
    assert_eq!(user.name, "system:serviceaccount:default:jenkins");
    assert_eq!(user.uid, "9a1c");
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ]
    );
    assert!(user.extra["authentication.kubernetes.io/credential-id"][0].starts_with("JTI="));

    // Not ours: nobody recognises it.
    assert_eq!(
        block_on(union.authenticate(&bearer("not-a-jwt"))),
        Err(AuthnError::Unrecognised)
    );
    // Ours but invalid: 401 with a reason that does not echo the token.
    s.cluster.put(
        ObjectKind::ServiceAccount,
        "default",
        "jenkins",
        "other-uid",
    );
    match block_on(union.authenticate(&bearer(&token))) {
        Err(AuthnError::Invalid {
            authenticator,
            reason,
        }) => {
            assert_eq!(authenticator, "serviceaccount");
            assert!(reason.contains("default/jenkins"), "{reason}");
            assert!(!token.split('.').any(|p| reason.contains(p)));
        }
        other => panic!("{other:?}"),
    }
    // No bearer token: not mine.
    assert_eq!(
        block_on(union.authenticate(&Credentials::default())),
        Err(AuthnError::NoCredentials)
    );
}

#[test]
fn a_running_process_picks_up_rotation_and_prune() {
    let s = setup(Algorithm::Rs256);
    let legacy = s
        .issuer
        .issue_legacy("default", "jenkins", "9a1c", "jenkins-token")
        .unwrap();
    s.cluster
        .put_token_secret("default", "jenkins-token", "s0", &legacy);
    let before = s.issuer.issue(&spec(), SystemTime::now()).unwrap().token;

    // `kgate keys rotate` in another process: a KeySet of its own on the same directory.
    let new_kid = KeySet::rotate(&s.dir, Algorithm::Rs256).unwrap();
    assert!(s.keys.reload_if_changed(&s.dir).unwrap());
    let after = s.issuer.issue(&spec(), SystemTime::now()).unwrap().token;
    assert_eq!(header(&after)["kid"], new_kid);
    for token in [&legacy, &before, &after] {
        assert!(s.authn.verify_token(token).unwrap().is_some());
    }
    let jwks = s.keys.current().jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    let pruned = KeySet::prune(&s.dir, 1).unwrap();
    assert_eq!(pruned.len(), 1);
    assert!(s.keys.reload_if_changed(&s.dir).unwrap());
    assert!(s.authn.verify_token(&after).unwrap().is_some());
    assert!(s.authn.verify_token(&before).is_err());
    assert!(s.authn.verify_token(&legacy).is_err());
}

#[test]
fn discovery_documents_as_kube_apiserver_serves_them() {
    let jwks_uri = format!("{ISSUER}/openid/v1/jwks");
    assert_eq!(
        discovery_document(ISSUER, &jwks_uri),
        json!({
            "issuer": ISSUER,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"]
        })
    );
    let s = setup(Algorithm::Rs256);
    let doc = discovery_document_for(ISSUER, &jwks_uri, &s.keys.current());
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
}
