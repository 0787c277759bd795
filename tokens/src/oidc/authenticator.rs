//! [`OidcAuthenticator`]: the authenticator over every configured issuer.
//!
//! A bearer token is "mine" when it is a JWT whose unverified `iss` is a configured issuer
//! URL; it is then verified against that issuer only (see [`crate::oidc::verify`]). Anything
//! else is "not mine" (`Ok(None)`), so the ServiceAccount authenticator before it and others
//! after it keep their tokens.
//!
//! Verified tokens are cached until their `exp` in the crate's keyed cache, as ServiceAccount
//! tokens are (see the `cache` module for the keying and its threat model: the cache neither
//! holds tokens nor answers for a token it has not verified). A hit also needs the
//! configuration it was verified under to be the current one and its key to be still
//! published: a reload or a provider dropping a key ends the entry. Bounded by
//! [`DEFAULT_CAPACITY`] entries over 16 shards; a full shard first drops its expired entries
//! and those of withdrawn keys.
//!
//! The configuration is replaceable ([`OidcAuthenticator::replace`]): issuers whose URL,
//! discovery URL and CA did not change keep their loaded keys and refresher.

use crate::cache::KeyedCache;
use crate::oidc::config::{AuthenticationConfig, JwtIssuer};
use crate::oidc::jwks::{JwksError, Key, ProviderKeys};
use crate::oidc::verify::{self, OidcError, ParsedToken};
use crate::verify::MAX_TOKEN_BYTES;
use arc_swap::ArcSwap;
use kgate_core::authn::{Authenticator, AuthnError, AuthnFuture, AuthnResponse, Credentials};
use kgate_core::UserInfo;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

/// The authenticator's name in logs and audit.
pub const AUTHENTICATOR_NAME: &str = "oidc";
/// How many verified tokens are kept by default.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// An untrusted issuer is logged cut to this many characters.
const LOGGED_ISSUER_CHARS: usize = 200;

/// One configured issuer and its keys.
#[derive(Debug)]
struct Issuer {
    config: JwtIssuer,
    keys: Arc<ProviderKeys>,
}

/// One configuration: its issuers, and a number no other configuration of this authenticator
/// has (cache entries carry it).
#[derive(Debug)]
struct Issuers {
    generation: u64,
    list: Vec<Issuer>,
}

impl Issuers {
    fn find(&self, issuer_url: &str) -> Option<&Issuer> {
        self.list.iter().find(|i| i.config.issuer_url == issuer_url)
    }
}

/// The authenticator over every configured JWT issuer; its configuration can be replaced.
pub struct OidcAuthenticator {
    issuers: ArcSwap<Issuers>,
    cache: Cache,
    started: AtomicBool,
    /// Serializes [`Self::replace`].
    replacing: Mutex<()>,
}

impl fmt::Debug for OidcAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcAuthenticator")
            .field("issuers", &self.issuers.load().list)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// One issuer's state for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerStatus {
    pub issuer_url: String,
    /// `None` when its keys are loaded; else why not.
    pub problem: Option<String>,
}

impl OidcAuthenticator {
    /// The authenticator of `config`. Starts no task and does no I/O (see [`Self::start`]). An
    /// issuer whose CA is invalid never loads keys; its status says why.
    pub fn new(config: AuthenticationConfig) -> Self {
        let list = build(&config, None);
        Self {
            issuers: ArcSwap::from_pointee(Issuers {
                generation: 0,
                list,
            }),
            cache: Cache::new(DEFAULT_CAPACITY),
            started: AtomicBool::new(false),
            replacing: Mutex::new(()),
        }
    }

    /// Keeps about `capacity` verified tokens (0 disables the cache).
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = Cache::new(capacity);
        self
    }

    /// Starts every issuer's refresher (loading its keys now, then periodically); issuers added
    /// by a later [`Self::replace`] are started too. Needs a Tokio runtime.
    pub fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
        for issuer in &self.issuers.load().list {
            issuer.keys.start_refresher();
        }
    }

    /// Loads every issuer's keys now (discovery and JWKS), without the refresher; returns each
    /// issuer's failure. For tools and tests; the gateway uses [`Self::start`].
    pub async fn refresh_all(&self) -> Vec<(String, JwksError)> {
        let issuers = self.issuers.load_full();
        let mut failures = Vec::new();
        for issuer in &issuers.list {
            if let Err(e) = issuer.keys.refresh().await {
                failures.push((issuer.config.issuer_url.clone(), e));
            }
        }
        failures
    }

    /// Replaces the configuration (reload). Issuers whose URL, discovery URL and CA are
    /// unchanged keep their keys; the others get new ones (and a refresher when started);
    /// removed issuers stop theirs. Every cached verification is dropped.
    pub fn replace(&self, config: AuthenticationConfig) {
        let _guard = self.replacing.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.issuers.load_full();
        let list = build(&config, Some(&old));
        if self.started.load(Ordering::SeqCst) {
            for issuer in &list {
                issuer.keys.start_refresher();
            }
        }
        self.issuers.store(Arc::new(Issuers {
            generation: old.generation.wrapping_add(1),
            list,
        }));
        self.cache.clear();
    }

    /// Each issuer's state, in configuration order.
    pub fn statuses(&self) -> Vec<IssuerStatus> {
        self.issuers
            .load()
            .list
            .iter()
            .map(|issuer| IssuerStatus {
                issuer_url: issuer.config.issuer_url.clone(),
                problem: issuer.keys.status(),
            })
            .collect()
    }

    /// The keys of a configured issuer (diagnostics, tests, benchmarks).
    pub fn provider_keys(&self, issuer_url: &str) -> Option<Arc<ProviderKeys>> {
        self.issuers
            .load()
            .find(issuer_url)
            .map(|i| Arc::clone(&i.keys))
    }

    /// How many verified tokens are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Verifies `token` now: `Ok(None)` when it is not a JWT or its issuer is not configured.
    pub async fn verify_token(&self, token: &str) -> Result<Option<UserInfo>, OidcError> {
        self.verify_token_at(token, unix_now()).await
    }

    /// [`Self::verify_token`] at `now` (seconds since the Unix epoch).
    pub async fn verify_token_at(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<UserInfo>, OidcError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(OidcError::TooLarge);
        }
        let issuers = self.issuers.load_full();
        let cache_key = self.cache.key(token);
        if let Some(user) = self.cache.get(cache_key, now, issuers.generation) {
            return Ok(Some(user));
        }
        let Some(parsed) = ParsedToken::parse(token) else {
            return Ok(None);
        };
        let Some(iss) = parsed.issuer() else {
            return Ok(None);
        };
        let Some(issuer) = issuers.find(iss) else {
            // Escaped: the claim is the sender's, it must not forge log lines.
            let shown: String = iss
                .chars()
                .take(LOGGED_ISSUER_CHARS)
                .flat_map(char::escape_debug)
                .collect();
            tracing::info!(issuer = %shown, "oidc: token issuer is not trusted");
            return Ok(None);
        };
        let verified = verify::verify_claims(&issuer.config, &issuer.keys, parsed, now).await?;
        let user = verify::user_of(&issuer.config, &verified.claims)?;
        self.cache.insert(
            cache_key,
            Entry {
                user: user.clone(),
                expires_at: verified.expires_at,
                generation: issuers.generation,
                key: Arc::downgrade(&verified.key),
            },
            now,
        );
        Ok(Some(user))
    }
}

/// The issuers of `config`, reusing the keys of `old`'s issuers with the same source.
fn build(config: &AuthenticationConfig, old: Option<&Issuers>) -> Vec<Issuer> {
    let mut list: Vec<Issuer> = Vec::with_capacity(config.jwt.len());
    for jwt in &config.jwt {
        if list.iter().any(|i| i.config.issuer_url == jwt.issuer_url) {
            // Config validation refuses duplicates; the first one wins anyway.
            tracing::warn!(issuer = %jwt.issuer_url, "oidc: issuer configured twice; using the first");
            continue;
        }
        let reused = old.and_then(|old| {
            old.list
                .iter()
                .find(|i| same_source(&i.config, jwt))
                .map(|i| Arc::clone(&i.keys))
        });
        let keys = match reused {
            Some(keys) => keys,
            None => Arc::new(ProviderKeys::new_or_unusable(jwt)),
        };
        list.push(Issuer {
            config: jwt.clone(),
            keys,
        });
    }
    list
}

/// Same issuer, discovery URL and CA: the same keys.
fn same_source(a: &JwtIssuer, b: &JwtIssuer) -> bool {
    a.issuer_url == b.issuer_url
        && a.discovery_url == b.discovery_url
        && a.certificate_authority == b.certificate_authority
}

impl Authenticator for OidcAuthenticator {
    fn name(&self) -> &'static str {
        AUTHENTICATOR_NAME
    }

    fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a> {
        Box::pin(async move {
            let Some(token) = &credentials.bearer_token else {
                return Ok(None);
            };
            match self.verify_token(token.expose_secret()).await {
                Ok(user) => Ok(user.map(|user| AuthnResponse { user })),
                Err(e) => {
                    if e.is_reserved_identity() {
                        // A signed token claiming a Kubernetes identity: worth an operator's look.
                        tracing::warn!(reason = %e, "oidc: token refused: it asserts a reserved system: identity");
                    } else {
                        tracing::debug!(reason = %e, "oidc: token refused");
                    }
                    let reason = e.to_string();
                    Err(if e.is_unavailable() {
                        AuthnError::Unavailable {
                            authenticator: AUTHENTICATOR_NAME,
                            reason,
                        }
                    } else {
                        AuthnError::Invalid {
                            authenticator: AUTHENTICATOR_NAME,
                            reason,
                        }
                    })
                }
            }
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One verified token.
struct Entry {
    user: UserInfo,
    expires_at: i64,
    /// The configuration it was verified under.
    generation: u64,
    /// Dead once no loaded key set holds the key any more.
    key: Weak<Key>,
}

/// The cache of verified tokens; see the module documentation.
struct Cache {
    entries: KeyedCache<Entry>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.entries.fmt_as("Cache", f)
    }
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: KeyedCache::new(capacity, "OIDC token"),
        }
    }

    fn key(&self, token: &str) -> u128 {
        self.entries.key(token)
    }

    fn get(&self, key: u128, now: i64, generation: u64) -> Option<UserInfo> {
        let entry = self.entries.get(key)?;
        if now <= entry.expires_at && entry.generation == generation && entry.key.strong_count() > 0
        {
            return Some(entry.user.clone());
        }
        self.entries.remove(key);
        None
    }

    fn insert(&self, key: u128, entry: Entry, now: i64) {
        self.entries.insert(key, entry, |e| {
            now > e.expires_at || e.key.strong_count() == 0
        });
    }

    fn clear(&self) {
        self.entries.clear();
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
#[path = "authenticator_tests.rs"]
mod tests;
