//! The checks on one token for one issuer, as kube-apiserver's JWT authenticator (go-oidc's
//! `IDTokenVerifier`) makes them.
//!
//! Threat model: the token comes from anyone. A token over [`MAX_TOKEN_BYTES`] is refused before
//! parsing. The unverified `iss` only picks the issuer ([`ParsedToken::issuer`]); nothing else
//! is trusted until the signature checks. The header's algorithm must be an asymmetric one kgate
//! verifies ([`SUPPORTED_ALGORITHMS`]; `none` and HMAC never are) and one the issuer accepts;
//! the key is found by `kid` (a token without kid is tried against every key of the right
//! type) and must be of the algorithm's type, so no algorithm confusion (RS256 vs ES256, HS256
//! keyed with a public key) is possible. After the signature: `iss`, `aud` (any configured
//! audience), `exp` (required, no leeway, as go-oidc), `nbf` and `iat` (with
//! [`NBF_LEEWAY_SECONDS`] of clock skew, go-oidc's for `nbf`), then the issuer's claim rules and
//! mappings make the user, who gets `system:authenticated`. Error texts name the check and the
//! issuer, never the token.

use crate::oidc::config::JwtIssuer;
use crate::oidc::jwks::{JwksError, Key, ProviderKeys};
use crate::oidc::mapping::ClaimsError;
use crate::verify::MAX_TOKEN_BYTES;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use kgate_core::UserInfo;
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr as _;
use std::sync::Arc;
use thiserror::Error;

/// Clock skew allowed on `nbf` and `iat`, in seconds (go-oidc's for `nbf`). `exp` has none.
pub const NBF_LEEWAY_SECONDS: i64 = 5 * 60;

/// The algorithms kgate verifies, and what an issuer without `signing_algs` accepts. ES512
/// (P-521) is not among them: ring does not verify it.
pub const SUPPORTED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Why a token of a configured issuer was refused. The text names the check and the issuer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OidcError {
    /// Over [`MAX_TOKEN_BYTES`]; refused before parsing.
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// Not a compact JWS with a JSON header and a JSON object payload.
    #[error("token of issuer {issuer} is malformed: {what}")]
    Malformed { issuer: String, what: &'static str },
    /// `none`, HMAC, an unknown algorithm, or one the issuer does not accept.
    #[error("token algorithm {alg:?} is not accepted for issuer {issuer}")]
    UnsupportedAlgorithm { issuer: String, alg: String },
    /// The key its kid names is of another type than the algorithm needs.
    #[error("token algorithm does not match its signing key's type (issuer {issuer})")]
    AlgorithmMismatch { issuer: String },
    /// No key of the issuer has its kid (or, without kid, its key type), even after a refetch.
    #[error("token was signed by a key issuer {issuer} does not publish")]
    UnknownKey { issuer: String },
    /// No candidate key verifies the signature.
    #[error("invalid token signature (issuer {issuer})")]
    BadSignature { issuer: String },
    /// The signed `iss` is not the issuer's URL.
    #[error("token issuer does not match {issuer}")]
    WrongIssuer { issuer: String },
    /// No audience of the token is configured.
    #[error("token audiences are not among those of issuer {issuer}")]
    WrongAudience { issuer: String },
    /// No `exp`.
    #[error("token of issuer {issuer} has no expiry")]
    MissingExpiry { issuer: String },
    #[error("token of issuer {issuer} has expired")]
    Expired { issuer: String },
    /// `nbf` more than the leeway ahead.
    #[error("token of issuer {issuer} is not valid yet")]
    NotYetValid { issuer: String },
    /// `iat` more than the leeway ahead.
    #[error("token of issuer {issuer} is issued in the future")]
    IssuedInFuture { issuer: String },
    /// The claim rules or mappings refused the verified claims.
    #[error("token of issuer {issuer}: {source}")]
    Claims {
        issuer: String,
        #[source]
        source: ClaimsError,
    },
    /// The issuer's keys are not loaded (provider down, misconfigured): not decidable now.
    #[error("keys of issuer {issuer} are unavailable: {reason}")]
    KeysUnavailable { issuer: String, reason: String },
}

impl OidcError {
    /// True when the token could not be judged (rather than was refused).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::KeysUnavailable { .. })
    }

    /// True when the token maps to a user or group name in the reserved `system:` namespace
    /// that its issuer may not assert.
    pub fn is_reserved_identity(&self) -> bool {
        matches!(
            self,
            Self::Claims {
                source: ClaimsError::ReservedUsername { .. } | ClaimsError::ReservedGroup { .. },
                ..
            }
        )
    }
}

/// A compact JWS split, with its payload parsed but not verified.
#[derive(Debug)]
pub struct ParsedToken<'t> {
    header: &'t str,
    /// `header.payload`: what the signature covers.
    signing_input: &'t str,
    signature: &'t str,
    /// The payload, a JSON object; trusted only after [`verify_claims`].
    claims: Value,
}

impl<'t> ParsedToken<'t> {
    /// `None` when `token` is not three base64url parts with a JSON object payload.
    pub fn parse(token: &'t str) -> Option<Self> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        let (header, payload) = signing_input.split_once('.')?;
        if payload.contains('.') {
            return None;
        }
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let claims: Value = serde_json::from_slice(&payload).ok()?;
        if !claims.is_object() {
            return None;
        }
        Some(Self {
            header,
            signing_input,
            signature,
            claims,
        })
    }

    /// The unverified `iss`, only to pick the issuer.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss")?.as_str()
    }
}

/// The JOSE header members read.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Critical extensions: kgate understands none, so a token that has some is refused.
    #[serde(default)]
    crit: Option<Value>,
}

/// A token whose signature and registered claims checked.
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    /// The payload.
    pub claims: Value,
    /// `exp`, seconds since the Unix epoch (rounded down).
    pub expires_at: i64,
    /// The key that verified it.
    pub key: Arc<Key>,
}

/// A verified token and its user.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: UserInfo,
    pub expires_at: i64,
    pub key: Arc<Key>,
}

/// Every check of the module documentation on `token` for `issuer`, at `now` (seconds since
/// the Unix epoch).
pub async fn verify_token(
    issuer: &JwtIssuer,
    keys: &ProviderKeys,
    token: &str,
    now: i64,
) -> Result<Verified, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::TooLarge);
    }
    let parsed = ParsedToken::parse(token).ok_or_else(|| OidcError::Malformed {
        issuer: issuer.issuer_url.clone(),
        what: "not a signed JWT with a JSON object payload",
    })?;
    let verified = verify_claims(issuer, keys, parsed, now).await?;
    let user = user_of(issuer, &verified.claims)?;
    Ok(Verified {
        user,
        expires_at: verified.expires_at,
        key: verified.key,
    })
}

/// The user verified claims stand for, with `system:authenticated`.
pub fn user_of(issuer: &JwtIssuer, claims: &Value) -> Result<UserInfo, OidcError> {
    let mut user = issuer
        .user_from_claims(claims)
        .map_err(|source| OidcError::Claims {
            issuer: issuer.issuer_url.clone(),
            source,
        })?;
    user.add_authenticated_group();
    Ok(user)
}

/// The signature and registered claims (everything but the issuer's claim rules).
pub async fn verify_claims(
    issuer: &JwtIssuer,
    keys: &ProviderKeys,
    token: ParsedToken<'_>,
    now: i64,
) -> Result<VerifiedClaims, OidcError> {
    let name = || issuer.issuer_url.clone();
    let malformed = |what| OidcError::Malformed {
        issuer: name(),
        what,
    };
    let header = URL_SAFE_NO_PAD
        .decode(token.header)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|_| malformed("header is not a JOSE header"))?;
    if header.crit.is_some() {
        return Err(malformed("header has critical extensions"));
    }
    let alg = accepted_algorithm(issuer, &header.alg).ok_or_else(|| {
        OidcError::UnsupportedAlgorithm {
            issuer: name(),
            // The header is the sender's: keep it short.
            alg: header.alg.chars().take(32).collect(),
        }
    })?;
    let candidates = keys
        .keys_for(header.kid.as_deref(), alg)
        .await
        .map_err(|e| match e {
            JwksError::UnknownKey { .. } => OidcError::UnknownKey { issuer: name() },
            JwksError::AlgorithmMismatch { .. } => OidcError::AlgorithmMismatch { issuer: name() },
            other => OidcError::KeysUnavailable {
                issuer: name(),
                reason: other.to_string(),
            },
        })?;
    let key = candidates
        .into_iter()
        .find(|key| {
            jsonwebtoken::crypto::verify(
                token.signature,
                token.signing_input.as_bytes(),
                &key.decoding,
                alg,
            )
            .unwrap_or(false)
        })
        .ok_or_else(|| OidcError::BadSignature { issuer: name() })?;

    let claims = token.claims;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.issuer_url.as_str()) {
        return Err(OidcError::WrongIssuer { issuer: name() });
    }
    let audience_matches = match claims.get("aud") {
        Some(Value::String(aud)) => issuer.audiences.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| issuer.audiences.iter().any(|a| a == aud)),
        _ => false,
    };
    if !audience_matches {
        return Err(OidcError::WrongAudience { issuer: name() });
    }
    let time = |claim: &'static str| -> Result<Option<f64>, OidcError> {
        match claims.get(claim) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_f64()
                .filter(|t| t.is_finite())
                .map(Some)
                .ok_or_else(|| malformed(claim_not_a_time(claim))),
        }
    };
    let now_f = now as f64;
    let exp = time("exp")?.ok_or_else(|| OidcError::MissingExpiry { issuer: name() })?;
    if now_f > exp {
        return Err(OidcError::Expired { issuer: name() });
    }
    let horizon = now.saturating_add(NBF_LEEWAY_SECONDS) as f64;
    if time("nbf")?.is_some_and(|nbf| nbf > horizon) {
        return Err(OidcError::NotYetValid { issuer: name() });
    }
    if time("iat")?.is_some_and(|iat| iat > horizon) {
        return Err(OidcError::IssuedInFuture { issuer: name() });
    }
    Ok(VerifiedClaims {
        claims,
        // Saturating float-to-int conversion.
        expires_at: exp.floor() as i64,
        key,
    })
}

fn claim_not_a_time(claim: &'static str) -> &'static str {
    match claim {
        "exp" => "exp is not a number",
        "nbf" => "nbf is not a number",
        _ => "iat is not a number",
    }
}

/// The header's algorithm if kgate verifies it and the issuer accepts it.
fn accepted_algorithm(issuer: &JwtIssuer, name: &str) -> Option<Algorithm> {
    let alg = Algorithm::from_str(name)
        .ok()
        .filter(|alg| SUPPORTED_ALGORITHMS.contains(alg))?;
    (issuer.signing_algs.is_empty() || issuer.signing_algs.iter().any(|a| a == name)).then_some(alg)
}

#[cfg(test)]
#[path = "verify_tests.rs"]
pub(crate) mod tests;
