//! The `--authorization-policy-file`: read and parsed once at start (a bad file stops kgate with
//! the file and the problem named), then polled every second and swapped in whole when its
//! content changes. A bad edit keeps the last good policy, says so in a warning, and is tried
//! again at the next change.
//!
//! Why polling the content and not `notify` (inotify): operators replace this file in every way
//! there is (editors that write a new file and rename it over the old one, `kubectl` ConfigMap
//! mounts that swap a `..data` symlink, NFS and bind mounts where inotify sees nothing). A
//! watch on the file misses some of those and a watch on the folder needs its own filtering and
//! debouncing; reading a small file once a second sees them all, and comparing the bytes (not
//! mtime and size) also sees an edit that keeps the size within one mtime tick. A second of
//! delay is fine for a policy change.

use kgate_authz::{Policy, PolicyError, PolicyHandle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinHandle;

/// How often the file is read for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A policy file larger than this is refused: it is certainly a mistake (the wrong file).
const MAX_BYTES: usize = 4 * 1024 * 1024;

/// Why the policy file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The file cannot be read.
    #[error("cannot read the authorization policy file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_BYTES`].
    #[error("the authorization policy file {} is larger than {MAX_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    /// The file is not a valid `AuthorizationPolicy` (the source says where and why).
    #[error("the authorization policy file {} is invalid", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
}

/// A loaded policy: the handle the authorizers share, and the bytes it came from.
#[derive(Debug)]
pub(crate) struct LoadedPolicy {
    pub handle: PolicyHandle,
    path: PathBuf,
    content: Vec<u8>,
}

/// Reads and parses the file; at start, an error stops kgate.
pub(crate) fn load(path: &Path) -> Result<LoadedPolicy, PolicyFileError> {
    let content = read(path)?;
    let policy = parse(path, &content)?;
    tracing::info!(
        path = %path.display(),
        deny_lines = policy.deny_lines(),
        allow_lines = policy.allow_lines(),
        "authorization policy loaded"
    );
    Ok(LoadedPolicy {
        handle: PolicyHandle::new(policy),
        path: path.to_owned(),
        content,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, PolicyFileError> {
    checked(path, std::fs::read(path))
}

async fn read_async(path: &Path) -> Result<Vec<u8>, PolicyFileError> {
    checked(path, tokio::fs::read(path).await)
}

fn checked(path: &Path, read: std::io::Result<Vec<u8>>) -> Result<Vec<u8>, PolicyFileError> {
    let content = read.map_err(|source| PolicyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    if content.len() > MAX_BYTES {
        return Err(PolicyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(content)
}

fn parse(path: &Path, content: &[u8]) -> Result<Policy, PolicyFileError> {
    let invalid = |source| PolicyFileError::Invalid {
        path: path.to_owned(),
        source,
    };
    // A file that is not UTF-8 is not YAML; let the YAML parser say so in its words.
    let text = String::from_utf8_lossy(content);
    Policy::parse(path.display().to_string(), &text).map_err(invalid)
}

/// What the last poll saw, so that one bad state is reported once, not every second.
#[derive(PartialEq, Eq)]
enum Seen {
    Content(Vec<u8>),
    Unreadable,
}

/// Polls the file every [`POLL_INTERVAL`] and swaps a changed, valid policy in.
pub(crate) fn spawn(loaded: LoadedPolicy) -> JoinHandle<()> {
    let LoadedPolicy {
        handle,
        path,
        content,
    } = loaded;
    tokio::spawn(async move {
        let mut seen = Seen::Content(content);
        let mut ticks = tokio::time::interval(POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            seen = poll_once(&path, &handle, seen).await;
        }
    })
}

async fn poll_once(path: &Path, handle: &PolicyHandle, seen: Seen) -> Seen {
    let content = match read_async(path).await {
        Ok(content) => content,
        Err(error) => {
            if seen != Seen::Unreadable {
                tracing::warn!(
                    path = %path.display(),
                    error = %chain(&error),
                    "cannot read the authorization policy file; keeping the last good policy"
                );
            }
            return Seen::Unreadable;
        }
    };
    if matches!(&seen, Seen::Content(old) if *old == content) {
        return seen;
    }
    // Parsing builds casbin enforcers: blocking work, off the runtime's threads.
    let parsed = {
        let (path, content) = (path.to_owned(), content.clone());
        tokio::task::spawn_blocking(move || parse(&path, &content)).await
    };
    match parsed {
        Ok(Ok(policy)) => {
            tracing::info!(
                path = %path.display(),
                deny_lines = policy.deny_lines(),
                allow_lines = policy.allow_lines(),
                "authorization policy reloaded"
            );
            handle.replace(policy);
        }
        Ok(Err(error)) => tracing::warn!(
            path = %path.display(),
            error = %chain(&error),
            "the authorization policy file is invalid; keeping the last good policy until the file changes again"
        ),
        Err(join) => tracing::error!(error = %join, "the policy reload task failed"),
    }
    Seen::Content(content)
}

/// An error and its causes on one line, for a log field.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
// Tests may unwrap: a panic there is a failing test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DENY_DELETE: &str = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  - p, deny, *, *, delete, *, *, *, *, *\n";
    const DENY_GET: &str = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  - p, deny, *, *, get, *, *, *, *, *\n";

    fn denies(handle: &PolicyHandle, verb: &str) -> bool {
        let a =
            kgate_core::Attributes::resource(kgate_core::UserInfo::new("u"), verb, "", "pods", "x");
        matches!(
            handle.current().deny_decision(&a),
            kgate_core::Decision::Deny { .. }
        )
    }

    #[test]
    fn a_bad_file_at_start_names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(
            &path,
            DENY_DELETE.replace("delete, *, *, *, *, *", "delete"),
        )
        .unwrap();
        let error = load(&path).unwrap_err();
        let text = chain(&error);
        assert!(
            text.starts_with(&format!(
                "the authorization policy file {} is invalid: line 4: ",
                path.display()
            )),
            "{text}"
        );
        let missing = load(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(
            matches!(missing, PolicyFileError::Read { .. }),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn a_changed_file_is_swapped_in_and_a_bad_one_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, DENY_DELETE).unwrap();
        let loaded = load(&path).unwrap();
        let handle = loaded.handle.clone();
        let seen = Seen::Content(loaded.content);
        assert!(denies(&handle, "delete"));

        std::fs::write(&path, DENY_GET).unwrap();
        let seen = poll_once(&path, &handle, seen).await;
        assert!(denies(&handle, "get") && !denies(&handle, "delete"));

        std::fs::write(&path, "policies: [").unwrap();
        let seen = poll_once(&path, &handle, seen).await;
        assert!(denies(&handle, "get"), "the last good policy stays");
        assert!(
            seen == Seen::Content(b"policies: [".to_vec()),
            "a bad file is remembered, not retried every second"
        );

        std::fs::remove_file(&path).unwrap();
        let seen = poll_once(&path, &handle, seen).await;
        assert!(seen == Seen::Unreadable && denies(&handle, "get"));

        std::fs::write(&path, DENY_DELETE).unwrap();
        poll_once(&path, &handle, seen).await;
        assert!(denies(&handle, "delete") && !denies(&handle, "get"));
    }
}
