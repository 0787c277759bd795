//! Client kubeconfig files for kgate's certificates: one cluster (`kgate`), one user, one
//! context, with everything inline (`*-data`) so the file stands alone.
//!
//! A kubeconfig holds a private key: [`write_private`] writes it 0600, and its `Debug` is redacted.

use base64::Engine as _;
use kgate_gateway::pki::{self, IssuedCert, PkiError};
use serde::Serialize;
use std::fmt;
use std::path::Path;
use thiserror::Error;

/// The cluster and context name kgate uses.
pub const CLUSTER_NAME: &str = "kgate";

/// Why a kubeconfig could not be produced.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KubeconfigError {
    /// Serialising to YAML failed.
    #[error("cannot serialise the kubeconfig")]
    Serialize(#[from] serde_yaml::Error),
    /// Writing the file failed.
    #[error("cannot write the kubeconfig")]
    Write(#[source] PkiError),
}

/// A kubeconfig for one client certificate. `Debug` leaves out the key.
pub struct Kubeconfig {
    server: String,
    user: String,
    ca_pem: String,
    client: IssuedCert,
}

impl fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("server", &self.server)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Kubeconfig {
    /// A kubeconfig that reaches `server` (e.g. `https://127.0.0.1:6443`), trusts `ca_pem`, and
    /// logs in as `user` with `client`.
    pub fn new(server: &str, ca_pem: &str, user: &str, client: IssuedCert) -> Self {
        Self {
            server: server.to_owned(),
            user: user.to_owned(),
            ca_pem: ca_pem.to_owned(),
            client,
        }
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> Result<String, KubeconfigError> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let doc = Document {
            api_version: "v1",
            kind: "Config",
            clusters: vec![Named {
                name: CLUSTER_NAME,
                cluster: Some(Cluster {
                    server: &self.server,
                    certificate_authority_data: b64(&self.ca_pem),
                }),
                user: None,
                context: None,
            }],
            users: vec![Named {
                name: &self.user,
                cluster: None,
                user: Some(User {
                    client_certificate_data: b64(&self.client.cert_pem),
                    client_key_data: b64(self.client.key_pem.expose_secret()),
                }),
                context: None,
            }],
            contexts: vec![Named {
                name: CLUSTER_NAME,
                cluster: None,
                user: None,
                context: Some(Context {
                    cluster: CLUSTER_NAME,
                    user: &self.user,
                }),
            }],
            current_context: CLUSTER_NAME,
            preferences: Preferences {},
        };
        Ok(serde_yaml::to_string(&doc)?)
    }

    /// Writes the kubeconfig to `path` with mode 0600.
    pub fn write_private(&self, path: &Path) -> Result<(), KubeconfigError> {
        pki::write_private(path, self.to_yaml()?.as_bytes()).map_err(KubeconfigError::Write)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Document<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a>>,
    users: Vec<Named<'a>>,
    contexts: Vec<Named<'a>>,
    current_context: &'a str,
    preferences: Preferences,
}

#[derive(Serialize)]
struct Preferences {}

/// The `{name, cluster|user|context}` entries of a kubeconfig.
#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<Cluster<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Context<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster<'a> {
    server: &'a str,
    certificate_authority_data: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kgate_gateway::pki::{Pki, Validity};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_a_complete_private_kubeconfig() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("pki");
        let client = pki
            .ca
            .issue_client_cert(
                "alice",
                &["dev".into()],
                Validity::from_now(time::Duration::hours(1)),
            )
            .expect("issue");
        let kubeconfig =
            Kubeconfig::new("https://127.0.0.1:6443", pki.ca.cert_pem(), "alice", client);
        let path = dir.path().join("alice.kubeconfig");
        kubeconfig.write_private(&path).expect("write");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let text = std::fs::read_to_string(&path).expect("read");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        assert_eq!(doc["current-context"], "kgate");
        assert_eq!(doc["contexts"][0]["context"]["user"], "alice");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        let key = doc["users"][0]["user"]["client-key-data"]
            .as_str()
            .expect("key data");
        let key = base64::engine::general_purpose::STANDARD
            .decode(key)
            .expect("base64");
        assert!(String::from_utf8_lossy(&key).contains("PRIVATE KEY"));
        assert!(!format!("{kubeconfig:?}").contains("PRIVATE"));
    }
}
