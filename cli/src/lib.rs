//! kgate-cli: the `kgate` binary's library: the command line ([`args`]: clap options and their
//! `validate()`), the completed config of each mode ([`config`]), what each mode runs ([`up`])
//! and the one place it calls the other crates' constructors ([`wiring`]), the cluster's own
//! components ([`cluster`]) and their in-process transport ([`loopback`]), client kubeconfigs,
//! `kgate login`, `kgate rbac`, `kgate node`, `kgate nodes`, and the webhook mode (`kgate
//! webhook`, `kgate token`: [`webhook_cli`]). Nothing else in the workspace depends on it; the
//! gateway's parts live in kgate-gateway.

pub mod args;
pub mod cluster;
pub mod config;
pub mod kubeconfig;
pub mod login;
pub mod loopback;
pub mod node_cli;
pub mod nodes_cli;
pub mod rbac_cli;
pub mod up;
pub mod webhook_cli;
pub mod wiring;
