//! The projected ServiceAccount token of a simulated pod, as kubelet's token manager keeps it:
//! requested through TokenRequest bound to the pod, "mounted" as a 0600 file under the node's
//! state folder, refreshed at 80% of its lifetime, removed with the pod.
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

/// The ServiceAccount whose token the pod gets mounted, if any: `spec.serviceAccountName`
/// (default `default`) unless automounting is off on the pod.
pub fn service_account_of(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if spec.automount_service_account_token == Some(false) {
        return None;
    }
    Some(
        spec.service_account_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".to_owned()),
    )
}

/// Whether the ServiceAccount turns automounting off.
pub fn automount_disabled(sa: &ServiceAccount) -> bool {
    sa.automount_service_account_token == Some(false)
}

/// The TokenRequest body kubelet sends for a pod.
pub fn token_request(pod_name: &str, pod_uid: &str) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [],
            "expirationSeconds": EXPIRATION_SECONDS,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid},
        },
    })
}

/// Requests a token of ServiceAccount `sa` bound to the pod.
pub async fn request(
    client: &kube::Client,
    namespace: &str,
    sa: &str,
    pod_name: &str,
    pod_uid: &str,
) -> Result<PodToken, TokenError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let answer: Value = api
        .create_subresource(
            "token",
            sa,
            &PostParams::default(),
            &token_request(pod_name, pod_uid),
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

/// Writes the token to `dir/token` (0600), replacing the old file atomically.
pub fn write(dir: &Path, token: &PodToken) -> Result<(), TokenError> {
    let path = dir.join("token");
    let fail = |source| TokenError::Write {
        path: path.clone(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let temporary = dir.join(".token.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(fail)?;
    file.write_all(token.token.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    drop(file);
    std::fs::rename(&temporary, &path).map_err(fail)
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
    use k8s_openapi::api::core::v1::PodSpec;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn the_service_account_follows_the_pod_spec() {
        let pod = |name: Option<&str>, automount: Option<bool>| Pod {
            spec: Some(PodSpec {
                service_account_name: name.map(str::to_owned),
                automount_service_account_token: automount,
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(
            service_account_of(&pod(None, None)).as_deref(),
            Some("default")
        );
        assert_eq!(
            service_account_of(&pod(Some("ci"), Some(true))).as_deref(),
            Some("ci")
        );
        assert_eq!(service_account_of(&pod(Some("ci"), Some(false))), None);
    }

    #[test]
    fn the_request_is_bound_to_the_pod() {
        let body = token_request("web", "u-1");
        assert_eq!(body["spec"]["expirationSeconds"], 3607);
        assert_eq!(body["spec"]["boundObjectRef"]["kind"], "Pod");
        assert_eq!(body["spec"]["boundObjectRef"]["uid"], "u-1");
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
        write(&dir, &token).unwrap();
        let file = dir.join("token");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "secret-token");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write(&dir, &token).unwrap();
        remove(&dir);
        assert!(!dir.exists());
        remove(&dir);
    }
}
