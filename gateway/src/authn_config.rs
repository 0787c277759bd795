//! Where OIDC users come from: the `--authentication-config` file (Kubernetes'
//! `AuthenticationConfiguration`) or the legacy `--oidc-*` flags, turned into the
//! [`OidcAuthenticator`] of the authenticator chain.
//!
//! A bad file or bad flags stop kgate at start, naming the field. The file is then followed
//! (see [`crate::watched_file`]): a valid new version replaces the issuers at once, an invalid
//! one keeps the last good configuration and says why in a warning. Each issuer is a readiness
//! check named after its place in the configuration (`oidc:jwt[0]`, not its URL: `/readyz`
//! answers anyone) that fails while its discovery document or keys cannot be fetched; the log
//! says which issuer each check stands for and why it fails. The other authenticators serve
//! meanwhile.

use crate::error::error_chain;
use crate::readiness::Readiness;
use crate::watched_file::{ReadError, WatchedFile};
use kgate_tokens::oidc::{AuthenticationConfig, ConfigError, LegacyOidcFlags, OidcAuthenticator};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::task::JoinHandle;

const WHAT: &str = "authentication configuration file";

/// The prefix of the issuers' readiness checks.
pub const READINESS_PREFIX: &str = "oidc:";

/// How often the issuers' state is copied into the readiness checks.
const READINESS_INTERVAL: Duration = Duration::from_millis(500);

/// Where the JWT issuers are configured, after flag validation.
#[derive(Debug, Clone, Default)]
pub enum AuthenticationSource {
    /// No OIDC users.
    #[default]
    None,
    /// `--authentication-config FILE`.
    File(PathBuf),
    /// The legacy `--oidc-*` flags; the CA file is read at start.
    Flags {
        flags: Box<LegacyOidcFlags>,
        ca_file: Option<PathBuf>,
    },
}

/// The OIDC settings after flag validation: where the issuers are configured, and which of
/// them may assert names in the `system:` namespace.
///
/// That opt-in is a kgate flag (`--dangerous-oidc-system-identities ISSUER_URL`), not a field
/// of the file: the file stays Kubernetes' `AuthenticationConfiguration`, which kube-apiserver
/// decodes strictly (an unknown field stops it), so one file still serves both, and a file
/// someone else may edit cannot grant `system:masters` by itself.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationSettings {
    pub source: AuthenticationSource,
    /// The issuer URLs whose tokens may map to user and group names starting with `system:`.
    pub system_identity_issuers: Vec<String>,
}

/// Why the OIDC configuration cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuthnConfigError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file is not a valid `AuthenticationConfiguration` (the source names the field).
    #[error("the authentication configuration file {} is invalid", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: ConfigError,
    },
    /// The `--oidc-*` flags do not make a valid issuer.
    #[error("the --oidc-* flags are invalid")]
    Flags(#[source] ConfigError),
    #[error("cannot read --oidc-ca-file {}", path.display())]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--dangerous-oidc-system-identities` names an issuer that is not configured.
    #[error("--dangerous-oidc-system-identities: {url:?} is not a configured issuer's URL")]
    UnknownSystemIdentityIssuer { url: String },
}

/// The OIDC authenticator and, for a file, the file it follows.
pub struct LoadedAuthentication {
    pub authenticator: Arc<OidcAuthenticator>,
    file: Option<WatchedFile>,
    /// Applied again to each reloaded file.
    system_identity_issuers: Vec<String>,
}

/// Builds the OIDC authenticator `settings` describe (`None` for no OIDC users). Starts no
/// task.
pub fn load(
    settings: &AuthenticationSettings,
) -> Result<Option<LoadedAuthentication>, AuthnConfigError> {
    let (mut config, file) = match &settings.source {
        AuthenticationSource::None => return Ok(None),
        AuthenticationSource::File(path) => {
            let (file, content) = WatchedFile::open(WHAT, path)?;
            (parse(path, &content)?, Some(file))
        }
        AuthenticationSource::Flags { flags, ca_file } => {
            let mut flags = LegacyOidcFlags::clone(flags);
            if let Some(path) = ca_file {
                let pem =
                    std::fs::read_to_string(path).map_err(|source| AuthnConfigError::CaFile {
                        path: path.clone(),
                        source,
                    })?;
                flags.ca_pem = Some(pem);
            }
            let config =
                AuthenticationConfig::from_legacy_flags(&flags).map_err(AuthnConfigError::Flags)?;
            (config, None)
        }
    };
    if let Some(url) = config
        .allow_system_identities(&settings.system_identity_issuers)
        .first()
    {
        return Err(AuthnConfigError::UnknownSystemIdentityIssuer {
            url: (*url).to_owned(),
        });
    }
    log_issuers(&config, "loaded");
    Ok(Some(LoadedAuthentication {
        authenticator: Arc::new(OidcAuthenticator::new(config)),
        file,
        system_identity_issuers: settings.system_identity_issuers.clone(),
    }))
}

fn parse(path: &Path, content: &[u8]) -> Result<AuthenticationConfig, AuthnConfigError> {
    AuthenticationConfig::parse(content).map_err(|source| AuthnConfigError::Invalid {
        path: path.to_owned(),
        source,
    })
}

fn log_issuers(config: &AuthenticationConfig, what: &str) {
    let issuers: Vec<&str> = config.jwt.iter().map(|j| j.issuer_url.as_str()).collect();
    tracing::info!(issuers = ?issuers, "authentication configuration {what}");
    for (index, issuer) in issuers.iter().enumerate() {
        tracing::info!(check = %readiness_check(index), %issuer, "oidc: the issuer's readiness check");
    }
    for issuer in config.jwt.iter().filter(|j| j.allows_system_identities()) {
        tracing::warn!(issuer = %issuer.issuer_url, "oidc: this issuer may assert system: user and group names (--dangerous-oidc-system-identities)");
    }
}

/// The readiness check of the `index`th issuer (its configuration path, never its URL).
fn readiness_check(index: usize) -> String {
    format!("{READINESS_PREFIX}jwt[{index}]")
}

/// Starts the issuers' key fetching, the readiness checks and, for a file, the reload.
pub fn spawn(loaded: LoadedAuthentication, readiness: Readiness) -> Vec<JoinHandle<()>> {
    let LoadedAuthentication {
        authenticator,
        file,
        system_identity_issuers,
    } = loaded;
    authenticator.start();
    let mut tasks = vec![spawn_readiness(authenticator.clone(), readiness)];
    if let Some(file) = file {
        let path = file.path().to_owned();
        let allowed = Arc::new(system_identity_issuers);
        tasks.push(file.spawn(move |content| {
            let (authenticator, path, allowed) =
                (authenticator.clone(), path.clone(), allowed.clone());
            async move { apply(&path, &authenticator, &content, &allowed) }
        }));
    }
    tasks
}

fn apply(
    path: &Path,
    authenticator: &OidcAuthenticator,
    content: &[u8],
    system_identity_issuers: &[String],
) {
    match parse(path, content) {
        Ok(mut config) => {
            for url in config.allow_system_identities(system_identity_issuers) {
                // Not fatal on reload: the issuer's tokens are simply refused such names.
                tracing::warn!(issuer = %url, "--dangerous-oidc-system-identities names an issuer the reloaded file does not configure");
            }
            log_issuers(&config, "reloaded");
            authenticator.replace(config);
        }
        Err(error) => tracing::warn!(
            path = %path.display(),
            error = %error_chain(&error),
            "the authentication configuration file is invalid; keeping the last good configuration until the file changes again"
        ),
    }
}

/// Copies each issuer's state into `readiness`, dropping the checks of issuers a reload removed.
fn spawn_readiness(authenticator: Arc<OidcAuthenticator>, readiness: Readiness) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(READINESS_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            update_readiness(&authenticator, &readiness);
        }
    })
}

fn update_readiness(authenticator: &OidcAuthenticator, readiness: &Readiness) {
    let statuses = authenticator.statuses();
    let names: Vec<String> = (0..statuses.len()).map(readiness_check).collect();
    for (name, status) in names.iter().zip(&statuses) {
        readiness.set_problem(name, status.problem.clone());
    }
    readiness.retain_under(READINESS_PREFIX, &names);
}

#[cfg(test)]
// Tests may unwrap: a panic there is a failing test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ONE_ISSUER: &str = r#"
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
  - issuer:
      url: https://127.0.0.1:1/one
      audiences: [kgate]
    claimMappings:
      username:
        claim: email
        prefix: ""
"#;

    #[tokio::test]
    async fn a_file_loads_reloads_and_keeps_the_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authn.yaml");
        std::fs::write(&path, ONE_ISSUER).unwrap();
        let loaded = load(&file_settings(&path)).unwrap().unwrap();
        let authenticator = loaded.authenticator.clone();
        let issuers = |a: &OidcAuthenticator| -> Vec<String> {
            a.statuses().into_iter().map(|s| s.issuer_url).collect()
        };
        assert_eq!(issuers(&authenticator), ["https://127.0.0.1:1/one"]);

        let two = ONE_ISSUER.replace("/one", "/two");
        apply(&path, &authenticator, two.as_bytes(), &[]);
        assert_eq!(issuers(&authenticator), ["https://127.0.0.1:1/two"]);

        apply(
            &path,
            &authenticator,
            b"kind: AuthenticationConfiguration\njwt: [",
            &[],
        );
        assert_eq!(issuers(&authenticator), ["https://127.0.0.1:1/two"]);
    }

    #[test]
    fn bad_files_and_flags_name_the_problem_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authn.yaml");
        std::fs::write(&path, ONE_ISSUER.replace("https://", "http://")).unwrap();
        let Err(error) = load(&file_settings(&path)) else {
            panic!("an http issuer was accepted");
        };
        let text = error_chain(&error);
        assert!(
            text.starts_with(&format!(
                "the authentication configuration file {} is invalid: jwt[0].issuer.url",
                path.display()
            )),
            "{text}"
        );
        let flags = AuthenticationSettings {
            source: AuthenticationSource::Flags {
                flags: Box::new(LegacyOidcFlags {
                    issuer_url: "https://127.0.0.1:1".into(),
                    client_id: "kgate".into(),
                    ..LegacyOidcFlags::default()
                }),
                ca_file: Some(dir.path().join("absent.pem")),
            },
            system_identity_issuers: Vec::new(),
        };
        let Err(error) = load(&flags) else {
            panic!("a missing CA file was accepted");
        };
        assert!(matches!(error, AuthnConfigError::CaFile { .. }), "{error}");
    }

    #[test]
    fn the_system_identities_opt_in_must_name_a_configured_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authn.yaml");
        std::fs::write(&path, ONE_ISSUER).unwrap();
        let mut settings = file_settings(&path);
        settings.system_identity_issuers = vec!["https://127.0.0.1:1/typo".into()];
        let Err(error) = load(&settings) else {
            panic!("an opt-in for an unknown issuer was accepted");
        };
        assert!(
            matches!(&error, AuthnConfigError::UnknownSystemIdentityIssuer { url } if url.ends_with("/typo")),
            "{error}"
        );
        settings.system_identity_issuers = vec!["https://127.0.0.1:1/one".into()];
        assert!(load(&settings).unwrap().is_some());
    }

    fn file_settings(path: &Path) -> AuthenticationSettings {
        AuthenticationSettings {
            source: AuthenticationSource::File(path.to_owned()),
            system_identity_issuers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn readiness_names_each_issuer_by_place_and_forgets_removed_ones() {
        let readiness = Readiness::default();
        readiness.set_problem("oidc:jwt[1]", Some("x".into()));
        let config = AuthenticationConfig::parse(ONE_ISSUER.as_bytes()).unwrap();
        let authenticator = OidcAuthenticator::new(config);
        update_readiness(&authenticator, &readiness);
        let failures = readiness.failures();
        assert_eq!(failures.len(), 1, "{failures:?}");
        // Named by place, not by URL: /readyz shows check names to anyone.
        assert_eq!(failures[0].0, "oidc:jwt[0]");
    }
}
