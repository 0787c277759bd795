//! kgate-gateway: the gateway as a library, with no command line: PKI and X.509, the TLS
//! listener (`serve`), the request pipeline (`chain::build` and its layers), the upstream proxy,
//! the token and access reviews, the RBAC sync and object index, and the files it follows while
//! running (authentication configuration, authorization policy). The `kgate` binary (kgate-cli)
//! builds the checked settings in [`config`] from its flags and wires these parts per mode.

pub mod authn_config;
pub mod authorized;
pub mod chain;
pub mod config;
pub mod error;
pub mod front_proxy_guard;
pub mod hop_by_hop;
pub mod issuer_discovery;
pub mod layers;
pub mod object_index;
pub mod peer;
pub mod pki;
pub mod policy_reload;
pub mod proxy;
pub mod rbac_sync;
pub mod readiness;
pub mod reviews;
pub mod serve;
pub mod tls;
pub mod upstream;
pub mod watched_file;
pub mod webhook;
pub mod x509;
