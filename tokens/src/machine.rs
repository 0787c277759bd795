//! Machine tokens: bearer tokens kgate issues to machines (CI jobs, scripts) for clusters it
//! authenticates as a webhook, where no ServiceAccount of kgate's own exists. A machine token is
//! a JWT signed with the data directory's machine-token keys (not the ServiceAccount keys: a
//! rotation of one never touches the other), naming a user, its groups and optionally the
//! audiences it is meant for; it expires, and it is revoked by its id (`jti`) through a deny
//! list file that every verification consults, so a revocation takes effect at the next request.
//!
//! Names under `system:` are refused both when a token is issued and when one is verified: a
//! machine token never speaks for the cluster's own components or for `system:masters`.
//!
//! Verified tokens are cached (the crate's keyed cache, see `cache`); a hit is checked again
//! for its expiry, that its key is still a verification key, and against the deny list.

use crate::cache::KeyedCache;
use crate::claims::{Audience, ReceivedClaims};
use crate::issuer::{IssueError, TokenIssuer};
use crate::keys::SharedKeys;
use crate::verify::{
    check_times, signed_claims, unverified_issuer, VerifyError, LEEWAY_SECONDS, MAX_TOKEN_BYTES,
};
use kgate_core::UserInfo;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `iss` of every machine token: not a URL anyone serves, only the mark that routes a token
/// here rather than to an OIDC issuer or the ServiceAccount verifier.
pub const MACHINE_ISSUER: &str = "kgate.io/machine-tokens";

/// The extra key kube-apiserver uses for a credential's id (`JTI=<id>`), so audit logs can tell
/// which token acted.
pub const CREDENTIAL_ID_EXTRA: &str = "authentication.kubernetes.io/credential-id";

/// What a machine token is issued for.
#[derive(Debug, Clone, Default)]
pub struct MachineTokenSpec {
    pub user: String,
    pub groups: Vec<String>,
    /// Empty: the token is audience-agnostic (valid wherever the caller accepts it).
    pub audiences: Vec<String>,
    pub lifetime: Duration,
}

/// An issued machine token and what `kgate token list` shows of it (never the token).
#[derive(Debug, Clone)]
pub struct IssuedMachineToken {
    pub token: String,
    pub record: MachineTokenRecord,
}

/// One line of the issued-tokens log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineTokenRecord {
    pub id: String,
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub expires: i64,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'static str,
    sub: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    aud: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    groups: &'a [String],
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: &'a str,
}

#[derive(Deserialize)]
struct MachineClaims {
    #[serde(flatten)]
    base: ReceivedClaims,
    #[serde(default)]
    groups: Vec<String>,
}

/// Where a data directory keeps its machine tokens' files.
#[derive(Debug, Clone)]
pub struct MachineTokenFiles {
    dir: PathBuf,
}

impl MachineTokenFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The signing keys (a [`crate::KeySet`] directory).
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join("keys")
    }

    /// The deny list: one revoked token id per line.
    pub fn revoked(&self) -> PathBuf {
        self.dir.join("revoked")
    }

    /// The issued tokens, one JSON [`MachineTokenRecord`] per line.
    pub fn issued(&self) -> PathBuf {
        self.dir.join("issued.jsonl")
    }

    /// Appends `id` to the deny list.
    pub fn revoke(&self, id: &str) -> std::io::Result<()> {
        if id.is_empty() || id.contains(char::is_whitespace) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a token id is one word",
            ));
        }
        std::fs::create_dir_all(&self.dir)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.revoked())?;
        writeln!(file, "{id}")?;
        file.sync_all()
    }

    /// Appends `record` to the issued-tokens log.
    pub fn record(&self, record: &MachineTokenRecord) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.issued())?;
        let line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        writeln!(file, "{line}")?;
        file.sync_all()
    }

    /// The issued tokens (unreadable lines skipped) and the revoked ids.
    pub fn list(&self) -> std::io::Result<(Vec<MachineTokenRecord>, HashSet<String>)> {
        let issued = match std::fs::read_to_string(self.issued()) {
            Ok(text) => text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok((issued, read_revoked(&self.revoked())?))
    }
}

fn read_revoked(path: &Path) -> std::io::Result<HashSet<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

fn system_name(name: &str) -> bool {
    name.starts_with("system:")
}

/// Issues machine tokens with the machine-token keys.
#[derive(Debug, Clone)]
pub struct MachineTokenIssuer {
    signer: TokenIssuer,
}

impl MachineTokenIssuer {
    pub fn new(keys: SharedKeys) -> Self {
        Self {
            signer: TokenIssuer::new(keys, crate::IssuerConfig::new(MACHINE_ISSUER)),
        }
    }

    pub fn issue(
        &self,
        spec: &MachineTokenSpec,
        now: SystemTime,
    ) -> Result<IssuedMachineToken, IssueError> {
        let invalid = |why: &str| Err(IssueError::InvalidRequest(why.to_owned()));
        if spec.user.is_empty() {
            return invalid("the user name is empty");
        }
        if system_name(&spec.user) || spec.groups.iter().any(|g| system_name(g)) {
            return invalid("machine tokens cannot name system: users or groups");
        }
        if spec
            .groups
            .iter()
            .chain(&spec.audiences)
            .any(String::is_empty)
        {
            return invalid("a group or audience is empty");
        }
        let lifetime = i64::try_from(spec.lifetime.as_secs()).unwrap_or(i64::MAX);
        if lifetime <= 0 {
            return invalid("the duration must be positive");
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or_else(|| IssueError::InvalidRequest("the clock is before 1970".into()))?;
        let Some(expires) = now.checked_add(lifetime) else {
            return invalid("the duration is out of range");
        };
        let id = uuid::Uuid::new_v4().to_string();
        let token = self.signer.sign(&IssuedClaims {
            iss: MACHINE_ISSUER,
            sub: &spec.user,
            aud: &spec.audiences,
            groups: &spec.groups,
            exp: expires,
            iat: now,
            nbf: now,
            jti: &id,
        })?;
        Ok(IssuedMachineToken {
            token,
            record: MachineTokenRecord {
                id,
                user: spec.user.clone(),
                groups: spec.groups.clone(),
                audiences: spec.audiences.clone(),
                expires,
            },
        })
    }
}

/// A verified machine token: its user and the audiences it is valid for among those the caller
/// named (empty when the token is audience-agnostic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineIdentity {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

/// The deny list as last read, and the file state it was read at.
#[derive(Debug, Default)]
struct RevokedCache {
    stamp: Option<(SystemTime, u64)>,
    ids: HashSet<String>,
}

/// A verified token, as cached: what the answer is made of, and what a hit re-checks.
#[derive(Debug)]
struct Entry {
    user: UserInfo,
    id: String,
    /// `None`: audience-agnostic.
    audiences: Option<Vec<String>>,
    kid: String,
    exp: i64,
}

/// Verifies machine tokens: signature, times, audiences, the deny list.
pub struct MachineTokenVerifier {
    keys: SharedKeys,
    revoked_path: PathBuf,
    revoked: Mutex<RevokedCache>,
    cache: KeyedCache<Entry>,
}

impl std::fmt::Debug for MachineTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cache.fmt_as("MachineTokenVerifier", f)
    }
}

impl MachineTokenVerifier {
    pub fn new(keys: SharedKeys, files: &MachineTokenFiles) -> Self {
        Self {
            keys,
            revoked_path: files.revoked(),
            revoked: Mutex::new(RevokedCache::default()),
            cache: KeyedCache::new(crate::DEFAULT_CACHE_CAPACITY, "machine token"),
        }
    }

    /// `Ok(None)`: not a machine token. `requested`: the audiences the caller accepts
    /// (TokenReview's `spec.audiences`); a token with audiences must share one with them.
    pub fn verify(
        &self,
        token: &str,
        requested: &[String],
        now: i64,
    ) -> Result<Option<MachineIdentity>, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLarge);
        }
        let key = self.cache.key(token);
        if let Some(hit) = self.cache.get(key) {
            let keys = self.keys.current();
            if now <= hit.exp.saturating_add(LEEWAY_SECONDS) && keys.by_kid(&hit.kid).is_some() {
                return self.answer(&hit, requested).map(Some);
            }
            self.cache.remove(key);
        }
        let Some(entry) = self.verify_uncached(token, now)? else {
            return Ok(None);
        };
        let answer = self.answer(&entry, requested);
        self.cache
            .insert(key, entry, |e| now > e.exp.saturating_add(LEEWAY_SECONDS));
        answer.map(Some)
    }

    fn verify_uncached(&self, token: &str, now: i64) -> Result<Option<Entry>, VerifyError> {
        // UNVERIFIED: the issuer only routes the token.
        if unverified_issuer(token).as_deref() != Some(MACHINE_ISSUER) {
            return Ok(None);
        }
        let keys = self.keys.current();
        let (claims, kid): (MachineClaims, _) = signed_claims(&keys, token)?;
        let base = &claims.base;
        if base.iss.as_deref() != Some(MACHINE_ISSUER) {
            return Err(VerifyError::MalformedClaims("the issuer is not kgate's"));
        }
        let Some(exp) = base.exp else {
            return Err(VerifyError::MalformedClaims(
                "a machine token has no expiration",
            ));
        };
        check_times(base, now, false)?;
        let user = base.sub.as_deref().unwrap_or_default();
        let id = base.jti.as_deref().unwrap_or_default();
        if user.is_empty() || id.is_empty() {
            return Err(VerifyError::MalformedClaims(
                "a machine token names a user and an id",
            ));
        }
        if system_name(user) || claims.groups.iter().any(|g| system_name(g)) {
            return Err(VerifyError::MalformedClaims(
                "a machine token cannot name system: users or groups",
            ));
        }
        Ok(Some(Entry {
            user: UserInfo {
                name: user.to_owned(),
                uid: String::new(),
                groups: claims.groups.clone(),
                extra: BTreeMap::from([(
                    CREDENTIAL_ID_EXTRA.to_owned(),
                    vec![format!("JTI={id}")],
                )]),
            },
            id: id.to_owned(),
            audiences: base.aud.as_ref().map(|aud| match aud {
                Audience::One(a) => vec![a.clone()],
                Audience::Many(list) => list.clone(),
            }),
            kid: kid.to_owned(),
            exp,
        }))
    }

    /// The identity a verified token gives a caller accepting `requested`, if not revoked.
    fn answer(&self, entry: &Entry, requested: &[String]) -> Result<MachineIdentity, VerifyError> {
        let audiences = match &entry.audiences {
            None => Vec::new(),
            Some(theirs) => {
                let shared: Vec<String> = requested
                    .iter()
                    .filter(|a| theirs.contains(a))
                    .cloned()
                    .collect();
                if shared.is_empty() && !theirs.is_empty() {
                    return Err(VerifyError::WrongAudience);
                }
                shared
            }
        };
        if self.is_revoked(&entry.id) {
            return Err(VerifyError::Revoked);
        }
        Ok(MachineIdentity {
            user: entry.user.clone(),
            audiences,
        })
    }

    /// Reads the deny list again when its modification time or length changed: one `stat` per
    /// verification, so `kgate token revoke` takes effect at the next request. An unreadable
    /// list refuses every token (fail closed).
    fn is_revoked(&self, id: &str) -> bool {
        let stamp = match std::fs::metadata(&self.revoked_path) {
            Ok(meta) => Some((meta.modified().unwrap_or(UNIX_EPOCH), meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(_) => return true,
        };
        let mut cache = match self.revoked.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.stamp != stamp || stamp.is_none() && !cache.ids.is_empty() {
            match read_revoked(&self.revoked_path) {
                Ok(ids) => {
                    cache.ids = ids;
                    cache.stamp = stamp;
                }
                Err(_) => return true,
            }
        }
        cache.ids.contains(id)
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
