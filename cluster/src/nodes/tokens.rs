//! The projected ServiceAccount token of a simulated pod, as kubelet's token manager keeps it:
//! what the pod spec's projected `serviceAccountToken` source asks for (the API server's
//! ServiceAccount admission adds it, as kube's does, so the node reads no ServiceAccount),
//! requested through TokenRequest bound to the pod, "mounted" as a 0600 file under the node's
//! state folder at the source's path, refreshed at 80% of its lifetime, removed with the pod.
//! The volume's other sources (the CA bundle, the namespace) are not written.
//!
//! Threat model: the token is a credential of the pod's ServiceAccount. It lives in a
//! [`PodToken`] whose `Debug` hides it, is written only to its file (0600, in a 0700 folder),
//! and never appears in a log line or an error message.

use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// The lifetime kubelet asks for (an hour and 7 seconds, so the token is recognisable as a
/// projected one).
pub const EXPIRATION_SECONDS: i64 = 3607;

/// Why a pod's token could not be had or kept.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The TokenRequest failed (the ServiceAccount may not exist yet).
    #[error("the TokenRequest for serviceaccount {namespace}/{name} failed")]
    Request {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The answer held no token.
    #[error("the TokenRequest for serviceaccount {namespace}/{name} returned no token")]
    NoToken { namespace: String, name: String },
    /// The token file could not be written.
    #[error("cannot write the token file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A pod's token and when it expires. `Debug` shows the expiry only.
pub struct PodToken {
    token: String,
    pub expires: Timestamp,
}

impl std::fmt::Debug for PodToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodToken")
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// What a pod's projected token source asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenProjection {
    /// The pod's ServiceAccount.
    pub service_account: String,
    /// The token's audience; the API server's own when `None`.
    pub audience: Option<String>,
    pub expiration_seconds: i64,
    /// The file's path inside the pod's folder, checked to stay inside it.
    pub path: PathBuf,
}

/// The first projected `serviceAccountToken` source among the pod's volumes, as kubelet mounts
/// it; `None` when the pod has none (automounting off) or its path would leave the pod's folder.
pub fn projection_of(pod: &Pod) -> Option<TokenProjection> {
    let spec = pod.spec.as_ref()?;
    let source = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .find_map(|s| s.service_account_token.as_ref())?;
    let path = Path::new(&source.path);
    let inside = path
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside || source.path.is_empty() {
        tracing::warn!(path = %source.path, "a projected token path that leaves the pod's folder is not mounted");
        return None;
    }
    Some(TokenProjection {
        service_account: spec
            .service_account_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
        audience: source.audience.clone().filter(|a| !a.is_empty()),
        expiration_seconds: source.expiration_seconds.unwrap_or(EXPIRATION_SECONDS),
        path: path.to_path_buf(),
    })
}

/// The TokenRequest body kubelet sends for a pod.
pub fn token_request(projection: &TokenProjection, pod_name: &str, pod_uid: &str) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": projection.audience.iter().collect::<Vec<_>>(),
            "expirationSeconds": projection.expiration_seconds,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid},
        },
    })
}

/// Requests a token of ServiceAccount `sa` bound to the pod.
pub async fn request(
    client: &kube::Client,
    namespace: &str,
    projection: &TokenProjection,
    pod_name: &str,
    pod_uid: &str,
) -> Result<PodToken, TokenError> {
    let sa = projection.service_account.as_str();
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let answer: Value = api
        .create_subresource(
            "token",
            sa,
            &PostParams::default(),
            &token_request(projection, pod_name, pod_uid),
        )
        .await
        .map_err(|source| TokenError::Request {
            namespace: namespace.to_owned(),
            name: sa.to_owned(),
            source,
        })?;
    let no_token = || TokenError::NoToken {
        namespace: namespace.to_owned(),
        name: sa.to_owned(),
    };
    let token = answer
        .pointer("/status/token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(no_token)?
        .to_owned();
    let expires = answer
        .pointer("/status/expirationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or_else(|| {
            Timestamp::now()
                .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(
                    EXPIRATION_SECONDS,
                ))
                .unwrap_or_else(|_| Timestamp::now())
        });
    Ok(PodToken { token, expires })
}

/// How long until the token is refreshed: 80% of its remaining lifetime at `now`, at least a
/// few seconds.
pub fn refresh_after(token: &PodToken, now: Timestamp) -> Duration {
    let remaining = token.expires.duration_since(now).as_secs_f64().max(0.0);
    Duration::from_secs_f64((remaining * 0.8).max(5.0))
}

/// The folder of a pod's files under the node's state folder:
/// `NODE_DIR/pods/<namespace>_<pod>_<uid>`.
pub fn pod_dir(node_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    node_dir
        .join("pods")
        .join(format!("{namespace}_{name}_{uid}"))
}

/// The uid a pod folder name ends with.
pub fn uid_of_pod_dir(dir_name: &str) -> Option<&str> {
    dir_name.rsplit_once('_').map(|(_, uid)| uid)
}

/// Writes the token to `dir/path` (0600, in 0700 folders), replacing the old file atomically.
/// Not synced to disk: like kubelet's token volumes (tmpfs) it is re-requested after a restart.
pub fn write(dir: &Path, path: &Path, token: &PodToken) -> Result<(), TokenError> {
    let file_path = dir.join(path);
    let fail = |source| TokenError::Write {
        path: file_path.clone(),
        source,
    };
    let folder = file_path.parent().unwrap_or(dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(fail)?;
    let temporary = folder.join(".token.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(fail)?;
    file.write_all(token.token.as_bytes()).map_err(fail)?;
    drop(file);
    std::fs::rename(&temporary, &file_path).map_err(fail)
}

/// Removes a pod's folder (the token goes with it).
pub fn remove(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => tracing::warn!(dir = %dir.display(), %error, "cannot remove a pod's folder"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn pod(volumes: serde_json::Value, account: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"containers": [], "volumes": volumes, "serviceAccountName": account},
        }))
        .unwrap()
    }

    fn token_source(source: serde_json::Value) -> serde_json::Value {
        json!([
            {"name": "data", "emptyDir": {}},
            {"name": "kube-api-access-x1y2z", "projected": {"sources": [
                {"configMap": {"name": "kube-root-ca.crt"}},
                {"serviceAccountToken": source},
            ]}},
        ])
    }

    #[test]
    fn the_projection_is_what_the_pod_spec_says() {
        let admitted = pod(
            token_source(json!({"path": "token", "expirationSeconds": 3607})),
            Some("ci"),
        );
        let projection = projection_of(&admitted).unwrap();
        assert_eq!(
            projection,
            TokenProjection {
                service_account: "ci".into(),
                audience: None,
                expiration_seconds: 3607,
                path: "token".into(),
            }
        );
        let body = token_request(&projection, "web", "u-1");
        assert_eq!(body["spec"]["audiences"], json!([]));
        assert_eq!(body["spec"]["expirationSeconds"], 3607);
        assert_eq!(body["spec"]["boundObjectRef"]["kind"], "Pod");
        assert_eq!(body["spec"]["boundObjectRef"]["uid"], "u-1");

        let vault = pod(
            token_source(
                json!({"path": "vault/token", "audience": "vault", "expirationSeconds": 600}),
            ),
            None,
        );
        let projection = projection_of(&vault).unwrap();
        assert_eq!(projection.service_account, "default");
        assert_eq!(projection.path, Path::new("vault/token"));
        let body = token_request(&projection, "web", "u-1");
        assert_eq!(body["spec"]["audiences"], json!(["vault"]));
        assert_eq!(body["spec"]["expirationSeconds"], 600);

        // Automounting off: the admission added no volume, so nothing is mounted.
        assert_eq!(projection_of(&pod(json!([]), Some("ci"))), None);
        // A path out of the pod's folder is refused.
        for path in ["../../etc/token", "/etc/token", "a/../../token", ""] {
            let hostile = pod(token_source(json!({"path": path})), None);
            assert_eq!(projection_of(&hostile), None, "{path}");
        }
    }

    #[test]
    fn tokens_are_refreshed_at_80_percent_and_written_0600() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let token = PodToken {
            token: "secret-token".into(),
            expires: "2026-01-01T01:00:00Z".parse().unwrap(),
        };
        assert_eq!(refresh_after(&token, now), Duration::from_secs(2880));
        assert!(!format!("{token:?}").contains("secret-token"));

        let root = tempfile::tempdir().unwrap();
        let dir = pod_dir(root.path(), "ns", "web", "u-1");
        assert_eq!(uid_of_pod_dir("ns_web_u-1"), Some("u-1"));
        write(&dir, Path::new("token"), &token).unwrap();
        let file = dir.join("token");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "secret-token");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write(&dir, Path::new("token"), &token).unwrap();
        write(&dir, Path::new("vault/token"), &token).unwrap();
        let folder = std::fs::metadata(dir.join("vault"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(folder & 0o777, 0o700);
        remove(&dir);
        assert!(!dir.exists());
        remove(&dir);
    }
}
