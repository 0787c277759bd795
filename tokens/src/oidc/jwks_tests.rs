//! Unit tests of JWKS parsing and key lookup (no HTTP; the fetching is tested by
//! `tests/oidc_jwks.rs`).

use super::*;
// `issuer` is also the other unit tests' (through this module).
pub(crate) use crate::oidc::verify::tests::support::issuer;
use crate::oidc::verify::tests::support::{self, TestKey};
use serde_json::json;

#[test]
fn parses_rsa_and_ec_keys_and_skips_the_rest() {
    let rsa = TestKey::rsa(0, Some("r"));
    let p256 = TestKey::ec256(Some("e"));
    let p384 = TestKey::ec384(None);
    let mut enc = rsa.jwk();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc");
    let mut wrong_alg = p256.jwk();
    wrong_alg["alg"] = json!("RS256");
    let body = json!({"keys": [
        rsa.jwk(),
        p256.jwk(),
        p384.jwk(),
        enc,
        wrong_alg,
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "e": "AQAB"},
        "not an object",
    ]});
    let keys = parse_jwks(body.to_string().as_bytes()).unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_deref(), k.key_type))
        .collect();
    assert_eq!(
        summary,
        [
            (Some("r"), KeyType::Rsa),
            (Some("e"), KeyType::EcP256),
            (None, KeyType::EcP384)
        ]
    );
    assert!(parse_jwks(b"{}").is_err());
    assert!(parse_jwks(b"[]").is_err());
}

#[test]
fn rsa_moduli_lose_leading_zeros_and_alg_restricts_the_key() {
    let rsa = TestKey::rsa(0, Some("r"));
    let mut jwk = rsa.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let mut padded = vec![0u8];
    padded.extend_from_slice(&n);
    jwk["n"] = json!(URL_SAFE_NO_PAD.encode(&padded));
    jwk["alg"] = json!("PS256");
    let keys = parse_jwks(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
    let key = &keys[0];
    match key.decoding.kind() {
        DecodingKeyKind::RsaModulusExponent { n: got, .. } => assert_eq!(got, &n),
        other => panic!("{other:?}"),
    }
    assert!(key.fits(Algorithm::PS256));
    assert!(!key.fits(Algorithm::RS256));
    assert!(!key.fits(Algorithm::ES256));
}

#[test]
fn key_types_fit_only_their_algorithms() {
    for alg in [Algorithm::RS256, Algorithm::RS512, Algorithm::PS384] {
        assert!(KeyType::Rsa.fits(alg));
        assert!(!KeyType::EcP256.fits(alg));
    }
    assert!(KeyType::EcP256.fits(Algorithm::ES256));
    assert!(!KeyType::EcP256.fits(Algorithm::ES384));
    assert!(KeyType::EcP384.fits(Algorithm::ES384));
    assert!(!KeyType::EcP384.fits(Algorithm::ES256));
    for alg in [Algorithm::HS256, Algorithm::EdDSA] {
        assert!(!KeyType::Rsa.fits(alg) && !KeyType::EcP256.fits(alg));
    }
}

#[tokio::test]
async fn lookup_by_kid_without_kid_and_with_the_wrong_type() {
    // Port 1 on loopback: refused at once.
    let keys = ProviderKeys::new(&issuer("https://127.0.0.1:1")).unwrap();
    assert_eq!(
        keys.status().as_deref(),
        Some("not loaded yet"),
        "nothing loaded before the first fetch"
    );
    assert!(matches!(
        keys.keys_for(Some("r"), Algorithm::RS256).await,
        Err(JwksError::NotLoaded { .. })
    ));
    let rsa = TestKey::rsa(0, Some("r"));
    let rsa2 = TestKey::rsa(1, Some("r2"));
    let ec = TestKey::ec256(Some("e"));
    assert_eq!(
        keys.install_jwks(support::jwks(&[&rsa, &rsa2, &ec]).as_bytes())
            .unwrap(),
        3
    );
    assert_eq!(keys.status(), None);

    let found = keys.keys_for(Some("r2"), Algorithm::RS256).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].kid.as_deref(), Some("r2"));
    // No kid: every key of the algorithm's type.
    assert_eq!(
        keys.keys_for(None, Algorithm::PS512).await.unwrap().len(),
        2
    );
    assert_eq!(
        keys.keys_for(None, Algorithm::ES256).await.unwrap().len(),
        1
    );
    // A kid naming a key of another type: algorithm confusion.
    assert!(matches!(
        keys.keys_for(Some("e"), Algorithm::RS256).await,
        Err(JwksError::AlgorithmMismatch { .. })
    ));
    assert!(matches!(
        keys.keys_for(Some("r"), Algorithm::ES256).await,
        Err(JwksError::AlgorithmMismatch { .. })
    ));
    // Unknown kid: the refetch has no discovery to go to, and says why.
    let unknown = keys.keys_for(Some("nope"), Algorithm::RS256).await;
    assert!(
        matches!(unknown, Err(JwksError::Fetch { .. })),
        "{unknown:?}"
    );
    // ...and is not tried again within the interval.
    assert!(matches!(
        keys.keys_for(Some("nope"), Algorithm::RS256).await,
        Err(JwksError::UnknownKey { .. })
    ));
    assert!(matches!(
        keys.keys_for(None, Algorithm::ES384).await,
        Err(JwksError::UnknownKey { .. })
    ));
    // Keys stay loaded after a failed fetch.
    assert_eq!(keys.status(), None);
}

#[test]
fn unchanged_keys_keep_their_identity_across_loads() {
    let keys = ProviderKeys::new(&issuer("https://idp.test")).unwrap();
    let a = TestKey::ec256(Some("a"));
    let b = TestKey::ec256(Some("b"));
    keys.install_jwks(support::jwks(&[&a]).as_bytes()).unwrap();
    let first = Arc::clone(&keys.inner.keys.load_full().unwrap().keys[0]);
    keys.install_jwks(support::jwks(&[&b, &a]).as_bytes())
        .unwrap();
    let set = keys.inner.keys.load_full().unwrap();
    assert!(Arc::ptr_eq(&first, &set.keys[1]));
    assert!(!Arc::ptr_eq(&first, &set.keys[0]));
    assert!(matches!(
        keys.install_jwks(br#"{"keys": []}"#),
        Err(JwksError::NoUsableKeys { .. })
    ));
}

#[test]
fn invalid_certificate_authority_is_refused_at_construction() {
    let mut config = issuer("https://idp.test");
    config.certificate_authority = Some("not a certificate".into());
    let err = ProviderKeys::new(&config).unwrap_err();
    assert!(
        matches!(err, JwksError::InvalidCertificateAuthority { .. }),
        "{err}"
    );
}

#[test]
fn discovery_url_defaults_to_the_well_known_path() {
    let keys = ProviderKeys::new(&issuer("https://idp.test/realms/a")).unwrap();
    assert_eq!(
        keys.discovery_url(),
        "https://idp.test/realms/a/.well-known/openid-configuration"
    );
    let mut config = issuer("https://idp.test");
    config.discovery_url = Some("https://internal.test/discovery".into());
    let keys = ProviderKeys::new(&config).unwrap();
    assert_eq!(keys.discovery_url(), "https://internal.test/discovery");
}

#[test]
fn debug_shows_no_key_material() {
    let keys = ProviderKeys::new(&issuer("https://idp.test")).unwrap();
    let rsa = TestKey::rsa(0, Some("r"));
    keys.install_jwks(support::jwks(&[&rsa]).as_bytes())
        .unwrap();
    let n = rsa.jwk()["n"].as_str().unwrap().to_owned();
    let shown = format!("{keys:?} {:?}", keys.inner.keys.load_full());
    assert!(!shown.contains(&n[..20]));
}
