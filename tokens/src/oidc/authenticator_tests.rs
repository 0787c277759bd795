//! Unit tests of the authenticator: "not mine", the cache, reload, statuses.

use super::*;
use crate::oidc::jwks::tests::issuer as test_issuer;
use crate::oidc::verify::tests::support::{self, TestKey};
use kgate_core::authn::BearerToken;
use serde_json::json;

const A: &str = "https://a.test";
const B: &str = "https://b.test";
const NOW: i64 = 1_800_000_000;

fn issuer(url: &str) -> JwtIssuer {
    let mut issuer = test_issuer(url);
    // Port 1 on loopback: any fetch is refused at once.
    issuer.discovery_url = Some(format!("https://127.0.0.1:1/{}", url.len()));
    issuer
}

fn config(urls: &[&str]) -> AuthenticationConfig {
    AuthenticationConfig {
        jwt: urls.iter().map(|u| issuer(u)).collect(),
    }
}

fn authenticator(key: &TestKey) -> OidcAuthenticator {
    let authn = OidcAuthenticator::new(config(&[A, B]));
    for url in [A, B] {
        authn
            .provider_keys(url)
            .unwrap()
            .install_jwks(support::jwks(&[key]).as_bytes())
            .unwrap();
    }
    authn
}

#[tokio::test]
async fn not_mine_for_opaque_tokens_and_foreign_issuers() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    for token in [
        "opaque".to_owned(),
        "a.b.c".to_owned(),
        key.token("ES256", &json!({"sub": "no issuer"})),
        key.token(
            "ES256",
            &support::claims("https://elsewhere.test", "kgate", NOW),
        ),
        key.token("ES256", &support::claims(&"x".repeat(5000), "kgate", NOW)),
        // Another issuer's URL with a trailing slash is another issuer.
        key.token("ES256", &support::claims("https://a.test/", "kgate", NOW)),
    ] {
        assert_eq!(authn.verify_token_at(&token, NOW).await, Ok(None));
    }
    assert_eq!(authn.cached(), 0);
}

#[tokio::test]
async fn each_token_is_verified_against_its_own_issuer() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    for url in [A, B] {
        let token = key.token("ES256", &support::claims(url, "kgate", NOW));
        let user = authn.verify_token_at(&token, NOW).await.unwrap().unwrap();
        assert_eq!(user.name, "alice");
        assert!(user.in_group("system:authenticated"));
    }
    // A's key is not B's key.
    let other = TestKey::ec256(Some("k"));
    authn
        .provider_keys(B)
        .unwrap()
        .install_jwks(support::jwks(&[&other]).as_bytes())
        .unwrap();
    let token = key.token("ES256", &support::claims(B, "kgate", NOW + 1));
    let err = authn.verify_token_at(&token, NOW).await.unwrap_err();
    assert!(
        matches!(err, OidcError::BadSignature { ref issuer } if issuer == B),
        "{err}"
    );
}

#[tokio::test]
async fn verified_tokens_are_cached_until_exp() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    let token = key.token("ES256", &support::claims(A, "kgate", NOW));
    assert!(authn.verify_token_at(&token, NOW).await.unwrap().is_some());
    assert_eq!(authn.cached(), 1);
    // A hit up to exp included (while the key is published).
    assert!(authn
        .verify_token_at(&token, NOW + 3600)
        .await
        .unwrap()
        .is_some());
    // After exp the entry is dropped and the token refused as expired.
    let err = authn.verify_token_at(&token, NOW + 3601).await.unwrap_err();
    assert!(matches!(err, OidcError::Expired { .. }), "{err}");
    assert_eq!(authn.cached(), 0);
}

#[tokio::test]
async fn refused_tokens_are_not_cached() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    let token = key.token("ES256", &support::claims(A, "wrong", NOW));
    assert!(authn.verify_token_at(&token, NOW).await.is_err());
    assert!(authn.verify_token_at(&token, NOW).await.is_err());
    assert_eq!(authn.cached(), 0);
}

#[tokio::test]
async fn a_key_withdrawn_by_the_provider_ends_its_cached_tokens() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    let token = key.token("ES256", &support::claims(A, "kgate", NOW));
    assert!(authn.verify_token_at(&token, NOW).await.unwrap().is_some());
    let next = TestKey::ec256(Some("next"));
    authn
        .provider_keys(A)
        .unwrap()
        .install_jwks(support::jwks(&[&next]).as_bytes())
        .unwrap();
    // Not served from the cache: the kid is unknown now.
    assert!(authn.verify_token_at(&token, NOW).await.is_err());
}

#[tokio::test]
async fn replace_keeps_unchanged_issuers_keys_and_clears_the_cache() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    let token = key.token("ES256", &support::claims(A, "kgate", NOW));
    assert!(authn.verify_token_at(&token, NOW).await.unwrap().is_some());
    let keys_a = authn.provider_keys(A).unwrap();

    // Same source for A (other audiences), B removed, C added.
    let mut new = config(&[A, "https://c.test"]);
    new.jwt[0].audiences = vec!["other".into()];
    authn.replace(new);
    assert_eq!(authn.cached(), 0);
    assert!(Arc::ptr_eq(&keys_a, &authn.provider_keys(A).unwrap()));
    assert!(authn.provider_keys(B).is_none());
    // The new audiences apply at once, cache or not.
    let err = authn.verify_token_at(&token, NOW).await.unwrap_err();
    assert!(matches!(err, OidcError::WrongAudience { .. }), "{err}");
    assert_eq!(
        authn.statuses(),
        vec![
            IssuerStatus {
                issuer_url: A.into(),
                problem: None
            },
            IssuerStatus {
                issuer_url: "https://c.test".into(),
                problem: Some("not loaded yet".into())
            },
        ]
    );

    // Another CA for A: new keys, nothing loaded.
    let mut new = config(&[A]);
    new.jwt[0].discovery_url = Some("https://127.0.0.1:1/elsewhere".into());
    authn.replace(new);
    assert!(!Arc::ptr_eq(&keys_a, &authn.provider_keys(A).unwrap()));
    assert!(authn.statuses()[0].problem.is_some());

    // An issuer with an invalid CA is there, unusable, and says why.
    let mut bad = config(&[A, B]);
    bad.jwt[1].certificate_authority = Some("garbage".into());
    authn.replace(bad);
    let statuses = authn.statuses();
    let problem = statuses[1].problem.as_deref().unwrap();
    assert!(problem.contains("certificate authority"), "{problem}");
    let token = key.token("ES256", &support::claims(B, "kgate", NOW));
    let err = authn.verify_token_at(&token, NOW).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}

#[tokio::test]
async fn authenticator_trait_maps_errors() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    let credentials = |token: String| Credentials {
        bearer_token: Some(BearerToken::new(token)),
        ..Default::default()
    };
    assert_eq!(authn.name(), "oidc");
    assert_eq!(authn.authenticate(&Credentials::default()).await, Ok(None));
    let now = unix_now();
    let good = key.token("ES256", &support::claims(A, "kgate", now));
    let response = authn
        .authenticate(&credentials(good))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.user.name, "alice");
    let mut expired = support::claims(A, "kgate", now);
    expired["exp"] = json!(now - 10);
    let err = authn
        .authenticate(&credentials(key.token("ES256", &expired)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthnError::Invalid { authenticator: "oidc", ref reason } if reason.contains("expired")),
        "{err}"
    );
    // An issuer whose keys are not loaded: unavailable, not invalid.
    authn.replace(config(&["https://c.test"]));
    let token = key.token("ES256", &support::claims("https://c.test", "kgate", now));
    let err = authn.authenticate(&credentials(token)).await.unwrap_err();
    assert!(
        matches!(
            err,
            AuthnError::Unavailable {
                authenticator: "oidc",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn too_large_tokens_are_refused() {
    let key = TestKey::ec256(Some("k"));
    let authn = authenticator(&key);
    let token = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(
        authn.verify_token_at(&token, NOW).await,
        Err(OidcError::TooLarge)
    );
}

#[test]
fn debug_shows_no_cache_key() {
    let authn = OidcAuthenticator::new(config(&[A]));
    let shown = format!("{authn:?}");
    assert!(shown.contains("Cache"), "{shown}");
    assert!(!shown.contains("hasher"), "{shown}");
}
