//! `jwt_oidc`: the OIDC (JWT authenticator) path: [`ParsedToken::parse`] and the JOSE header
//! read before the signature, the registered-claim checks and the issuer's claim rules and
//! mappings (CEL included) after it ([`verify_token`]), and the JWKS reader ([`parse_jwks`]).
//!
//! Input: a mode byte, then
//! - mode & 3 == 0: a raw token. Nothing the fuzzer writes is signed by the issuer's key, so it
//!   must never verify.
//! - mode & 3 == 1 or 3: `header \n claims` signed here with the issuer's key (kid `fuzz`);
//!   without a newline the input is the claims under `{"alg":"ES256","kid":"fuzz"}`. What
//!   verifies must meet the configuration: `iss` is the issuer, `exp` not past, the user has
//!   `system:authenticated` and passes the issuer's rules (the `oidc:` prefix of issuer 0, no
//!   `banned` claim and no `admin` user for issuer 1).
//! - mode & 3 == 2: a JWKS document.
//!
//! Mode bit 2 picks the issuer: 0 maps claims with `claim`/`prefix`, 1 with CEL expressions.
//! The issuers' discovery URL is loopback port 1, so the refetch an unknown `kid` triggers is
//! refused at once (and then rate limited) rather than leaving the machine.

use crate::jose::{split_signed, Signer};
use kgate_tokens::oidc::jwks::{parse_jwks, ProviderKeys};
use kgate_tokens::oidc::verify::{verify_token, ParsedToken};
use kgate_tokens::oidc::{AuthenticationConfig, JwtIssuer};
use serde_json::{json, Value};
use std::sync::OnceLock;

/// The verifier's clock (2027-01-15), as for ServiceAccount tokens.
pub const NOW: i64 = 1_800_000_000;
/// The kid of the issuers' key.
pub const KID: &str = "fuzz";

/// The `AuthenticationConfiguration` of the two issuers.
pub fn config() -> Value {
    let discovery = "https://127.0.0.1:1/.well-known/openid-configuration";
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {"url": "https://idp.fuzz", "discoveryURL": discovery, "audiences": ["kgate"]},
                "claimValidationRules": [{"claim": "hd", "requiredValue": "example.com"}],
                "claimMappings": {
                    "username": {"claim": "sub", "prefix": "oidc:"},
                    "groups": {"claim": "groups", "prefix": "oidc:"},
                    "uid": {"claim": "sub"},
                },
            },
            {
                "issuer": {
                    "url": "https://cel.fuzz",
                    "discoveryURL": discovery,
                    "audiences": ["kgate", "other"],
                    "audienceMatchPolicy": "MatchAny",
                },
                "claimValidationRules": [{"expression": "!has(claims.banned)", "message": "banned"}],
                "claimMappings": {
                    "username": {"expression": "claims.email_verified ? claims.email : claims.sub"},
                    "groups": {"expression": "has(claims.groups) ? claims.groups : []"},
                    "uid": {"expression": "claims.sub"},
                    "extra": [{"key": "example.com/tenant", "valueExpression": "claims.?tenant.orValue('none')"}],
                },
                "userValidationRules": [
                    {"expression": "!user.username.startsWith('admin')", "message": "no admins"},
                ],
            },
        ],
    })
}

struct Setup {
    issuers: Vec<(JwtIssuer, ProviderKeys)>,
    signer: Signer,
    runtime: tokio::runtime::Runtime,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let config = AuthenticationConfig::parse(config().to_string().as_bytes())
            .unwrap_or_else(|e| panic!("the fuzz issuers' configuration: {e}"));
        let signer = Signer::generate();
        let jwks = json!({"keys": [signer.jwk(KID)]}).to_string();
        let issuers = config
            .jwt
            .into_iter()
            .map(|issuer| {
                let keys = ProviderKeys::new(&issuer).unwrap_or_else(|e| panic!("keys: {e}"));
                keys.install_jwks(jwks.as_bytes())
                    .unwrap_or_else(|e| panic!("JWKS: {e}"));
                (issuer, keys)
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        Setup {
            issuers,
            signer,
            runtime,
        }
    })
}

/// Runs one input; true when the token verified (or the JWKS was read).
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let setup = setup();
    let (issuer, keys) = &setup.issuers[usize::from(mode >> 2 & 1)];
    match mode & 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return false;
            };
            let result = setup
                .runtime
                .block_on(verify_token(issuer, keys, token, NOW));
            assert!(
                result.is_err(),
                "a token not signed by the issuer's key verified"
            );
            false
        }
        2 => parse_jwks(rest).is_ok(),
        _ => {
            let (header, claims) = split_signed(rest, br#"{"alg":"ES256","kid":"fuzz"}"#);
            let token = setup.signer.token(header, claims);
            let result = setup
                .runtime
                .block_on(verify_token(issuer, keys, &token, NOW));
            let Ok(verified) = result else {
                return false;
            };
            let parsed = ParsedToken::parse(&token).unwrap_or_else(|| panic!("verified, unparsed"));
            assert_eq!(parsed.issuer(), Some(issuer.issuer_url.as_str()));
            let claims: Value =
                serde_json::from_slice(claims).unwrap_or_else(|e| panic!("claims: {e}"));
            let exp = claims.get("exp").and_then(Value::as_f64);
            assert!(exp.is_some_and(|exp| exp >= NOW as f64), "exp {exp:?}");
            // Saturating, as the verifier's.
            assert_eq!(Some(verified.expires_at), exp.map(|exp| exp.floor() as i64));
            let user = &verified.user;
            assert!(!user.name.is_empty());
            assert!(user.in_group(kgate_core::user::ALL_AUTHENTICATED));
            if issuer.issuer_url == "https://idp.fuzz" {
                assert!(user.name.starts_with("oidc:"), "{:?}", user.name);
                assert_eq!(
                    claims.get("hd").and_then(Value::as_str),
                    Some("example.com")
                );
            } else {
                assert!(!user.name.starts_with("admin"), "{:?}", user.name);
                assert!(claims.get("banned").is_none());
            }
            true
        }
    }
}
