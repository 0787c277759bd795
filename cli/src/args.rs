//! The `kgate` command line: clap options per subcommand, each with a `validate()` that turns
//! it into a completed config ([`crate::config`]) the run functions in [`crate::up`] take. A
//! completed config can only be made by `validate()`, so every run starts from checked settings.

use crate::config::{
    ConfigError, ControlplaneConfig, EtcdSettings, GatewayConfig, GatewaySettings,
    KubeconfigConfig, ServiceAccountSettings, StorageConfig, UpConfig,
};
use clap::{Args, Parser, Subcommand};
use http::Uri;
use kgate_controlplane::apiserver::default_tolerations::DefaultTolerationSeconds;
use std::net::SocketAddr;
use std::path::PathBuf;
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
    Up(Box<UpOptions>),
    /// Issue a client certificate from the data directory's CA and print a kubeconfig for it.
    Kubeconfig(KubeconfigOptions),
    /// Manage the ServiceAccount token signing keys of a data directory.
    Keys(KeysOptions),
    /// Start the control plane alone, over mutual TLS, for a separate `kgate gateway`.
    Controlplane(ControlplaneOptions),
    /// Start the gateway alone, in front of a separate `kgate controlplane`.
    Gateway(GatewayOptions),
    /// Ask RBAC offline: who may make a request, or why a user may or may not.
    Rbac(RbacOptions),
    /// Log in to an OpenID provider and print a kubectl ExecCredential (a kubectl exec
    /// credential plugin; `kgate kubeconfig oidc` writes a kubeconfig that runs it).
    Login(crate::login::LoginOptions),
    /// List the Nodes, add a simulated one, or stop/start a simulated node's agent (a client
    /// of a running kgate).
    Node(crate::node_cli::NodeOptions),
    /// Run simulated nodes against any API server (a real kube-apiserver too): create N Nodes
    /// and run their agents until stopped.
    Nodes(crate::nodes_cli::NodesOptions),
    /// Serve as the token authentication and authorization webhook of a cluster kgate does not
    /// run (`kgate webhook config` writes what its kube-apiserver needs).
    Webhook(crate::webhook_cli::WebhookOptions),
    /// Machine tokens for the webhook mode: create, revoke, list.
    Token(crate::webhook_cli::TokenOptions),
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
    /// An AuthorizationPolicy file (a casbin model and policy lines): its deny lines are
    /// checked before system:masters and RBAC, its allow lines after RBAC. Reloaded when it
    /// changes; a bad file stops kgate at start and is ignored (with a warning) on reload.
    #[arg(long)]
    pub authorization_policy_file: Option<PathBuf>,
    #[command(flatten)]
    pub authentication: AuthenticationArgs,
    #[command(flatten)]
    pub serving: ServingArgs,
}

/// What the HTTPS listener lets a connection hold (`up`, `gateway` and `controlplane`): without
/// bounds, idle connections that never authenticate exhaust file descriptors. The timeouts and
/// the stream bound are kube-apiserver's; it has no connection bound.
#[derive(Debug, Clone, Args)]
pub struct ServingArgs {
    /// The most connections served at once; one more is closed as soon as it is accepted, before
    /// the TLS handshake. Default: three quarters of the open-files limit (`ulimit -n`; the rest
    /// is for the store, upstream connections and logs), at most 10,000.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// How long a connection may stay open without a request in flight (a watch is in flight
    /// until it ends), as kube-apiserver's IdleTimeout; an idle HTTP/1.1 connection also closes
    /// at --read-header-timeout if that is shorter. A number with s, m, h or d.
    #[arg(long, default_value = "90s", value_name = "DURATION")]
    pub idle_timeout: String,
    /// How long a client may take to send its request headers: the first request of every
    /// connection, and every HTTP/1.1 request, as kube-apiserver's ReadHeaderTimeout. A number
    /// with s, m, h or d.
    #[arg(long, default_value = "32s", value_name = "DURATION")]
    pub read_header_timeout: String,
    /// The most concurrent streams a client may open on one HTTP/2 connection (kube-apiserver's
    /// flag and default).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub http2_max_streams_per_connection: u32,
}

impl ServingArgs {
    pub fn validate(self) -> Result<kgate_gateway::config::ConnectionLimits, ConfigError> {
        use kgate_gateway::config::{ConnectionLimits, MAX_CONNECTIONS_LIMIT};
        let max_connections = match self.max_connections {
            None => kgate_gateway::config::default_max_connections(),
            Some(n) if (1..=MAX_CONNECTIONS_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(invalid(
                    "max-connections",
                    format!("must be between 1 and {MAX_CONNECTIONS_LIMIT}"),
                ))
            }
        };
        let timeout = |flag: &'static str, text: &str| {
            let duration = parse_duration(text).map_err(|reason| invalid(flag, reason))?;
            std::time::Duration::try_from(duration)
                .map_err(|_| invalid(flag, "must not be negative"))
        };
        if self.http2_max_streams_per_connection == 0 {
            return Err(invalid(
                "http2-max-streams-per-connection",
                "must be at least 1",
            ));
        }
        Ok(ConnectionLimits {
            max_connections,
            idle_timeout: timeout("idle-timeout", &self.idle_timeout)?,
            read_header_timeout: timeout("read-header-timeout", &self.read_header_timeout)?,
            http2_max_concurrent_streams: self.http2_max_streams_per_connection,
        })
    }
}

/// OIDC users: Kubernetes' structured authentication configuration, or its legacy single-issuer
/// flags (the two are exclusive, as in kube-apiserver).
#[derive(Debug, Clone, Default, Args)]
pub struct AuthenticationArgs {
    /// An AuthenticationConfiguration file (apiserver.config.k8s.io/v1, v1beta1 or v1alpha1)
    /// listing the JWT issuers whose ID tokens are accepted. Reloaded when it changes; a bad file
    /// stops kgate at start and is ignored (with a warning) on reload.
    #[arg(long, value_name = "FILE")]
    pub authentication_config: Option<PathBuf>,
    /// The URL of the OpenID issuer (https); only tokens whose `iss` is this URL are accepted.
    #[arg(long, value_name = "URL", conflicts_with = "authentication_config")]
    pub oidc_issuer_url: Option<String>,
    /// The client ID the ID tokens must be issued to (their audience).
    #[arg(long, value_name = "ID", requires = "oidc_issuer_url")]
    pub oidc_client_id: Option<String>,
    /// The claim to use as the user name (default `sub`).
    #[arg(long, value_name = "CLAIM", requires = "oidc_issuer_url")]
    pub oidc_username_claim: Option<String>,
    /// Prepended to user names (default `ISSUER_URL#` unless the claim is `email`; `-` for none).
    #[arg(long, value_name = "PREFIX", requires = "oidc_issuer_url")]
    pub oidc_username_prefix: Option<String>,
    /// The claim holding the user's groups (a string or a list of strings).
    #[arg(long, value_name = "CLAIM", requires = "oidc_issuer_url")]
    pub oidc_groups_claim: Option<String>,
    /// Prepended to group names.
    #[arg(long, value_name = "PREFIX", requires = "oidc_issuer_url")]
    pub oidc_groups_prefix: Option<String>,
    /// A claim the ID token must have with this value; repeat for several.
    #[arg(long, value_name = "KEY=VALUE", requires = "oidc_issuer_url")]
    pub oidc_required_claim: Vec<String>,
    /// PEM certificates of the authorities that signed the issuer's serving certificate (else the
    /// system's roots).
    #[arg(long, value_name = "FILE", requires = "oidc_issuer_url")]
    pub oidc_ca_file: Option<PathBuf>,
    /// The JWS algorithms accepted (comma-separated; default RS256).
    #[arg(
        long,
        value_name = "ALGS",
        value_delimiter = ',',
        requires = "oidc_issuer_url"
    )]
    pub oidc_signing_algs: Vec<String>,
    /// DANGEROUS: accept user names and groups starting with `system:` in this issuer's ID
    /// tokens (its URL, as configured); repeat for several. Refused by default for every issuer,
    /// since such a name is one of Kubernetes' own (`system:masters` is cluster-admin whatever
    /// RBAC says). Only for a provider that alone decides these names, never users.
    #[arg(long, value_name = "ISSUER_URL")]
    pub dangerous_oidc_system_identities: Vec<String>,
}

impl AuthenticationArgs {
    pub fn validate(self) -> Result<kgate_gateway::config::AuthenticationSettings, ConfigError> {
        use kgate_gateway::config::AuthenticationSettings;
        let system_identity_issuers = self.dangerous_oidc_system_identities.clone();
        let source = self.source()?;
        if matches!(source, kgate_gateway::config::AuthenticationSource::None)
            && !system_identity_issuers.is_empty()
        {
            return Err(invalid(
                "dangerous-oidc-system-identities",
                "names an issuer, but no --authentication-config or --oidc-issuer-url configures any",
            ));
        }
        Ok(AuthenticationSettings {
            source,
            system_identity_issuers,
        })
    }

    fn source(self) -> Result<kgate_gateway::config::AuthenticationSource, ConfigError> {
        use kgate_gateway::config::AuthenticationSource;
        if let Some(path) = self.authentication_config {
            return Ok(AuthenticationSource::File(path));
        }
        let Some(issuer_url) = self.oidc_issuer_url else {
            return Ok(AuthenticationSource::None);
        };
        let client_id = self
            .oidc_client_id
            .ok_or_else(|| invalid("oidc-client-id", "is required with --oidc-issuer-url"))?;
        let mut required_claims = Vec::with_capacity(self.oidc_required_claim.len());
        for pair in &self.oidc_required_claim {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(invalid(
                    "oidc-required-claim",
                    format!("{pair:?} is not KEY=VALUE"),
                ));
            };
            required_claims.push((key.to_owned(), value.to_owned()));
        }
        let signing_algs = if self.oidc_signing_algs.is_empty() {
            vec!["RS256".to_owned()]
        } else {
            self.oidc_signing_algs
        };
        Ok(AuthenticationSource::Flags {
            flags: Box::new(kgate_gateway::config::LegacyOidcFlags {
                issuer_url,
                client_id,
                username_claim: self.oidc_username_claim,
                username_prefix: self.oidc_username_prefix,
                groups_claim: self.oidc_groups_claim,
                groups_prefix: self.oidc_groups_prefix,
                required_claims,
                ca_pem: None,
                signing_algs,
            }),
            ca_file: self.oidc_ca_file,
        })
    }
}

/// `kgate up`.
#[derive(Debug, Clone, Args)]
pub struct UpOptions {
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub service_accounts: ServiceAccountArgs,
    #[command(flatten)]
    pub admission: AdmissionArgs,
    #[command(flatten)]
    pub cluster: crate::cluster::ClusterArgs,
}

/// What the control plane's admission adds to new objects (kube-apiserver's flags).
#[derive(Debug, Clone, Args)]
pub struct AdmissionArgs {
    /// The tolerationSeconds of the `node.kubernetes.io/not-ready:NoExecute` toleration added
    /// to every new pod without one: how long its pods stay on a node that is not ready.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub default_not_ready_toleration_seconds: u32,
    /// The same for `node.kubernetes.io/unreachable:NoExecute`: how long pods stay on a node
    /// that stopped renewing its Lease before they are evicted.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub default_unreachable_toleration_seconds: u32,
}

impl AdmissionArgs {
    pub fn settings(&self) -> DefaultTolerationSeconds {
        DefaultTolerationSeconds {
            not_ready: self.default_not_ready_toleration_seconds,
            unreachable: self.default_unreachable_toleration_seconds,
        }
    }
}

/// How the control plane issues ServiceAccount tokens (TokenRequest and legacy token
/// Secrets). The flags are kube-apiserver's; the signing keys are kept in
/// `DATA_DIR/pki/service-account-keys`.
#[derive(Debug, Clone, Args)]
pub struct ServiceAccountArgs {
    /// The `iss` of the ServiceAccount tokens issued, also their default audience.
    #[arg(long, default_value = "https://kubernetes.default.svc.cluster.local")]
    pub service_account_issuer: String,
    /// The longest lifetime a TokenRequest may ask for (longer requests are shortened), between
    /// 1h and 2^32 seconds. A number with s, m, h or d.
    #[arg(long, default_value = "48h")]
    pub service_account_max_token_expiration: String,
    /// The algorithm of the signing key created at first start: RS256 (as kubeadm's `sa.key`)
    /// or ES256 (signs about 15 times faster; verifiers need ECDSA P-256). An existing key is
    /// kept; `kgate keys rotate --algorithm` changes it.
    #[arg(long, default_value = "RS256", value_name = "ALG")]
    pub service_account_signing_algorithm: String,
}

impl ServiceAccountArgs {
    pub fn validate(self) -> Result<ServiceAccountSettings, ConfigError> {
        let issuer = self.service_account_issuer.trim().to_owned();
        if issuer.is_empty() {
            return Err(invalid("service-account-issuer", "must not be empty"));
        }
        // As kube-apiserver: an issuer holding a ':' must be a URL.
        if issuer.contains(':') && issuer.parse::<Uri>().map_or(true, |u| u.scheme().is_none()) {
            return Err(invalid(
                "service-account-issuer",
                format!("{issuer:?} contains a ':' but is not a valid URL"),
            ));
        }
        let flag = "service-account-max-token-expiration";
        let max = parse_duration(&self.service_account_max_token_expiration)
            .map_err(|reason| invalid(flag, reason))?;
        if max < Duration::HOUR || max > Duration::seconds(1 << 32) {
            return Err(invalid(flag, "must be between 1h and 2^32 seconds"));
        }
        let max_token_expiration = std::time::Duration::try_from(max)
            .map_err(|_| invalid(flag, "must not be negative"))?;
        let signing_algorithm = self
            .service_account_signing_algorithm
            .parse()
            .map_err(|e: String| invalid("service-account-signing-algorithm", e))?;
        Ok(ServiceAccountSettings {
            issuer,
            max_token_expiration,
            signing_algorithm,
        })
    }
}

/// Where the control plane keeps objects: the embedded store in the data directory (the
/// default), or etcd v3. The flags are kube-apiserver's.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// etcd v3 servers to store objects in, comma separated (e.g. http://127.0.0.1:2379),
    /// instead of the embedded store in the data directory.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// The etcd key prefix every object is stored under.
    #[arg(long, default_value = "/registry/")]
    pub etcd_prefix: String,
    /// The CA that signs the etcd servers' certificates (for https:// servers).
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// A client certificate to present to etcd (with --etcd-keyfile).
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    /// The key of --etcd-certfile.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// How often etcd's history is compacted (to the revision seen one interval before); 0
    /// turns it off. A number with s, m, h or d.
    #[arg(long, default_value = "5m")]
    pub etcd_compaction_interval: String,
    /// Revisions of history the embedded store keeps for watches and reads at older
    /// revisions; older ones are compacted automatically. 0 keeps everything.
    #[arg(long, default_value_t = 10_000)]
    pub history_revisions: u64,
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
    /// The issuer the gateway accepts ServiceAccount tokens from: the same as the control
    /// plane's.
    #[command(flatten)]
    pub service_accounts: ServiceAccountArgs,
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
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub service_accounts: ServiceAccountArgs,
    #[command(flatten)]
    pub admission: AdmissionArgs,
    /// The gateway's AuthorizationPolicy file: the escalation and bind checks of RBAC writes
    /// ask the same chain as the gateway's requests, deny lines first, so give both processes
    /// the same file. Reloaded when it changes.
    #[arg(long)]
    pub authorization_policy_file: Option<PathBuf>,
    /// PEM certificates of the CAs whose client certificates may send the front-proxy identity
    /// headers (X-Remote-User, X-Remote-Group, X-Remote-Extra-*). Default: the data directory's
    /// pki/front-proxy-ca.crt, which signs only the gateway's front-proxy certificate. Never the
    /// CA of users: anyone it signs could then claim any identity.
    #[arg(long, value_name = "FILE")]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// The common names a --requestheader-client-ca-file certificate must have for its headers to
    /// be believed (comma-separated); an empty value allows any name that CA signed.
    #[arg(long, value_delimiter = ',', default_value = kgate_gateway::pki::FRONT_PROXY_CN, value_name = "NAMES")]
    pub requestheader_allowed_names: Vec<String>,
    #[command(flatten)]
    pub serving: ServingArgs,
}

/// `kgate keys`.
#[derive(Debug, Clone, Args)]
pub struct KeysOptions {
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// The `kgate keys` subcommands. A running kgate on the same data directory follows the change
/// within a second, without a restart.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; the older keys keep verifying the tokens they signed.
    Rotate {
        /// The data directory whose keys (pki/service-account-keys) change.
        #[arg(long, default_value = "./.kgate")]
        data_dir: PathBuf,
        /// RS256 (the default, as Kubernetes) or ES256.
        #[arg(long, default_value = "RS256")]
        algorithm: String,
    },
    /// Remove all but the newest KEEP keys: tokens signed by the removed ones stop working.
    Prune {
        #[arg(long, default_value = "./.kgate")]
        data_dir: PathBuf,
        #[arg(long)]
        keep: usize,
    },
}

/// `kgate kubeconfig`: a client certificate kubeconfig, or with the `oidc` subcommand one whose
/// user logs in through an OpenID provider.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct KubeconfigOptions {
    #[command(subcommand)]
    pub command: Option<KubeconfigCommand>,
    /// The data directory whose CA signs the certificate.
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// The user name (certificate CN).
    #[arg(long, required = true)]
    pub user: Option<String>,
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

/// The `kgate kubeconfig` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum KubeconfigCommand {
    /// Write a kubeconfig whose user runs `kgate login` against an OpenID provider.
    Oidc(crate::login::KubeconfigOidcOptions),
}

/// `kgate rbac`: questions to RBAC, answered from a cluster's objects or from files (the
/// answers are computed in [`crate::rbac_cli`], which also validates these options).
#[derive(Debug, Clone, Args)]
pub struct RbacOptions {
    #[command(subcommand)]
    pub command: RbacCommand,
}

/// The `kgate rbac` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum RbacCommand {
    /// List the subjects RBAC allows a request, each with the binding and role that allow it.
    WhoCan(RbacWhoCanArgs),
    /// Explain RBAC's decision on one user's request: allowed (exit 0) or denied (exit 1), and
    /// every binding and rule that took part. Errors exit 2.
    Explain(RbacExplainArgs),
}

/// `kgate rbac who-can`.
#[derive(Debug, Clone, Args)]
pub struct RbacWhoCanArgs {
    #[command(flatten)]
    pub request: RbacRequestArgs,
    #[command(flatten)]
    pub source: RbacSourceArgs,
}

/// `kgate rbac explain`.
#[derive(Debug, Clone, Args)]
pub struct RbacExplainArgs {
    /// The user making the request.
    #[arg(long = "as", value_name = "USER")]
    pub user: String,
    /// A group of the user; repeat for several.
    #[arg(long = "as-group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Do not add system:authenticated (system:unauthenticated for system:anonymous), nor a
    /// ServiceAccount's groups, to the user's groups as kube-apiserver does.
    #[arg(long)]
    pub no_authenticated_group: bool,
    /// An AuthorizationPolicy file to judge with RBAC, as the gateway and `kgate webhook` do:
    /// a deny line refuses, an allow line allows what RBAC does not.
    #[arg(long, value_name = "FILE")]
    pub authorization_policy_file: Option<PathBuf>,
    #[command(flatten)]
    pub request: RbacRequestArgs,
    #[command(flatten)]
    pub source: RbacSourceArgs,
}

/// The request asked about, in `kubectl auth can-i`'s form.
#[derive(Debug, Clone, Args)]
pub struct RbacRequestArgs {
    /// The verb: get, list, watch, create, update, patch, delete, deletecollection, or another
    /// one RBAC knows (impersonate, bind, escalate, use, ...).
    pub verb: String,
    /// resource[.group][/subresource] as RBAC writes it, plural, no short names: `pods`,
    /// `pods/log`, `deployments.apps`, `deployments.apps/scale`; or a non-resource URL starting
    /// with `/` (e.g. `/healthz`).
    pub resource: String,
    /// The object's name (same as --name).
    pub name: Option<String>,
    /// The namespace; without it the request is at the cluster scope.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The object's name.
    #[arg(long = "name", value_name = "NAME", conflicts_with = "name")]
    pub object_name: Option<String>,
    /// The subresource (or write it as RESOURCE/SUBRESOURCE).
    #[arg(long)]
    pub subresource: Option<String>,
}

/// Where the RBAC objects come from: a cluster (the default) or files.
#[derive(Debug, Clone, Args)]
pub struct RbacSourceArgs {
    /// List the RBAC objects from the cluster of this kubeconfig's current context (default:
    /// $KUBECONFIG, else ~/.kube/config).
    #[arg(long, conflicts_with = "from")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use instead of its current-context.
    #[arg(long, conflicts_with = "from")]
    pub context: Option<String>,
    /// Read the RBAC objects from files instead: a YAML or JSON file, or a folder searched
    /// recursively for *.yaml, *.yml and *.json (multi-document YAML and Lists are read).
    #[arg(long, value_name = "DIR_OR_FILE")]
    pub from: Option<PathBuf>,
    /// With --from: add Kubernetes' bootstrap policy (cluster-admin, admin, edit, view, the
    /// system: roles and their bindings) to the files' objects.
    #[arg(long, requires = "from")]
    pub with_bootstrap: bool,
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
            authorization_policy_file: self.authorization_policy_file,
            authentication: self.authentication.validate()?,
            limits: self.serving.validate()?,
        })
    }
}

impl StorageArgs {
    pub fn validate(self) -> Result<StorageConfig, ConfigError> {
        if self.etcd_servers.is_empty() {
            return Ok(StorageConfig::Embedded {
                history_revisions: self.history_revisions,
            });
        }
        let mut servers = Vec::with_capacity(self.etcd_servers.len());
        for server in &self.etcd_servers {
            let uri: Uri = server
                .parse()
                .map_err(|_| invalid("etcd-servers", format!("{server:?} is not a URL")))?;
            let scheme = uri.scheme_str().unwrap_or_default();
            if scheme != "http" && scheme != "https" {
                return Err(invalid(
                    "etcd-servers",
                    format!("{server:?} must be an http:// or https:// URL"),
                ));
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err(invalid("etcd-servers", format!("{server:?} has no host")));
            }
            if scheme == "https" && self.etcd_cafile.is_none() {
                return Err(invalid(
                    "etcd-cafile",
                    "is required for https:// etcd servers",
                ));
            }
            servers.push(server.trim_end_matches('/').to_owned());
        }
        let client_cert = match (self.etcd_certfile, self.etcd_keyfile) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("etcd-keyfile", "is required with --etcd-certfile"))
            }
            (None, Some(_)) => {
                return Err(invalid("etcd-certfile", "is required with --etcd-keyfile"))
            }
        };
        if !self.etcd_prefix.starts_with('/') {
            return Err(invalid("etcd-prefix", "must start with /"));
        }
        let mut prefix = self.etcd_prefix;
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        let compaction_interval = match self.etcd_compaction_interval.trim() {
            "0" => None,
            text => {
                let interval = parse_duration(text)
                    .map_err(|reason| invalid("etcd-compaction-interval", reason))?;
                let interval = std::time::Duration::try_from(interval)
                    .map_err(|_| invalid("etcd-compaction-interval", "must not be negative"))?;
                Some(interval)
            }
        };
        Ok(StorageConfig::Etcd(EtcdSettings {
            servers,
            prefix,
            ca_file: self.etcd_cafile,
            client_cert,
            compaction_interval,
        }))
    }
}

impl UpOptions {
    pub fn validate(self) -> Result<UpConfig, ConfigError> {
        Ok(UpConfig {
            gateway: self.gateway.validate()?,
            storage: self.storage.validate()?,
            service_accounts: self.service_accounts.validate()?,
            admission: self.admission.settings(),
            cluster: self.cluster.validate()?,
        })
    }
}

impl GatewayOptions {
    pub fn validate(self) -> Result<GatewayConfig, ConfigError> {
        Ok(GatewayConfig {
            gateway: self.gateway.validate()?,
            upstream: https_origin("upstream", &self.upstream)?,
            service_accounts: self.service_accounts.validate()?,
        })
    }
}

impl ControlplaneOptions {
    pub fn validate(self) -> Result<ControlplaneConfig, ConfigError> {
        let requestheader_allowed_names = self
            .requestheader_allowed_names
            .iter()
            .map(|name| name.trim())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(ControlplaneConfig {
            data_dir: self.data_dir,
            listen: self.listen,
            storage: self.storage.validate()?,
            service_accounts: self.service_accounts.validate()?,
            admission: self.admission.settings(),
            authorization_policy_file: self.authorization_policy_file,
            requestheader_client_ca_file: self.requestheader_client_ca_file,
            requestheader_allowed_names,
            limits: self.serving.validate()?,
        })
    }
}

impl KubeconfigOptions {
    pub fn validate(self) -> Result<KubeconfigConfig, ConfigError> {
        let user = self.user.unwrap_or_default();
        if user.trim().is_empty() {
            return Err(invalid("user", "must not be empty"));
        }
        if user == kgate_gateway::pki::FRONT_PROXY_CN {
            // The users' CA refuses it too; saying so here names the flag.
            return Err(invalid(
                "user",
                format!(
                    "{user:?} is reserved for the gateway's front-proxy certificate, which only the front-proxy CA signs"
                ),
            ));
        }
        if self.groups.iter().any(|g| g.trim().is_empty()) {
            return Err(invalid("group", "must not be empty"));
        }
        let lifetime =
            parse_duration(&self.expiration).map_err(|reason| invalid("expiration", reason))?;
        if lifetime > kgate_gateway::pki::CA_VALIDITY {
            return Err(invalid("expiration", "must not outlive the CA (3650d)"));
        }
        Ok(KubeconfigConfig {
            data_dir: self.data_dir,
            user,
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

    fn storage(args: &[&str]) -> Result<StorageConfig, ConfigError> {
        let mut argv = vec!["kgate", "up"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).expect("parses");
        let Command::Up(options) = cli.command else {
            panic!("not up");
        };
        options.validate().map(|c| c.storage)
    }

    #[test]
    fn storage_is_embedded_unless_etcd_servers_are_given() {
        assert_eq!(
            storage(&[]),
            Ok(StorageConfig::Embedded {
                history_revisions: 10_000
            })
        );
        let etcd = storage(&[
            "--etcd-servers",
            "http://127.0.0.1:2379,http://127.0.0.1:2380/",
            "--etcd-prefix",
            "/kgate",
        ]);
        assert_eq!(
            etcd,
            Ok(StorageConfig::Etcd(EtcdSettings {
                servers: vec![
                    "http://127.0.0.1:2379".into(),
                    "http://127.0.0.1:2380".into()
                ],
                prefix: "/kgate/".into(),
                ca_file: None,
                client_cert: None,
                compaction_interval: Some(std::time::Duration::from_secs(300)),
            }))
        );
        let off = storage(&[
            "--etcd-servers",
            "http://e:2379",
            "--etcd-compaction-interval",
            "0",
        ]);
        assert!(matches!(
            off,
            Ok(StorageConfig::Etcd(EtcdSettings {
                compaction_interval: None,
                ..
            }))
        ));
    }

    #[test]
    fn service_account_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["kgate", "controlplane"];
            all.extend_from_slice(args);
            let cli = Cli::try_parse_from(all).expect("parses");
            let Command::Controlplane(options) = cli.command else {
                panic!("not controlplane");
            };
            options.validate().map(|c| c.service_accounts)
        };
        assert_eq!(
            parse(&[]),
            Ok(ServiceAccountSettings {
                issuer: "https://kubernetes.default.svc.cluster.local".into(),
                max_token_expiration: std::time::Duration::from_secs(48 * 3600),
                signing_algorithm: kgate_tokens::Algorithm::Rs256,
            })
        );
        let custom = parse(&[
            "--service-account-issuer",
            "https://kgate.example.com",
            "--service-account-max-token-expiration",
            "2h",
            "--service-account-signing-algorithm",
            "ES256",
        ])
        .expect("valid");
        assert_eq!(custom.issuer, "https://kgate.example.com");
        assert_eq!(custom.max_token_expiration.as_secs(), 7200);
        assert_eq!(custom.signing_algorithm, kgate_tokens::Algorithm::Es256);
        for bad in [
            &["--service-account-max-token-expiration", "30m"][..],
            &["--service-account-max-token-expiration", "50000d"],
            &["--service-account-signing-algorithm", "HS256"],
            &["--service-account-issuer", ""],
            &["--service-account-issuer", "https://bad host:x"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_etcd_flags_name_the_flag() {
        let flag_of = |args: &[&str]| match storage(args) {
            Err(ConfigError::Invalid { flag, .. }) => flag,
            other => panic!("{args:?} accepted: {other:?}"),
        };
        assert_eq!(
            flag_of(&["--etcd-servers", "127.0.0.1:2379"]),
            "etcd-servers"
        );
        assert_eq!(flag_of(&["--etcd-servers", "ftp://e:1"]), "etcd-servers");
        assert_eq!(
            flag_of(&["--etcd-servers", "https://e:2379"]),
            "etcd-cafile"
        );
        assert_eq!(
            flag_of(&[
                "--etcd-servers",
                "http://e:2379",
                "--etcd-certfile",
                "c.pem"
            ]),
            "etcd-keyfile"
        );
        assert_eq!(
            flag_of(&[
                "--etcd-servers",
                "http://e:2379",
                "--etcd-prefix",
                "registry"
            ]),
            "etcd-prefix"
        );
        assert_eq!(
            flag_of(&[
                "--etcd-servers",
                "http://e:2379",
                "--etcd-compaction-interval",
                "soon"
            ]),
            "etcd-compaction-interval"
        );
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
                authorization_policy_file: None,
                authentication: AuthenticationArgs::default(),
                serving: ServingArgs {
                    max_connections: None,
                    idle_timeout: "90s".into(),
                    read_header_timeout: "32s".into(),
                    http2_max_streams_per_connection: 100,
                },
            },
            upstream: upstream.to_owned(),
            service_accounts: ServiceAccountArgs {
                service_account_issuer: "https://kubernetes.default.svc.cluster.local".into(),
                service_account_max_token_expiration: "48h".into(),
                service_account_signing_algorithm: "RS256".into(),
            },
        };
        assert!(options("https://127.0.0.1:6444").validate().is_ok());
        assert!(options("http://127.0.0.1:6444").validate().is_err());
        assert!(options("https://127.0.0.1:6444/api").validate().is_err());
    }

    #[test]
    fn serving_limits_default_to_kube_apiservers_and_are_checked() {
        let limits = |args: &[&str]| {
            let mut all = vec!["kgate", "controlplane"];
            all.extend_from_slice(args);
            let cli = Cli::try_parse_from(all).expect("parses");
            let Command::Controlplane(options) = cli.command else {
                panic!("not controlplane");
            };
            options.validate().map(|c| c.limits)
        };
        let defaults = limits(&[]).expect("valid");
        assert_eq!(defaults.idle_timeout, std::time::Duration::from_secs(90));
        assert_eq!(
            defaults.read_header_timeout,
            std::time::Duration::from_secs(32)
        );
        assert_eq!(defaults.http2_max_concurrent_streams, 100);
        assert!((1..=kgate_gateway::config::DEFAULT_MAX_CONNECTIONS_CEILING)
            .contains(&defaults.max_connections));
        let set = limits(&[
            "--max-connections",
            "4",
            "--idle-timeout",
            "2s",
            "--read-header-timeout",
            "1s",
            "--http2-max-streams-per-connection",
            "7",
        ])
        .expect("valid");
        assert_eq!(
            set,
            kgate_gateway::config::ConnectionLimits {
                max_connections: 4,
                idle_timeout: std::time::Duration::from_secs(2),
                read_header_timeout: std::time::Duration::from_secs(1),
                http2_max_concurrent_streams: 7,
            }
        );
        for bad in [
            &["--max-connections", "0"][..],
            &["--idle-timeout", "0s"],
            &["--read-header-timeout", "soon"],
            &["--http2-max-streams-per-connection", "0"],
        ] {
            assert!(limits(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requestheader_names_default_to_the_front_proxy_and_may_be_emptied() {
        let config = |args: &[&str]| {
            let mut all = vec!["kgate", "controlplane"];
            all.extend_from_slice(args);
            let cli = Cli::try_parse_from(all).expect("parses");
            let Command::Controlplane(options) = cli.command else {
                panic!("not controlplane");
            };
            options.validate().expect("valid")
        };
        let defaults = config(&[]);
        assert_eq!(
            defaults.requestheader_allowed_names,
            [kgate_gateway::pki::FRONT_PROXY_CN]
        );
        assert_eq!(defaults.requestheader_client_ca_file, None);
        let any = config(&["--requestheader-allowed-names", ""]);
        assert!(any.requestheader_allowed_names.is_empty());
        let some = config(&[
            "--requestheader-allowed-names",
            "a,b",
            "--requestheader-client-ca-file",
            "/etc/proxy-ca.crt",
        ]);
        assert_eq!(some.requestheader_allowed_names, ["a", "b"]);
        assert_eq!(
            some.requestheader_client_ca_file,
            Some(PathBuf::from("/etc/proxy-ca.crt"))
        );
    }

    #[test]
    fn kubeconfig_refuses_the_front_proxy_name() {
        let cli = Cli::try_parse_from(["kgate", "kubeconfig", "--user", "kgate-front-proxy"])
            .expect("parses");
        let Command::Kubeconfig(options) = cli.command else {
            panic!("not kubeconfig");
        };
        let error = options.validate().expect_err("reserved");
        assert!(error.to_string().contains("reserved"), "{error}");
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
