//! OIDC token costs: verifying without the cache (RS256, ES256), a cached authentication
//! through the `Authenticator` trait, parsing a 3-key JWKS, and a JWKS refresh (discovery and
//! key set) over loopback HTTPS, and the time from a provider's key rotation to the first
//! accepted token of the new key (unknown kid, JWKS refetch, verification).
//!
//! cargo bench -p kgate-tokens --bench oidc -- --warm-up-time 1 --measurement-time 3

#![allow(clippy::unwrap_used)]

#[path = "../tests/oidc_support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};
use kgate_core::authn::{Authenticator, BearerToken, Credentials};
use kgate_tokens::oidc::jwks::{parse_jwks, ProviderKeys};
use kgate_tokens::oidc::verify::verify_token;
use kgate_tokens::oidc::{AuthenticationConfig, JwtIssuer, OidcAuthenticator};
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};
use support::{issuer, TestKey};

const ISSUER: &str = "https://idp.bench";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Polls a future that never waits (keys are loaded: no fetch happens) to completion.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited"),
    }
}

fn verify(c: &mut Criterion) {
    let rsa = TestKey::rsa(0, Some("rsa"));
    let rsa2 = TestKey::rsa(1, Some("rsa2"));
    let ec = TestKey::ec256(Some("ec"));
    let config = issuer(ISSUER);
    let keys = ProviderKeys::new(&config).unwrap();
    keys.install_jwks(support::jwks(&[&rsa2, &rsa, &ec]).as_bytes())
        .unwrap();
    let claims = support::claims(ISSUER, "kgate", now());
    for (name, key, alg) in [("RS256", &rsa, "RS256"), ("ES256", &ec, "ES256")] {
        let token = key.token(alg, &claims);
        assert!(ready(verify_token(&config, &keys, &token, now())).is_ok());
        c.bench_function(&format!("oidc verify uncached {name}"), |b| {
            b.iter(|| ready(verify_token(&config, &keys, black_box(&token), now())).unwrap())
        });
    }

    let authn = OidcAuthenticator::new(AuthenticationConfig {
        jwt: vec![config.clone()],
    });
    authn
        .provider_keys(ISSUER)
        .unwrap()
        .install_jwks(support::jwks(&[&rsa, &ec]).as_bytes())
        .unwrap();
    let credentials = Credentials {
        bearer_token: Some(BearerToken::new(rsa.token("RS256", &claims))),
        ..Default::default()
    };
    assert!(ready(authn.authenticate(&credentials)).unwrap().is_some());
    assert_eq!(authn.cached(), 1);
    c.bench_function("oidc authenticate cached RS256", |b| {
        b.iter(|| ready(authn.authenticate(black_box(&credentials))).unwrap())
    });
}

fn jwks(c: &mut Criterion) {
    let rsa = TestKey::rsa(0, Some("rsa"));
    let rsa2 = TestKey::rsa(1, Some("rsa2"));
    let ec = TestKey::ec256(Some("ec"));
    let body = support::jwks(&[&rsa, &rsa2, &ec]);
    assert_eq!(parse_jwks(body.as_bytes()).unwrap().len(), 3);
    c.bench_function("oidc parse 3-key JWKS", |b| {
        b.iter(|| parse_jwks(black_box(body.as_bytes())).unwrap())
    });
    let keys = ProviderKeys::new(&issuer(ISSUER)).unwrap();
    c.bench_function("oidc install 3-key JWKS", |b| {
        b.iter(|| keys.install_jwks(black_box(body.as_bytes())).unwrap())
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(support::server::start(body.clone()));
    let mut config = issuer(&server.provider.issuer);
    config.certificate_authority = Some(server.ca_pem.clone());
    let keys = ProviderKeys::new(&config).unwrap();
    assert_eq!(runtime.block_on(keys.refresh()).unwrap(), 3);
    c.bench_function("oidc refresh (discovery + JWKS) over loopback HTTPS", |b| {
        b.iter(|| runtime.block_on(keys.refresh()).unwrap())
    });

    // Rotation: kgate holds the old key only; the provider now publishes [new, old]. Timed: the
    // first request with a token of the new key (unknown kid, refetch, verify). A fresh
    // authenticator per iteration, as the refetch of one is rate limited.
    let new_key = TestKey::rsa(1, Some("rotated"));
    let new_token = new_key.token(
        "RS256",
        &support::claims(&server.provider.issuer, "kgate", now()),
    );
    let old_jwks = support::jwks(&[&rsa]);
    let rotated_jwks = support::jwks(&[&new_key, &rsa]);
    c.bench_function(
        "oidc key rotation to first accepted token (loopback HTTPS)",
        |b| {
            b.iter_custom(|iterations| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iterations {
                    *server.provider.jwks.lock().unwrap() = old_jwks.clone();
                    let authn = OidcAuthenticator::new(AuthenticationConfig {
                        jwt: vec![config.clone()],
                    });
                    assert!(runtime.block_on(authn.refresh_all()).is_empty());
                    *server.provider.jwks.lock().unwrap() = rotated_jwks.clone();
                    let start = std::time::Instant::now();
                    let user = runtime.block_on(authn.verify_token(&new_token)).unwrap();
                    total += start.elapsed();
                    assert!(user.is_some());
                }
                total
            })
        },
    );
    drop(server);
}

criterion_group!(benches, verify, jwks);
criterion_main!(benches);
