//! The completed configs of each mode: what `validate()` in [`crate::args`] makes of the flags
//! and what the run functions in [`crate::up`] take. Their fields are private to this crate, so
//! a completed config can only come from `validate()` and every run starts from checked settings
//! (the gateway's own parts take the checked types in `kgate_gateway::config`).

use http::Uri;
use kgate_controlplane::apiserver::default_tolerations::DefaultTolerationSeconds;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;
use time::Duration;

/// Why the options are not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A flag's value is out of range or malformed.
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
}

/// ServiceAccount token settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountSettings {
    pub(crate) issuer: String,
    pub(crate) max_token_expiration: std::time::Duration,
    pub(crate) signing_algorithm: kgate_tokens::Algorithm,
}

/// Gateway settings after validation.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) max_request_bytes: u64,
    pub(crate) max_header_bytes: usize,
    pub(crate) anonymous_auth: bool,
    pub(crate) authorization_policy_file: Option<PathBuf>,
    pub(crate) authentication: kgate_gateway::config::AuthenticationSettings,
    pub(crate) limits: kgate_gateway::config::ConnectionLimits,
}

impl GatewaySettings {
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

/// `kgate up` after validation.
#[derive(Debug, Clone)]
pub struct UpConfig {
    pub(crate) gateway: GatewaySettings,
    pub(crate) storage: StorageConfig,
    pub(crate) service_accounts: ServiceAccountSettings,
    pub(crate) admission: DefaultTolerationSeconds,
    pub(crate) cluster: crate::cluster::ClusterSettings,
}

/// The store after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// `DATA_DIR/store/kgate.redb`, keeping this many revisions of history (0: all).
    Embedded {
        history_revisions: u64,
    },
    Etcd(EtcdSettings),
}

/// etcd settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    pub(crate) servers: Vec<String>,
    pub(crate) prefix: String,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
    /// `None`: no compaction by kgate.
    pub(crate) compaction_interval: Option<std::time::Duration>,
}

impl UpConfig {
    pub fn gateway(&self) -> &GatewaySettings {
        &self.gateway
    }
}

/// `kgate gateway` after validation.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub(crate) gateway: GatewaySettings,
    pub(crate) upstream: Uri,
    pub(crate) service_accounts: ServiceAccountSettings,
}

impl GatewayConfig {
    pub fn gateway(&self) -> &GatewaySettings {
        &self.gateway
    }
}

/// `kgate controlplane` after validation.
#[derive(Debug, Clone)]
pub struct ControlplaneConfig {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) storage: StorageConfig,
    pub(crate) service_accounts: ServiceAccountSettings,
    pub(crate) admission: DefaultTolerationSeconds,
    pub(crate) authorization_policy_file: Option<PathBuf>,
    /// `None`: the data directory's front-proxy CA.
    pub(crate) requestheader_client_ca_file: Option<PathBuf>,
    /// Empty: any name the requestheader CA signed.
    pub(crate) requestheader_allowed_names: Vec<String>,
    pub(crate) limits: kgate_gateway::config::ConnectionLimits,
}

/// `kgate kubeconfig` after validation.
#[derive(Debug, Clone)]
pub struct KubeconfigConfig {
    pub(crate) data_dir: PathBuf,
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
    pub(crate) server: Uri,
    pub(crate) lifetime: Duration,
}
