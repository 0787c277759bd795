//! The ServiceAccount token authenticator: a [`kgate_core::authn::Authenticator`] that verifies
//! bearer tokens (see [`crate::verify`] for the rules) in front of a cache of verified tokens
//! (see the `cache` module: keyed by a keyed hash, re-checked on every hit, bounded).
//!
//! It answers "not mine" (`Ok(None)`) for anything that is not a JWT from our issuer or the
//! legacy issuer, so that other authenticators (OIDC) may try it; "mine: invalid" for every
//! other failure. What the cluster holds (does this ServiceAccount, Pod, Secret, Node still
//! exist with this UID, is it being deleted, does a legacy token's Secret still hold it) comes
//! from an [`ObjectLookup`] the caller feeds from a watch.

use crate::cache::{TokenCache, DEFAULT_CAPACITY};
use crate::digest::TokenDigest;
use crate::issuer::IssuerConfig;
use crate::keys::SharedKeys;
use crate::verify::{Verifier, VerifyError};
use kgate_core::authn::{Authenticator, AuthnError, AuthnFuture, AuthnResponse, Credentials};
use kgate_core::UserInfo;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The authenticator's name in logs and audit.
pub const AUTHENTICATOR_NAME: &str = "serviceaccount";

/// The kinds of object a token can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    ServiceAccount,
    Pod,
    Secret,
    /// Cluster-scoped: looked up with an empty namespace.
    Node,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ServiceAccount => "service account",
            Self::Pod => "pod",
            Self::Secret => "secret",
            Self::Node => "node",
        })
    }
}

/// An object a token depends on, as the cluster holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub uid: String,
    /// `metadata.deletionTimestamp`, in Unix seconds: the object is being deleted (finalizers
    /// or a grace period keep it a while). A timestamp that cannot be read is best given as 0:
    /// deleted long ago.
    pub deletion_timestamp: Option<i64>,
}

/// A Secret of type `kubernetes.io/service-account-token`, as a legacy token's check needs it:
/// no Secret data, only the digest of its `data.token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSecretState {
    pub uid: String,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The `kubernetes.io/legacy-token-invalid-since` label is set (Kubernetes' legacy token
    /// cleaner marks unused tokens so before deleting them).
    pub invalidated: bool,
    /// [`ObjectLookup::token_digest`] of its `data.token`; `None` while it has none.
    pub token: Option<TokenDigest>,
}

/// The label that marks a legacy token invalid (k8s.io/kubernetes `pkg/serviceaccount`
/// `InvalidSinceLabelKey`).
pub const LEGACY_TOKEN_INVALID_SINCE_LABEL: &str = "kubernetes.io/legacy-token-invalid-since";

/// What the verifier asks about the cluster. Fed from a watch by the caller (the gateway), so
/// each answer is a cheap in-memory lookup. Nodes are asked for with an empty namespace.
pub trait ObjectLookup: Send + Sync {
    /// The object now, `None` if absent.
    fn object(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<ObjectState>;

    /// The Secret `namespace/name` if it is of type `kubernetes.io/service-account-token`;
    /// `None` if absent or of another type.
    fn token_secret(&self, namespace: &str, name: &str) -> Option<TokenSecretState>;

    /// The digest [`TokenSecretState::token`] holds for a Secret whose `data.token` is `token`
    /// (the lookup's own keyed digest, see [`crate::TokenDigester`]).
    fn token_digest(&self, token: &[u8]) -> TokenDigest;
}

/// Verifies ServiceAccount tokens; see the module documentation.
pub struct ServiceAccountAuthenticator {
    keys: SharedKeys,
    config: IssuerConfig,
    lookup: Arc<dyn ObjectLookup>,
    cache: TokenCache,
}

impl fmt::Debug for ServiceAccountAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountAuthenticator")
            .field("keys", &self.keys)
            .field("config", &self.config)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountAuthenticator {
    pub fn new(keys: SharedKeys, config: IssuerConfig, lookup: Arc<dyn ObjectLookup>) -> Self {
        Self {
            keys,
            config,
            lookup,
            cache: TokenCache::new(DEFAULT_CAPACITY),
        }
    }

    /// Keeps about `capacity` verified tokens (default [`DEFAULT_CAPACITY`]; 0 disables the
    /// cache).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = TokenCache::new(capacity);
        self
    }

    /// Drops cached verifications that depend on this object (called on watch delete events).
    /// Not needed for correctness (a cache hit re-checks every dependency) but frees the
    /// entries at once.
    pub fn forget(&self, kind: ObjectKind, namespace: &str, name: &str) {
        self.cache.forget(kind, namespace, name);
    }

    /// How many verified tokens are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Verifies `token` now: `Ok(None)` when it is not a ServiceAccount token of ours.
    pub fn verify_token(&self, token: &str) -> Result<Option<UserInfo>, VerifyError> {
        self.verify_token_at(token, unix_now())
    }

    /// [`Self::verify_token`] at `now` (seconds since the Unix epoch).
    pub fn verify_token_at(&self, token: &str, now: i64) -> Result<Option<UserInfo>, VerifyError> {
        let keys = self.keys.guard();
        let key = self.cache.key(token);
        if let Some(user) = self.cache.get(key, now, &keys, self.lookup.as_ref()) {
            return Ok(Some(user));
        }
        let verifier = Verifier {
            keys: &keys,
            config: &self.config,
            lookup: self.lookup.as_ref(),
        };
        let Some(verified) = verifier.verify(token, now)? else {
            return Ok(None);
        };
        let user = verified.user.clone();
        self.cache.insert(key, verified, now);
        Ok(Some(user))
    }
}

impl Authenticator for ServiceAccountAuthenticator {
    fn name(&self) -> &'static str {
        AUTHENTICATOR_NAME
    }

    fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a> {
        // Verification never waits on I/O: do it now and hand back a ready future.
        let answer = match &credentials.bearer_token {
            None => Ok(None),
            Some(token) => match self.verify_token(token.expose_secret()) {
                Ok(user) => Ok(user.map(|user| AuthnResponse { user })),
                Err(e) => {
                    tracing::debug!(reason = %e, "service account token refused");
                    Err(AuthnError::Invalid {
                        authenticator: AUTHENTICATOR_NAME,
                        reason: e.to_string(),
                    })
                }
            },
        };
        Box::pin(std::future::ready(answer))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
