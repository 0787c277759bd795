//! `kgate webhook` (serve TokenReview and SubjectAccessReview for a cluster kgate does not run),
//! `kgate webhook config` (the files and flags that cluster's kube-apiserver needs) and
//! `kgate token` (machine tokens: create, revoke, list).

use crate::args::{parse_duration, AuthenticationArgs, ServingArgs};
use crate::config::ConfigError;
use crate::kubeconfig::{Kubeconfig, KubeconfigError};
use clap::{Args, Subcommand};
use kgate_gateway::pki::{Pki, PkiError, Validity};
use kgate_tokens::machine::{MachineTokenFiles, MachineTokenIssuer, MachineTokenSpec};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The certificate name kube-apiserver presents to the webhook (`kgate webhook config` issues
/// it; `kgate webhook` allows it by default).
pub const APISERVER_CLIENT_NAME: &str = "kube-apiserver";

/// `kgate webhook`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WebhookOptions {
    #[command(subcommand)]
    pub command: Option<WebhookCommand>,
    #[command(flatten)]
    pub serve: WebhookServeArgs,
}

/// The `kgate webhook` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum WebhookCommand {
    /// Write the files kube-apiserver needs to call this webhook, and print its flags.
    Config(WebhookConfigArgs),
}

/// How `kgate webhook` serves.
#[derive(Debug, Clone, Args)]
pub struct WebhookServeArgs {
    /// Where the PKI (the webhook's serving certificate and client CA) and the machine tokens'
    /// keys live; created on first start.
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// Address to serve HTTPS on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// An AuthorizationPolicy file: its deny lines answer `denied`, its allow lines `allowed`,
    /// anything else has no opinion (the cluster's RBAC decides). Reloaded when it changes.
    #[arg(long)]
    pub authorization_policy_file: Option<PathBuf>,
    /// More names (DNS names or IP addresses) for the webhook's serving certificate, besides
    /// loopback and the host name: the address kube-apiserver calls (e.g. minikube's
    /// host.minikube.internal, 192.168.49.1), comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// The client certificate names (CN) allowed to call, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = APISERVER_CLIENT_NAME)]
    pub allowed_client_names: Vec<String>,
    #[command(flatten)]
    pub authentication: AuthenticationArgs,
    #[command(flatten)]
    pub serving: ServingArgs,
}

/// `kgate webhook` after validation.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) authorization_policy_file: Option<PathBuf>,
    pub(crate) allowed_client_names: Vec<String>,
    pub(crate) tls_sans: Vec<String>,
    pub(crate) authentication: kgate_gateway::config::AuthenticationSettings,
    pub(crate) limits: kgate_gateway::config::ConnectionLimits,
}

impl WebhookServeArgs {
    pub fn validate(self) -> Result<WebhookSettings, ConfigError> {
        let allowed_client_names: Vec<String> = self
            .allowed_client_names
            .into_iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if allowed_client_names.is_empty() {
            return Err(ConfigError::Invalid {
                flag: "allowed-client-names",
                reason: "names no client: nobody could call the webhook".into(),
            });
        }
        Ok(WebhookSettings {
            data_dir: self.data_dir,
            listen: self.listen,
            authorization_policy_file: self.authorization_policy_file,
            allowed_client_names,
            tls_sans: self
                .tls_san
                .into_iter()
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            authentication: self.authentication.validate()?,
            limits: self.serving.validate()?,
        })
    }
}

/// Where the machine tokens of a data directory live.
pub fn machine_token_files(data_dir: &Path) -> MachineTokenFiles {
    MachineTokenFiles::new(data_dir.join("machine-tokens"))
}

/// What kube-apiserver does when the webhook cannot answer an authorization question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    /// Refuse (fail closed: kgate's deny lines are never skipped).
    Deny,
    /// Let the next authorizer (RBAC) decide.
    NoOpinion,
}

impl FailurePolicy {
    fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Deny => "Deny",
            FailurePolicy::NoOpinion => "NoOpinion",
        }
    }
}

/// `kgate webhook config`.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfigArgs {
    /// The data directory of the webhook (its CA signs kube-apiserver's client certificate).
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// The webhook's URL as kube-apiserver reaches it (e.g. https://192.168.49.1:8443).
    #[arg(long)]
    pub server: String,
    /// Where to write the files.
    #[arg(long)]
    pub out: PathBuf,
    /// Where the files will be on kube-apiserver's machine (the paths the configuration names);
    /// default: --out.
    #[arg(long)]
    pub path_on_apiserver: Option<PathBuf>,
    /// What kube-apiserver does when the webhook does not answer.
    #[arg(long, value_enum, default_value = "deny")]
    pub failure_policy: FailurePolicy,
    /// How long kube-apiserver waits for an answer.
    #[arg(long, default_value = "3s")]
    pub timeout: String,
    /// How long kube-apiserver caches an answer (allowed; and denied or no opinion), and a
    /// successful authentication: a revoked token or a new deny line takes effect within it.
    #[arg(long, default_value = "10s")]
    pub cache_ttl: String,
    /// How long kube-apiserver's client certificate is valid.
    #[arg(long, default_value = "365d")]
    pub expiration: String,
}

/// Why a webhook command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WebhookCliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the data directory's PKI")]
    Pki(#[from] PkiError),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error("the machine-token keys")]
    Keys(#[from] kgate_tokens::KeyError),
    #[error("cannot issue the token")]
    Issue(#[from] kgate_tokens::IssueError),
    #[error("the machine-token files")]
    Files(#[source] std::io::Error),
}

fn duration_flag(flag: &'static str, text: &str) -> Result<std::time::Duration, ConfigError> {
    parse_duration(text)
        .and_then(|d| std::time::Duration::try_from(d).map_err(|e| e.to_string()))
        .map_err(|reason| ConfigError::Invalid { flag, reason })
}

/// kube's duration text for a whole number of seconds (`10s`, `5m0s`).
fn go_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// The users an authorization webhook of kgate must never be asked about: the control plane's
/// own components, the nodes and kube-system's controllers, so that the cluster keeps running
/// when kgate is down. A CEL expression over the SubjectAccessReview spec (`request`).
pub const SKIP_CONTROL_PLANE: &str = "!(request.user in ['system:apiserver', \
'system:kube-scheduler', 'system:kube-controller-manager', 'system:kube-proxy'] \
|| request.user.startsWith('system:node:') \
|| request.user.startsWith('system:serviceaccount:kube-system:') \
|| 'system:nodes' in request.groups)";

/// Writes the webhook's kubeconfigs and AuthorizationConfiguration into `--out`; returns the
/// kube-apiserver flags to add.
pub fn write_config(args: &WebhookConfigArgs) -> Result<String, WebhookCliError> {
    let timeout = duration_flag("timeout", &args.timeout)?;
    if timeout.as_secs() == 0 || timeout.as_secs() > 30 {
        return Err(ConfigError::Invalid {
            flag: "timeout",
            reason: "kube-apiserver takes 1s to 30s".into(),
        }
        .into());
    }
    let ttl = duration_flag("cache-ttl", &args.cache_ttl)?;
    let lifetime = duration_flag("expiration", &args.expiration)?;
    let server = args.server.trim_end_matches('/');
    if !server.starts_with("https://") {
        return Err(ConfigError::Invalid {
            flag: "server",
            reason: "the webhook is served over https".into(),
        }
        .into());
    }
    let pki = Pki::load_or_create(&args.data_dir)?;
    let validity =
        Validity::from_now(time::Duration::try_from(lifetime).unwrap_or(time::Duration::days(365)));
    let client = pki
        .ca
        .issue_client_cert(APISERVER_CLIENT_NAME, &[], validity)?;
    std::fs::create_dir_all(&args.out).map_err(|source| WebhookCliError::Write {
        path: args.out.clone(),
        source,
    })?;
    let there = args.path_on_apiserver.as_deref().unwrap_or(&args.out);
    let authn = "authentication-webhook.kubeconfig";
    let authz = "authorization-webhook.kubeconfig";
    let authz_config = "authorization-config.yaml";
    for (file, path) in [(authn, "/authenticate"), (authz, "/authorize")] {
        Kubeconfig::new(
            &format!("{server}{path}"),
            pki.ca.cert_pem(),
            APISERVER_CLIENT_NAME,
            client.clone(),
        )
        .write_private(&args.out.join(file))?;
    }
    let config = format!(
        "# kube-apiserver --authorization-config: Node, then kgate (its deny lines win over RBAC;\n\
         # its allow lines are asked before RBAC), then RBAC. Written by `kgate webhook config`.\n\
         apiVersion: apiserver.config.k8s.io/v1\n\
         kind: AuthorizationConfiguration\n\
         authorizers:\n\
         - type: Node\n  name: node\n\
         - type: Webhook\n  name: kgate\n  webhook:\n\
         \x20   timeout: {timeout}\n\
         \x20   authorizedTTL: {ttl}\n\
         \x20   unauthorizedTTL: {ttl}\n\
         \x20   subjectAccessReviewVersion: v1\n\
         \x20   matchConditionSubjectAccessReviewVersion: v1\n\
         \x20   failurePolicy: {failure}\n\
         \x20   connectionInfo:\n\
         \x20     type: KubeConfigFile\n\
         \x20     kubeConfigFile: {kubeconfig}\n\
         \x20   matchConditions:\n\
         \x20   # The control plane's own identities never depend on kgate.\n\
         \x20   - expression: {skip:?}\n\
         - type: RBAC\n  name: rbac\n",
        timeout = go_duration(timeout),
        ttl = go_duration(ttl),
        failure = args.failure_policy.as_str(),
        kubeconfig = there.join(authz).display(),
        skip = SKIP_CONTROL_PLANE,
    );
    let config_path = args.out.join(authz_config);
    std::fs::write(&config_path, config).map_err(|source| WebhookCliError::Write {
        path: config_path.clone(),
        source,
    })?;
    Ok(format!(
        "--authentication-token-webhook-config-file={}\n\
         --authentication-token-webhook-version=v1\n\
         --authentication-token-webhook-cache-ttl={}\n\
         --authorization-config={}\n",
        there.join(authn).display(),
        go_duration(ttl),
        there.join(authz_config).display(),
    ))
}

/// `kgate token`.
#[derive(Debug, Clone, Args)]
pub struct TokenOptions {
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// The `kgate token` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Issue a machine token (printed on stdout; its id on stderr).
    Create(TokenCreateArgs),
    /// Revoke a machine token by id: refused from the webhook's next request on.
    Revoke {
        #[arg(long, default_value = "./.kgate")]
        data_dir: PathBuf,
        /// The token's id (`kgate token list`).
        id: String,
    },
    /// List the machine tokens issued (never the tokens themselves).
    List {
        #[arg(long, default_value = "./.kgate")]
        data_dir: PathBuf,
    },
    /// Make a new machine-token signing key; tokens signed with the older keys stay valid until
    /// those are pruned. A running `kgate webhook` follows within a second.
    RotateKeys {
        #[arg(long, default_value = "./.kgate")]
        data_dir: PathBuf,
    },
    /// Remove all but the newest KEEP machine-token keys: every token they signed is refused
    /// from then on.
    PruneKeys {
        #[arg(long, default_value = "./.kgate")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 1)]
        keep: usize,
    },
}

/// `kgate token create`.
#[derive(Debug, Clone, Args)]
pub struct TokenCreateArgs {
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// The user the token authenticates as (not `system:`).
    #[arg(long)]
    pub user: String,
    /// A group; repeat for several (not `system:`).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// An audience the token is for; repeat for several. None: any caller's.
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// How long the token is valid: a number with s, m, h or d.
    #[arg(long)]
    pub duration: String,
}

/// The machine-token keys of `data_dir`, created when absent.
pub fn machine_keys(data_dir: &Path) -> Result<kgate_tokens::SharedKeys, WebhookCliError> {
    let keys = kgate_tokens::KeySet::load_or_create(
        &machine_token_files(data_dir).keys_dir(),
        kgate_tokens::Algorithm::Rs256,
    )?;
    Ok(kgate_tokens::SharedKeys::new(keys))
}

/// Runs a `kgate token` command, writing its output to `out` (and the token id of `create` to
/// `err`).
pub fn run_token(
    options: TokenOptions,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<(), WebhookCliError> {
    let io = WebhookCliError::Files;
    match options.command {
        TokenCommand::Create(args) => {
            let lifetime = duration_flag("duration", &args.duration)?;
            let files = machine_token_files(&args.data_dir);
            let issued = MachineTokenIssuer::new(machine_keys(&args.data_dir)?).issue(
                &MachineTokenSpec {
                    user: args.user,
                    groups: args.groups,
                    audiences: args.audiences,
                    lifetime,
                },
                std::time::SystemTime::now(),
            )?;
            files.record(&issued.record).map_err(io)?;
            writeln!(out, "{}", issued.token).map_err(io)?;
            writeln!(
                err,
                "token id {} (revoke with: kgate token revoke {})",
                issued.record.id, issued.record.id
            )
            .map_err(io)?;
        }
        TokenCommand::Revoke { data_dir, id } => {
            machine_token_files(&data_dir).revoke(&id).map_err(io)?;
            writeln!(out, "revoked {id}").map_err(io)?;
        }
        TokenCommand::RotateKeys { data_dir } => {
            let kid = kgate_tokens::KeySet::rotate(
                &machine_token_files(&data_dir).keys_dir(),
                kgate_tokens::Algorithm::Rs256,
            )?;
            writeln!(out, "new machine-token signing key {kid}").map_err(io)?;
        }
        TokenCommand::PruneKeys { data_dir, keep } => {
            for kid in
                kgate_tokens::KeySet::prune(&machine_token_files(&data_dir).keys_dir(), keep)?
            {
                writeln!(out, "removed key {kid}").map_err(io)?;
            }
        }
        TokenCommand::List { data_dir } => {
            let (issued, revoked) = machine_token_files(&data_dir).list().map_err(io)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or_default();
            writeln!(out, "ID\tUSER\tGROUPS\tAUDIENCES\tSTATE").map_err(io)?;
            for r in issued {
                let state = if revoked.contains(&r.id) {
                    "revoked"
                } else if r.expires < now {
                    "expired"
                } else {
                    "valid"
                };
                let none = |l: &[String]| {
                    if l.is_empty() {
                        "<none>".to_owned()
                    } else {
                        l.join(",")
                    }
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{state}",
                    r.id,
                    r.user,
                    none(&r.groups),
                    none(&r.audiences)
                )
                .map_err(io)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_listed_and_revoked_and_the_list_never_shows_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let run = |command: TokenCommand| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            run_token(TokenOptions { command }, &mut out, &mut err).map(|()| {
                (
                    String::from_utf8(out).expect("utf-8"),
                    String::from_utf8(err).expect("utf-8"),
                )
            })
        };
        let (token, said) = run(TokenCommand::Create(TokenCreateArgs {
            data_dir: data_dir.clone(),
            user: "jenkins".into(),
            groups: vec!["ci".into()],
            audiences: vec![],
            duration: "1h".into(),
        }))
        .expect("create");
        let token = token.trim().to_owned();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        let id = said.split_whitespace().nth(2).expect("id").to_owned();
        let (list, _) = run(TokenCommand::List {
            data_dir: data_dir.clone(),
        })
        .expect("list");
        assert!(
            list.contains(&format!("{id}\tjenkins\tci\t<none>\tvalid")),
            "{list}"
        );
        assert!(!list.contains(&token));
        run(TokenCommand::Revoke {
            data_dir: data_dir.clone(),
            id: id.clone(),
        })
        .expect("revoke");
        let (list, _) = run(TokenCommand::List {
            data_dir: data_dir.clone(),
        })
        .expect("list");
        assert!(list.contains("\trevoked"), "{list}");
        // system: names are refused.
        assert!(run(TokenCommand::Create(TokenCreateArgs {
            data_dir,
            user: "system:admin".into(),
            groups: vec![],
            audiences: vec![],
            duration: "1h".into(),
        }))
        .is_err());
    }

    #[test]
    fn go_durations_are_kubes() {
        assert_eq!(go_duration(std::time::Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(std::time::Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(std::time::Duration::from_secs(3725)), "1h2m5s");
    }

    #[test]
    fn the_config_names_its_files_and_refuses_plain_http() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = WebhookConfigArgs {
            data_dir: dir.path().join("data"),
            server: "https://127.0.0.1:8443".into(),
            out: dir.path().join("out"),
            path_on_apiserver: Some("/etc/kgate".into()),
            failure_policy: FailurePolicy::Deny,
            timeout: "3s".into(),
            cache_ttl: "10s".into(),
            expiration: "1d".into(),
        };
        let flags = write_config(&args).expect("config");
        assert!(flags.contains(
            "--authentication-token-webhook-config-file=/etc/kgate/authentication-webhook.kubeconfig"
        ));
        assert!(flags.contains("--authorization-config=/etc/kgate/authorization-config.yaml"));
        let config =
            std::fs::read_to_string(args.out.join("authorization-config.yaml")).expect("read");
        let parsed: serde_yaml::Value = serde_yaml::from_str(&config).expect("yaml");
        let webhook = &parsed["authorizers"][1]["webhook"];
        assert_eq!(webhook["failurePolicy"], "Deny");
        assert_eq!(webhook["timeout"], "3s");
        assert_eq!(
            webhook["connectionInfo"]["kubeConfigFile"],
            "/etc/kgate/authorization-webhook.kubeconfig"
        );
        assert_eq!(
            webhook["matchConditions"][0]["expression"].as_str(),
            Some(SKIP_CONTROL_PLANE)
        );
        let kubeconfig = std::fs::read_to_string(args.out.join("authorization-webhook.kubeconfig"))
            .expect("read");
        assert!(kubeconfig.contains("server: https://127.0.0.1:8443/authorize"));
        args.server = "http://127.0.0.1:8443".into();
        assert!(write_config(&args).is_err());
        args.server = "https://x".into();
        args.timeout = "31s".into();
        assert!(write_config(&args).is_err());
    }
}
