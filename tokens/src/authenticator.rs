//! The ServiceAccount token authenticator: a [`kgate_core::authn::Authenticator`] that verifies
//! bearer tokens (see [`crate::verify`] for the rules) in front of a cache of verified tokens
//! (see the `cache` module: keyed by a keyed hash, re-checked on every hit, bounded).
//!
//! It answers "not mine" (`Ok(None)`) for anything that is not a JWT from our issuer or the
//! legacy issuer, so that other authenticators (OIDC) may try it; "mine: invalid" for every
//! other failure. What the cluster holds (does this ServiceAccount, Pod, Secret, Node still
//! exist with this UID) comes from an [`ObjectLookup`] the caller feeds from a watch.

use crate::cache::{TokenCache, DEFAULT_CAPACITY};
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

/// What the verifier asks about the cluster: the UID of an object now, `None` if absent. Fed
/// from a watch by the caller (the gateway), so it is a cheap in-memory lookup. Nodes are
/// asked for with an empty namespace.
pub trait ObjectLookup: Send + Sync {
    fn uid_of(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<String>;
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
