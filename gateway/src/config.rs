//! The checked configuration types the gateway's parts take, gathered for whoever builds them
//! (the `kgate` command line in kgate-cli turns its flags into these). Nothing here parses a
//! command line: each type is plain data, defined next to the part that uses it and re-exported
//! here.

/// The OIDC issuers' source and the `system:` opt-in ([`crate::authn_config`]).
pub use crate::authn_config::{AuthenticationSettings, AuthenticationSource};
/// What a connection may hold, and the bounds on the connection count ([`crate::serve`]).
pub use crate::serve::{
    default_max_connections, ConnectionLimits, DEFAULT_MAX_CONNECTIONS_CEILING,
    MAX_CONNECTIONS_LIMIT,
};
/// The legacy `--oidc-*` settings, as kgate-tokens checks them.
pub use kgate_tokens::oidc::LegacyOidcFlags;
