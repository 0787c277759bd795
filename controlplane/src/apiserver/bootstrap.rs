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

use kgate_core::UserInfo;
use thiserror::Error;

use super::codec::decode_object;
use super::keys::object_key;
use super::meta::meta_str;
use super::namespaces::SYSTEM_NAMESPACES;
use super::registry::{WriteError, Writer};
use super::state::Shared;
use crate::resources::{self, ResourceDef};
use crate::store::StoreError;

/// Why the API server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ApiServerError {
    /// A bootstrap object (a system namespace, a bootstrap ClusterRole...) could not be stored.
    #[error("could not create the bootstrap object {what}")]
    Bootstrap {
        /// Which object, as `namespaces/default`.
        what: String,
        #[source]
        source: StoreError,
    },
    /// A bootstrap object is malformed (a defect in the embedded policy).
    #[error("the bootstrap object {what} is invalid: {message}")]
    InvalidBootstrapObject { what: String, message: String },
}

/// How often one object's reconciliation starts over after losing a race with another writer.
const MAX_ATTEMPTS: usize = 8;

/// Creates the system namespaces and reconciles the bootstrap RBAC policy, writing as the API
/// server itself (kube's loopback `system:apiserver`) through the write path of
/// [`super::registry`].
pub(crate) async fn run(shared: &Shared) -> Result<(), ApiServerError> {
    let mut user = UserInfo::new("system:apiserver");
    user.groups = vec!["system:masters".to_owned()];
    let writer = Writer::new(shared.admission.clone(), user);
    let writer = &writer;
    let namespaces = def("", "namespaces")?;
    for name in SYSTEM_NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        ensure(shared, writer, namespaces, ns, |_, _| {
            Reconciliation::Unchanged
        })
        .await?;
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
            ensure(shared, writer, def, obj, reconcile).await?;
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
    writer: &Writer,
    def: &'static ResourceDef,
    mut obj: Value,
    reconcile: fn(&Value, &Value) -> Reconciliation,
) -> Result<(), ApiServerError> {
    let store = shared.store.as_ref();
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
    // Refusals are defects of the embedded policy; a store race starts over.
    let outcome = |result: Result<(), WriteError>| -> Result<bool, ApiServerError> {
        match result {
            Ok(()) => Ok(true),
            Err(WriteError::Refused(status)) => Err(invalid(status.message)),
            Err(WriteError::Store(
                StoreError::Conflict { .. } | StoreError::NotFound | StoreError::AlreadyExists,
            )) => Ok(false),
            Err(WriteError::Store(source)) => Err(store_error(source)),
        }
    };
    for _ in 0..MAX_ATTEMPTS {
        let Some(kv) = shared.store.get(&key).await.map_err(store_error)? else {
            // Another server over the same store may get there first: reconcile with its copy.
            let created = writer.create(store, def, obj.clone()).await.map(drop);
            if outcome(created)? {
                return Ok(());
            }
            continue;
        };
        let current = decode_object(&kv).map_err(|s| invalid(s.message))?;
        let written = match reconcile(&obj, &current) {
            Reconciliation::Unchanged | Reconciliation::Protected => return Ok(()),
            Reconciliation::Update(next) => writer
                .update(store, def, &kv, &current, next)
                .await
                .map(drop),
            Reconciliation::Recreate(next) => {
                // A roleRef cannot change in place: the binding is replaced.
                match writer.delete(store, def, &kv, &current).await {
                    Ok(()) => writer.create(store, def, next).await.map(drop),
                    Err(e) => Err(e),
                }
            }
        };
        if outcome(written)? {
            tracing::info!(object = %what, "bootstrap policy object reconciled");
            return Ok(());
        }
    }
    Err(store_error(StoreError::Unavailable(
        "the object kept changing while it was reconciled".to_owned(),
    )))
}
