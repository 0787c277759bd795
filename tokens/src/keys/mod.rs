//! ServiceAccount signing keys: one signing key and every verification key, kept in a
//! directory, rotated and pruned by `kgate keys`, and shared with a running kgate that picks a
//! rotation up without a restart ([`SharedKeys`]).
//!
//! ```text
//! DIR/            0700
//!   sa-000003.key 0600  the newest private key: the signing key
//!   sa-000002.pub 0644  a retired key: its public half only, for verification
//!   sa-000001.pub 0644
//! ```
//!
//! Private keys are PKCS#8 PEM (PKCS#1 `RSA PRIVATE KEY` is read too, so kubeadm's `sa.key`
//! can be imported as `sa-000001.key`); public keys SubjectPublicKeyInfo PEM.
//!
//! Threat model: whoever holds the signing key can mint a token for any ServiceAccount, so
//! private keys are written 0600 in a 0700 directory (as kgate's CA key), a retired key keeps
//! only its public half, and no `Debug`, log line or error text carries key material.
//! Rotation keeps old public keys so tokens they signed verify until they expire; pruning them
//! is a separate, explicit step.

mod files;
mod material;

use crate::crypto::KeySigner;
use arc_swap::ArcSwap;
use jsonwebtoken::{DecodingKey, EncodingKey};
use material::KeyMaterial;
use serde_json::{json, Value};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use thiserror::Error;

pub use material::RSA_BITS;

/// A signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 over an RSA 2048 key: what Kubernetes uses.
    #[default]
    Rs256,
    /// ECDSA P-256 with SHA-256: smaller tokens and much faster signing.
    Es256,
}

impl Algorithm {
    /// The JOSE name (`RS256`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            _ => Err(format!("unknown algorithm {s:?}; use RS256 or ES256")),
        }
    }
}

/// Why keys could not be loaded, created, rotated or pruned. No variant carries key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written or removed.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file does not hold a usable key.
    #[error("{} does not hold a usable ServiceAccount key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    /// The directory holds no key at all.
    #[error("no ServiceAccount keys in {}", dir.display())]
    NoKeys { dir: PathBuf },
    /// The directory holds public keys only: nothing can sign.
    #[error("no ServiceAccount signing key in {} (only public keys); run `kgate keys rotate` to add one", dir.display())]
    NoSigningKey { dir: PathBuf },
    /// Generating a key failed.
    #[error("cannot generate a ServiceAccount signing key: {0}")]
    Generate(String),
}

/// One key of a [`KeySet`].
pub(crate) struct Key {
    pub kid: String,
    pub algorithm: Algorithm,
    pub decoding: DecodingKey,
    pub encoding: Option<EncodingKey>,
    /// `encoding` parsed for signing, once (present exactly when `encoding` is). An error is
    /// kept for the issuer to report at signing, as it was when each token parsed the key.
    pub signer: Option<Result<KeySigner, jsonwebtoken::errors::Error>>,
    jwk: Value,
    seq: u64,
    #[cfg_attr(not(test), allow(dead_code))]
    spki_der: Vec<u8>,
}

/// One signing key and every verification key (the signing key's public half included).
pub struct KeySet {
    /// Newest first.
    keys: Vec<Key>,
    /// Index of the signing key in `keys`.
    signing: usize,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Kids and algorithms only: they are public (the JWKS serves them).
        f.debug_struct("KeySet")
            .field("signing_kid", &self.signing_kid())
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| (k.kid.as_str(), k.algorithm))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeySet {
    /// Loads the keys from `dir` (creating it 0700 and a first key of `algorithm` if empty).
    /// Existing keys are kept whatever their algorithm; `algorithm` only chooses a first key.
    pub fn load_or_create(dir: &Path, algorithm: Algorithm) -> Result<KeySet, KeyError> {
        files::create_private_dir(dir)?;
        if files::list(dir)?.is_empty() {
            create_key(dir, algorithm, 1)?;
            tracing::info!(dir = %dir.display(), %algorithm, "created a token signing key");
        }
        Self::load(dir)
    }

    /// Loads the keys from `dir`, which must hold a signing key.
    pub fn load(dir: &Path) -> Result<KeySet, KeyError> {
        crate::crypto::install();
        let mut keys: Vec<Key> = Vec::new();
        for file in files::list(dir)? {
            let material = read_key(&file)?;
            // The same key twice (a retired key whose private file was not removed yet, or a
            // copy): the first seen, the newest and private one, wins.
            if keys.iter().any(|k| k.kid == material.kid) {
                continue;
            }
            if file.private && material.encoding.is_none() {
                return Err(KeyError::BadKey {
                    path: file.path,
                    reason: "not a private key".into(),
                });
            }
            let signer = material
                .encoding
                .as_ref()
                .map(|encoding| KeySigner::new(material.algorithm.jwt(), encoding));
            keys.push(Key {
                kid: material.kid,
                algorithm: material.algorithm,
                decoding: material.decoding,
                encoding: material.encoding,
                signer,
                jwk: material.jwk,
                seq: file.seq,
                spki_der: material.spki_der,
            });
        }
        if keys.is_empty() {
            return Err(KeyError::NoKeys {
                dir: dir.to_owned(),
            });
        }
        let signing = keys
            .iter()
            .position(|k| k.encoding.is_some())
            .ok_or_else(|| KeyError::NoSigningKey {
                dir: dir.to_owned(),
            })?;
        Ok(KeySet { keys, signing })
    }

    /// Adds a new signing key of `algorithm` in `dir`; older keys stay as verification keys
    /// (so tokens they signed keep verifying until they expire). Returns the new kid.
    ///
    /// The older private keys are retired: each is replaced by its public half (`.pub`), so a
    /// rotated-out key can no longer sign even if the directory leaks later.
    pub fn rotate(dir: &Path, algorithm: Algorithm) -> Result<String, KeyError> {
        files::create_private_dir(dir)?;
        let existing = files::list(dir)?;
        // Read every older private key before changing anything: a corrupt file stops the
        // rotation with nothing done.
        let mut retire = Vec::new();
        for file in existing.iter().filter(|f| f.private) {
            retire.push((file, read_key(file)?));
        }
        let next = existing.first().map_or(1, |f| f.seq + 1);
        let (_, kid) = create_key(dir, algorithm, next)?;
        for (file, material) in retire {
            let public = file.path.with_extension(files::PUBLIC_EXT);
            files::write_public(&public, material::public_pem_of(&material).as_bytes())?;
            files::remove(&file.path)?;
        }
        tracing::info!(dir = %dir.display(), %algorithm, kid = %kid, "rotated the ServiceAccount signing key");
        Ok(kid)
    }

    /// Removes verification keys older than the newest `keep` (the signing key always stays,
    /// so `keep` is at least 1). Returns the kids removed.
    pub fn prune(dir: &Path, keep: usize) -> Result<Vec<String>, KeyError> {
        let set = Self::load(dir)?;
        let signing_seq = set.keys[set.signing].seq;
        let keep = keep.max(1);
        let doomed: Vec<&Key> = set
            .keys
            .iter()
            .enumerate()
            .filter(|(i, k)| *i >= keep && k.seq != signing_seq)
            .map(|(_, k)| k)
            .collect();
        // Every file holding a removed key goes, copies under another number included (they
        // would bring the key back at the next load).
        for file in files::list(dir)? {
            let kid = read_key(&file)?.kid;
            if doomed.iter().any(|k| k.kid == kid) {
                files::remove(&file.path)?;
            }
        }
        let removed: Vec<String> = doomed.iter().map(|k| k.kid.clone()).collect();
        if !removed.is_empty() {
            tracing::info!(dir = %dir.display(), removed = removed.len(), "pruned ServiceAccount verification keys");
        }
        Ok(removed)
    }

    /// The kid of the key that signs new tokens.
    pub fn signing_kid(&self) -> &str {
        &self.keys[self.signing].kid
    }

    /// The algorithm of the signing key.
    pub fn signing_algorithm(&self) -> Algorithm {
        self.keys[self.signing].algorithm
    }

    /// Every verification key's kid, newest first.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// JWKS (RFC 7517) of every verification key, newest first:
    /// `{"keys":[{use:"sig", kty, kid, alg, n, e | crv, x, y}]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// The algorithms of the verification keys, sorted, as a discovery document lists them.
    pub fn algorithms(&self) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = self.keys.iter().map(|k| k.algorithm.as_str()).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    pub(crate) fn signing(&self) -> &Key {
        &self.keys[self.signing]
    }

    pub(crate) fn by_kid(&self, kid: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.by_kid(kid).is_some()
    }

    pub(crate) fn with_algorithm(&self, algorithm: Algorithm) -> impl Iterator<Item = &Key> {
        self.keys.iter().filter(move |k| k.algorithm == algorithm)
    }

    /// Same kids, same signing key.
    fn same_keys(&self, other: &KeySet) -> bool {
        self.signing_kid() == other.signing_kid() && self.kids() == other.kids()
    }
}

/// Generates a key and writes it as number `seq` (or the next free one).
fn create_key(dir: &Path, algorithm: Algorithm, seq: u64) -> Result<(u64, String), KeyError> {
    let generated = material::generate(algorithm).map_err(KeyError::Generate)?;
    let pem = material::pem_encode("PRIVATE KEY", &generated.0);
    // Parse what will be written, so a key that cannot be read back is never published.
    let parsed = material::from_private_pem(pem.as_bytes()).map_err(KeyError::Generate)?;
    let (seq, _) = files::publish_private(dir, seq, pem.as_bytes())?;
    Ok((seq, parsed.kid))
}

fn read_key(file: &files::KeyFile) -> Result<KeyMaterial, KeyError> {
    let bytes = files::read(&file.path)?;
    warn_if_exposed(file);
    let parsed = if file.private {
        material::from_private_pem(&bytes)
    } else {
        material::from_public_pem(&bytes)
    };
    parsed.map_err(|reason| KeyError::BadKey {
        path: file.path.clone(),
        reason,
    })
}

/// A private key readable by others is used (refusing would take the cluster down) but
/// reported.
fn warn_if_exposed(file: &files::KeyFile) {
    use std::os::unix::fs::PermissionsExt as _;
    if !file.private {
        return;
    }
    if let Ok(meta) = std::fs::metadata(&file.path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %file.path.display(), "ServiceAccount signing key is readable by group or others; chmod 600 it");
        }
    }
}

/// A [`KeySet`] shared and swappable at run time: a running kgate picks up a rotation made by
/// `kgate keys rotate` in another process through [`SharedKeys::reload_if_changed`].
#[derive(Clone)]
pub struct SharedKeys {
    inner: Arc<Shared>,
}

struct Shared {
    current: ArcSwap<KeySet>,
    /// The directory as last loaded; `None` until the first reload.
    seen: Mutex<Option<files::Fingerprint>>,
}

impl fmt::Debug for SharedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedKeys")
            .field(&*self.inner.current.load())
            .finish()
    }
}

impl SharedKeys {
    pub fn new(keys: KeySet) -> Self {
        Self {
            inner: Arc::new(Shared {
                current: ArcSwap::from_pointee(keys),
                seen: Mutex::new(None),
            }),
        }
    }

    /// The keys now.
    pub fn current(&self) -> Arc<KeySet> {
        self.inner.current.load_full()
    }

    /// A cheaper borrow of the keys now, for hot paths.
    pub(crate) fn guard(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.inner.current.load()
    }

    /// Replaces the keys (for a caller that loaded them itself).
    pub fn store(&self, keys: KeySet) {
        self.inner.current.store(Arc::new(keys));
    }

    /// Reloads from `dir` if the files changed; `Ok(true)` when a new set was swapped in. On an
    /// error the current keys stay and the next call tries again.
    pub fn reload_if_changed(&self, dir: &Path) -> Result<bool, KeyError> {
        let mut seen = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = files::fingerprint(dir)?;
        if seen.as_ref() == Some(&now) {
            return Ok(false);
        }
        let loaded = KeySet::load(dir)?;
        // A file written between the fingerprint and the load is seen at the next call, which
        // fingerprints again: at worst one extra load.
        *seen = Some(now);
        if loaded.same_keys(&self.inner.current.load()) {
            return Ok(false);
        }
        tracing::info!(dir = %dir.display(), kid = %loaded.signing_kid(), "reloaded ServiceAccount keys");
        self.inner.current.store(Arc::new(loaded));
        Ok(true)
    }
}

/// The signing key's public half as PEM and as DER: what an algorithm-confusion attacker
/// would use as an HMAC secret.
#[cfg(test)]
pub(crate) fn test_public_key_forms(keys: &KeySet) -> Vec<Vec<u8>> {
    let spki = keys.signing().spki_der.clone();
    vec![material::pem_encode("PUBLIC KEY", &spki).into_bytes(), spki]
}

#[cfg(test)]
mod tests;
