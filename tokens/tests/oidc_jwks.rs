//! Discovery and JWKS over HTTPS against a small in-test provider (loopback, certificates made
//! by rcgen): keys load, a rotated key is followed on the first request, unknown kids are rate
//! limited, a provider down at start is retried in the background, a wrong CA is a TLS error.

#![allow(clippy::unwrap_used)]

#[path = "oidc_support/mod.rs"]
mod support;

use kgate_tokens::oidc::jwks::{JwksError, ProviderKeys};
use kgate_tokens::oidc::{AuthenticationConfig, JwtIssuer, OidcAuthenticator};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::server::{start, Server};
use support::TestKey;

fn issuer_of(server: &Server) -> JwtIssuer {
    JwtIssuer {
        certificate_authority: Some(server.ca_pem.clone()),
        ..support::issuer(&server.provider.issuer)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn keys_load_and_tokens_verify() {
    let key = TestKey::rsa(0, Some("one"));
    let server = start(support::jwks(&[&key])).await;
    let config = AuthenticationConfig {
        jwt: vec![issuer_of(&server)],
    };
    let authn = OidcAuthenticator::new(config);
    assert!(authn.statuses()[0].problem.is_some());
    assert!(authn.refresh_all().await.is_empty());
    assert_eq!(authn.statuses()[0].problem, None);
    let token = key.token(
        "RS256",
        &support::claims(&server.provider.issuer, "kgate", now()),
    );
    let user = authn.verify_token(&token).await.unwrap().unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(server.provider.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(server.provider.jwks_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_discovery_url_elsewhere_is_used_and_its_issuer_checked() {
    let key = TestKey::ec256(Some("one"));
    let server = start(support::jwks(&[&key])).await;
    let mut issuer = issuer_of(&server);
    issuer.discovery_url = Some(format!("{}/custom-discovery", server.provider.issuer));
    let keys = ProviderKeys::new(&issuer).unwrap();
    assert_eq!(keys.refresh().await.unwrap(), 1);

    *server.provider.claimed_issuer.lock().unwrap() = "https://someone-else.test".into();
    let err = keys.refresh().await.unwrap_err();
    assert!(matches!(err, JwksError::IssuerMismatch { .. }), "{err}");
    // The keys loaded before stay.
    assert_eq!(keys.status(), None);
    assert_eq!(keys.key_count(), 1);
}

#[tokio::test]
async fn a_rotated_key_is_followed_on_the_first_request_and_refetches_are_rate_limited() {
    let old = TestKey::rsa(0, Some("old"));
    let server = start(support::jwks(&[&old])).await;
    let issuer = issuer_of(&server);
    let authn = OidcAuthenticator::new(AuthenticationConfig {
        jwt: vec![issuer.clone()],
    });
    assert!(authn.refresh_all().await.is_empty());
    let hits = || server.provider.jwks_hits.load(Ordering::SeqCst);
    assert_eq!(hits(), 1);

    // The provider rotates: the new kid is accepted on its first request.
    let new = TestKey::ec256(Some("new"));
    *server.provider.jwks.lock().unwrap() = support::jwks(&[&old, &new]);
    let claims = support::claims(&issuer.issuer_url, "kgate", now());
    let user = authn
        .verify_token(&new.token("ES256", &claims))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "alice");
    assert_eq!(hits(), 2);

    // Another unknown kid within the interval: refused without a fetch, however many come.
    let stranger = TestKey::rsa(1, Some("stranger"));
    let token = stranger.token("RS256", &claims);
    for _ in 0..5 {
        let err = authn.verify_token(&token).await.unwrap_err();
        assert!(err.to_string().contains("does not publish"), "{err}");
    }
    assert_eq!(hits(), 2);
    // Known kids do not fetch either.
    assert!(authn
        .verify_token(&old.token("RS256", &claims))
        .await
        .unwrap()
        .is_some());
    assert_eq!(hits(), 2);
}

#[tokio::test]
async fn concurrent_unknown_kids_share_one_refetch() {
    let old = TestKey::ec256(Some("old"));
    let server = start(support::jwks(&[&old])).await;
    let issuer = issuer_of(&server);
    let keys = Arc::new(ProviderKeys::new(&issuer).unwrap());
    keys.refresh().await.unwrap();
    let new = TestKey::ec256(Some("new"));
    *server.provider.jwks.lock().unwrap() = support::jwks(&[&old, &new]);
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let keys = Arc::clone(&keys);
            tokio::spawn(async move {
                keys.keys_for(Some("new"), jsonwebtoken::Algorithm::ES256)
                    .await
                    .map(|k| k.len())
            })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap(), Ok(1));
    }
    assert_eq!(server.provider.jwks_hits.load(Ordering::SeqCst), 2);
    assert_eq!(keys.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_provider_down_at_start_is_retried_in_the_background() {
    let key = TestKey::ec256(Some("k"));
    let server = start(support::jwks(&[&key])).await;
    server.provider.down.store(true, Ordering::SeqCst);
    let issuer = issuer_of(&server);
    let authn = OidcAuthenticator::new(AuthenticationConfig {
        jwt: vec![issuer.clone()],
    });
    authn.start();
    // The first attempt fails and says why.
    let problem = wait_for(|| {
        authn.statuses()[0]
            .problem
            .clone()
            .filter(|p| p.contains("503"))
    })
    .await;
    assert!(problem.contains("discovery document"), "{problem}");
    let token = key.token(
        "ES256",
        &support::claims(&issuer.issuer_url, "kgate", now()),
    );
    let err = authn.verify_token(&token).await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    // The provider comes up: the retry (1 s, then 2 s, ...) loads the keys.
    server.provider.down.store(false, Ordering::SeqCst);
    wait_for(|| authn.statuses()[0].problem.is_none().then_some(())).await;
    assert!(authn.verify_token(&token).await.unwrap().is_some());
}

#[tokio::test]
async fn a_wrong_ca_is_a_tls_error_and_redirects_are_not_followed() {
    let key = TestKey::ec256(Some("k"));
    let server = start(support::jwks(&[&key])).await;
    let other = start(support::jwks(&[&key])).await;
    let mut issuer = issuer_of(&server);
    issuer.certificate_authority = Some(other.ca_pem.clone());
    let keys = ProviderKeys::new(&issuer).unwrap();
    let err = keys.refresh().await.unwrap_err();
    assert!(matches!(err, JwksError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert_eq!(keys.status(), Some(err.to_string()));

    // No CA configured: the built-in roots do not know the test CA either.
    let mut issuer = issuer_of(&server);
    issuer.certificate_authority = None;
    let err = ProviderKeys::new(&issuer)
        .unwrap()
        .refresh()
        .await
        .unwrap_err();
    assert!(matches!(err, JwksError::Tls { .. }), "{err:?}");

    // A discovery URL that redirects is a failure, not followed.
    let mut issuer = issuer_of(&server);
    issuer.discovery_url = Some(format!("{}/redirect", server.provider.issuer));
    let err = ProviderKeys::new(&issuer)
        .unwrap()
        .refresh()
        .await
        .unwrap_err();
    assert!(
        matches!(err, JwksError::Status { status: 302, .. }),
        "{err:?}"
    );
}

/// Polls `probe` every 50 ms for up to 15 s.
async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(value) = probe() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 15 s");
}
