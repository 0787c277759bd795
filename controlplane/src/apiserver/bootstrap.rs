//! What exists from the first start, as kube-apiserver's bootstrap controllers make it: the
//! namespaces default, kube-system, kube-public and kube-node-lease, and the bootstrap RBAC policy
//! of `kgate_authz::bootstrap` (ClusterRoles, ClusterRoleBindings, and the Roles and RoleBindings
//! of kube-system and kube-public).
//!
//! Run at every start. Namespaces are created when absent. RBAC objects are reconciled as
//! kube-apiserver reconciles them (`kgate_authz::bootstrap::reconcile`): absent ones created;
//! present ones given back missing rules, subjects, labels, annotations and aggregation
//! selectors (what an admin added stays); a binding whose roleRef differs deleted and
//! recreated; objects annotated `rbac.authorization.kubernetes.io/autoupdate: "false"` left
//! alone. An object that already agrees is not written, so its resourceVersion does not move.

use kgate_authz::bootstrap::reconcile::{reconcile_binding, reconcile_role, Reconciliation};
use serde_json::{json, Value};

use super::codec::{decode_object, encode_object};
use super::namespaces::SYSTEM_NAMESPACES;
use super::objects::{meta_str, prepare_create, prepare_update, StatusFrom};
use super::{object_key, ApiServerError, Shared};
use crate::resources::{self, ResourceDef};
use crate::store::StoreError;

/// How often one object's reconciliation starts over after losing a race with another writer.
const MAX_ATTEMPTS: usize = 8;

/// Creates the system namespaces and reconciles the bootstrap RBAC policy.
pub(crate) async fn run(shared: &Shared) -> Result<(), ApiServerError> {
    let namespaces = def("", "namespaces")?;
    for name in SYSTEM_NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        ensure(shared, namespaces, ns, |_, _| Reconciliation::Unchanged).await?;
    }
    // Kubernetes' order: roles before the bindings that name them.
    let policy = [
        ("clusterroles", kgate_authz::bootstrap::cluster_roles()),
        (
            "clusterrolebindings",
            kgate_authz::bootstrap::cluster_role_bindings(),
        ),
        ("roles", kgate_authz::bootstrap::roles()),
        ("rolebindings", kgate_authz::bootstrap::role_bindings()),
    ];
    for (plural, objects) in policy {
        let def = def("rbac.authorization.k8s.io", plural)?;
        let reconcile = if plural.ends_with("bindings") {
            reconcile_binding
        } else {
            reconcile_role
        };
        for obj in objects {
            ensure(shared, def, obj, reconcile).await?;
        }
    }
    Ok(())
}

fn def(group: &str, plural: &str) -> Result<&'static ResourceDef, ApiServerError> {
    resources::lookup(group, "v1", plural).ok_or_else(|| ApiServerError::InvalidBootstrapObject {
        what: plural.to_owned(),
        message: "the resource is not served".to_owned(),
    })
}

/// Creates `obj` when absent; otherwise applies what `reconcile` (policy, stored) decides, with
/// compare-and-swap writes, starting over when another writer got in between.
async fn ensure(
    shared: &Shared,
    def: &'static ResourceDef,
    mut obj: Value,
    reconcile: fn(&Value, &Value) -> Reconciliation,
) -> Result<(), ApiServerError> {
    let name = meta_str(&obj, "name").unwrap_or("").to_owned();
    let namespace = meta_str(&obj, "namespace").map(str::to_owned);
    let what = match &namespace {
        Some(ns) => format!("{}/{ns}/{name}", def.plural),
        None => format!("{}/{name}", def.plural),
    };
    let invalid = |message: String| ApiServerError::InvalidBootstrapObject {
        what: what.clone(),
        message,
    };
    let store_error = |source: StoreError| ApiServerError::Bootstrap {
        what: what.clone(),
        source,
    };
    // The embedded policy may carry server-set fields; they are the server's to set.
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in ["resourceVersion", "uid", "creationTimestamp"] {
            meta.remove(f);
        }
    }
    let key = object_key(def, namespace.as_deref(), &name);
    let create = |obj: &Value| -> Result<Vec<u8>, ApiServerError> {
        let mut obj = obj.clone();
        prepare_create(def, &mut obj).map_err(|s| invalid(s.message))?;
        encode_object(&obj).map_err(|s| invalid(s.message))
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(kv) = shared.store.get(&key).await.map_err(store_error)? else {
            match shared.store.create(&key, create(&obj)?).await {
                Ok(_) => return Ok(()),
                // Another server over the same store got there first: reconcile with its copy.
                Err(StoreError::AlreadyExists) => continue,
                Err(source) => return Err(store_error(source)),
            }
        };
        let current = decode_object(&kv).map_err(|s| invalid(s.message))?;
        let outcome = match reconcile(&obj, &current) {
            Reconciliation::Unchanged | Reconciliation::Protected => return Ok(()),
            Reconciliation::Update(next) => {
                let next = prepare_update(def, &current, next, StatusFrom::Old)
                    .map_err(|s| invalid(s.message))?;
                let bytes = encode_object(&next).map_err(|s| invalid(s.message))?;
                shared.store.update(&key, bytes, kv.mod_revision).await
            }
            Reconciliation::Recreate(next) => {
                // A roleRef cannot change in place: the binding is replaced.
                match shared.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => shared.store.create(&key, create(&next)?).await,
                    Err(e) => Err(e),
                }
            }
        };
        match outcome {
            Ok(_) => {
                tracing::info!(object = %what, "bootstrap policy object reconciled");
                return Ok(());
            }
            Err(StoreError::Conflict { .. } | StoreError::NotFound | StoreError::AlreadyExists) => {
                continue
            }
            Err(source) => return Err(store_error(source)),
        }
    }
    Err(store_error(StoreError::Unavailable(
        "the object kept changing while it was reconciled".to_owned(),
    )))
}
