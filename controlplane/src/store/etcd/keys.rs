//! Store keys and etcd keys.
//!
//! The API server's keys are `/registry/<resource>/...`, exactly kube-apiserver's. On etcd they
//! live under the configured prefix instead of `/registry/` (the default prefix `/registry/`
//! keeps them identical, so kube tooling such as `etcdctl get --prefix /registry/` sees the
//! same layout). Keys outside `/registry/` (tests use `/crud/a`) go under the prefix too, minus
//! their leading `/`, so nothing of ours is ever written outside the prefix.
//!
//! That mapping is not one-to-one (`/crud/a` and `/registry/crud/a` are the same etcd key), so
//! a key read back from etcd gets the [`Root`] of the request that asked for it: a range or
//! watch under `/registry/...` answers `/registry/...` keys. Every caller of the API server
//! stays under `/registry/`, and so never sees the difference.

use crate::store::StoreError;

/// The Store-side root that the etcd prefix stands for.
const REGISTRY: &str = "/registry/";

/// Which root a request's keys have, so the keys read back get the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    /// `/registry/...`
    Registry,
    /// Any other key starting with `/`.
    Slash,
    /// A key without a leading `/`.
    Bare,
}

impl Root {
    /// The root of a Store key or prefix, and the rest of it after the root.
    pub(super) fn split(key: &str) -> (Root, &str) {
        if let Some(rest) = key.strip_prefix(REGISTRY) {
            (Root::Registry, rest)
        } else if let Some(rest) = key.strip_prefix('/') {
            (Root::Slash, rest)
        } else {
            (Root::Bare, key)
        }
    }

    pub(super) fn of(key: &str) -> Root {
        Root::split(key).0
    }

    fn as_str(self) -> &'static str {
        match self {
            Root::Registry => REGISTRY,
            Root::Slash => "/",
            Root::Bare => "",
        }
    }
}

/// The translation between Store keys and etcd keys under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// The etcd prefix, always ending with `/` so that a prefix of `/kgate` cannot run into a
    /// neighbour's `/kgate-other/...` keys.
    prefix: String,
}

impl Keys {
    pub(super) fn new(prefix: &str) -> Keys {
        let mut prefix = prefix.to_owned();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Keys { prefix }
    }

    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The etcd key of a Store key (or of a Store prefix: the mapping keeps prefixes).
    pub(super) fn etcd_key(&self, key: &str) -> Vec<u8> {
        let (_, rest) = Root::split(key);
        let mut etcd = Vec::with_capacity(self.prefix.len() + rest.len());
        etcd.extend_from_slice(self.prefix.as_bytes());
        etcd.extend_from_slice(rest.as_bytes());
        etcd
    }

    /// The Store key of an etcd key read for a request with keys under `root`.
    pub(super) fn store_key(&self, root: Root, key: &[u8]) -> Result<String, StoreError> {
        let rest = key
            .strip_prefix(self.prefix.as_bytes())
            .and_then(|rest| std::str::from_utf8(rest).ok())
            .ok_or_else(|| {
                // Only reachable if etcd answers outside the asked range or someone else wrote
                // non-UTF-8 keys under our prefix. Key names are not secret; values are.
                StoreError::Corrupt(format!(
                    "etcd returned the key {:?}, which is not a UTF-8 key under {}",
                    String::from_utf8_lossy(key),
                    self.prefix
                ))
            })?;
        Ok(format!("{}{rest}", root.as_str()))
    }
}

/// The end of etcd's range of keys starting with `prefix` (exclusive), as etcd's own
/// `GetPrefixRangeEnd`: the prefix with its last byte below 0xff incremented and the rest cut.
/// `[0]` (etcd's "to the end of the keyspace") for a prefix of only 0xff bytes.
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn registry_keys_move_under_the_prefix_and_back() {
        let keys = Keys::new("/kgate/");
        assert_eq!(keys.etcd_key("/registry/pods/ns/p"), b"/kgate/pods/ns/p");
        assert_eq!(
            keys.store_key(Root::Registry, b"/kgate/pods/ns/p").unwrap(),
            "/registry/pods/ns/p"
        );
        // The default prefix keeps kube-apiserver's layout byte for byte.
        let keys = Keys::new("/registry/");
        assert_eq!(keys.etcd_key("/registry/pods/ns/p"), b"/registry/pods/ns/p");
    }

    #[test]
    fn other_keys_go_under_the_prefix_without_their_slash() {
        let keys = Keys::new("/t/");
        assert_eq!(keys.etcd_key("/crud/a"), b"/t/crud/a");
        assert_eq!(keys.etcd_key("bare"), b"/t/bare");
        assert_eq!(
            keys.store_key(Root::Slash, b"/t/crud/a").unwrap(),
            "/crud/a"
        );
        assert_eq!(keys.store_key(Root::Bare, b"/t/bare").unwrap(), "bare");
        assert_eq!(Root::of("/registry/x"), Root::Registry);
        assert_eq!(Root::of("/registry"), Root::Slash);
    }

    #[test]
    fn a_prefix_without_a_trailing_slash_gets_one() {
        let keys = Keys::new("/kgate");
        assert_eq!(keys.prefix(), "/kgate/");
        assert_eq!(keys.etcd_key("/registry/a"), b"/kgate/a");
    }

    #[test]
    fn keys_outside_the_prefix_are_refused() {
        let keys = Keys::new("/t/");
        let error = keys.store_key(Root::Slash, b"/u/x").unwrap_err();
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        assert!(keys.store_key(Root::Slash, b"/t/\xff").is_err());
    }

    #[test]
    fn prefix_end_is_etcds() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"foo\xff"), b"fop");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
