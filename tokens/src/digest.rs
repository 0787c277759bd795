//! Keyed digests of tokens, so that "does this Secret still hold the token presented?" is
//! answered without keeping Secret data: a legacy token's Secret is remembered as the digest of
//! its `data.token` (see `ObjectLookup::token_secret`), and the token presented is digested the
//! same way and compared.
//!
//! Threat model: the digest is SipHash-1-3-128 under a random per-process key (the same PRF as
//! the token caches, see `cache`), so it reveals nothing of the token, cannot be computed by
//! anyone without the key, and a token made to collide with another would still need a valid
//! signature of kgate's keys to reach the comparison.

use siphasher::sip128::SipHasher13;
use std::fmt;

/// The keyed digest of one token. `Debug` shows nothing of it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(u128);

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Makes [`TokenDigest`]s under a key of its own, random per instance.
#[derive(Clone)]
pub struct TokenDigester {
    hasher: SipHasher13,
}

impl fmt::Debug for TokenDigester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigester(..)")
    }
}

impl Default for TokenDigester {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenDigester {
    /// A digester with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 16];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key).is_err() {
            // Still a sound comparison (only signed tokens reach it); only the digests are
            // guessable by whoever reads them from memory.
            tracing::warn!("no system randomness for the token digest key; digests are unkeyed");
        }
        Self {
            hasher: SipHasher13::new_with_key(&key),
        }
    }

    /// The digest of `token` (the token's bytes, as presented or as stored in a Secret).
    pub fn digest(&self, token: &[u8]) -> TokenDigest {
        TokenDigest(self.hasher.hash(token).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_per_key_and_show_nothing() {
        let (a, b) = (TokenDigester::new(), TokenDigester::new());
        assert_eq!(a.digest(b"token"), a.digest(b"token"));
        assert_ne!(a.digest(b"token"), a.digest(b"token2"));
        assert_ne!(a.digest(b"token"), b.digest(b"token"));
        assert_eq!(format!("{:?}", a.digest(b"token")), "TokenDigest(..)");
        assert_eq!(format!("{a:?}"), "TokenDigester(..)");
    }
}
