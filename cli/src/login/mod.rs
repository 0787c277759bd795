//! `kgate login`: a kubectl exec credential plugin (client.authentication.k8s.io/v1) that logs in
//! to an OpenID provider and prints an `ExecCredential` holding the ID token; and
//! `kgate kubeconfig oidc`, which writes a kubeconfig whose user runs it.
//!
//! Order of preference: the cached ID token while it has more than 10 s left, then a refresh
//! with the cached refresh token, then an interactive flow (authorization code with PKCE through
//! the browser and a loopback redirect, or the device flow). When kubectl says the session is not
//! interactive (no terminal on stdin), a flow still starts if a browser command is configured:
//! neither flow reads stdin, and the browser is what answers. Without one, nobody could finish
//! the login, so the plugin fails at once instead of waiting.
//!
//! Threat model: the output carries a bearer token, so stdout is kubectl's alone and everything
//! for people goes to stderr, never a token; the cache is private to the user (see [`cache`]);
//! every ID token handed out was verified against the provider's keys, audience = client id,
//! with the nonce in the code flow; the loopback redirect is accepted only with this login's
//! `state` and the code is only usable with the PKCE verifier (see [`callback`]). The HTTP client
//! follows no redirects and, given `--certificate-authority`, trusts that CA alone. A
//! confidential client's secret never travels on a command line (any local user reads those in
//! `ps`, and kubectl's are written in kubeconfigs): it comes from a file
//! (`--client-secret-file`) or the environment ([`CLIENT_SECRET_ENV`]); `--client-secret VALUE`
//! is refused with a pointer to both.

// Tests may unwrap (the crate root does not allow it for the whole crate).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cache;
pub mod callback;
pub mod exec;
pub mod flow;
pub mod kubeconfig;

pub use exec::{ExecCredential, ExecInfo};
pub use kubeconfig::{write_oidc_kubeconfig, KubeconfigOidcConfig, KubeconfigOidcOptions};

use crate::config::ConfigError;
use cache::{CacheEntry, CacheError, Loaded, TokenCache};
use callback::{CallbackError, CallbackListener};
use clap::{Args, ValueEnum};
use openidconnect::IssuerUrl;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

/// The environment variable a confidential client's secret may come from.
pub const CLIENT_SECRET_ENV: &str = "KGATE_OIDC_CLIENT_SECRET";

/// Why `--client-secret VALUE` is refused (shared with `kgate kubeconfig oidc`).
pub(crate) const CLIENT_SECRET_ON_ARGV: &str = "is not accepted: a value on the command line is \
     visible to every local user (ps) and is written into kubeconfigs; put the secret in a file \
     for --client-secret-file, or in $KGATE_OIDC_CLIENT_SECRET";

/// The scopes asked for without `--scope`.
pub const DEFAULT_SCOPES: [&str; 5] = ["openid", "email", "profile", "groups", "offline_access"];

/// Which interactive flow to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Grant {
    /// The code flow with a browser command; else the device flow if the provider offers it;
    /// else the code flow, printing the URL to open.
    Auto,
    /// The authorization-code flow with PKCE and a loopback redirect.
    Code,
    /// The device authorization flow (RFC 8628).
    Device,
}

/// `kgate login`. `Debug` leaves out the client secret.
#[derive(Clone, Args)]
pub struct LoginOptions {
    /// The OpenID provider's issuer URL (https://...).
    #[arg(long)]
    pub issuer: String,
    /// The OAuth client id (the ID token's audience).
    #[arg(long)]
    pub client_id: String,
    /// A file holding the client secret of a confidential client (a trailing newline is
    /// ignored). Else the secret is read from $KGATE_OIDC_CLIENT_SECRET, if set.
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Refused (the value would be on the command line): kept so that the error says what to
    /// use instead.
    #[arg(long, hide = true)]
    pub client_secret: Option<String>,
    /// A scope to request; repeat for several (or separate with commas).
    #[arg(long = "scope", value_delimiter = ',', default_values_t = DEFAULT_SCOPES.map(String::from))]
    pub scopes: Vec<String>,
    /// A PEM file with the CA that signs the provider's certificate, trusted instead of the
    /// built-in roots.
    #[arg(long)]
    pub certificate_authority: Option<PathBuf>,
    /// The interactive flow.
    #[arg(long, value_enum, default_value_t = Grant::Auto)]
    pub grant: Grant,
    /// Where the loopback redirect listener binds: a loopback address (port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The command that opens a URL (the URL is its last argument; split on whitespace, no
    /// shell).
    #[arg(long, env = "BROWSER")]
    pub browser: Option<String>,
    /// The token cache directory (default: $KGATE_CACHE_DIR, else $XDG_CACHE_HOME/kgate/oidc,
    /// else ~/.cache/kgate/oidc).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Ignore the cached tokens and log in again.
    #[arg(long)]
    pub force: bool,
}

impl fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginOptions")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// `kgate login` after validation. `Debug` leaves out the client secret.
#[derive(Clone)]
pub struct LoginConfig {
    issuer: IssuerUrl,
    client_id: String,
    client_secret: Option<String>,
    scopes: Vec<String>,
    ca_file: Option<PathBuf>,
    grant: Grant,
    listen: SocketAddr,
    browser: Option<Vec<String>>,
    cache_dir: PathBuf,
    force: bool,
}

impl fmt::Debug for LoginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginConfig")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("grant", &self.grant)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

/// Checks an issuer URL: https, a host, no query or fragment. The trailing slash is kept as
/// given: the `iss` of the tokens must match it exactly.
pub(crate) fn issuer_url(value: &str) -> Result<IssuerUrl, ConfigError> {
    let issuer = IssuerUrl::new(value.to_owned())
        .map_err(|_| invalid("issuer", format!("{value:?} is not a URL")))?;
    let url = issuer.url();
    if url.scheme() != "https" {
        return Err(invalid("issuer", "must be an https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("issuer", "has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("issuer", "must not have a query or fragment"));
    }
    Ok(issuer)
}

impl LoginOptions {
    pub fn validate(self) -> Result<LoginConfig, ConfigError> {
        self.validate_with(|name| std::env::var_os(name))
    }

    fn validate_with(
        self,
        env: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<LoginConfig, ConfigError> {
        let issuer = issuer_url(&self.issuer)?;
        if self.client_id.trim().is_empty() {
            return Err(invalid("client-id", "must not be empty"));
        }
        if self.client_secret.is_some() {
            return Err(invalid("client-secret", CLIENT_SECRET_ON_ARGV));
        }
        let client_secret = match &self.client_secret_file {
            Some(path) => Some(read_client_secret(path)?),
            None => match env(CLIENT_SECRET_ENV) {
                None => None,
                Some(value) => Some(value.into_string().map_err(|_| {
                    invalid(
                        "client-secret-file",
                        format!("${CLIENT_SECRET_ENV} is not UTF-8"),
                    )
                })?),
            },
        };
        let mut scopes: Vec<String> = Vec::new();
        for scope in self.scopes {
            let scope = scope.trim();
            if scope.is_empty() || scope.contains(char::is_whitespace) {
                return Err(invalid("scope", format!("{scope:?} is not a scope")));
            }
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        // The redirect carries the authorization code: it must not leave the machine.
        if !self.listen.ip().is_loopback() {
            return Err(invalid("listen", "must be a loopback address"));
        }
        let cache_dir = cache::cache_dir(self.cache_dir.as_deref(), env)
            .map_err(|e| invalid("cache-dir", e.to_string()))?;
        Ok(LoginConfig {
            issuer,
            client_id: self.client_id,
            client_secret: client_secret.filter(|s| !s.is_empty()),
            scopes,
            ca_file: self.certificate_authority,
            grant: self.grant,
            listen: self.listen,
            browser: self.browser.as_deref().and_then(flow::browser_command),
            cache_dir,
            force: self.force,
        })
    }
}

/// The client secret in `path`: its text without the trailing line break. The error names the
/// file, never its content.
pub(crate) fn read_client_secret(path: &std::path::Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        invalid(
            "client-secret-file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err(invalid(
            "client-secret-file",
            format!("{} is empty", path.display()),
        ));
    }
    Ok(secret.to_owned())
}

/// Why no credential could be produced.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The token cache could not be written.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The --certificate-authority file cannot be read.
    #[error("cannot read the CA file {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The --certificate-authority file holds no usable certificate.
    #[error("the CA file {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    /// The HTTP client could not be built.
    #[error("{0}")]
    Http(String),
    /// The discovery document or the JWKS could not be fetched.
    #[error("OpenID discovery failed: {0}")]
    Discovery(String),
    /// A token endpoint request failed (the provider's error, which carries no token).
    #[error("the token request failed: {0}")]
    Token(String),
    /// The token response has no ID token.
    #[error("the provider returned no ID token")]
    NoIdToken,
    /// The ID token did not verify.
    #[error("the ID token is not valid: {0}")]
    InvalidIdToken(String),
    /// The loopback redirect did not deliver a code.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// The browser command failed.
    #[error("cannot open the browser: {0}")]
    Browser(String),
    /// --grant device, but the provider has no device authorization endpoint.
    #[error("the provider offers no device authorization endpoint")]
    NoDeviceEndpoint,
    /// kubectl runs the plugin without a terminal, no browser command is configured, and no
    /// cached or refreshable token exists.
    #[error(
        "a new login is needed but kubectl runs kgate login non-interactively and no browser \
         is configured ($BROWSER or --browser); run `kgate login` with the same flags in a \
         terminal first"
    )]
    NotInteractive,
    /// The loopback listener could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The current time in Unix seconds.
fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Logs in (cache, refresh or interactive flow) and returns the credential; messages for the
/// user go to stderr.
pub async fn login(
    config: &LoginConfig,
    exec_info: &ExecInfo,
) -> Result<ExecCredential, LoginError> {
    login_with(config, exec_info, &mut std::io::stderr()).await
}

/// [`login`] with the message stream given.
pub async fn login_with(
    config: &LoginConfig,
    exec_info: &ExecInfo,
    stderr: &mut dyn Write,
) -> Result<ExecCredential, LoginError> {
    let name = cache::cache_file_name(config.issuer.as_str(), &config.client_id, &config.scopes);
    let cache = TokenCache::new(&config.cache_dir, &name);
    let cached = match (config.force, cache.load()) {
        (true, _) | (false, Loaded::Missing) => None,
        (false, Loaded::Entry(entry)) => Some(entry),
        (false, Loaded::Corrupt(reason)) => {
            let _ = writeln!(
                stderr,
                "warning: ignoring the token cache {}: {reason}",
                cache.path().display()
            );
            None
        }
    };
    if let Some(entry) = cached.as_ref().filter(|e| e.is_fresh(now_unix())) {
        return Ok(ExecCredential::new(entry.id_token.clone(), entry.expiry));
    }

    let refresh_token = cached.as_ref().and_then(|e| e.refresh_token.as_deref());
    let can_start_flow = exec_info.interactive || config.browser.is_some();
    // Nothing to refresh and nobody to ask: fail before touching the network.
    if refresh_token.is_none() && !can_start_flow {
        return Err(LoginError::NotInteractive);
    }

    let http = flow::http_client(config.ca_file.as_deref())?;
    let metadata = flow::discover(&config.issuer, &http).await?;
    let provider = flow::Provider {
        http: &http,
        client: flow::client(
            metadata.clone(),
            &config.client_id,
            config.client_secret.as_deref(),
        ),
        metadata,
        scopes: &config.scopes,
    };

    if let Some(refresh_token) = refresh_token {
        let subject = cached.as_ref().and_then(|e| e.subject.as_deref());
        match provider.refresh(refresh_token, subject).await {
            Ok(verified) => return finish(&cache, verified, stderr),
            Err(e) => {
                let _ = writeln!(stderr, "warning: the refresh failed, logging in again: {e}");
            }
        }
    }
    if !can_start_flow {
        return Err(LoginError::NotInteractive);
    }
    let browser = config.browser.as_deref();
    let device = match config.grant {
        Grant::Code => false,
        Grant::Device => true,
        Grant::Auto => browser.is_none() && provider.device_endpoint().is_some(),
    };
    let verified = if device {
        provider.device_flow(browser, stderr).await?
    } else {
        let listener = CallbackListener::bind(config.listen)
            .await
            .map_err(|source| LoginError::Listen {
                addr: config.listen,
                source,
            })?;
        provider.code_flow(listener, browser, stderr).await?
    };
    finish(&cache, verified, stderr)
}

/// Caches a verified login (a cache that cannot be written only costs a login next time) and
/// makes the credential.
fn finish(
    cache: &TokenCache,
    verified: flow::Verified,
    stderr: &mut dyn Write,
) -> Result<ExecCredential, LoginError> {
    let entry = CacheEntry {
        id_token: verified.id_token,
        refresh_token: verified.refresh_token,
        expiry: verified.expiry,
        subject: Some(verified.subject),
    };
    if let Err(e) = cache.store(&entry) {
        let _ = writeln!(
            stderr,
            "warning: {}",
            kgate_gateway::error::error_chain(&e as &dyn std::error::Error)
        );
    }
    Ok(ExecCredential::new(entry.id_token, entry.expiry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        options: LoginOptions,
    }

    fn options(args: &[&str]) -> LoginOptions {
        let mut argv = vec!["login"];
        argv.extend_from_slice(args);
        Wrapper::try_parse_from(argv).unwrap().options
    }

    fn no_env(_: &str) -> Option<std::ffi::OsString> {
        None
    }

    #[test]
    fn defaults_and_validation() {
        let config = options(&[
            "--issuer",
            "https://idp.example/realms/x",
            "--client-id",
            "kgate",
            "--cache-dir",
            "/c",
        ])
        .validate_with(no_env)
        .unwrap();
        assert_eq!(config.scopes, DEFAULT_SCOPES);
        assert_eq!(config.grant, Grant::Auto);
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.cache_dir, PathBuf::from("/c"));

        let config = options(&[
            "--issuer",
            "https://idp.example",
            "--client-id",
            "kgate",
            "--scope",
            "openid",
            "--scope",
            "email,openid",
            "--grant",
            "device",
            "--browser",
            "open -a Safari",
        ])
        .validate_with(|name| match name {
            "HOME" => Some("/home/u".into()),
            CLIENT_SECRET_ENV => Some("s3cret".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(config.scopes, ["openid", "email"]);
        assert_eq!(config.grant, Grant::Device);
        assert_eq!(
            config.browser.as_deref(),
            Some(&["open".to_owned(), "-a".to_owned(), "Safari".to_owned()][..])
        );
        assert_eq!(config.cache_dir, PathBuf::from("/home/u/.cache/kgate/oidc"));
        assert!(!format!("{config:?}").contains("s3cret"));

        let flag_of = |args: &[&str]| match options(args).validate_with(no_env) {
            Err(ConfigError::Invalid { flag, .. }) => flag,
            Ok(_) => panic!("{args:?} accepted"),
        };
        assert_eq!(
            flag_of(&["--issuer", "http://idp", "--client-id", "k"]),
            "issuer"
        );
        assert_eq!(
            flag_of(&["--issuer", "https://idp?x=1", "--client-id", "k"]),
            "issuer"
        );
        assert_eq!(
            flag_of(&["--issuer", "https://idp", "--client-id", " "]),
            "client-id"
        );
        assert_eq!(
            flag_of(&[
                "--issuer",
                "https://idp",
                "--client-id",
                "k",
                "--cache-dir",
                "/c",
                "--scope",
                "a b"
            ]),
            "scope"
        );
        assert_eq!(
            flag_of(&["--issuer", "https://idp", "--client-id", "k"]),
            "cache-dir"
        );
        assert_eq!(
            flag_of(&[
                "--issuer",
                "https://idp",
                "--client-id",
                "k",
                "--listen",
                "0.0.0.0:8000"
            ]),
            "listen"
        );
    }

    #[test]
    fn the_client_secret_comes_from_a_file_or_the_environment_never_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let base = [
            "--issuer",
            "https://idp",
            "--client-id",
            "k",
            "--cache-dir",
            "/c",
        ];
        let with = |extra: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            options(&args)
        };
        let file_arg = file.to_str().unwrap();
        let config = with(&["--client-secret-file", file_arg])
            .validate_with(|name| (name == CLIENT_SECRET_ENV).then(|| "from-env".into()))
            .unwrap();
        assert_eq!(config.client_secret.as_deref(), Some("from-the-file"));
        let config = with(&[]).validate_with(no_env).unwrap();
        assert_eq!(config.client_secret, None);

        // On the command line: refused, and the error does not repeat it.
        let Err(error) = with(&["--client-secret", "s3cret"]).validate_with(no_env) else {
            panic!("--client-secret was accepted");
        };
        let text = error.to_string();
        assert!(
            text.starts_with("--client-secret: is not accepted"),
            "{text}"
        );
        assert!(text.contains("--client-secret-file") && !text.contains("s3cret"));

        // A missing or empty file is an error naming the file only.
        std::fs::write(&file, "\n").unwrap();
        let error = with(&["--client-secret-file", file_arg])
            .validate_with(no_env)
            .unwrap_err();
        assert!(error.to_string().contains("is empty"), "{error}");
        let missing = dir.path().join("absent");
        let error = with(&["--client-secret-file", missing.to_str().unwrap()])
            .validate_with(no_env)
            .unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
    }

    #[tokio::test]
    async fn a_fresh_cached_token_is_used_without_the_network() {
        let dir = tempfile::tempdir().unwrap();
        // An unreachable issuer: any network use would fail the test.
        let config = options(&[
            "--issuer",
            "https://127.0.0.1:1",
            "--client-id",
            "kgate",
            "--cache-dir",
            dir.path().to_str().unwrap(),
        ])
        .validate_with(no_env)
        .unwrap();
        let name = cache::cache_file_name(config.issuer.as_str(), "kgate", &config.scopes);
        let entry = CacheEntry {
            id_token: "cached.id.token".into(),
            refresh_token: None,
            expiry: now_unix() + 3600,
            subject: None,
        };
        TokenCache::new(dir.path(), &name).store(&entry).unwrap();
        let mut stderr = Vec::new();
        let credential = login_with(&config, &ExecInfo { interactive: false }, &mut stderr)
            .await
            .unwrap();
        assert_eq!(credential.token(), "cached.id.token");
        assert!(stderr.is_empty());

        // Within the 10 s margin and nothing to refresh with: not interactive is an error,
        // before any network use.
        let expired = CacheEntry {
            expiry: now_unix() + 5,
            ..entry.clone()
        };
        TokenCache::new(dir.path(), &name).store(&expired).unwrap();
        let err = login_with(&config, &ExecInfo { interactive: false }, &mut stderr)
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::NotInteractive), "{err}");

        // A refresh token means the provider is asked (unreachable here).
        let refreshable = CacheEntry {
            refresh_token: Some("r".into()),
            ..expired
        };
        TokenCache::new(dir.path(), &name)
            .store(&refreshable)
            .unwrap();
        let err = login_with(&config, &ExecInfo { interactive: false }, &mut stderr)
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::Discovery(_)), "{err}");

        // --force skips even a fresh token.
        TokenCache::new(dir.path(), &name).store(&entry).unwrap();
        let forced = LoginConfig {
            force: true,
            ..config.clone()
        };
        let err = login_with(&forced, &ExecInfo { interactive: false }, &mut stderr)
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::NotInteractive), "{err}");
    }

    #[tokio::test]
    async fn a_corrupt_cache_is_ignored_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let config = options(&[
            "--issuer",
            "https://127.0.0.1:1",
            "--client-id",
            "kgate",
            "--cache-dir",
            dir.path().to_str().unwrap(),
        ])
        .validate_with(no_env)
        .unwrap();
        let name = cache::cache_file_name(config.issuer.as_str(), "kgate", &config.scopes);
        std::fs::write(dir.path().join(name), "{not json").unwrap();
        let mut stderr = Vec::new();
        let err = login_with(&config, &ExecInfo { interactive: false }, &mut stderr)
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::NotInteractive), "{err}");
        let stderr = String::from_utf8(stderr).unwrap();
        assert!(
            stderr.contains("warning: ignoring the token cache"),
            "{stderr}"
        );
    }
}
