//! The key directory on disk (layout in the parent module's documentation).
//!
//! Files are numbered; the private key with the highest number signs. Every file is written
//! under a temporary name (created with its final mode, never briefly world-readable) and then
//! linked or renamed into place, so another process (a running kgate reloading its keys) sees a
//! key whole or not at all. Names that do not match `sa-NNNNNN.{key,pub}` are ignored.

use super::KeyError;
use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const PREFIX: &str = "sa-";
pub(crate) const PRIVATE_EXT: &str = "key";
pub(crate) const PUBLIC_EXT: &str = "pub";

/// One key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyFile {
    pub seq: u64,
    pub private: bool,
    pub path: PathBuf,
}

/// What the directory looked like: names, sizes, inodes and modification times of the key
/// files. Two equal fingerprints mean nothing was rotated or pruned in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<(String, u64, u64, i64, i64)>);

/// The key files of `dir`, highest number first and, for one number, the private key first.
pub(crate) fn list(dir: &Path) -> Result<Vec<KeyFile>, KeyError> {
    let read_err = |source| KeyError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        let Some((seq, private)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        files.push(KeyFile {
            seq,
            private,
            path: entry.path(),
        });
    }
    files.sort_by(|a, b| b.seq.cmp(&a.seq).then(b.private.cmp(&a.private)));
    Ok(files)
}

/// `sa-000012.key` → (12, true).
fn parse_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (digits, ext) = rest.split_once('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let private = match ext {
        PRIVATE_EXT => true,
        PUBLIC_EXT => false,
        _ => return None,
    };
    Some((digits.parse().ok()?, private))
}

pub(crate) fn file_name(seq: u64, ext: &str) -> String {
    format!("{PREFIX}{seq:06}.{ext}")
}

pub(crate) fn fingerprint(dir: &Path) -> Result<Fingerprint, KeyError> {
    let mut out = Vec::new();
    for file in list(dir)? {
        let meta = fs::metadata(&file.path).map_err(|source| KeyError::Read {
            path: file.path.clone(),
            source,
        })?;
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((
            name,
            meta.len(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
        ));
    }
    Ok(Fingerprint(out))
}

/// Creates `dir` (and parents) with mode 0700, as kgate's PKI directory.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| KeyError::Write {
            path: dir.to_owned(),
            source,
        })
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Writes a new private key as number `seq` or, when another process took that number in the
/// meantime, the next free one; never overwrites. Returns the number and path used.
pub(crate) fn publish_private(
    dir: &Path,
    mut seq: u64,
    contents: &[u8],
) -> Result<(u64, PathBuf), KeyError> {
    let tmp = write_temporary(dir, contents, 0o600)?;
    let result = loop {
        let path = dir.join(file_name(seq, PRIVATE_EXT));
        // A hard link fails when the target exists, where a rename would replace it.
        match fs::hard_link(&tmp, &path) {
            Ok(()) => break Ok((seq, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => seq += 1,
            Err(source) => break Err(KeyError::Write { path, source }),
        }
    };
    let _ = fs::remove_file(&tmp);
    result
}

/// Writes (or replaces) a public key file.
pub(crate) fn write_public(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = write_temporary(dir, contents, 0o644)?;
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        KeyError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

pub(crate) fn remove(path: &Path) -> Result<(), KeyError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(KeyError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

/// A file with a unique hidden name in `dir`, created with `mode` from the start and synced.
fn write_temporary(dir: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, KeyError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(".{PREFIX}{}-{n}.tmp", std::process::id()));
    let err = |source| KeyError::Write {
        path: path.clone(),
        source,
    };
    // A stale file of a crashed process with the same pid: remove it so `mode` applies.
    let _ = fs::remove_file(&path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .map_err(err)?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = fs::remove_file(&path);
        return Err(err(source));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_sort() {
        assert_eq!(parse_name("sa-000012.key"), Some((12, true)));
        assert_eq!(parse_name("sa-3.pub"), Some((3, false)));
        for bad in [
            "sa-.key",
            "sa-1x.key",
            "sa-1.pem",
            ".sa-1-2.tmp",
            "sa-1.key.tmp",
            "x",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
        assert_eq!(file_name(7, PUBLIC_EXT), "sa-000007.pub");
    }

    #[test]
    fn publish_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = publish_private(dir.path(), 1, b"one").unwrap();
        let (b, path) = publish_private(dir.path(), 1, b"two").unwrap();
        assert_eq!((a, b), (1, 2));
        assert_eq!(fs::read(path).unwrap(), b"two");
        assert_eq!(fs::read(dir.path().join("sa-000001.key")).unwrap(), b"one");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        let listed = list(dir.path()).unwrap();
        assert_eq!(listed.iter().map(|f| f.seq).collect::<Vec<_>>(), [2, 1]);
    }
}
