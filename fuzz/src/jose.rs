//! ES256 signing for the JWT targets' "signed" inputs: the fuzzer's header and claims are
//! signed with a key the verifier trusts, so the checks after the signature (claims decoding,
//! times, audiences, bindings, claim mappings) see fuzzed claims too. ECDSA signatures are
//! random, but whether one verifies is not, so a run stays reproducible.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};

/// A P-256 key that signs compact JWS.
pub struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer {
    /// From a PKCS#8 document (DER).
    pub fn from_pkcs8(der: &[u8]) -> Self {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .unwrap_or_else(|e| panic!("P-256 PKCS#8 key: {e}"));
        Self { pair, rng }
    }

    /// A new key.
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|e| panic!("P-256 key generation: {e}"));
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// `base64url(header).base64url(claims).base64url(signature)`, whatever the bytes are.
    pub fn token(&self, header: &[u8], claims: &[u8]) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .unwrap_or_else(|e| panic!("ES256 signing: {e}"));
        format!("{input}.{}", b64(signature.as_ref()))
    }

    /// The public key as a JWK with this kid.
    pub fn jwk(&self, kid: &str) -> serde_json::Value {
        let point = self.pair.public_key().as_ref();
        serde_json::json!({
            "kty": "EC",
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "kid": kid,
            "x": b64(&point[1..33]),
            "y": b64(&point[33..65]),
        })
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A "signed" input: `header \n claims`, or only claims (no newline) under `default_header`.
pub fn split_signed<'a>(data: &'a [u8], default_header: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(newline) => (&data[..newline], &data[newline + 1..]),
        None => (default_header, data),
    }
}
