//! The token issuer: bound tokens for TokenRequest (`kubectl create token`, projected volumes)
//! and legacy tokens for `kubernetes.io/service-account-token` Secrets, signed with the
//! [`SharedKeys`]' signing key.
//!
//! Bound tokens carry what Kubernetes' carry: `aud` (always an array), `exp`, `iat`, `iss`,
//! `jti` (a random UUID), `kubernetes.io` {namespace, serviceaccount, pod | secret | node, and
//! node for a pod with a node}, `nbf`, `sub`. kgate writes no `warnafter`: it is the signal of
//! kube's "extended expiration" for kubelet-mounted tokens, which kgate does not do.

use crate::claims::{self, BoundClaims, KubernetesClaim, LegacyClaims, Ref};
use crate::keys::SharedKeys;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Who issues tokens and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The `iss` of bound tokens (kube-apiserver's `--service-account-issuer`).
    pub issuer: String,
    /// The audiences the API accepts (`--api-audiences`); also the audiences of a TokenRequest
    /// that names none.
    pub api_audiences: Vec<String>,
    /// The longest lifetime a token gets (`--service-account-max-token-expiration`); longer
    /// requests are capped. Zero means no cap, as in Kubernetes.
    pub max_expiration: Duration,
}

impl IssuerConfig {
    /// `issuer` as both issuer and only API audience (kube-apiserver's default), tokens capped
    /// at 48 hours.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        Self {
            api_audiences: vec![issuer.clone()],
            issuer,
            max_expiration: Duration::from_secs(48 * 3600),
        }
    }
}

/// The kind of object a token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoundKind {
    Pod,
    Secret,
    Node,
}

/// The object a token is bound to: the token is valid only while that object (same UID) exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    pub kind: BoundKind,
    pub name: String,
    pub uid: String,
}

/// A TokenRequest, already validated by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequestSpec {
    pub namespace: String,
    pub service_account_name: String,
    pub service_account_uid: String,
    /// Empty: the API audiences.
    pub audiences: Vec<String>,
    /// Validated `>= 600` by the caller; capped at `max_expiration` here.
    pub expiration_seconds: i64,
    pub bound: Option<BoundObject>,
    /// The bound Pod's node (name, uid), if the Pod is scheduled.
    pub pod_node: Option<(String, String)>,
}

/// A signed token. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// When it expires, in seconds since the Unix epoch (after capping).
    pub expiration_unix: i64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"<redacted>")
            .field("expiration_unix", &self.expiration_unix)
            .finish()
    }
}

/// Why a token could not be issued.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The request is not one a token can be made for (a caller's validation gap).
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// The key set has no private signing key (a wiring bug: a loaded KeySet always has one).
    #[error("the key set has no signing key")]
    NoSigningKey,
    /// Signing failed (an unusable key); details go to the source, never key material.
    #[error("cannot sign the token")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Issues tokens with the current signing key.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    keys: SharedKeys,
    config: IssuerConfig,
}

impl TokenIssuer {
    pub fn new(keys: SharedKeys, config: IssuerConfig) -> Self {
        Self { keys, config }
    }

    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// Issues a bound token valid from `now` for `spec.expiration_seconds` (capped).
    pub fn issue(
        &self,
        spec: &TokenRequestSpec,
        now: SystemTime,
    ) -> Result<IssuedToken, IssueError> {
        require("namespace", &spec.namespace)?;
        require("service account name", &spec.service_account_name)?;
        require("service account uid", &spec.service_account_uid)?;
        if spec.expiration_seconds <= 0 {
            return Err(IssueError::InvalidRequest(
                "expirationSeconds must be positive".into(),
            ));
        }
        let audiences = if spec.audiences.is_empty() {
            &self.config.api_audiences
        } else {
            &spec.audiences
        };
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(IssueError::InvalidRequest(
                "a token needs at least one non-empty audience".into(),
            ));
        }
        let now = unix_seconds(now)?;
        let lifetime = match self.config.max_expiration.as_secs() {
            0 => spec.expiration_seconds,
            max => spec
                .expiration_seconds
                .min(i64::try_from(max).unwrap_or(i64::MAX)),
        };
        let exp = now.checked_add(lifetime).ok_or_else(|| {
            IssueError::InvalidRequest("expirationSeconds is out of range".into())
        })?;

        let mut kubernetes = KubernetesClaim {
            namespace: spec.namespace.clone(),
            serviceaccount: Ref {
                name: spec.service_account_name.clone(),
                uid: spec.service_account_uid.clone(),
            },
            ..KubernetesClaim::default()
        };
        if let Some(bound) = &spec.bound {
            require("bound object name", &bound.name)?;
            require("bound object uid", &bound.uid)?;
            let reference = Some(Ref {
                name: bound.name.clone(),
                uid: bound.uid.clone(),
            });
            match bound.kind {
                BoundKind::Pod => {
                    kubernetes.pod = reference;
                    // As kube's ServiceAccountTokenPodNodeInfo: the node travels with the pod.
                    kubernetes.node = spec.pod_node.as_ref().map(|(name, uid)| Ref {
                        name: name.clone(),
                        uid: uid.clone(),
                    });
                }
                BoundKind::Secret => kubernetes.secret = reference,
                BoundKind::Node => kubernetes.node = reference,
            }
        }
        let claims = BoundClaims {
            aud: audiences,
            exp,
            iat: now,
            iss: &self.config.issuer,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes,
            nbf: now,
            sub: claims::service_account_user(&spec.namespace, &spec.service_account_name),
        };
        Ok(IssuedToken {
            token: self.sign(&claims)?,
            expiration_unix: exp,
        })
    }

    /// A legacy (non-expiring) token for a `kubernetes.io/service-account-token` Secret, with
    /// the legacy claims (iss `kubernetes/serviceaccount`, `kubernetes.io/serviceaccount/*`,
    /// sub).
    pub fn issue_legacy(
        &self,
        namespace: &str,
        service_account_name: &str,
        service_account_uid: &str,
        secret_name: &str,
    ) -> Result<String, IssueError> {
        require("namespace", namespace)?;
        require("service account name", service_account_name)?;
        require("service account uid", service_account_uid)?;
        require("secret name", secret_name)?;
        self.sign(&LegacyClaims {
            iss: claims::LEGACY_ISSUER,
            namespace,
            secret_name,
            service_account_name,
            service_account_uid,
            sub: claims::service_account_user(namespace, service_account_name),
        })
    }

    pub(crate) fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, IssueError> {
        let keys = self.keys.guard();
        let key = keys.signing();
        // The key parsed for signing when it was loaded: a rotation swaps in a new set, whose
        // signing key the next token uses.
        let Some(signer) = &key.signer else {
            return Err(IssueError::NoSigningKey);
        };
        let signer = signer.as_ref().map_err(|e| IssueError::Sign(e.clone()))?;
        // Kubernetes' header: alg and kid, no typ.
        let mut header = jsonwebtoken::Header::new(key.algorithm.jwt());
        header.typ = None;
        header.kid = Some(key.kid.clone());
        crate::crypto::encode(&header, claims, signer).map_err(IssueError::Sign)
    }
}

fn require(what: &str, value: &str) -> Result<(), IssueError> {
    if value.is_empty() {
        return Err(IssueError::InvalidRequest(format!("the {what} is empty")));
    }
    Ok(())
}

fn unix_seconds(t: SystemTime) -> Result<i64, IssueError> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .ok_or_else(|| IssueError::InvalidRequest("the clock is before 1970".into()))
}

#[cfg(test)]
mod tests {
    use crate::keys::{Algorithm, KeySet};
    use crate::testutil::*;

    fn kid_of(token: &str) -> String {
        decode_part(&parts(token).0)["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn tokens_in_a_row_verify_and_a_key_swap_signs_the_next_token() {
        for algorithm in [Algorithm::Rs256, Algorithm::Es256] {
            let f = Fixture::new(algorithm);
            let first_kid = f.keys.current().signing_kid().to_owned();
            let (a, b) = (f.pod_token(), f.pod_token());
            assert_ne!(a, b, "{algorithm}");
            for token in [&a, &b] {
                assert_eq!(kid_of(token), first_kid);
                assert!(f.authn.verify_token_at(token, NOW).unwrap().is_some());
            }

            // A rotation picked up from the directory: the next token has the new key.
            let rotated = KeySet::rotate(&f.key_dir(), Algorithm::Es256).unwrap();
            assert!(f.keys.reload_if_changed(&f.key_dir()).unwrap());
            let c = f.pod_token();
            assert_eq!(kid_of(&c), rotated);
            assert_eq!(decode_part(&parts(&c).0)["alg"], "ES256");
            for token in [&a, &b, &c] {
                assert!(f.authn.verify_token_at(token, NOW).unwrap().is_some());
            }

            // A key set stored by the caller: the next token has its key, and only it verifies.
            let other = tempfile::tempdir().unwrap();
            let swapped = KeySet::load_or_create(other.path(), Algorithm::Rs256).unwrap();
            let swapped_kid = swapped.signing_kid().to_owned();
            f.keys.store(swapped);
            let d = f.pod_token();
            assert_eq!(kid_of(&d), swapped_kid);
            assert_eq!(decode_part(&parts(&d).0)["alg"], "RS256");
            assert!(f.authn.verify_token_at(&d, NOW).unwrap().is_some());
            assert!(f.authn.verify_token_at(&c, NOW).is_err());
            let legacy = f
                .issuer
                .issue_legacy("ci", "jenkins", "sa-uid", "jenkins-token")
                .unwrap();
            f.cluster
                .put_token_secret("ci", "jenkins-token", "secret-uid", &legacy);
            assert_eq!(kid_of(&legacy), swapped_kid);
            assert!(f.authn.verify_token_at(&legacy, NOW).unwrap().is_some());
        }
    }

    #[test]
    fn the_kept_signer_makes_the_tokens_jsonwebtoken_makes() {
        for algorithm in [Algorithm::Rs256, Algorithm::Es256] {
            let f = Fixture::new(algorithm);
            let keys = f.keys.current();
            let key = keys.signing();
            let signer = key.signer.as_ref().unwrap().as_ref().unwrap();
            let mut header = jsonwebtoken::Header::new(key.algorithm.jwt());
            header.typ = None;
            header.kid = Some(key.kid.clone());
            let ours = crate::crypto::encode(&header, &claims(), signer).unwrap();
            let theirs = f.sign(&claims());
            // The same header and claims; for ES256 another (randomized) signature.
            let ((h, p, _), (th, tp, _)) = (parts(&ours), parts(&theirs));
            assert_eq!((h, p), (th, tp));
            if algorithm == Algorithm::Rs256 {
                // RSASSA-PKCS1-v1_5 is deterministic: the very same token.
                assert_eq!(ours, theirs);
            }
            assert!(f.authn.verify_token_at(&ours, NOW).unwrap().is_some());

            // A header naming another algorithm is refused, as jsonwebtoken refuses it.
            let other = match algorithm {
                Algorithm::Rs256 => jsonwebtoken::Algorithm::ES256,
                Algorithm::Es256 => jsonwebtoken::Algorithm::RS256,
            };
            let err = crate::crypto::encode(&jsonwebtoken::Header::new(other), &claims(), signer)
                .unwrap_err();
            assert_eq!(
                *err.kind(),
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            );
            // Its Debug names the algorithm and nothing else.
            assert_eq!(
                format!("{signer:?}"),
                format!("KeySigner {{ algorithm: {:?}, .. }}", key.algorithm.jwt())
            );
        }
    }
}
