//! The ServiceAccount admission of pods, as kube-apiserver's `ServiceAccount` plugin
//! (`plugin/pkg/admission/serviceaccount`): on create, a pod without `serviceAccountName` gets
//! `default`; the ServiceAccount must exist (the `default` one is waited for a little, as its
//! controller creates it with the namespace); and unless automounting is off (on the pod, else
//! on the ServiceAccount) every container and init container mounts a projected volume
//! `kube-api-access-xxxxx` at `/var/run/secrets/kubernetes.io/serviceaccount`: a bound token,
//! the cluster CA (`kube-root-ca.crt`) and the namespace. Nodes then mount what the pod spec
//! says, without reading ServiceAccounts, as kubelet does.

// `Status` is the error type of the HTTP edge by contract (the handlers send it as the body).
#![allow(clippy::result_large_err)]

use std::time::Duration;

use kgate_core::status::GroupResource;
use kgate_core::Status;
use serde_json::{json, Map, Value};

use std::sync::Weak;

use async_trait::async_trait;

use super::{AdmissionPlugin, Attributes, Operation};
use crate::apiserver::codec::decode_object;
use crate::apiserver::keys::object_key;
use crate::apiserver::meta::generate_name;
use crate::resources::lookup;
use crate::store::Store;

/// The ServiceAccount every namespace has, and pods get when they name none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Where the token volume is mounted in each container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the token volume's name.
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
/// The token lifetime the volume asks for: an hour and 7 seconds, kube's
/// `WarnOnlyBoundTokenExpirationSeconds`, which marks a token as a projected one.
pub const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// How often the `default` ServiceAccount is looked for before the pod is refused.
const DEFAULT_ATTEMPTS: u32 = 10;

/// The plugin, over the store it reads ServiceAccounts from.
pub(crate) struct ServiceAccountAdmission {
    /// Weak: the chain is shared with the controllers, which must not keep the store open.
    store: Weak<dyn Store>,
}

impl ServiceAccountAdmission {
    pub fn new(store: Weak<dyn Store>) -> Self {
        ServiceAccountAdmission { store }
    }
}

#[async_trait]
impl AdmissionPlugin for ServiceAccountAdmission {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, attrs: &mut Attributes<'_>) -> Result<(), Status> {
        if !attrs.is_pod() || attrs.namespace.is_empty() {
            return Ok(());
        }
        let namespace = attrs.namespace;
        match attrs.object.as_mut() {
            Some(pod) => {
                let store = self
                    .store
                    .upgrade()
                    .ok_or_else(|| Status::service_unavailable("the server is shutting down"))?;
                admit_pod(store.as_ref(), namespace, pod).await
            }
            None => Ok(()),
        }
    }
}

/// Admits a pod being created in `namespace`: defaults and checks its ServiceAccount, mounts its
/// token volume. A ServiceAccount that does not exist is a 403, as in kube.
pub(crate) async fn admit_pod(
    store: &dyn Store,
    namespace: &str,
    pod: &mut Value,
) -> Result<(), Status> {
    // Mirror pods (static pods a kubelet reports) carry no ServiceAccount in kube either.
    if pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some()
    {
        return Ok(());
    }
    let pod_name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let account = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => DEFAULT_SERVICE_ACCOUNT.to_owned(),
    };
    spec.insert("serviceAccountName".into(), Value::String(account.clone()));
    // The deprecated alias kube keeps in step.
    spec.insert("serviceAccount".into(), Value::String(account.clone()));
    let service_account = find(store, namespace, &account).await.map_err(|cause| {
        Status::forbidden_resource(
            Some(GroupResource::new("", "pods")),
            &pod_name,
            &format!("error looking up service account {namespace}/{account}: {cause}"),
        )
    })?;
    if automount(spec, &service_account) {
        mount_token(spec);
    }
    Ok(())
}

/// The ServiceAccount, or why it cannot be had (kube's wording).
async fn find(store: &dyn Store, namespace: &str, name: &str) -> Result<Value, String> {
    let def = lookup("", "v1", "serviceaccounts").ok_or("serviceaccounts are not served")?;
    let key = object_key(def, Some(namespace), name);
    // The controller creates `default` with its namespace: a pod created right after the
    // namespace waits for it rather than failing, as kube's plugin retries.
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        DEFAULT_ATTEMPTS
    } else {
        1
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            let jitter = rand::random_range(0..100);
            tokio::time::sleep(Duration::from_millis(100 + jitter)).await;
        }
        match store.get(&key).await {
            Ok(Some(kv)) => return decode_object(&kv).map_err(|status| status.message),
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "serviceaccount admission: storage error");
                return Err("storage error".to_owned());
            }
        }
    }
    Err(format!("serviceaccount {name:?} not found"))
}

/// The pod's choice if it made one, else the ServiceAccount's, else true.
fn automount(spec: &Map<String, Value>, service_account: &Value) -> bool {
    spec.get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            service_account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// kube's `mountServiceAccountToken`: reuses a `kube-api-access-` volume the pod already has,
/// mounts it in every container without something at the mount path, and adds the volume if a
/// container needed it.
fn mount_token(spec: &mut Map<String, Value>) {
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|volumes| {
            volumes
                .iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|name| name.starts_with(TOKEN_VOLUME_PREFIX))
                .map(str::to_owned)
        });
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| generate_name(TOKEN_VOLUME_PREFIX));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = container
                .entry("volumeMounts")
                .or_insert_with(|| Value::Array(Vec::new()));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if !taken {
                mounts.push(mount.clone());
                mounted = true;
            }
        }
    }
    if existing.is_none() && mounted {
        let volumes = spec
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(volumes) = volumes.as_array_mut() {
            volumes.push(json!({"name": volume_name, "projected": token_volume_source()}));
        }
    }
}

/// kube's `TokenVolumeSource`.
fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_EXPIRATION_SECONDS}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

#[cfg(test)]
#[path = "service_accounts_tests.rs"]
mod tests;
