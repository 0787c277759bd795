//! The `--authorization-policy-file`: read and parsed once at start (a bad file stops kgate with
//! the file and the problem named), then followed (see [`crate::watched_file`]) and swapped in
//! whole when its content changes. A bad edit keeps the last good policy, says so in a warning,
//! and is tried again at the next change.

use crate::error::error_chain;
use crate::watched_file::{ReadError, WatchedFile};
use kgate_authz::{Policy, PolicyError, PolicyHandle};
use std::path::{Path, PathBuf};
use thiserror::Error;
use tokio::task::JoinHandle;

const WHAT: &str = "authorization policy file";

/// Why the policy file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PolicyFileError {
    /// The file cannot be read, or is too large to be a policy.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file is not a valid `AuthorizationPolicy` (the source says where and why).
    #[error("the authorization policy file {} is invalid", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: PolicyError,
    },
}

/// A loaded policy: the handle the authorizers share, and the file it follows.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub handle: PolicyHandle,
    file: WatchedFile,
}

/// Reads and parses the file; at start, an error stops kgate.
pub fn load(path: &Path) -> Result<LoadedPolicy, PolicyFileError> {
    let (file, content) = WatchedFile::open(WHAT, path)?;
    let policy = parse(path, &content)?;
    tracing::info!(
        path = %path.display(),
        deny_lines = policy.deny_lines(),
        allow_lines = policy.allow_lines(),
        "authorization policy loaded"
    );
    Ok(LoadedPolicy {
        handle: PolicyHandle::new(policy),
        file,
    })
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

/// Follows the file and swaps each changed, valid policy in.
pub fn spawn(loaded: LoadedPolicy) -> JoinHandle<()> {
    let LoadedPolicy { handle, file } = loaded;
    let path = file.path().to_owned();
    file.spawn(move |content| {
        let (handle, path) = (handle.clone(), path.clone());
        async move { apply(&path, &handle, content).await }
    })
}

async fn apply(path: &Path, handle: &PolicyHandle, content: Vec<u8>) {
    // Parsing builds casbin enforcers: blocking work, off the runtime's threads.
    let parsed = {
        let path = path.to_owned();
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
            error = %error_chain(&error),
            "the authorization policy file is invalid; keeping the last good policy until the file changes again"
        ),
        Err(join) => tracing::error!(error = %join, "the policy reload task failed"),
    }
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
        let text = error_chain(&error);
        assert!(
            text.starts_with(&format!(
                "the authorization policy file {} is invalid: line 4: ",
                path.display()
            )),
            "{text}"
        );
        let missing = load(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(
            matches!(missing, PolicyFileError::Read(ReadError::Io { .. })),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn a_changed_file_is_swapped_in_and_a_bad_one_keeps_the_last_good_policy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, DENY_DELETE).unwrap();
        let handle = load(&path).unwrap().handle;
        assert!(denies(&handle, "delete"));

        apply(&path, &handle, DENY_GET.into()).await;
        assert!(denies(&handle, "get") && !denies(&handle, "delete"));

        apply(&path, &handle, b"policies: [".to_vec()).await;
        assert!(denies(&handle, "get"), "the last good policy stays");
    }
}
