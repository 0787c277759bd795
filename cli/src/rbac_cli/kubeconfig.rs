//! Reading a kubeconfig as kubectl does, for `kgate rbac --kubeconfig`: which file(s)
//! (`--kubeconfig`, else `$KUBECONFIG`, a list merged first-wins, else `~/.kube/config`), which
//! context (`--context`, else `current-context`), and from its cluster and user the server URL,
//! the CA to verify it with, and the credential: a client certificate and key and/or a bearer
//! token, inline (`*-data`, `token`) or in files (relative to the kubeconfig's folder).
//!
//! Threat model: the file holds credentials. They go into a rustls config or a
//! [`BearerToken`] and nowhere else: no error message, `Debug` or log shows them. Anything that
//! would weaken server verification (`insecure-skip-tls-verify`, no CA) is refused rather than
//! honoured, and credential plugins (`exec`, `auth-provider`) are refused as unsupported.

use base64::Engine as _;
use http::Uri;
use kgate_core::authn::BearerToken;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// Why the kubeconfig cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KubeconfigReadError {
    /// Neither `--kubeconfig`, `$KUBECONFIG` nor `~/.kube/config` names a file.
    #[error("no kubeconfig found: pass --kubeconfig PATH or --from DIR, or set KUBECONFIG")]
    NotFound,
    /// A kubeconfig, or a file it names, cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A kubeconfig is not YAML of the kubeconfig shape.
    #[error("{} is not a valid kubeconfig", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    /// No `--context` and no `current-context`.
    #[error("the kubeconfig has no current-context: pass --context")]
    NoCurrentContext,
    /// The context, or the cluster or user it names, is not in the kubeconfig.
    #[error("the kubeconfig has no {what} {name:?}")]
    Missing { what: &'static str, name: String },
    /// The cluster's server is not an `https://` URL with a host.
    #[error("cluster {cluster:?}: server {server:?} is not an https:// URL")]
    Server { cluster: String, server: String },
    /// A setting kgate rbac does not implement, or refuses because it weakens verification.
    #[error("{owner}: {setting} is not supported by kgate rbac")]
    Unsupported {
        owner: String,
        setting: &'static str,
    },
    /// The cluster has no CA to verify the server with.
    #[error("cluster {cluster:?} has no certificate-authority or certificate-authority-data")]
    NoCa { cluster: String },
    /// A `*-data` field is not base64 (the value is not shown: it may be a key).
    #[error("{owner}: {field} is not valid base64")]
    Base64 { owner: String, field: &'static str },
    /// A certificate or key is not PEM (the value is not shown).
    #[error("{owner}: {field} is not a PEM {expected}")]
    Pem {
        owner: String,
        field: &'static str,
        expected: &'static str,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("user {user:?}: client-certificate and client-key must be given together")]
    HalfClientCert { user: String },
    /// rustls refused the CA, certificate or key.
    #[error("cannot build the TLS client configuration")]
    Tls(#[from] rustls::Error),
    /// The TLS server name (the server's host or `tls-server-name`) is not valid.
    #[error("cluster {cluster:?}: {name:?} is not a valid TLS server name")]
    ServerName { cluster: String, name: String },
}

/// How to reach the cluster of the chosen context. `Debug` leaves out the credentials.
#[derive(Clone)]
pub struct ClusterAccess {
    /// The context used.
    pub context: String,
    /// `https://host[:port][/prefix]`, as in the kubeconfig.
    pub server: Uri,
    /// The name the server's certificate must hold.
    pub server_name: ServerName<'static>,
    /// Trusts the kubeconfig's CA only; presents the client certificate, if any.
    pub tls: Arc<ClientConfig>,
    pub token: Option<BearerToken>,
}

impl fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("server_name", &self.server_name)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The files to read: `flag`, else the existing files of `$KUBECONFIG`, else `~/.kube/config`.
pub fn locate(flag: Option<&Path>) -> Result<Vec<PathBuf>, KubeconfigReadError> {
    if let Some(path) = flag {
        return Ok(vec![path.to_owned()]);
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        // kubectl skips the listed files that do not exist.
        let found: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && p.is_file())
            .collect();
        return if found.is_empty() {
            Err(KubeconfigReadError::NotFound)
        } else {
            Ok(found)
        };
    }
    let home = std::env::var_os("HOME").ok_or(KubeconfigReadError::NotFound)?;
    let path = Path::new(&home).join(".kube").join("config");
    if path.is_file() {
        Ok(vec![path])
    } else {
        Err(KubeconfigReadError::NotFound)
    }
}

/// Reads `paths` (merged: the first file to set a value wins, as kubectl merges) and returns
/// how to reach the cluster of `context` (default: `current-context`).
pub fn load(
    paths: &[PathBuf],
    context: Option<&str>,
) -> Result<ClusterAccess, KubeconfigReadError> {
    let mut merged = Merged::default();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|source| KubeconfigReadError::Read {
            path: path.clone(),
            source,
        })?;
        let file: File = if text.trim().is_empty() {
            File::default()
        } else {
            serde_yaml::from_str(&text).map_err(|source| KubeconfigReadError::Parse {
                path: path.clone(),
                source,
            })?
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        merged.add(file, &base);
    }
    let context_name = match context {
        Some(name) => name.to_owned(),
        None => merged
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(KubeconfigReadError::NoCurrentContext)?,
    };
    let missing = |what, name: &str| KubeconfigReadError::Missing {
        what,
        name: name.to_owned(),
    };
    let ctx = merged
        .contexts
        .get(&context_name)
        .ok_or_else(|| missing("context", &context_name))?;
    let (cluster, cluster_base) = merged
        .clusters
        .get(&ctx.cluster)
        .ok_or_else(|| missing("cluster", &ctx.cluster))?;
    let (user, user_base) = merged
        .users
        .get(&ctx.user)
        .ok_or_else(|| missing("user", &ctx.user))?;
    let cluster_owner = format!("cluster {:?}", ctx.cluster);
    let user_owner = format!("user {:?}", ctx.user);

    let server: Uri = cluster
        .server
        .parse()
        .ok()
        .filter(|u: &Uri| {
            u.scheme_str() == Some("https") && u.host().is_some_and(|h| !h.is_empty())
        })
        .ok_or_else(|| KubeconfigReadError::Server {
            cluster: ctx.cluster.clone(),
            server: cluster.server.clone(),
        })?;
    let unsupported = |owner: &str, setting| KubeconfigReadError::Unsupported {
        owner: owner.to_owned(),
        setting,
    };
    if cluster.insecure_skip_tls_verify {
        return Err(unsupported(&cluster_owner, "insecure-skip-tls-verify"));
    }
    if cluster.proxy_url.is_some() {
        return Err(unsupported(&cluster_owner, "proxy-url"));
    }
    if user.exec.is_some() {
        return Err(unsupported(&user_owner, "exec (a credential plugin)"));
    }
    if user.auth_provider.is_some() {
        return Err(unsupported(&user_owner, "auth-provider"));
    }
    if user.username.is_some() || user.password.is_some() {
        return Err(unsupported(&user_owner, "username/password"));
    }

    let ca = pem_input(
        &cluster_owner,
        "certificate-authority-data",
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
        cluster_base,
    )?
    .ok_or_else(|| KubeconfigReadError::NoCa {
        cluster: ctx.cluster.clone(),
    })?;
    let mut roots = RootCertStore::empty();
    let pem_error = |owner: &str, field, expected| KubeconfigReadError::Pem {
        owner: owner.to_owned(),
        field,
        expected,
    };
    for cert in CertificateDer::pem_slice_iter(&ca) {
        let cert =
            cert.map_err(|_| pem_error(&cluster_owner, "certificate-authority", "certificate"))?;
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(pem_error(
            &cluster_owner,
            "certificate-authority",
            "certificate",
        ));
    }
    let builder = ClientConfig::builder_with_provider(kgate_gateway::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let cert = pem_input(
        &user_owner,
        "client-certificate-data",
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
        user_base,
    )?;
    let key = pem_input(
        &user_owner,
        "client-key-data",
        user.client_key_data.as_deref(),
        user.client_key.as_deref(),
        user_base,
    )?;
    let mut tls = match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| pem_error(&user_owner, "client-certificate", "certificate"))?;
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|_| pem_error(&user_owner, "client-key", "private key"))?;
            builder.with_client_auth_cert(chain, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(KubeconfigReadError::HalfClientCert {
                user: ctx.user.clone(),
            })
        }
    };
    // One request per connection, nothing to multiplex: HTTP/1.1 keeps the client simple.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];

    let token = match (&user.token, &user.token_file) {
        (Some(token), _) if !token.is_empty() => Some(BearerToken::new(token.trim())),
        (_, Some(file)) => {
            let path = user_base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| KubeconfigReadError::Read { path, source })?;
            Some(BearerToken::new(text.trim()))
        }
        _ => None,
    };

    let host = server.host().unwrap_or_default();
    let name = cluster
        .tls_server_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        });
    let server_name =
        ServerName::try_from(name.clone()).map_err(|_| KubeconfigReadError::ServerName {
            cluster: ctx.cluster.clone(),
            name,
        })?;
    Ok(ClusterAccess {
        context: context_name,
        server,
        server_name,
        tls: Arc::new(tls),
        token,
    })
}

/// PEM bytes from a `*-data` field (base64) or a file named relative to `base`; `None` if
/// neither is set. `data` wins, as in kubectl.
fn pem_input(
    owner: &str,
    field: &'static str,
    data: Option<&str>,
    file: Option<&Path>,
    base: &Path,
) -> Result<Option<Vec<u8>>, KubeconfigReadError> {
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| KubeconfigReadError::Base64 {
                owner: owner.to_owned(),
                field,
            })?;
        return Ok(Some(bytes));
    }
    match file.filter(|f| !f.as_os_str().is_empty()) {
        Some(file) => {
            let path = base.join(file);
            std::fs::read(&path)
                .map(Some)
                .map_err(|source| KubeconfigReadError::Read { path, source })
        }
        None => Ok(None),
    }
}

/// The named entries of every file read, first wins, each with the folder its relative paths
/// are relative to.
#[derive(Default)]
struct Merged {
    current_context: Option<String>,
    clusters: BTreeMap<String, (ClusterEntry, PathBuf)>,
    users: BTreeMap<String, (UserEntry, PathBuf)>,
    contexts: BTreeMap<String, ContextEntry>,
}

impl Merged {
    fn add(&mut self, file: File, base: &Path) {
        if self.current_context.as_deref().is_none_or(str::is_empty) {
            self.current_context = file.current_context;
        }
        for c in file.clusters {
            self.clusters
                .entry(c.name)
                .or_insert_with(|| (c.cluster, base.to_owned()));
        }
        for u in file.users {
            self.users
                .entry(u.name)
                .or_insert_with(|| (u.user, base.to_owned()));
        }
        for c in file.contexts {
            self.contexts.entry(c.name).or_insert(c.context);
        }
    }
}

// The kubeconfig shape (k8s.io/client-go/tools/clientcmd/api/v1), the fields kgate rbac reads.
// No `Debug`: these hold credentials.

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default, deserialize_with = "null_as_default")]
    clusters: Vec<NamedCluster>,
    #[serde(default, deserialize_with = "null_as_default")]
    users: Vec<NamedUser>,
    #[serde(default, deserialize_with = "null_as_default")]
    contexts: Vec<NamedContext>,
    #[serde(default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    cluster: ClusterEntry,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    user: UserEntry,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: ContextEntry,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry {
    #[serde(default)]
    server: String,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct UserEntry {
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    username: Option<String>,
    password: Option<String>,
    exec: Option<serde_yaml::Value>,
    auth_provider: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
struct ContextEntry {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    user: String,
}

/// `users: null` and `user: null` occur in kubeconfigs kubectl writes; read them as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
#[path = "kubeconfig_tests.rs"]
mod tests;
