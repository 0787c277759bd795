//! Per issuer: discovery and the JWKS, through the `openidconnect` crate's HTTP client
//! (`openidconnect::reqwest`, rustls) and its provider metadata type.
//!
//! [`ProviderKeys`] owns one issuer's verification keys. The discovery document comes from
//! `discoveryURL` or `{issuer}/.well-known/openid-configuration`; its `issuer` must equal the
//! configured issuer exactly (as kube-apiserver requires), then the keys come from its
//! `jwks_uri`. Redirects are not followed, every fetch has a [`FETCH_TIMEOUT`] and a size cap,
//! and with `certificateAuthority` only those roots are trusted.
//!
//! Keys are kept until a fetch replaces them: a provider that goes down keeps serving the keys
//! it last published. An unknown `kid` refetches the JWKS so that a provider's key rotation is
//! followed within one request, but at most once per [`MIN_REFETCH_INTERVAL`] and one fetch at a
//! time (concurrent requests wait for the fetch in flight), so tokens with made-up kids cannot
//! turn kgate into a load generator against the provider. A background task
//! ([`ProviderKeys::start_refresher`]) loads the keys when they are missing, retrying with a
//! backoff of [`INITIAL_BACKOFF`] doubling to [`MAX_BACKOFF`], then refreshes them every
//! [`REFRESH_INTERVAL`]. Construction does no I/O: a provider down at start fails nothing, its
//! [`ProviderKeys::status`] says why it has no keys.

use crate::oidc::config::JwtIssuer;
use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use kgate_core::error_chain;
use openidconnect::core::CoreProviderMetadata;
use openidconnect::reqwest;
use serde::Deserialize;
use std::fmt;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Unknown kids refetch the JWKS at most this often.
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Loaded keys are refreshed this often.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// The whole of one HTTP fetch, connection included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry of a failed load.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between retries of a failed load.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Discovery documents and key sets larger than this are refused.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why keys could not be loaded or found. Texts name the document, its URL and the reason.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksError {
    /// `certificateAuthority` holds no usable PEM certificate.
    #[error("certificate authority of issuer {issuer} is invalid: {reason}")]
    InvalidCertificateAuthority { issuer: String, reason: String },
    /// The HTTP client could not be built.
    #[error("HTTP client for issuer {issuer}: {reason}")]
    Client { issuer: String, reason: String },
    /// The TLS handshake failed (unknown CA, wrong name, ...).
    #[error("fetching the {what} from {url} failed: TLS: {reason}")]
    Tls {
        what: &'static str,
        url: String,
        reason: String,
    },
    /// Connection refused, timeout, DNS, ...
    #[error("fetching the {what} from {url} failed: {reason}")]
    Fetch {
        what: &'static str,
        url: String,
        reason: String,
    },
    /// A status other than 2xx (redirects included: they are not followed).
    #[error("fetching the {what} from {url} failed: HTTP status {status}")]
    Status {
        what: &'static str,
        url: String,
        status: u16,
    },
    #[error("the {what} at {url} is larger than {MAX_DOCUMENT_BYTES} bytes")]
    TooLarge { what: &'static str, url: String },
    #[error("the {what} at {url} is invalid: {reason}")]
    Invalid {
        what: &'static str,
        url: String,
        reason: String,
    },
    /// The discovery document names another issuer.
    #[error("the discovery document at {url} is for issuer {found:?}, not {expected}")]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    /// The key set has no key kgate can verify with.
    #[error("the key set at {url} has no usable signing key")]
    NoUsableKeys { url: String },
    /// No keys were loaded yet; the reason is the last load's error.
    #[error("keys of issuer {issuer} are not loaded: {reason}")]
    NotLoaded { issuer: String, reason: String },
    /// No key has the token's kid (or, without kid, the token's key type), even after a refetch
    /// (or a refetch was not allowed yet).
    #[error("no key of issuer {issuer} matches the token's key id and algorithm")]
    UnknownKey { issuer: String },
    /// The key the kid names is of another type than the token's algorithm needs.
    #[error("the token's algorithm does not match the type of its key (issuer {issuer})")]
    AlgorithmMismatch { issuer: String },
}

/// The type of a verification key; the algorithms it verifies follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyType {
    /// True when a token signed with `alg` can be verified with a key of this type.
    pub fn fits(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Self::EcP256 => alg == Algorithm::ES256,
            Self::EcP384 => alg == Algorithm::ES384,
        }
    }
}

/// One verification key of a provider.
pub struct Key {
    /// The JWK's `kid`, if any.
    pub kid: Option<String>,
    pub key_type: KeyType,
    /// The JWK's `alg`, if any: then only this algorithm.
    pub alg: Option<Algorithm>,
    pub decoding: DecodingKey,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("key_type", &self.key_type)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// True when a token signed with `alg` may be verified with this key.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.key_type.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }

    /// Same key material, kid and restrictions.
    fn same_as(&self, other: &Key) -> bool {
        self.kid == other.kid
            && self.key_type == other.key_type
            && self.alg == other.alg
            && match (self.decoding.kind(), other.decoding.kind()) {
                (
                    DecodingKeyKind::RsaModulusExponent { n, e },
                    DecodingKeyKind::RsaModulusExponent { n: n2, e: e2 },
                ) => n == n2 && e == e2,
                (DecodingKeyKind::SecretOrDer(a), DecodingKeyKind::SecretOrDer(b)) => a == b,
                _ => false,
            }
    }
}

/// The keys of one load.
#[derive(Debug)]
struct KeySet {
    keys: Vec<Arc<Key>>,
    /// Bumped by every load, so a request that waited for a fetch knows one happened.
    generation: u64,
}

/// What the loaded keys say about a kid and algorithm.
enum Lookup {
    Found(Vec<Arc<Key>>),
    Mismatch,
    Missing,
}

impl KeySet {
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let found: Vec<Arc<Key>> = match kid {
            Some(kid) => {
                let mut named = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .peekable();
                if named.peek().is_none() {
                    return Lookup::Missing;
                }
                let fitting: Vec<_> = named.filter(|k| k.fits(alg)).cloned().collect();
                if fitting.is_empty() {
                    return Lookup::Mismatch;
                }
                fitting
            }
            None => self.keys.iter().filter(|k| k.fits(alg)).cloned().collect(),
        };
        if found.is_empty() {
            Lookup::Missing
        } else {
            Lookup::Found(found)
        }
    }
}

/// The JWK members kgate reads.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// The verification keys of a JWKS document: RSA and EC P-256/P-384 keys whose `use` is `sig`
/// or absent; other keys are skipped (logged at debug). Fails only when the document is not a
/// JWKS at all.
pub fn parse_jwks(body: &[u8]) -> Result<Vec<Key>, String> {
    let raw: RawJwks = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for (index, value) in raw.keys.iter().enumerate() {
        match RawJwk::deserialize(value)
            .map_err(|e| e.to_string())
            .and_then(convert_jwk)
        {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(reason) => tracing::debug!(index, %reason, "oidc: skipping a JWKS key"),
        }
    }
    Ok(keys)
}

/// One JWK as a verification key; `Ok(None)` for keys that are not for signatures.
fn convert_jwk(jwk: RawJwk) -> Result<Option<Key>, String> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        tracing::debug!(kid = ?jwk.kid, "oidc: skipping a JWKS key not for signatures");
        return Ok(None);
    }
    let b64 = |field: &Option<String>, name: &str| -> Result<Vec<u8>, String> {
        let text = field.as_deref().ok_or_else(|| format!("no {name}"))?;
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| format!("{name} is not base64url"))
    };
    let (key_type, decoding) = match jwk.kty.as_deref() {
        Some("RSA") => {
            let n = b64(&jwk.n, "n")?;
            let e = b64(&jwk.e, "e")?;
            // ring wants minimal big-endian integers.
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            if !(2048..=8192).contains(&(n.len() * 8)) || e.is_empty() {
                return Err(format!("RSA key of {} bits is not supported", n.len() * 8));
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(n, e))
        }
        Some("EC") => {
            let (key_type, size) = match jwk.crv.as_deref() {
                Some("P-256") => (KeyType::EcP256, 32),
                Some("P-384") => (KeyType::EcP384, 48),
                other => return Err(format!("EC curve {other:?} is not supported")),
            };
            let x = b64(&jwk.x, "x")?;
            let y = b64(&jwk.y, "y")?;
            if x.len() != size || y.len() != size {
                return Err("EC coordinates have the wrong size".into());
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (key_type, DecodingKey::from_ec_der(&point))
        }
        other => return Err(format!("key type {other:?} is not supported")),
    };
    let alg = match jwk.alg.as_deref() {
        None => None,
        Some(name) => {
            let alg = Algorithm::from_str(name)
                .ok()
                .filter(|a| key_type.fits(*a))
                .ok_or_else(|| format!("algorithm {name:?} does not fit a {key_type:?} key"))?;
            Some(alg)
        }
    };
    Ok(Some(Key {
        kid: jwk.kid,
        key_type,
        alg,
        decoding,
    }))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// go-oidc's minimum of a discovery document, for providers whose document lacks members
/// `openidconnect`'s metadata type requires.
#[derive(Deserialize)]
struct MinimalMetadata {
    issuer: String,
    jwks_uri: String,
}

struct FetchState {
    /// When an unknown kid last refetched the JWKS.
    last_refetch: Option<Instant>,
}

struct Inner {
    issuer_url: String,
    discovery_url: String,
    /// `Err` for an issuer that cannot be used (its CA is invalid): every fetch fails so.
    client: Result<reqwest::Client, JwksError>,
    keys: ArcSwapOption<KeySet>,
    jwks_uri: Mutex<Option<String>>,
    last_error: Mutex<Option<String>>,
    /// One fetch at a time; waiters see the result through `keys`.
    fetch: tokio::sync::Mutex<FetchState>,
    generation: AtomicU64,
    jwks_fetches: AtomicU64,
}

/// One issuer's verification keys; see the module documentation. Dropping it stops its
/// refresher.
pub struct ProviderKeys {
    inner: Arc<Inner>,
    refresher: Mutex<Option<tokio::task::AbortHandle>>,
}

impl fmt::Debug for ProviderKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKeys")
            .field("issuer_url", &self.inner.issuer_url)
            .field("discovery_url", &self.inner.discovery_url)
            .field(
                "keys",
                &self.inner.keys.load().as_ref().map(|k| k.keys.len()),
            )
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Drop for ProviderKeys {
    fn drop(&mut self) {
        self.stop_refresher();
    }
}

impl ProviderKeys {
    /// The keys of `issuer`, none loaded yet. No I/O: fails only on an invalid
    /// `certificateAuthority` or an HTTP client that cannot be built.
    pub fn new(issuer: &JwtIssuer) -> Result<Self, JwksError> {
        Ok(Self::with_client(issuer, Ok(http_client(issuer)?)))
    }

    /// [`Self::new`], or keys that never load and whose [`Self::status`] says why: a bad CA
    /// makes one issuer unusable (and not ready), not the whole configuration.
    pub fn new_or_unusable(issuer: &JwtIssuer) -> Self {
        match http_client(issuer) {
            Ok(client) => Self::with_client(issuer, Ok(client)),
            Err(e) => {
                tracing::warn!(issuer = %issuer.issuer_url, error = %e, "oidc: issuer is unusable");
                let keys = Self::with_client(issuer, Err(e.clone()));
                *keys
                    .inner
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                keys
            }
        }
    }

    fn with_client(issuer: &JwtIssuer, client: Result<reqwest::Client, JwksError>) -> Self {
        // Verification goes through jsonwebtoken's provider slot.
        crate::crypto::install();
        let discovery_url = issuer.discovery_url.clone().unwrap_or_else(|| {
            format!(
                "{}/.well-known/openid-configuration",
                issuer.issuer_url.trim_end_matches('/')
            )
        });
        Self {
            inner: Arc::new(Inner {
                issuer_url: issuer.issuer_url.clone(),
                discovery_url,
                client,
                keys: ArcSwapOption::empty(),
                jwks_uri: Mutex::new(None),
                last_error: Mutex::new(None),
                fetch: tokio::sync::Mutex::new(FetchState { last_refetch: None }),
                generation: AtomicU64::new(0),
                jwks_fetches: AtomicU64::new(0),
            }),
            refresher: Mutex::new(None),
        }
    }

    pub fn issuer_url(&self) -> &str {
        &self.inner.issuer_url
    }

    /// Where the discovery document is fetched from.
    pub fn discovery_url(&self) -> &str {
        &self.inner.discovery_url
    }

    /// `None` when keys are loaded; else why not (the last load's error).
    pub fn status(&self) -> Option<String> {
        if self.inner.keys.load().is_some() {
            return None;
        }
        Some(self.inner.not_loaded_reason())
    }

    /// How many keys are loaded.
    pub fn key_count(&self) -> usize {
        self.inner.keys.load().as_ref().map_or(0, |k| k.keys.len())
    }

    /// How many times the JWKS was fetched (successfully or not).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.jwks_fetches.load(Ordering::Relaxed)
    }

    /// Discovery then the JWKS, now; returns how many keys were loaded. On failure the keys
    /// loaded before stay.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        self.inner.refresh().await
    }

    /// Replaces the keys with those of a JWKS document obtained elsewhere (static keys, tests,
    /// benchmarks); returns how many were loaded.
    pub fn install_jwks(&self, body: &[u8]) -> Result<usize, JwksError> {
        self.inner.install(body, "key set (installed)")
    }

    /// The keys a token with this `kid` (or none) and `alg` may be verified with. An unknown
    /// kid refetches the JWKS (see the module documentation).
    pub async fn keys_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Vec<Arc<Key>>, JwksError> {
        let inner = &self.inner;
        let Some(set) = inner.keys.load_full() else {
            return Err(JwksError::NotLoaded {
                issuer: inner.issuer_url.clone(),
                reason: inner.not_loaded_reason(),
            });
        };
        match set.lookup(kid, alg) {
            Lookup::Found(keys) => return Ok(keys),
            Lookup::Mismatch => return Err(inner.mismatch()),
            Lookup::Missing => {}
        }
        let mut state = inner.fetch.lock().await;
        let current = inner.keys.load_full();
        let fetched_meanwhile = current
            .as_ref()
            .is_some_and(|c| c.generation != set.generation);
        if !fetched_meanwhile {
            if state
                .last_refetch
                .is_some_and(|at| at.elapsed() < MIN_REFETCH_INTERVAL)
            {
                return Err(inner.unknown());
            }
            state.last_refetch = Some(Instant::now());
            tracing::debug!(issuer = %inner.issuer_url, "oidc: unknown key id; refetching the JWKS");
            inner.load_jwks_locked().await?;
        }
        drop(state);
        match inner.keys.load_full().map(|s| s.lookup(kid, alg)) {
            Some(Lookup::Found(keys)) => Ok(keys),
            Some(Lookup::Mismatch) => Err(inner.mismatch()),
            _ => Err(inner.unknown()),
        }
    }

    /// Starts the background task that loads and refreshes the keys (see the module
    /// documentation). Idempotent; needs a Tokio runtime (false, with a warning, without one).
    pub fn start_refresher(&self) -> bool {
        let mut slot = self.refresher.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return true;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(issuer = %self.inner.issuer_url, "oidc: no async runtime; keys are not refreshed");
            return false;
        };
        let weak = Arc::downgrade(&self.inner);
        *slot = Some(runtime.spawn(refresh_loop(weak)).abort_handle());
        true
    }

    /// Stops the background task, if any.
    pub fn stop_refresher(&self) {
        if let Some(task) = self
            .refresher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// The client of one issuer: no redirects, a timeout, the issuer's CA only when it has one.
fn http_client(issuer: &JwtIssuer) -> Result<reqwest::Client, JwksError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .user_agent(concat!("kgate/", env!("CARGO_PKG_VERSION")));
    if let Some(pem) = &issuer.certificate_authority {
        let invalid = |reason: String| JwksError::InvalidCertificateAuthority {
            issuer: issuer.issuer_url.clone(),
            reason,
        };
        let roots = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| invalid(error_chain(&e)))?;
        if roots.is_empty() {
            return Err(invalid("no PEM certificate".into()));
        }
        builder = builder.tls_built_in_root_certs(false);
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().map_err(|e| JwksError::Client {
        issuer: issuer.issuer_url.clone(),
        reason: error_chain(&e),
    })
}

async fn refresh_loop(inner: Weak<Inner>) {
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let wait = match strong.refresh().await {
            Ok(_) => {
                backoff = INITIAL_BACKOFF;
                REFRESH_INTERVAL
            }
            Err(_) => {
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        drop(strong);
        tokio::time::sleep(wait).await;
    }
}

impl Inner {
    fn not_loaded_reason(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "not loaded yet".into())
    }

    fn unknown(&self) -> JwksError {
        JwksError::UnknownKey {
            issuer: self.issuer_url.clone(),
        }
    }

    fn mismatch(&self) -> JwksError {
        JwksError::AlgorithmMismatch {
            issuer: self.issuer_url.clone(),
        }
    }

    fn record(&self, result: &Result<usize, JwksError>) {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => *last = None,
            Err(e) => {
                tracing::warn!(issuer = %self.issuer_url, error = %e, "oidc: loading the issuer's keys failed");
                *last = Some(e.to_string());
            }
        }
    }

    async fn refresh(&self) -> Result<usize, JwksError> {
        let _state = self.fetch.lock().await;
        let result = async {
            let jwks_uri = self.discover().await?;
            *self.jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = Some(jwks_uri.clone());
            self.fetch_jwks(&jwks_uri).await
        }
        .await;
        self.record(&result);
        result
    }

    /// The JWKS again, from the `jwks_uri` discovered before (or discovery first). The caller
    /// holds the fetch lock.
    async fn load_jwks_locked(&self) -> Result<usize, JwksError> {
        let known = self
            .jwks_uri
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let result = match known {
            Some(uri) => self.fetch_jwks(&uri).await,
            None => match self.discover().await {
                Ok(uri) => {
                    *self.jwks_uri.lock().unwrap_or_else(|e| e.into_inner()) = Some(uri.clone());
                    self.fetch_jwks(&uri).await
                }
                Err(e) => Err(e),
            },
        };
        self.record(&result);
        result
    }

    /// The discovery document's `jwks_uri`, after checking its issuer.
    async fn discover(&self) -> Result<String, JwksError> {
        const WHAT: &str = "discovery document";
        let url = &self.discovery_url;
        let body = self.get(WHAT, url).await?;
        let (issuer, jwks_uri) = match serde_json::from_slice::<CoreProviderMetadata>(&body) {
            Ok(metadata) => {
                let issuer: &String = metadata.issuer();
                let jwks_uri: &String = metadata.jwks_uri();
                (issuer.clone(), jwks_uri.clone())
            }
            Err(full) => {
                let minimal: MinimalMetadata =
                    serde_json::from_slice(&body).map_err(|e| JwksError::Invalid {
                        what: WHAT,
                        url: url.clone(),
                        reason: e.to_string(),
                    })?;
                tracing::debug!(%url, reason = %full, "oidc: discovery document is not complete OpenID provider metadata; using issuer and jwks_uri");
                (minimal.issuer, minimal.jwks_uri)
            }
        };
        if issuer != self.issuer_url {
            return Err(JwksError::IssuerMismatch {
                url: url.clone(),
                expected: self.issuer_url.clone(),
                found: issuer.chars().take(200).collect(),
            });
        }
        Ok(jwks_uri)
    }

    async fn fetch_jwks(&self, url: &str) -> Result<usize, JwksError> {
        self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
        let body = self.get("key set", url).await?;
        self.install(&body, "key set").map_err(|e| match e {
            JwksError::Invalid { what, reason, .. } => JwksError::Invalid {
                what,
                url: url.to_owned(),
                reason,
            },
            JwksError::NoUsableKeys { .. } => JwksError::NoUsableKeys {
                url: url.to_owned(),
            },
            other => other,
        })
    }

    fn install(&self, body: &[u8], what: &'static str) -> Result<usize, JwksError> {
        let mut keys = parse_jwks(body).map_err(|reason| JwksError::Invalid {
            what,
            url: String::new(),
            reason,
        })?;
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys { url: String::new() });
        }
        // Unchanged keys keep their identity, so verified tokens cached against them stay.
        let old = self.keys.load_full();
        let keys: Vec<Arc<Key>> = keys
            .drain(..)
            .map(|key| {
                old.as_ref()
                    .and_then(|o| o.keys.iter().find(|k| k.same_as(&key)).cloned())
                    .unwrap_or_else(|| Arc::new(key))
            })
            .collect();
        let count = keys.len();
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.keys.store(Some(Arc::new(KeySet { keys, generation })));
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::debug!(issuer = %self.issuer_url, keys = count, "oidc: keys loaded");
        Ok(count)
    }

    async fn get(&self, what: &'static str, url: &str) -> Result<Vec<u8>, JwksError> {
        let fetch_error = |e: reqwest::Error| {
            let reason = error_chain(&e.without_url());
            if is_tls(&reason) {
                JwksError::Tls {
                    what,
                    url: url.to_owned(),
                    reason,
                }
            } else {
                JwksError::Fetch {
                    what,
                    url: url.to_owned(),
                    reason,
                }
            }
        };
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let mut response = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(fetch_error)?;
        if !response.status().is_success() {
            return Err(JwksError::Status {
                what,
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || JwksError::TooLarge {
            what,
            url: url.to_owned(),
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn is_tls(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "unknownissuer"]
        .iter()
        .any(|word| reason.contains(word))
}

#[cfg(test)]
#[path = "jwks_tests.rs"]
pub(crate) mod tests;
