//! kgate-gateway: the `kgate` binary's library: CLI, config, PKI, the TLS listener, the request
//! pipeline (`chain::build`) and the upstream proxy.

pub mod authn_config;
pub mod authorized;
pub mod chain;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod front_proxy_guard;
pub mod hop_by_hop;
pub mod issuer_discovery;
pub mod kubeconfig;
pub mod layers;
pub mod login;
pub mod loopback;
pub mod node_cli;
pub mod object_index;
pub mod peer;
pub mod pki;
pub mod policy_reload;
pub mod proxy;
pub mod rbac_cli;
pub mod rbac_sync;
pub mod readiness;
pub mod reviews;
pub mod serve;
pub mod tls;
pub mod up;
pub mod upstream;
pub mod watched_file;
pub mod wiring;
pub mod x509;
