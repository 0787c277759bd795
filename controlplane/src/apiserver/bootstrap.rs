//! What exists from the first start, as kube-apiserver's bootstrap controllers make it: the
//! namespaces default, kube-system, kube-public and kube-node-lease, and the bootstrap RBAC policy
//! (ClusterRoles and ClusterRoleBindings of `kgate_authz::bootstrap`).
//!
//! Idempotent: run on every start, it creates what is absent and never touches what exists, so
//! an admin's edits survive restarts and resourceVersions do not move.

use serde_json::{json, Value};

use super::codec::encode_object;
use super::namespaces::SYSTEM_NAMESPACES;
use super::objects::{meta_str, prepare_create};
use super::{object_key, ApiServerError, Shared};
use crate::resources::{self, ResourceDef};
use crate::store::StoreError;

/// Creates every bootstrap object that is absent.
pub(crate) async fn run(shared: &Shared) -> Result<(), ApiServerError> {
    let namespaces = def("", "namespaces")?;
    for name in SYSTEM_NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        ensure(shared, namespaces, ns).await?;
    }
    let roles = def("rbac.authorization.k8s.io", "clusterroles")?;
    for role in kgate_authz::bootstrap::cluster_roles() {
        ensure(shared, roles, role).await?;
    }
    let bindings = def("rbac.authorization.k8s.io", "clusterrolebindings")?;
    for binding in kgate_authz::bootstrap::cluster_role_bindings() {
        ensure(shared, bindings, binding).await?;
    }
    Ok(())
}

fn def(group: &str, plural: &str) -> Result<&'static ResourceDef, ApiServerError> {
    resources::lookup(group, "v1", plural).ok_or_else(|| ApiServerError::InvalidBootstrapObject {
        what: plural.to_owned(),
        message: "the resource is not served".to_owned(),
    })
}

/// Creates `obj` unless an object of that name exists.
async fn ensure(shared: &Shared, def: &ResourceDef, mut obj: Value) -> Result<(), ApiServerError> {
    let name = meta_str(&obj, "name").unwrap_or("").to_owned();
    let what = format!("{}/{name}", def.plural);
    let invalid = |message: String| ApiServerError::InvalidBootstrapObject {
        what: what.clone(),
        message,
    };
    let key = object_key(def, None, &name);
    let exists = shared
        .store
        .get(&key)
        .await
        .map_err(|source| ApiServerError::Bootstrap {
            what: what.clone(),
            source,
        })?
        .is_some();
    if exists {
        return Ok(());
    }
    // The embedded policy may carry server-set fields; they are the server's to set.
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["resourceVersion", "uid", "creationTimestamp"] {
            meta.remove(f);
        }
    }
    prepare_create(def, &mut obj).map_err(|s| invalid(s.message))?;
    let bytes = encode_object(&obj).map_err(|s| invalid(s.message))?;
    match shared.store.create(&key, bytes).await {
        // Another server over the same store got there first: that is the same outcome.
        Ok(_) | Err(StoreError::AlreadyExists) => Ok(()),
        Err(source) => Err(ApiServerError::Bootstrap { what, source }),
    }
}
