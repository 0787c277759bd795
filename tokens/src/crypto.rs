//! The cryptography behind `jsonwebtoken`: a [`CryptoProvider`] backed by `ring`, the library
//! rustls already uses in kgate, so one audited, constant-time implementation signs and verifies
//! everything and no second crypto stack (RustCrypto's `rsa` signer, aws-lc) is linked for it.
//!
//! Signing: only the two algorithms kgate signs with, RS256 (RSASSA-PKCS1-v1_5 with SHA-256, keys
//! of 2048 to 8192 bits) and ES256 (ECDSA P-256 with SHA-256, fixed-size signatures).
//! Verifying: those and the other asymmetric algorithms OpenID providers use (RS384, RS512,
//! PS256, PS384, PS512, ES384), for OIDC ID tokens. HMAC, `none` and EdDSA are refused by
//! construction, so no header can select one (and the OIDC verifier further restricts each
//! token to its key's type and its issuer's algorithms).
//!
//! Key formats follow `jsonwebtoken`'s conventions: an RSA [`EncodingKey`] holds PKCS#1 DER, an
//! EC one PKCS#8 DER; an RSA [`DecodingKey`] holds the modulus and exponent, an EC one the
//! uncompressed point.
//!
//! `jsonwebtoken` takes its provider from a process-wide slot; [`install`] fills it once. Every
//! path into `jsonwebtoken` goes through a [`crate::KeySet`], whose constructors call [`install`].
//! The issuer does not go through the slot: each signing key is parsed once into a [`KeySigner`]
//! when its key set is loaded, and tokens are made by [`encode`] with it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature as sig;
use ring::signature::KeyPair as _;
use serde::Serialize;
use std::fmt;
use std::sync::Once;

/// The provider; see the module documentation.
pub(crate) static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components_from_private_key,
        rsa_pub_components_from_public_key: |_| {
            Err(ErrorKind::Provider("RSA public key parsing is not provided".into()).into())
        },
        ec_pub_components_from_private_key: ec_components_from_private_key,
        ed_pub_components_from_private_key: |_, _| Err(ErrorKind::UnsupportedAlgorithm.into()),
        compute_digest,
    },
};

/// Makes [`RING_PROVIDER`] `jsonwebtoken`'s provider for this process. Idempotent. If another
/// provider was installed first (another crate's choice), that one stays: any complete provider
/// verifies and signs RS256/ES256 with the same key formats.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if RING_PROVIDER.install_default().is_err() {
            tracing::debug!("a jsonwebtoken crypto provider was already installed; keeping it");
        }
    });
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    ring_signer(algorithm, key).map(|signer| signer as Box<dyn JwtSigner>)
}

/// [`RING_PROVIDER`]'s signer, `Send + Sync` so that [`KeySigner`] can keep one.
fn ring_signer(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> Result<Box<dyn JwtSigner + Send + Sync>, Error> {
    match algorithm {
        Algorithm::RS256 if key.family() == AlgorithmFamily::Rsa => {
            // Parsed here to fail at construction rather than at signing.
            let pair = sig::RsaKeyPair::from_der(key.as_bytes())
                .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
            Ok(Box::new(Rs256Signer(pair)))
        }
        Algorithm::ES256 if key.family() == AlgorithmFamily::Ec => {
            let rng = SystemRandom::new();
            let pair = sig::EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &rng,
            )
            .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
            Ok(Box::new(Es256Signer { pair, rng }))
        }
        Algorithm::RS256 | Algorithm::ES256 => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::UnsupportedAlgorithm.into()),
    }
}

/// A private key parsed for signing once, when its key set is loaded, and reused for every
/// token it signs: `jsonwebtoken::encode` would parse the key again for each token (for RSA,
/// a costly validation). `Debug` shows the algorithm only, never key material.
pub(crate) struct KeySigner(Box<dyn JwtSigner + Send + Sync>);

impl KeySigner {
    /// The signer [`RING_PROVIDER`] would make for `key`, with the same errors.
    pub(crate) fn new(algorithm: Algorithm, key: &EncodingKey) -> Result<Self, Error> {
        ring_signer(&algorithm, key).map(Self)
    }
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("algorithm", &self.0.algorithm())
            .finish_non_exhaustive()
    }
}

/// `jsonwebtoken::encode` with a [`KeySigner`] made beforehand: the same checks, the same
/// token (`base64url(header).base64url(claims).base64url(signature)`, JSON by `serde_json`).
pub(crate) fn encode<T: Serialize>(
    header: &Header,
    claims: &T,
    signer: &KeySigner,
) -> Result<String, Error> {
    if signer.0.algorithm() != header.alg {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
    let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?);
    let message = format!("{header}.{claims}");
    let signature = URL_SAFE_NO_PAD.encode(signer.0.try_sign(message.as_bytes())?);
    Ok(format!("{message}.{signature}"))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    let public_key = match (
        rsa_parameters(*algorithm),
        ecdsa_algorithm(*algorithm),
        key.kind(),
    ) {
        (Some(params), _, DecodingKeyKind::RsaModulusExponent { n, e }) => PublicKey::Rsa {
            params,
            n: n.clone(),
            e: e.clone(),
        },
        (_, Some(ecdsa), DecodingKeyKind::SecretOrDer(point))
            if key.family() == AlgorithmFamily::Ec =>
        {
            PublicKey::Ec {
                ecdsa,
                point: point.clone(),
            }
        }
        (None, None, _) => return Err(ErrorKind::UnsupportedAlgorithm.into()),
        _ => return Err(ErrorKind::InvalidKeyFormat.into()),
    };
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        public_key,
    }))
}

/// RSA verification parameters: PKCS#1 v1.5 and PSS, keys of 2048 to 8192 bits.
fn rsa_parameters(algorithm: Algorithm) -> Option<&'static sig::RsaParameters> {
    Some(match algorithm {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

/// ECDSA with the fixed-size (JWS) signature encoding; P-521 (ES512) is not in ring.
fn ecdsa_algorithm(algorithm: Algorithm) -> Option<&'static sig::EcdsaVerificationAlgorithm> {
    Some(match algorithm {
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        _ => return None,
    })
}

struct Rs256Signer(sig::RsaKeyPair);

impl Signer<Vec<u8>> for Rs256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&sig::RSA_PKCS1_SHA256, &SystemRandom::new(), msg, &mut out)
            .map_err(|_| signature::Error::new())?;
        Ok(out)
    }
}

impl JwtSigner for Rs256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

struct Es256Signer {
    pair: sig::EcdsaKeyPair,
    rng: SystemRandom,
}

impl Signer<Vec<u8>> for Es256Signer {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let signature = self
            .pair
            .sign(&self.rng, msg)
            .map_err(|_| signature::Error::new())?;
        Ok(signature.as_ref().to_vec())
    }
}

impl JwtSigner for Es256Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

enum PublicKey {
    /// Modulus and exponent, big-endian.
    Rsa {
        params: &'static sig::RsaParameters,
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point.
    Ec {
        ecdsa: &'static sig::EcdsaVerificationAlgorithm,
        point: Vec<u8>,
    },
}

/// Verifies every algorithm of [`rsa_parameters`] and [`ecdsa_algorithm`].
struct RingVerifier {
    algorithm: Algorithm,
    public_key: PublicKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        match &self.public_key {
            PublicKey::Rsa { params, n, e } => {
                sig::RsaPublicKeyComponents { n, e }.verify(params, msg, signature)
            }
            PublicKey::Ec { ecdsa, point } => {
                sig::UnparsedPublicKey::new(*ecdsa, point).verify(msg, signature)
            }
        }
        .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn rsa_components_from_private_key(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let pair =
        sig::RsaKeyPair::from_der(der).map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
    let components = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((components.n, components.e))
}

fn ec_components_from_private_key(
    der: &[u8],
    algorithm: Algorithm,
) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>), Error> {
    if algorithm != Algorithm::ES256 {
        return Err(ErrorKind::UnsupportedAlgorithm.into());
    }
    let pair = sig::EcdsaKeyPair::from_pkcs8(
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
        der,
        &SystemRandom::new(),
    )
    .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    // An uncompressed point: 0x04, x (32 bytes), y (32 bytes).
    match pair.public_key().as_ref() {
        [4, rest @ ..] if rest.len() == 64 => {
            let (x, y) = rest.split_at(32);
            Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
        }
        _ => Err(ErrorKind::InvalidEcdsaKey.into()),
    }
}

fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>, Error> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_only_rs256_and_es256_and_verifies_no_symmetric_algorithm() {
        let secret = EncodingKey::from_secret(b"public key bytes");
        let verify_secret = DecodingKey::from_secret(b"public key bytes");
        let rsa_public = DecodingKey::from_rsa_raw_components(&[0xc5; 256], &[1, 0, 1]);
        let ec_public = DecodingKey::from_ec_der(&[4; 65]);
        for algorithm in [
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::PS256,
            Algorithm::RS384,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ] {
            assert!(new_signer(&algorithm, &secret).is_err(), "{algorithm:?}");
            assert!(
                new_verifier(&algorithm, &verify_secret).is_err(),
                "{algorithm:?}"
            );
        }
        for algorithm in [Algorithm::HS256, Algorithm::HS512, Algorithm::EdDSA] {
            assert!(
                new_verifier(&algorithm, &rsa_public).is_err(),
                "{algorithm:?}"
            );
            assert!(
                new_verifier(&algorithm, &ec_public).is_err(),
                "{algorithm:?}"
            );
        }
        // The algorithm must fit the key's type.
        for algorithm in [Algorithm::RS256, Algorithm::PS512] {
            assert!(
                new_verifier(&algorithm, &rsa_public).is_ok(),
                "{algorithm:?}"
            );
            assert!(
                new_verifier(&algorithm, &ec_public).is_err(),
                "{algorithm:?}"
            );
        }
        for algorithm in [Algorithm::ES256, Algorithm::ES384] {
            assert!(
                new_verifier(&algorithm, &ec_public).is_ok(),
                "{algorithm:?}"
            );
            assert!(
                new_verifier(&algorithm, &rsa_public).is_err(),
                "{algorithm:?}"
            );
        }
        // An HMAC secret is no RSA or EC key either.
        assert!(new_signer(&Algorithm::RS256, &secret).is_err());
        assert!(new_verifier(&Algorithm::RS256, &verify_secret).is_err());
        assert!(new_verifier(&Algorithm::ES256, &verify_secret).is_err());
    }

    #[test]
    fn es384_verifies_through_jsonwebtoken() {
        install();
        let rng = SystemRandom::new();
        let alg = &sig::ECDSA_P384_SHA384_FIXED_SIGNING;
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let signature = pair.sign(&rng, b"message").unwrap();
        let signature = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            signature.as_ref(),
        );
        let public = DecodingKey::from_ec_der(pair.public_key().as_ref());
        let verify = |msg: &[u8], alg| jsonwebtoken::crypto::verify(&signature, msg, &public, alg);
        assert!(verify(b"message", Algorithm::ES384).unwrap());
        assert!(!verify(b"massage", Algorithm::ES384).unwrap());
        // The same point read as P-256 is no key.
        assert!(!verify(b"message", Algorithm::ES256).unwrap_or(false));
    }

    #[test]
    fn es256_signs_and_verifies_through_jsonwebtoken() {
        install();
        let rng = SystemRandom::new();
        let pkcs8 =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let signature = jsonwebtoken::crypto::sign(
            b"message",
            &EncodingKey::from_ec_der(pkcs8.as_ref()),
            Algorithm::ES256,
        )
        .unwrap();
        let public = DecodingKey::from_ec_der(pair.public_key().as_ref());
        assert!(
            jsonwebtoken::crypto::verify(&signature, b"message", &public, Algorithm::ES256)
                .unwrap()
        );
        assert!(
            !jsonwebtoken::crypto::verify(&signature, b"massage", &public, Algorithm::ES256)
                .unwrap()
        );
        let (curve, x, y) =
            ec_components_from_private_key(pkcs8.as_ref(), Algorithm::ES256).unwrap();
        assert_eq!((curve, x.len(), y.len()), (EllipticCurve::P256, 32, 32));
    }
}
