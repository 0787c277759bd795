//! The token cache of `kgate login`: one JSON file per (issuer, client id, scopes), named by a
//! SHA-256 of the three, in a 0700 directory, written 0600. It holds the last verified ID token,
//! its expiry and the refresh token.
//!
//! Threat model: the file holds bearer credentials, so it is private to the user (0700 directory,
//! 0600 file written atomically) and its `Debug` never shows a token. A corrupt or unreadable file
//! is ignored (the caller logs in again), never trusted in part.

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A cached ID token is used only while it has more than this left, so kubectl does not send one
/// that expires on the way.
pub const MIN_REMAINING_SECS: i64 = 10;

/// Why the cache could not be located or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CacheError {
    /// Neither --cache-dir, $KGATE_CACHE_DIR, $XDG_CACHE_HOME nor $HOME is set.
    #[error("no cache directory: set --cache-dir, KGATE_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoDirectory,
    /// The file or directory could not be written.
    #[error("cannot write the token cache")]
    Write(#[source] kgate_gateway::pki::PkiError),
    /// The entry could not be serialised.
    #[error("cannot serialise the token cache")]
    Serialize(#[source] serde_json::Error),
}

/// The cache directory: `flag`, else `$KGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/kgate/oidc`, else
/// `$HOME/.cache/kgate/oidc`. `env` reads a variable (tests pass their own); empty values count
/// as unset.
pub fn cache_dir(
    flag: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, CacheError> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("KGATE_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(dir.join("kgate").join("oidc"));
    }
    if let Some(home) = var("HOME") {
        return Ok(home.join(".cache").join("kgate").join("oidc"));
    }
    Err(CacheError::NoDirectory)
}

/// The file name for one (issuer, client id, scopes): a hex SHA-256, so the file name shows
/// nothing and different logins never share a file. Scopes are sorted first.
pub fn cache_file_name(issuer: &str, client_id: &str, scopes: &[String]) -> String {
    let mut scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    // Length-prefixed, so no two different inputs give the same byte string.
    for part in [issuer, client_id].into_iter().chain(scopes) {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let digest = ctx.finish();
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

/// One cached login. `Debug` leaves out the tokens.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CacheEntry {
    /// The last verified ID token (a JWT).
    pub id_token: String,
    /// The refresh token, if the provider gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token's `exp`, in seconds since the Unix epoch.
    pub expiry: i64,
    /// The ID token's `sub`: a refreshed token must have the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl fmt::Debug for CacheEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheEntry")
            .field("id_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expiry", &self.expiry)
            .field("subject", &self.subject)
            .finish()
    }
}

impl CacheEntry {
    /// Whether the ID token can still be handed to kubectl at `now` (Unix seconds): more than
    /// [`MIN_REMAINING_SECS`] left.
    pub fn is_fresh(&self, now: i64) -> bool {
        self.expiry - now > MIN_REMAINING_SECS
    }
}

/// What reading the cache found.
#[derive(Debug)]
pub enum Loaded {
    /// No file.
    Missing,
    /// A valid entry.
    Entry(CacheEntry),
    /// A file that cannot be read or parsed (the reason, without its contents).
    Corrupt(String),
}

/// The cache file of one login.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
}

impl TokenCache {
    /// The cache file `file_name` in `dir`.
    pub fn new(dir: &Path, file_name: &str) -> Self {
        Self {
            path: dir.join(file_name),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the entry.
    pub fn load(&self) -> Loaded {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Loaded::Missing,
            Err(e) => return Loaded::Corrupt(e.to_string()),
        };
        // The serde error names a line and column, never the value.
        match serde_json::from_slice::<CacheEntry>(&text) {
            Ok(entry) => Loaded::Entry(entry),
            Err(e) => Loaded::Corrupt(format!("not a kgate token cache ({})", e.classify_name())),
        }
    }

    /// Writes the entry: the directory 0700 (created if missing), the file 0600.
    pub fn store(&self, entry: &CacheEntry) -> Result<(), CacheError> {
        if let Some(dir) = self.path.parent() {
            kgate_gateway::pki::create_private_dir(dir).map_err(CacheError::Write)?;
            // An existing directory keeps its mode on create: tighten it.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                |source| {
                    CacheError::Write(kgate_gateway::pki::PkiError::Write {
                        path: dir.to_owned(),
                        source,
                    })
                },
            )?;
        }
        let text = serde_json::to_vec_pretty(entry).map_err(CacheError::Serialize)?;
        kgate_gateway::pki::write_private(&self.path, &text).map_err(CacheError::Write)
    }
}

/// A short name for a serde_json error category.
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn cache_dir_precedence() {
        let all = [
            ("KGATE_CACHE_DIR", "/k"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(
            cache_dir(Some(Path::new("/flag")), env(&all)).unwrap(),
            PathBuf::from("/flag")
        );
        assert_eq!(cache_dir(None, env(&all)).unwrap(), PathBuf::from("/k"));
        assert_eq!(
            cache_dir(None, env(&all[1..])).unwrap(),
            PathBuf::from("/x/kgate/oidc")
        );
        assert_eq!(
            cache_dir(None, env(&[("KGATE_CACHE_DIR", ""), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.cache/kgate/oidc")
        );
        assert!(matches!(
            cache_dir(None, env(&[])),
            Err(CacheError::NoDirectory)
        ));
    }

    #[test]
    fn file_names_separate_logins_and_ignore_scope_order() {
        let scopes = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let a = cache_file_name("https://i", "c", &scopes(&["openid", "email"]));
        assert_eq!(
            a,
            cache_file_name("https://i", "c", &scopes(&["email", "openid"]))
        );
        assert_ne!(
            a,
            cache_file_name("https://i", "d", &scopes(&["openid", "email"]))
        );
        assert_ne!(
            a,
            cache_file_name("https://j", "c", &scopes(&["openid", "email"]))
        );
        assert_ne!(a, cache_file_name("https://i", "c", &scopes(&["openid"])));
        // Moving a character between fields changes the name.
        assert_ne!(
            cache_file_name("ab", "c", &[]),
            cache_file_name("a", "bc", &[])
        );
        assert_eq!(a.len(), 64 + ".json".len());
    }

    #[test]
    fn freshness_keeps_a_margin() {
        let entry = CacheEntry {
            id_token: "t".into(),
            refresh_token: None,
            expiry: 1_000,
            subject: None,
        };
        assert!(entry.is_fresh(900));
        assert!(entry.is_fresh(989));
        assert!(!entry.is_fresh(990));
        assert!(!entry.is_fresh(1_000));
        assert!(!entry.is_fresh(2_000));
    }

    #[test]
    fn stores_privately_and_reads_back() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache").join("oidc");
        let cache = TokenCache::new(&dir, "f.json");
        assert!(matches!(cache.load(), Loaded::Missing));
        let entry = CacheEntry {
            id_token: "secret-id-token".into(),
            refresh_token: Some("secret-refresh".into()),
            expiry: 42,
            subject: Some("alice".into()),
        };
        cache.store(&entry).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(cache.path()), 0o600);
        match cache.load() {
            Loaded::Entry(read) => assert_eq!(read, entry),
            other => panic!("{other:?}"),
        }
        let debug = format!("{entry:?}");
        assert!(!debug.contains("secret"), "{debug}");

        // An existing, looser directory is tightened.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        cache.store(&entry).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_corrupt_file_is_reported_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path(), "f.json");
        std::fs::write(cache.path(), "{\"id_token\": \"secret-abc\"").unwrap();
        match cache.load() {
            Loaded::Corrupt(reason) => assert!(!reason.contains("secret"), "{reason}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(cache.path(), "[1,2]").unwrap();
        assert!(matches!(cache.load(), Loaded::Corrupt(_)));
    }
}
