//! The `kgate` command line: clap options per subcommand, each with a `validate()` that turns
//! it into a completed config the run functions in [`crate::up`] take. A completed config can
//! only be made by `validate()`, so every run starts from checked settings.

use clap::{Args, Parser, Subcommand};
use http::Uri;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;
use time::Duration;

/// kgate: an authentication and RBAC gateway for Kubernetes, with its own compact control plane.
#[derive(Debug, Parser)]
#[command(name = "kgate", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing-subscriber EnvFilter syntax, e.g. `info,kgate_gateway=debug`).
    #[arg(long, global = true, env = "KGATE_LOG", default_value = "info")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the gateway with the embedded control plane: a whole cluster API in one process.
    Up(UpOptions),
    /// Issue a client certificate from the data directory's CA and print a kubeconfig for it.
    Kubeconfig(KubeconfigOptions),
    /// Start the control plane alone, over mutual TLS, for a separate `kgate gateway`.
    Controlplane(ControlplaneOptions),
    /// Start the gateway alone, in front of a separate `kgate controlplane`.
    Gateway(GatewayOptions),
}

/// Why the options are not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A flag's value is out of range or malformed.
    #[error("--{flag}: {reason}")]
    Invalid { flag: &'static str, reason: String },
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

/// Settings shared by `up` and `gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// Where the PKI, kubeconfig and store live; created on first start.
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// Address to serve HTTPS on; port 0 picks a free port (written into the kubeconfig).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (larger is 413).
    #[arg(long, default_value_t = 3 * 1024 * 1024)]
    pub max_request_bytes: u64,
    /// Largest request header block accepted, in bytes (larger is 431).
    #[arg(long, default_value_t = 256 * 1024)]
    pub max_header_bytes: usize,
    /// Let requests without any credential through as system:anonymous (off by default).
    #[arg(long)]
    pub anonymous_auth: bool,
}

/// `kgate up`.
#[derive(Debug, Clone, Args)]
pub struct UpOptions {
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// `kgate gateway`.
#[derive(Debug, Clone, Args)]
pub struct GatewayOptions {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The control plane to forward to, e.g. https://127.0.0.1:6444 (its serving certificate
    /// must come from this data directory's CA).
    #[arg(long)]
    pub upstream: String,
}

/// `kgate controlplane`.
#[derive(Debug, Clone, Args)]
pub struct ControlplaneOptions {
    /// Where the PKI and store live; created on first start.
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// Address to serve mutual TLS on.
    #[arg(long, default_value = "127.0.0.1:6444")]
    pub listen: SocketAddr,
}

/// `kgate kubeconfig`.
#[derive(Debug, Clone, Args)]
pub struct KubeconfigOptions {
    /// The data directory whose CA signs the certificate.
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// The user name (certificate CN).
    #[arg(long)]
    pub user: String,
    /// A group (certificate O); repeat for several.
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// The server URL written into the kubeconfig.
    #[arg(long, default_value = "https://127.0.0.1:6443")]
    pub server: String,
    /// How long the certificate is valid: a number with s, m, h or d (e.g. 24h, 30d, 1d12h).
    #[arg(long, default_value = "365d")]
    pub expiration: String,
}

/// Gateway settings after validation.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) max_request_bytes: u64,
    pub(crate) max_header_bytes: usize,
    pub(crate) anonymous_auth: bool,
}

impl GatewaySettings {
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

impl GatewayArgs {
    pub fn validate(self) -> Result<GatewaySettings, ConfigError> {
        const MAX_BODY: u64 = 1024 * 1024 * 1024;
        if self.max_request_bytes == 0 || self.max_request_bytes > MAX_BODY {
            return Err(invalid("max-request-bytes", "must be between 1 and 1 GiB"));
        }
        // Below 8 KiB ordinary kubectl requests stop fitting; above 16 MiB is a memory risk.
        if !(8 * 1024..=16 * 1024 * 1024).contains(&self.max_header_bytes) {
            return Err(invalid(
                "max-header-bytes",
                "must be between 8 KiB and 16 MiB",
            ));
        }
        Ok(GatewaySettings {
            data_dir: self.data_dir,
            listen: self.listen,
            max_request_bytes: self.max_request_bytes,
            max_header_bytes: self.max_header_bytes,
            anonymous_auth: self.anonymous_auth,
        })
    }
}

/// `kgate up` after validation.
#[derive(Debug, Clone)]
pub struct UpConfig {
    pub(crate) gateway: GatewaySettings,
}

impl UpConfig {
    pub fn gateway(&self) -> &GatewaySettings {
        &self.gateway
    }
}

impl UpOptions {
    pub fn validate(self) -> Result<UpConfig, ConfigError> {
        Ok(UpConfig {
            gateway: self.gateway.validate()?,
        })
    }
}

/// `kgate gateway` after validation.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub(crate) gateway: GatewaySettings,
    pub(crate) upstream: Uri,
}

impl GatewayConfig {
    pub fn gateway(&self) -> &GatewaySettings {
        &self.gateway
    }
}

impl GatewayOptions {
    pub fn validate(self) -> Result<GatewayConfig, ConfigError> {
        Ok(GatewayConfig {
            gateway: self.gateway.validate()?,
            upstream: https_origin("upstream", &self.upstream)?,
        })
    }
}

/// `kgate controlplane` after validation.
#[derive(Debug, Clone)]
pub struct ControlplaneConfig {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
}

impl ControlplaneOptions {
    pub fn validate(self) -> Result<ControlplaneConfig, ConfigError> {
        Ok(ControlplaneConfig {
            data_dir: self.data_dir,
            listen: self.listen,
        })
    }
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

impl KubeconfigOptions {
    pub fn validate(self) -> Result<KubeconfigConfig, ConfigError> {
        if self.user.trim().is_empty() {
            return Err(invalid("user", "must not be empty"));
        }
        if self.groups.iter().any(|g| g.trim().is_empty()) {
            return Err(invalid("group", "must not be empty"));
        }
        let lifetime =
            parse_duration(&self.expiration).map_err(|reason| invalid("expiration", reason))?;
        if lifetime > crate::pki::CA_VALIDITY {
            return Err(invalid("expiration", "must not outlive the CA (3650d)"));
        }
        Ok(KubeconfigConfig {
            data_dir: self.data_dir,
            user: self.user,
            groups: self.groups,
            server: https_origin("server", &self.server)?,
            lifetime,
        })
    }
}

/// An `https://host:port` URL without a path.
fn https_origin(flag: &'static str, value: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = value
        .parse()
        .map_err(|_| invalid(flag, format!("{value:?} is not a URL")))?;
    if uri.scheme_str() != Some("https") {
        return Err(invalid(flag, "must be an https:// URL"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid(flag, "has no host"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(invalid(flag, "must not have a path"));
    }
    Ok(uri)
}

/// Parses `24h`, `30d`, `90m`, `1d12h`, `45s` into a positive duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => Duration::SECOND,
            'm' => Duration::MINUTE,
            'h' => Duration::HOUR,
            'd' => Duration::DAY,
            _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m, h or d)")),
        };
        let n: i32 = digits
            .parse()
            .map_err(|_| format!("{text:?}: expected a number before {c:?}"))?;
        digits.clear();
        total = total
            .checked_add(
                unit.checked_mul(n)
                    .ok_or_else(|| format!("{text:?} is too long"))?,
            )
            .ok_or_else(|| format!("{text:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!("{text:?}: a number needs a unit (s, m, h or d)"));
    }
    if total <= Duration::ZERO {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::hours(24)));
        assert_eq!(parse_duration("30d"), Ok(Duration::days(30)));
        assert_eq!(parse_duration("1d12h"), Ok(Duration::hours(36)));
        assert_eq!(parse_duration("1s"), Ok(Duration::seconds(1)));
        for bad in ["", "0s", "12", "h", "3w", "-1d", "99999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn up_defaults_validate() {
        let cli = Cli::try_parse_from(["kgate", "up"]).expect("parses");
        let Command::Up(options) = cli.command else {
            panic!("not up");
        };
        let config = options.validate().expect("valid");
        assert_eq!(config.gateway.listen.to_string(), "127.0.0.1:6443");
        assert_eq!(config.gateway.max_request_bytes, 3 * 1024 * 1024);
        assert!(!config.gateway.anonymous_auth);
    }

    #[test]
    fn upstream_must_be_an_https_origin() {
        let options = |upstream: &str| GatewayOptions {
            gateway: GatewayArgs {
                data_dir: ".".into(),
                listen: ([127, 0, 0, 1], 0).into(),
                max_request_bytes: 1024,
                max_header_bytes: 8192,
                anonymous_auth: false,
            },
            upstream: upstream.to_owned(),
        };
        assert!(options("https://127.0.0.1:6444").validate().is_ok());
        assert!(options("http://127.0.0.1:6444").validate().is_err());
        assert!(options("https://127.0.0.1:6444/api").validate().is_err());
    }

    #[test]
    fn kubeconfig_groups_repeat() {
        let cli = Cli::try_parse_from([
            "kgate",
            "kubeconfig",
            "--user",
            "alice",
            "--group",
            "dev",
            "--group",
            "ops",
            "--expiration",
            "24h",
        ])
        .expect("parses");
        let Command::Kubeconfig(options) = cli.command else {
            panic!("not kubeconfig");
        };
        let config = options.validate().expect("valid");
        assert_eq!(config.groups, ["dev", "ops"]);
        assert_eq!(config.lifetime, Duration::hours(24));
    }
}
