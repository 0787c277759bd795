//! `jwt_serviceaccount`: the ServiceAccount token verifier
//! ([`ServiceAccountAuthenticator::verify_token_at`]): the unverified issuer and JOSE header it
//! reads before the signature, and the claims it decodes and checks after it.
//!
//! Input: a mode byte, then
//! - mode bit 0 clear: a raw token. Nothing the fuzzer writes is signed by the verifier's key,
//!   so it must never authenticate.
//! - mode bit 0 set: `header \n claims` (JSON, or anything), signed here with the verifier's
//!   own key; without a newline the input is the claims under `{"alg":"ES256"}`. Mode bit 1 sets
//!   the key's `kid` in a header that is a JSON object. What authenticates must be the
//!   ServiceAccount its claims name: `sub` is the user name, the UID the one the cluster holds,
//!   the groups those of its namespace.
//!
//! The cluster is [`Cluster`]: every object exists with UID `uid-<name>`, but for names that
//! start with `gone`, and every token Secret holds the token being verified (so legacy tokens
//! get through to their claims too). The token cache is off, so every input is verified afresh.

use crate::jose::{split_signed, Signer};
use kgate_tokens::claims::{
    namespace_group, ALL_SERVICE_ACCOUNTS_GROUP, SERVICE_ACCOUNT_USER_PREFIX,
};
use kgate_tokens::{
    Algorithm, IssuerConfig, KeySet, ObjectKind, ObjectLookup, ObjectState,
    ServiceAccountAuthenticator, SharedKeys, TokenDigest, TokenDigester, TokenSecretState,
    LEEWAY_SECONDS,
};
use serde::Deserialize;
use serde_json::Value;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// The issuer (and API audience) of the verifier.
pub const ISSUER: &str = "https://kgate.fuzz";
/// The verifier's clock: seeds' tokens are valid at this time (2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// The claims the properties read.
#[derive(Deserialize)]
struct Checked {
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
}

/// The cluster the verifier asks about bound objects.
#[derive(Default)]
pub struct Cluster {
    digester: TokenDigester,
    /// The digest of the token being verified, which every token Secret holds.
    current: Mutex<Option<TokenDigest>>,
}

impl Cluster {
    fn holds(&self, token: &str) {
        let digest = self.digester.digest(token.as_bytes());
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(digest);
    }
}

impl ObjectLookup for Cluster {
    fn object(&self, _kind: ObjectKind, _namespace: &str, name: &str) -> Option<ObjectState> {
        (!name.starts_with("gone")).then(|| ObjectState {
            uid: format!("uid-{name}"),
            deletion_timestamp: None,
        })
    }

    fn token_secret(&self, _namespace: &str, name: &str) -> Option<TokenSecretState> {
        (!name.starts_with("gone")).then(|| TokenSecretState {
            uid: format!("uid-{name}"),
            deleting: false,
            invalidated: false,
            token: *self.current.lock().unwrap_or_else(PoisonError::into_inner),
        })
    }

    fn token_digest(&self, token: &[u8]) -> TokenDigest {
        self.digester.digest(token)
    }
}

struct Setup {
    cluster: Arc<Cluster>,
    authenticator: ServiceAccountAuthenticator,
    signer: Signer,
    kid: String,
}

/// A signing key made for this process, written where [`KeySet`] reads keys and read back.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("kgate-fuzz-sa-{}", std::process::id()));
        let keys = KeySet::load_or_create(&dir, Algorithm::Es256)
            .unwrap_or_else(|e| panic!("ServiceAccount key in {}: {e}", dir.display()));
        let pem = std::fs::read_to_string(dir.join("sa-000001.key"))
            .unwrap_or_else(|e| panic!("the key file: {e}"));
        let _ = std::fs::remove_dir_all(&dir);
        let kid = keys.signing_kid().to_owned();
        let cluster = Arc::new(Cluster::default());
        let authenticator = ServiceAccountAuthenticator::new(
            SharedKeys::new(keys),
            IssuerConfig::new(ISSUER),
            cluster.clone(),
        )
        .with_cache_capacity(0);
        Setup {
            cluster,
            authenticator,
            signer: Signer::from_pkcs8(&crate::pem_body(&pem)),
            kid,
        }
    })
}

/// Runs one input; true when the token authenticated.
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let setup = setup();
    if mode & 1 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return false;
        };
        let result = setup.authenticator.verify_token_at(token, NOW);
        assert!(
            !matches!(result, Ok(Some(_))),
            "a token not signed by the issuer's key authenticated"
        );
        return false;
    }

    let (header, claims) = split_signed(rest, br#"{"alg":"ES256"}"#);
    let header = match serde_json::from_slice::<Value>(header) {
        Ok(Value::Object(mut fields)) if mode & 2 != 0 => {
            fields.insert("kid".into(), Value::String(setup.kid.clone()));
            serde_json::to_vec(&fields).unwrap_or_default()
        }
        _ => header.to_vec(),
    };
    let token = setup.signer.token(&header, claims);
    setup.cluster.holds(&token);
    let Ok(Some(user)) = setup.authenticator.verify_token_at(&token, NOW) else {
        return false;
    };

    // Verified claims are JSON whose `sub` is the user. They are read as the verifier reads
    // them: the values of claims it ignores are skipped, not checked (not even their UTF-8).
    let claims: Checked = serde_json::from_slice(claims).unwrap_or_else(|e| panic!("claims: {e}"));
    assert_eq!(claims.sub.as_deref(), Some(user.name.as_str()));
    // The UID is the one the cluster holds for the ServiceAccount the name ends with.
    let sa = user
        .uid
        .strip_prefix("uid-")
        .unwrap_or_else(|| panic!("uid {:?} is not the cluster's", user.uid));
    let namespace = user
        .name
        .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
        .and_then(|rest| rest.strip_suffix(sa))
        .and_then(|rest| rest.strip_suffix(':'))
        .unwrap_or_else(|| panic!("user {:?} is not ServiceAccount {sa:?}", user.name));
    assert!(!namespace.is_empty() && !sa.is_empty(), "{:?}", user.name);
    assert_eq!(
        user.groups,
        [
            ALL_SERVICE_ACCOUNTS_GROUP.to_owned(),
            namespace_group(namespace),
            kgate_core::user::ALL_AUTHENTICATED.to_owned(),
        ]
    );
    // A token of our issuer (bound, not legacy) must carry an expiry that is not past.
    if claims.iss.as_deref() == Some(ISSUER) {
        let exp = claims.exp;
        assert!(
            exp.is_some_and(|exp| exp.saturating_add(LEEWAY_SECONDS) >= NOW),
            "exp {exp:?}"
        );
    }
    true
}
