//! Unit tests of the token checks: every refusal, algorithm confusion, tokens without kid,
//! audiences.

use super::*;
use crate::oidc::jwks::tests::issuer as test_issuer;
use serde_json::json;
pub(crate) use support::TestKey;

#[path = "../../tests/oidc_support/mod.rs"]
pub(crate) mod support;

const ISSUER: &str = "https://idp.test";
const NOW: i64 = 1_800_000_000;

struct Setup {
    issuer: JwtIssuer,
    keys: ProviderKeys,
    rsa: TestKey,
    ec: TestKey,
}

fn setup() -> Setup {
    // Port 1 on loopback: a refetch is refused at once.
    let mut issuer = test_issuer(ISSUER);
    issuer.discovery_url = Some("https://127.0.0.1:1/.well-known/openid-configuration".into());
    issuer.audiences = vec!["kgate".into(), "other".into()];
    let keys = ProviderKeys::new(&issuer).unwrap();
    let rsa = TestKey::rsa(0, Some("rsa"));
    let ec = TestKey::ec256(Some("ec"));
    keys.install_jwks(support::jwks(&[&rsa, &ec]).as_bytes())
        .unwrap();
    Setup {
        issuer,
        keys,
        rsa,
        ec,
    }
}

fn claims() -> Value {
    support::claims(ISSUER, "kgate", NOW)
}

impl Setup {
    async fn verify(&self, token: &str) -> Result<Verified, OidcError> {
        verify_token(&self.issuer, &self.keys, token, NOW).await
    }
}

#[tokio::test]
async fn valid_tokens_of_every_algorithm_verify() {
    let s = setup();
    let ec384 = TestKey::ec384(Some("ec384"));
    let rsa2 = TestKey::rsa(1, Some("rsa2"));
    s.keys
        .install_jwks(support::jwks(&[&s.rsa, &s.ec, &ec384, &rsa2]).as_bytes())
        .unwrap();
    for (key, alg) in [
        (&s.rsa, "RS256"),
        (&s.rsa, "RS384"),
        (&s.rsa, "RS512"),
        (&s.rsa, "PS256"),
        (&s.rsa, "PS384"),
        (&s.rsa, "PS512"),
        (&rsa2, "RS256"),
        (&s.ec, "ES256"),
        (&ec384, "ES384"),
    ] {
        let verified = s
            .verify(&key.token(alg, &claims()))
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified.user.name, "alice", "{alg}");
        assert!(verified
            .user
            .groups
            .iter()
            .any(|g| g == "system:authenticated"));
        assert_eq!(verified.expires_at, NOW + 3600);
        assert_eq!(verified.key.kid, key.kid);
    }
}

#[tokio::test]
async fn too_large_is_refused_before_parsing() {
    let s = setup();
    let token = "x".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(s.verify(&token).await.unwrap_err(), OidcError::TooLarge);
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let s = setup();
    let good = s.rsa.token("RS256", &claims());
    let (header, rest) = good.split_once('.').unwrap();
    for token in [
        "".to_owned(),
        "a.b".to_owned(),
        format!("{good}.extra"),
        format!("!!!.{rest}"),
        format!("{}.{rest}", URL_SAFE_NO_PAD.encode("not json")),
        format!("{header}.{}.sig", URL_SAFE_NO_PAD.encode("[1,2]")),
    ] {
        assert!(
            matches!(s.verify(&token).await, Err(OidcError::Malformed { .. })),
            "{token}"
        );
    }
    let crit = json!({"alg": "RS256", "kid": "rsa", "crit": ["exp"], "exp": 1});
    let token = s.rsa.token_with_header(&crit, &claims());
    assert!(matches!(
        s.verify(&token).await,
        Err(OidcError::Malformed { .. })
    ));
}

#[tokio::test]
async fn none_hmac_and_unknown_algorithms_are_refused() {
    let s = setup();
    let n = s.rsa.jwk()["n"].as_str().unwrap().to_owned();
    for alg in [
        "none", "HS256", "HS384", "HS512", "EdDSA", "ES512", "RSA-OAEP", "",
    ] {
        let header = json!({"alg": alg, "kid": "rsa"});
        // An HS256 "signature" keyed with the public modulus: the classic confusion.
        let token = support::unsigned(&header, &claims(), n.as_bytes());
        let err = s.verify(&token).await.unwrap_err();
        assert!(
            matches!(&err, OidcError::UnsupportedAlgorithm { alg: got, .. } if got == alg),
            "{alg}: {err}"
        );
        assert!(err.to_string().contains(ISSUER));
    }
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims().to_string())
    );
    assert!(matches!(
        s.verify(&none).await,
        Err(OidcError::UnsupportedAlgorithm { .. })
    ));
}

#[tokio::test]
async fn the_issuers_signing_algs_restrict_the_algorithm() {
    let mut s = setup();
    s.issuer.signing_algs = vec!["ES256".into()];
    assert!(s.verify(&s.ec.token("ES256", &claims())).await.is_ok());
    let err = s
        .verify(&s.rsa.token("RS256", &claims()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::UnsupportedAlgorithm { ref alg, .. } if alg == "RS256"),
        "{err}"
    );
}

#[tokio::test]
async fn algorithm_confusion_between_key_types_is_refused() {
    let s = setup();
    // An EC signature presented as RS256 with the EC key's kid, and the reverse.
    let ec_as_rsa =
        s.ec.token_with_header(&json!({"alg": "ES256", "kid": "ec"}), &claims());
    let (_, rest) = ec_as_rsa.split_once('.').unwrap();
    let forged = format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"ec"}"#)
    );
    assert!(matches!(
        s.verify(&forged).await,
        Err(OidcError::AlgorithmMismatch { .. })
    ));
    let forged =
        s.ec.token_with_header(&json!({"alg": "ES256", "kid": "rsa"}), &claims());
    assert!(matches!(
        s.verify(&forged).await,
        Err(OidcError::AlgorithmMismatch { .. })
    ));
    // ES384 header with a P-256 key.
    let forged = format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"ES384","kid":"ec"}"#)
    );
    assert!(matches!(
        s.verify(&forged).await,
        Err(OidcError::AlgorithmMismatch { .. })
    ));
}

#[tokio::test]
async fn tokens_without_kid_try_every_key_of_their_type() {
    let s = setup();
    let other_rsa = TestKey::rsa(1, None);
    let other_ec = TestKey::ec256(None);
    s.keys
        .install_jwks(support::jwks(&[&s.rsa, &other_rsa, &s.ec]).as_bytes())
        .unwrap();
    let no_kid = |key: &TestKey, alg: &str| {
        key.token_with_header(&json!({"alg": alg, "typ": "JWT"}), &claims())
    };
    assert!(s.verify(&no_kid(&other_rsa, "RS256")).await.is_ok());
    assert!(s.verify(&no_kid(&s.rsa, "PS256")).await.is_ok());
    assert!(s.verify(&no_kid(&s.ec, "ES256")).await.is_ok());
    // A key the issuer does not publish: no candidate verifies.
    assert!(matches!(
        s.verify(&no_kid(&other_ec, "ES256")).await,
        Err(OidcError::BadSignature { .. })
    ));
    // No key of the type at all (the refetch fails, rate limited afterwards).
    let ec384 = TestKey::ec384(None);
    let first = s.verify(&no_kid(&ec384, "ES384")).await.unwrap_err();
    assert!(first.is_unavailable(), "{first}");
    assert!(matches!(
        s.verify(&no_kid(&ec384, "ES384")).await,
        Err(OidcError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn bad_signatures_are_refused() {
    let s = setup();
    let token = s.rsa.token("RS256", &claims());
    // Another key with the same kid.
    let impostor = TestKey::rsa(2, Some("rsa")).token("RS256", &claims());
    assert!(matches!(
        s.verify(&impostor).await,
        Err(OidcError::BadSignature { .. })
    ));
    // Tampered payload.
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let (header, _) = signing_input.split_once('.').unwrap();
    let mut other = claims();
    other["sub"] = json!("mallory");
    let tampered = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(other.to_string())
    );
    assert!(matches!(
        s.verify(&tampered).await,
        Err(OidcError::BadSignature { .. })
    ));
    // Truncated or not base64 signature.
    for signature in [&signature[..signature.len() - 4], "", "!!!!"] {
        let token = format!("{signing_input}.{signature}");
        assert!(
            matches!(s.verify(&token).await, Err(OidcError::BadSignature { .. })),
            "{signature}"
        );
    }
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let s = setup();
    let stranger = TestKey::rsa(1, Some("stranger"));
    let err = s
        .verify(&stranger.token("RS256", &claims()))
        .await
        .unwrap_err();
    // The refetch could not reach the provider: undecidable rather than refused...
    assert!(err.is_unavailable(), "{err}");
    // ...and within the refetch interval, plainly unknown.
    assert!(matches!(
        s.verify(&stranger.token("RS256", &claims())).await,
        Err(OidcError::UnknownKey { .. })
    ));
}

#[tokio::test]
async fn issuer_must_match_exactly() {
    let s = setup();
    for iss in [
        json!("https://idp.test/"),
        json!("https://IDP.test"),
        json!(null),
        json!(1),
    ] {
        let mut c = claims();
        c["iss"] = iss.clone();
        assert!(
            matches!(
                s.verify(&s.rsa.token("RS256", &c)).await,
                Err(OidcError::WrongIssuer { .. })
            ),
            "{iss}"
        );
    }
}

#[tokio::test]
async fn audience_any_of_the_configured_ones() {
    let s = setup();
    for (aud, ok) in [
        (json!("kgate"), true),
        (json!("other"), true),
        (json!(["someone", "other"]), true),
        (json!(["a", "kgate", "b"]), true),
        (json!("kgate2"), false),
        (json!(["a", "b"]), false),
        (json!([]), false),
        (json!(null), false),
        (json!(["kgate "]), false),
        (json!({"kgate": true}), false),
    ] {
        let mut c = claims();
        c["aud"] = aud.clone();
        let result = s.verify(&s.rsa.token("RS256", &c)).await;
        if ok {
            assert!(result.is_ok(), "{aud}: {result:?}");
        } else {
            assert!(
                matches!(result, Err(OidcError::WrongAudience { .. })),
                "{aud}: {result:?}"
            );
        }
    }
    let mut c = claims();
    c.as_object_mut().unwrap().remove("aud");
    assert!(matches!(
        s.verify(&s.rsa.token("RS256", &c)).await,
        Err(OidcError::WrongAudience { .. })
    ));
}

#[tokio::test]
async fn exp_is_required_and_has_no_leeway() {
    let s = setup();
    let with = |claim: &str, value: Value| {
        let mut c = claims();
        c[claim] = value;
        s.rsa.token("RS256", &c)
    };
    assert!(s.verify(&with("exp", json!(NOW))).await.is_ok());
    assert!(s
        .verify(&with("exp", json!(NOW as f64 + 0.5)))
        .await
        .is_ok());
    assert!(matches!(
        s.verify(&with("exp", json!(NOW - 1))).await,
        Err(OidcError::Expired { .. })
    ));
    assert!(matches!(
        s.verify(&with("exp", json!(NOW as f64 - 0.5))).await,
        Err(OidcError::Expired { .. })
    ));
    assert!(matches!(
        s.verify(&with("exp", json!(null))).await,
        Err(OidcError::MissingExpiry { .. })
    ));
    assert!(matches!(
        s.verify(&with("exp", json!("tomorrow"))).await,
        Err(OidcError::Malformed { .. })
    ));
}

#[tokio::test]
async fn nbf_and_iat_allow_the_leeway() {
    let s = setup();
    let with = |claim: &str, value: i64| {
        let mut c = claims();
        c[claim] = json!(value);
        s.rsa.token("RS256", &c)
    };
    let edge = NOW + NBF_LEEWAY_SECONDS;
    assert!(s.verify(&with("nbf", edge)).await.is_ok());
    assert!(matches!(
        s.verify(&with("nbf", edge + 1)).await,
        Err(OidcError::NotYetValid { .. })
    ));
    assert!(s.verify(&with("iat", edge)).await.is_ok());
    assert!(matches!(
        s.verify(&with("iat", edge + 1)).await,
        Err(OidcError::IssuedInFuture { .. })
    ));
}

#[tokio::test]
async fn claim_rules_refusals_are_reported_with_the_issuer() {
    let s = setup();
    let mut c = claims();
    c["sub"] = json!("system:admin");
    let err = s.verify(&s.rsa.token("RS256", &c)).await.unwrap_err();
    assert!(matches!(err, OidcError::Claims { .. }), "{err}");
    assert!(err.to_string().contains(ISSUER), "{err}");
}

#[tokio::test]
async fn keys_not_loaded_is_unavailable() {
    let s = setup();
    let empty = ProviderKeys::new(&s.issuer).unwrap();
    let err = verify_token(&s.issuer, &empty, &s.rsa.token("RS256", &claims()), NOW)
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn errors_never_contain_the_token() {
    let s = setup();
    let mut c = claims();
    c["exp"] = json!(NOW - 10);
    let token = s.rsa.token("RS256", &c);
    let err = s.verify(&token).await.unwrap_err();
    let text = format!("{err} {err:?}");
    for part in token.split('.') {
        assert!(!text.contains(part), "{text}");
    }
}

#[test]
fn parsed_token_peeks_the_issuer_only() {
    let token = support::unsigned(&json!({"alg": "RS256"}), &claims(), b"sig");
    assert_eq!(ParsedToken::parse(&token).unwrap().issuer(), Some(ISSUER));
    let no_iss = support::unsigned(&json!({"alg": "RS256"}), &json!({"sub": "a"}), b"sig");
    assert_eq!(ParsedToken::parse(&no_iss).unwrap().issuer(), None);
    assert!(ParsedToken::parse("opaque-token").is_none());
    assert!(ParsedToken::parse("a.b.c").is_none());
}
