//! kgate-tokens: the bearer tokens kgate verifies. Kubernetes ServiceAccount tokens, with no HTTP
//! and no store (the cluster is seen through [`ObjectLookup`]); and OIDC ID tokens ([`oidc`]),
//! whose providers' discovery documents and keys it fetches over HTTPS. Depends on `kgate-core`
//! only among kgate's crates.
//!
//! - [`keys`]: the signing keys on disk, rotation and pruning, the JWKS, a set shared with a running
//!   kgate ([`SharedKeys`]).
//! - [`issuer`]: bound tokens (TokenRequest) and legacy Secret tokens ([`TokenIssuer`]).
//! - [`verify`] and [`authenticator`]: the rules a token must pass and the
//!   [`kgate_core::authn::Authenticator`] with its cache of verified tokens
//!   ([`ServiceAccountAuthenticator`]).
//! - [`machine`]: machine tokens, issued to machines for clusters kgate authenticates as a
//!   webhook, revocable by id.
//! - [`digest`]: keyed digests of tokens, how a legacy token's Secret is compared with it.
//! - [`discovery`]: the `/.well-known/openid-configuration` document.
//! - [`oidc`]: OIDC users: the `AuthenticationConfiguration` and the legacy `--oidc-*` flags,
//!   each provider's keys, the token checks and claim mappings, and [`oidc::OidcAuthenticator`].
//!
//! JWTs are encoded and decoded by `jsonwebtoken`; every signature is made and checked by
//! `ring` (see `crypto`), the library rustls already uses here. Tokens and private keys never
//! reach `Debug`, a log line or an error text.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod authenticator;
mod cache;
pub mod claims;
mod crypto;
pub mod digest;
pub mod discovery;
pub mod issuer;
pub mod keys;
pub mod machine;
pub mod oidc;
pub mod verify;

#[cfg(test)]
mod testutil;

pub use authenticator::{
    ObjectKind, ObjectLookup, ObjectState, ServiceAccountAuthenticator, TokenSecretState,
    LEGACY_TOKEN_INVALID_SINCE_LABEL,
};
pub use cache::DEFAULT_CAPACITY as DEFAULT_CACHE_CAPACITY;
pub use digest::{TokenDigest, TokenDigester};
pub use discovery::{discovery_document, discovery_document_for};
pub use issuer::{
    BoundKind, BoundObject, IssueError, IssuedToken, IssuerConfig, TokenIssuer, TokenRequestSpec,
};
pub use keys::{Algorithm, KeyError, KeySet, SharedKeys};
pub use verify::{VerifyError, LEEWAY_SECONDS, MAX_TOKEN_BYTES};
