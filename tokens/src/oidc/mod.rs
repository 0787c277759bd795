//! OIDC users: JWT ID tokens from one or more OpenID providers, configured as Kubernetes'
//! structured authentication configuration (`AuthenticationConfiguration`,
//! apiserver.config.k8s.io/v1, v1beta1 and v1alpha1) or its legacy single-issuer `--oidc-*` flags.
//!
//! - [`config`]: the configuration file and the legacy flags, parsed and validated into one
//!   [`config::AuthenticationConfig`] (a list of [`config::JwtIssuer`]); errors name the field.
//! - `cel`: the CEL expressions of the configuration, compiled once when it loads.
//! - [`mapping`]: from verified claims to a [`kgate_core::UserInfo`]: claim validation rules,
//!   claim mappings (username, groups, uid, extra), user validation rules.
//! - [`jwks`]: per issuer, discovery and the JWKS through the `openidconnect` crate; keys cached,
//!   refetched (rate limited) on an unknown `kid`, retried in the background while a provider is
//!   down.
//! - [`verify`]: the checks on one token for one issuer: signature with an allowed asymmetric
//!   algorithm, issuer, audience, `exp` (no leeway, as go-oidc), `nbf`/`iat` with leeway.
//! - [`authenticator`]: [`OidcAuthenticator`], the [`kgate_core::authn::Authenticator`] over all
//!   issuers, with its cache of verified tokens and its replaceable configuration (reload).

pub mod authenticator;
mod cel;
pub mod config;
pub mod jwks;
pub mod mapping;
pub mod verify;

pub use authenticator::{IssuerStatus, OidcAuthenticator};
pub use config::{AuthenticationConfig, ConfigError, JwtIssuer, LegacyOidcFlags};
pub use mapping::ClaimsError;
