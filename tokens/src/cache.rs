//! The caches of verified tokens, so that a token seen before costs a hash and a few lookups
//! instead of a signature verification: [`KeyedCache`], the sharded keyed map both token
//! caches are made of, and [`TokenCache`], the ServiceAccount one (the OIDC one is in
//! `oidc::authenticator`).
//!
//! Threat model: a cache must never hold a token nor answer for a token it has not verified.
//! Entries are keyed by SipHash-1-3-128 of the token under a random per-process key: a keyed
//! PRF, so nobody who lacks the key can make another token land on a cached entry (a 2^-128
//! chance per try), and no token can be recovered from the cache. SipHash-1-3 is the variant
//! std's `HashMap` relies on against chosen inputs; the tag is never shown to a client, and
//! it costs half of SipHash-2-4 (about 260 ns against 500 ns for a 1.2 KB RS256 token) where
//! the whole cached path is budgeted at 1 µs. HMAC-SHA256, as kube-apiserver's token cache
//! uses, would cost about 860 ns alone here. Each cache re-checks a hit against what can
//! change; for ServiceAccount tokens: the expiry, that the verifying key is still a
//! verification key (pruning revokes), and that every object the token depends on still
//! satisfies the dependency (same UID, not deleted, a legacy token still in its Secret: see
//! `verify`); [`TokenCache::forget`] drops dependent entries at once on a watch delete.
//!
//! Bounded: [`DEFAULT_CAPACITY`] entries over 16 shards (locks are per shard). A full shard
//! first drops its stale entries, then an arbitrary one (keys are uniformly random, so the
//! map's first entry is a random pick).

use crate::authenticator::{ObjectKind, ObjectLookup};
use crate::keys::KeySet;
use crate::verify::{Dependency, Verified};
use kgate_core::UserInfo;
use siphasher::sip128::SipHasher13;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

/// How many verified tokens are kept by default.
pub const DEFAULT_CAPACITY: usize = 10_000;
const SHARDS: usize = 16;

type Shard<E> = HashMap<u128, Arc<E>, BuildHasherDefault<KeyHasher>>;

/// A bounded map from tokens' keyed hashes to entries, in 16 locked shards; see the module
/// documentation. Knows nothing of validity: its owner checks each hit and says which entries
/// are stale when a full shard needs room.
pub(crate) struct KeyedCache<E> {
    hasher: SipHasher13,
    shards: Box<[RwLock<Shard<E>>]>,
    per_shard: usize,
}

impl<E> fmt::Debug for KeyedCache<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_as("KeyedCache", f)
    }
}

impl<E> KeyedCache<E> {
    /// A cache of about `capacity` entries (0 disables caching); `what` names the tokens in
    /// the warning when there is no randomness for the key.
    pub fn new(capacity: usize, what: &str) -> Self {
        let mut key = [0u8; 16];
        // No randomness means no cache rather than a predictable key.
        let per_shard =
            match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key) {
                Ok(()) => capacity.div_ceil(SHARDS),
                Err(_) => {
                    tracing::warn!(
                        "no system randomness for the {what} cache key; caching disabled"
                    );
                    0
                }
            };
        Self {
            hasher: SipHasher13::new_with_key(&key),
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            per_shard,
        }
    }

    /// Debug output under the owner's name, without the hasher: its key is what keeps cache
    /// keys unforgeable.
    pub fn fmt_as(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }

    /// The cache key of a token.
    pub fn key(&self, token: &str) -> u128 {
        self.hasher.hash(token.as_bytes()).into()
    }

    fn shard(&self, key: u128) -> &RwLock<Shard<E>> {
        // The top bits: the map hashes with the low ones.
        &self.shards[(key >> 124) as usize % SHARDS]
    }

    /// The entry under `key`, valid or not: the caller checks it, outside the lock.
    pub fn get(&self, key: u128) -> Option<Arc<E>> {
        let shard = self.shard(key).read().unwrap_or_else(|e| e.into_inner());
        shard.get(&key).map(Arc::clone)
    }

    /// Stores `entry` under `key`. A full shard first drops the entries `is_stale` says are,
    /// then an arbitrary one.
    pub fn insert(&self, key: u128, entry: E, is_stale: impl Fn(&E) -> bool) {
        if self.per_shard == 0 {
            return;
        }
        let mut shard = self.shard(key).write().unwrap_or_else(|e| e.into_inner());
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, e| !is_stale(e));
            if shard.len() >= self.per_shard {
                if let Some(victim) = shard.keys().next().copied() {
                    shard.remove(&victim);
                }
            }
        }
        shard.insert(key, Arc::new(entry));
    }

    pub fn remove(&self, key: u128) {
        self.shard(key)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&self, mut keep: impl FnMut(&E) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, e| keep(e));
        }
    }

    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.write().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// How many entries fit (0 when caching is disabled).
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

/// One verified ServiceAccount token.
pub(crate) type Entry = Verified;

/// The cache of verified ServiceAccount tokens.
pub(crate) struct TokenCache {
    entries: KeyedCache<Entry>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.entries.fmt_as("TokenCache", f)
    }
}

impl TokenCache {
    /// A cache of about `capacity` entries (0 disables caching).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: KeyedCache::new(capacity, "token"),
        }
    }

    /// The cache key of a token.
    pub fn key(&self, token: &str) -> u128 {
        self.entries.key(token)
    }

    /// The user of a cached token, if it is cached and still valid at `now`; a cached entry no
    /// longer valid is dropped (the caller verifies again and reports why).
    pub fn get(
        &self,
        key: u128,
        now: i64,
        keys: &KeySet,
        lookup: &dyn ObjectLookup,
    ) -> Option<UserInfo> {
        let entry = self.entries.get(key)?;
        // Outside the lock: `lookup` is the caller's code.
        let valid = entry.valid_until.is_none_or(|until| now <= until)
            && entry.valid_from.is_none_or(|from| from <= now)
            && keys.has_kid(&entry.kid)
            && entry.deps.iter().all(|dep| dep.holds(lookup, now));
        if valid {
            return Some(entry.user.clone());
        }
        self.entries.remove(key);
        None
    }

    pub fn insert(&self, key: u128, entry: Entry, now: i64) {
        self.entries.insert(key, entry, |e| {
            e.valid_until.is_some_and(|until| now > until)
        });
    }

    /// Drops every entry that depends on this object.
    pub fn forget(&self, kind: ObjectKind, namespace: &str, name: &str) {
        let depends =
            |dep: &Dependency| dep.kind == kind && dep.name == name && dep.namespace == namespace;
        self.entries.retain(|e| !e.deps.iter().any(depends));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The map's hasher: keys are already uniformly random (a PRF output), so their low 64 bits
/// serve as the hash.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by u128 keys; fold anything else in to stay correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = i as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries are their expiry.
    fn stale_at(now: i64) -> impl Fn(&i64) -> bool {
        move |until| now > *until
    }

    #[test]
    fn keys_are_stable_and_each_cache_has_its_own_key() {
        let a = KeyedCache::<i64>::new(16, "test");
        let b = KeyedCache::<i64>::new(16, "test");
        assert_eq!(a.key("token"), a.key("token"));
        assert_ne!(a.key("token"), a.key("token2"));
        assert_ne!(a.key("token"), b.key("token"));
    }

    #[test]
    fn a_full_shard_drops_stale_entries_first_then_an_arbitrary_one() {
        // One entry per shard.
        let cache = KeyedCache::<i64>::new(SHARDS, "test");
        assert_eq!(cache.capacity(), SHARDS);
        let shard_of = |k: u128| (k >> 124) as usize % SHARDS;
        let stale = 1u128 << 124;
        let fresh = (1u128 << 124) | 1;
        let other = (1u128 << 124) | 2;
        assert_eq!(shard_of(stale), shard_of(fresh));
        cache.insert(stale, 10, stale_at(0));
        cache.insert(fresh, 100, stale_at(50));
        assert!(cache.get(stale).is_none(), "the stale entry went first");
        assert_eq!(cache.get(fresh).as_deref(), Some(&100));
        // Nothing stale: the only entry makes room.
        cache.insert(other, 100, stale_at(50));
        assert!(cache.get(fresh).is_none());
        assert_eq!(cache.get(other).as_deref(), Some(&100));
        // Replacing a key needs no room.
        cache.insert(other, 200, |_| panic!("no eviction"));
        assert_eq!(cache.get(other).as_deref(), Some(&200));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = KeyedCache::<i64>::new(0, "test");
        let key = cache.key("token");
        cache.insert(key, 1, stale_at(0));
        assert!(cache.get(key).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn remove_retain_and_clear() {
        let cache = KeyedCache::<i64>::new(100, "test");
        for (i, token) in ["a", "b", "c", "d"].iter().enumerate() {
            cache.insert(cache.key(token), i as i64, stale_at(0));
        }
        cache.remove(cache.key("a"));
        assert_eq!(cache.len(), 3);
        cache.retain(|v| v % 2 == 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(cache.key("b")).is_some());
        assert!(cache.get(cache.key("c")).is_none());
        cache.clear();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn debug_shows_no_hasher() {
        let cache = TokenCache::new(10);
        let shown = format!("{cache:?}");
        assert!(shown.starts_with("TokenCache"), "{shown}");
        assert!(shown.contains("capacity: 16"), "{shown}");
        assert!(!shown.contains("hasher"), "{shown}");
        assert!(!format!("{:?}", KeyedCache::<i64>::new(1, "test")).contains("hasher"));
    }
}
