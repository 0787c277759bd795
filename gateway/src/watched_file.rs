//! Configuration files that kgate follows while running (the authorization policy, the
//! authentication configuration): read once at start, then polled every second and handed to
//! their owner whenever the bytes change. Reporting a bad new version and keeping the last good
//! one is the owner's job; an unreadable file is reported here, once per outage.
//!
//! Why polling the content and not `notify` (inotify): operators replace these files in every
//! way there is (editors that write a new file and rename it over the old one, ConfigMap mounts
//! that swap a `..data` symlink, NFS and bind mounts where inotify sees nothing). A watch on
//! the file misses some of those and a watch on the folder needs its own filtering and
//! debouncing; reading a small file once a second sees them all, and comparing the bytes (not
//! mtime and size) also sees an edit that keeps the size within one mtime tick. A second of
//! delay is fine for a policy or an issuer list.

use crate::error::error_chain;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinHandle;

/// How often a followed file is read for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A configuration file larger than this is refused: it is certainly a mistake (the wrong file).
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// Why a followed file cannot be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("cannot read the {what} {}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} {} is larger than {MAX_BYTES} bytes", path.display())]
    TooLarge { what: &'static str, path: PathBuf },
}

/// A file followed for changes; `what` names it in messages ("authorization policy file").
#[derive(Debug)]
pub(crate) struct WatchedFile {
    what: &'static str,
    path: PathBuf,
    seen: Seen,
}

/// What the last poll saw, so that one bad state is reported once, not every second.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Content(Vec<u8>),
    Unreadable,
}

impl WatchedFile {
    /// Reads the file for the first time; at start, an error stops kgate.
    pub fn open(what: &'static str, path: &Path) -> Result<(Self, Vec<u8>), ReadError> {
        let content = checked(what, path, std::fs::read(path))?;
        let file = Self {
            what,
            path: path.to_owned(),
            seen: Seen::Content(content.clone()),
        };
        Ok((file, content))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Polls every [`POLL_INTERVAL`] and calls `on_change` with each new content.
    pub fn spawn<F, Fut>(mut self, mut on_change: F) -> JoinHandle<()>
    where
        F: FnMut(Vec<u8>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if let Some(content) = self.poll().await {
                    on_change(content).await;
                }
            }
        })
    }

    /// The new content if it changed since the last poll.
    async fn poll(&mut self) -> Option<Vec<u8>> {
        match checked(self.what, &self.path, tokio::fs::read(&self.path).await) {
            Err(error) => {
                if self.seen != Seen::Unreadable {
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %error_chain(&error),
                        "cannot read the {}; keeping the last good version", self.what
                    );
                }
                self.seen = Seen::Unreadable;
                None
            }
            Ok(content) => {
                if matches!(&self.seen, Seen::Content(old) if *old == content) {
                    return None;
                }
                self.seen = Seen::Content(content.clone());
                Some(content)
            }
        }
    }
}

fn checked(
    what: &'static str,
    path: &Path,
    read: std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, ReadError> {
    let content = read.map_err(|source| ReadError::Io {
        what,
        path: path.to_owned(),
        source,
    })?;
    if content.len() > MAX_BYTES {
        return Err(ReadError::TooLarge {
            what,
            path: path.to_owned(),
        });
    }
    Ok(content)
}

#[cfg(test)]
// Tests may unwrap: a panic there is a failing test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_change_is_seen_once_and_an_outage_is_survived() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "a").unwrap();
        let (mut file, first) = WatchedFile::open("test file", &path).unwrap();
        assert_eq!(first, b"a");
        assert_eq!(file.poll().await, None);
        std::fs::write(&path, "b").unwrap();
        assert_eq!(file.poll().await.as_deref(), Some(&b"b"[..]));
        assert_eq!(file.poll().await, None);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.poll().await, None);
        std::fs::write(&path, "b").unwrap();
        // Back after an outage: handed over again, the owner decides whether it changed.
        assert_eq!(file.poll().await.as_deref(), Some(&b"b"[..]));
    }

    #[test]
    fn missing_and_oversized_files_are_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.yaml");
        let error = WatchedFile::open("test file", &path).unwrap_err();
        assert!(error.to_string().starts_with("cannot read the test file"));
        std::fs::write(&path, vec![b'#'; MAX_BYTES + 1]).unwrap();
        let error = WatchedFile::open("test file", &path).unwrap_err();
        assert!(error.to_string().contains("is larger than"), "{error}");
    }
}
