//! `kgate kubeconfig oidc`: a kubeconfig whose cluster is kgate (its server and CA from the data
//! directory) and whose user is an exec credential plugin running this kgate's `login`.
//!
//! The file holds no credential. A confidential client's secret stays in its own file: the
//! kubeconfig names that file (`--client-secret-file`, an absolute path) and `kgate login` reads
//! it, so the secret is neither in the kubeconfig nor on the plugin's command line. The
//! kubeconfig is still written 0600 with `--output`.

use super::{issuer_url, DEFAULT_SCOPES};
use crate::config::ConfigError;
use crate::kubeconfig::CLUSTER_NAME;
use base64::Engine as _;
use clap::Args;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The kubeconfig's user name.
pub const OIDC_USER: &str = "oidc";

/// `kgate kubeconfig oidc`. `Debug` leaves out the client secret.
#[derive(Clone, Args)]
pub struct KubeconfigOidcOptions {
    /// The OpenID provider's issuer URL (https://...).
    #[arg(long)]
    pub issuer: String,
    /// The OAuth client id.
    #[arg(long)]
    pub client_id: String,
    /// A file holding the client secret of a confidential client: `kgate login` reads it there
    /// (the kubeconfig names the file, not the secret). Without it, `kgate login` takes the
    /// secret from $KGATE_OIDC_CLIENT_SECRET when kubectl's environment has it.
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Refused (the value would be on the command line and in the kubeconfig): kept so that
    /// the error says what to use instead.
    #[arg(long, hide = true)]
    pub client_secret: Option<String>,
    /// A scope to request; repeat for several (default: kgate login's).
    #[arg(long = "scope", value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// The gateway URL (default: the server of DATA_DIR/admin.kubeconfig).
    #[arg(long)]
    pub server: Option<String>,
    /// The CA of the OpenID provider's certificate, passed to `kgate login`.
    #[arg(long)]
    pub certificate_authority: Option<PathBuf>,
    /// The data directory whose CA the gateway's certificate comes from.
    #[arg(long, default_value = "./.kgate")]
    pub data_dir: PathBuf,
    /// Write the kubeconfig here (mode 0600) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

impl fmt::Debug for KubeconfigOidcOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeconfigOidcOptions")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("server", &self.server)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// `kgate kubeconfig oidc` after validation.
#[derive(Clone)]
pub struct KubeconfigOidcConfig {
    issuer: String,
    client_id: String,
    /// Absolute: kubectl runs the plugin from anywhere.
    client_secret_file: Option<PathBuf>,
    scopes: Vec<String>,
    server: Option<String>,
    certificate_authority: Option<PathBuf>,
    data_dir: PathBuf,
    output: Option<PathBuf>,
}

impl fmt::Debug for KubeconfigOidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeconfigOidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubeconfigOidcOptions {
    pub fn validate(self) -> Result<KubeconfigOidcConfig, ConfigError> {
        let invalid = |flag, reason: &str| ConfigError::Invalid {
            flag,
            reason: reason.to_owned(),
        };
        issuer_url(&self.issuer)?;
        if self.client_id.trim().is_empty() {
            return Err(invalid("client-id", "must not be empty"));
        }
        if self.client_secret.is_some() {
            return Err(invalid("client-secret", super::CLIENT_SECRET_ON_ARGV));
        }
        let client_secret_file =
            match self.client_secret_file {
                Some(path) => {
                    // Checked now, so a wrong path fails here rather than at kubectl's first call.
                    super::read_client_secret(&path)?;
                    Some(std::path::absolute(&path).map_err(|_| {
                        invalid("client-secret-file", "cannot make the path absolute")
                    })?)
                }
                None => None,
            };
        let server = match self.server {
            Some(server) => {
                let uri: http::Uri = server
                    .parse()
                    .map_err(|_| invalid("server", "is not a URL"))?;
                if uri.scheme_str() != Some("https") || uri.host().is_none_or(str::is_empty) {
                    return Err(invalid("server", "must be an https:// URL with a host"));
                }
                Some(server.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        // kubectl runs the plugin from anywhere: the CA path must not depend on the cwd.
        let certificate_authority =
            match self.certificate_authority {
                Some(path) => Some(std::path::absolute(&path).map_err(|_| {
                    invalid("certificate-authority", "cannot make the path absolute")
                })?),
                None => None,
            };
        Ok(KubeconfigOidcConfig {
            issuer: self.issuer,
            client_id: self.client_id,
            client_secret_file,
            scopes: self.scopes,
            server,
            certificate_authority,
            data_dir: self.data_dir,
            output: self.output,
        })
    }
}

/// Why the kubeconfig could not be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KubeconfigOidcError {
    /// The data directory has no CA certificate.
    #[error("cannot read kgate's CA certificate {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No --server and no usable admin kubeconfig to take it from.
    #[error("no --server given and none found in {}", path.display())]
    NoServer { path: PathBuf },
    /// The path of the running kgate is unknown.
    #[error("cannot find the path of the running kgate")]
    CurrentExe(#[source] std::io::Error),
    /// Serialising to YAML failed.
    #[error("cannot serialise the kubeconfig")]
    Serialize(#[from] serde_yaml::Error),
    /// Writing failed.
    #[error("cannot write the kubeconfig")]
    Write(#[source] std::io::Error),
    /// Writing the --output file failed.
    #[error("cannot write the kubeconfig")]
    WriteFile(#[source] kgate_gateway::pki::PkiError),
}

/// The `kgate login` arguments the kubeconfig runs.
pub fn login_args(config: &KubeconfigOidcConfig) -> Vec<String> {
    let mut args = vec![
        "login".to_owned(),
        "--issuer".to_owned(),
        config.issuer.clone(),
        "--client-id".to_owned(),
        config.client_id.clone(),
    ];
    if let Some(file) = &config.client_secret_file {
        args.extend([
            "--client-secret-file".to_owned(),
            file.display().to_string(),
        ]);
    }
    // Only non-default scopes, so the cache key (and the file) stay simple.
    if !config.scopes.is_empty() && config.scopes.iter().ne(DEFAULT_SCOPES.iter()) {
        for scope in &config.scopes {
            args.extend(["--scope".to_owned(), scope.clone()]);
        }
    }
    if let Some(ca) = &config.certificate_authority {
        args.extend([
            "--certificate-authority".to_owned(),
            ca.display().to_string(),
        ]);
    }
    args
}

/// The kubeconfig YAML: cluster `kgate` at `server` trusting `ca_pem`, user [`OIDC_USER`] running
/// `kgate` (an absolute path) with [`login_args`].
pub fn oidc_kubeconfig_yaml(
    config: &KubeconfigOidcConfig,
    kgate: &Path,
    server: &str,
    ca_pem: &str,
) -> Result<String, serde_yaml::Error> {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CLUSTER_NAME,
            "cluster": { "server": server, "certificate-authority-data": ca },
        }],
        "users": [{
            "name": OIDC_USER,
            "user": {
                "exec": {
                    "apiVersion": super::exec::EXEC_API_VERSION,
                    "command": kgate.display().to_string(),
                    "args": login_args(config),
                    "interactiveMode": "IfAvailable",
                    "provideClusterInfo": false,
                }
            },
        }],
        "contexts": [{
            "name": CLUSTER_NAME,
            "context": { "cluster": CLUSTER_NAME, "user": OIDC_USER },
        }],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    });
    serde_yaml::to_string(&doc)
}

/// The server of the first cluster of a kubeconfig file (how `kgate up` records its address).
fn server_of(kubeconfig: &Path) -> Option<String> {
    let text = std::fs::read_to_string(kubeconfig).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(str::to_owned)
}

/// `kgate kubeconfig oidc`: writes the kubeconfig to `--output` or `stdout`.
pub fn write_oidc_kubeconfig(
    config: &KubeconfigOidcConfig,
    stdout: &mut dyn Write,
) -> Result<(), KubeconfigOidcError> {
    let admin = config.data_dir.join("admin.kubeconfig");
    let server = match &config.server {
        Some(server) => server.clone(),
        None => server_of(&admin).ok_or(KubeconfigOidcError::NoServer { path: admin })?,
    };
    let ca_path = kgate_gateway::pki::Pki::dir_of(&config.data_dir).join("ca.crt");
    let ca_pem =
        std::fs::read_to_string(&ca_path).map_err(|source| KubeconfigOidcError::ReadCa {
            path: ca_path,
            source,
        })?;
    let kgate = std::env::current_exe().map_err(KubeconfigOidcError::CurrentExe)?;
    let yaml = oidc_kubeconfig_yaml(config, &kgate, &server, &ca_pem)?;
    match &config.output {
        Some(path) => kgate_gateway::pki::write_private(path, yaml.as_bytes())
            .map_err(KubeconfigOidcError::WriteFile),
        None => stdout
            .write_all(yaml.as_bytes())
            .map_err(KubeconfigOidcError::Write),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command, KubeconfigCommand};
    use clap::Parser as _;

    fn parse(args: &[&str]) -> KubeconfigOidcOptions {
        let mut argv = vec!["kgate", "kubeconfig", "oidc"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Kubeconfig(options) => match options.command {
                Some(KubeconfigCommand::Oidc(oidc)) => oidc,
                None => panic!("no oidc subcommand"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_certificate_form_still_parses() {
        let cli = Cli::try_parse_from(["kgate", "kubeconfig", "--user", "alice"]).unwrap();
        let Command::Kubeconfig(options) = cli.command else {
            panic!("not kubeconfig");
        };
        assert!(options.command.is_none());
        assert_eq!(options.validate().unwrap().user, "alice");
        // Without --user and without a subcommand, clap asks for --user.
        assert!(Cli::try_parse_from(["kgate", "kubeconfig"]).is_err());
    }

    #[test]
    fn kubeconfig_shape() {
        let dir = tempfile::tempdir().unwrap();
        let pki = kgate_gateway::pki::Pki::load_or_create(dir.path()).unwrap();
        crate::kubeconfig::Kubeconfig::new(
            "https://127.0.0.1:7443",
            pki.ca.cert_pem(),
            "admin",
            pki.admin.clone(),
        )
        .write_private(&dir.path().join("admin.kubeconfig"))
        .unwrap();
        let output = dir.path().join("oidc.kubeconfig");
        let config = parse(&[
            "--issuer",
            "https://idp.example",
            "--client-id",
            "kgate",
            "--certificate-authority",
            "idp-ca.pem",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
        .validate()
        .unwrap();
        write_oidc_kubeconfig(&config, &mut std::io::sink()).unwrap();
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
        assert_eq!(doc["current-context"], "kgate");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:7443"
        );
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                doc["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(String::from_utf8(ca).unwrap(), pki.ca.cert_pem());
        assert_eq!(doc["contexts"][0]["context"]["user"], OIDC_USER);
        let exec = &doc["users"][0]["user"]["exec"];
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["interactiveMode"], "IfAvailable");
        assert_eq!(exec["provideClusterInfo"], false);
        assert!(Path::new(exec["command"].as_str().unwrap()).is_absolute());
        let args: Vec<&str> = exec["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let ca_arg = std::path::absolute("idp-ca.pem").unwrap();
        assert_eq!(
            args,
            [
                "login",
                "--issuer",
                "https://idp.example",
                "--client-id",
                "kgate",
                "--certificate-authority",
                ca_arg.to_str().unwrap(),
            ]
        );
    }

    #[test]
    fn server_flag_scopes_and_a_secret_kept_in_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, "s3cret\n").unwrap();
        let config = parse(&[
            "--issuer",
            "https://idp.example",
            "--client-id",
            "kgate",
            "--client-secret-file",
            secret_file.to_str().unwrap(),
            "--scope",
            "openid,groups",
            "--server",
            "https://gw.example:6443/",
        ])
        .validate()
        .unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.server.as_deref(), Some("https://gw.example:6443"));
        assert_eq!(
            login_args(&config)[5..],
            [
                "--client-secret-file",
                secret_file.to_str().unwrap(),
                "--scope",
                "openid",
                "--scope",
                "groups"
            ]
        );
        let yaml = oidc_kubeconfig_yaml(&config, Path::new("/usr/bin/kgate"), "https://gw", "PEM")
            .unwrap();
        assert!(yaml.contains("command: /usr/bin/kgate"));
        assert!(!yaml.contains("s3cret"), "{yaml}");

        // The secret itself on the command line is refused, without repeating it.
        let error = parse(&[
            "--issuer",
            "https://idp.example",
            "--client-id",
            "kgate",
            "--client-secret",
            "s3cret",
        ])
        .validate()
        .unwrap_err();
        assert!(
            error.to_string().contains("--client-secret-file"),
            "{error}"
        );
        assert!(!error.to_string().contains("s3cret"));
        // Without --server the data directory must have an admin kubeconfig.
        let dir = tempfile::tempdir().unwrap();
        let config = parse(&[
            "--issuer",
            "https://idp.example",
            "--client-id",
            "kgate",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .validate()
        .unwrap();
        assert!(matches!(
            write_oidc_kubeconfig(&config, &mut std::io::sink()),
            Err(KubeconfigOidcError::NoServer { .. })
        ));
        assert!(parse(&["--issuer", "http://idp", "--client-id", "k"])
            .validate()
            .is_err());
    }
}
