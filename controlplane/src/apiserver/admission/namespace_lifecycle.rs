//! The `NamespaceLifecycle` admission plugin, as kube-apiserver's
//! (`k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle`), first in the chain: content may
//! be created only in an existing, Active namespace (404 when it does not exist, 403 while it
//! terminates), and `default`, `kube-system` and `kube-public` may not be deleted.

use std::sync::Weak;

use async_trait::async_trait;
use kgate_core::status::GroupResource;
use kgate_core::Status;
use serde_json::Value;

use super::{AdmissionPlugin, Attributes, Operation};
use crate::apiserver::codec::decode_object;
use crate::apiserver::keys::{store_status, Target};
use crate::apiserver::meta::is_deleting;
use crate::resources;
use crate::store::Store;

/// Namespaces that may not be deleted (kube-node-lease may).
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// The plugin, over the store it reads namespaces from.
pub(crate) struct NamespaceLifecycle {
    /// Weak: the chain is shared with the controllers, which must not keep the store open.
    store: Weak<dyn Store>,
}

impl NamespaceLifecycle {
    pub fn new(store: Weak<dyn Store>) -> Self {
        NamespaceLifecycle { store }
    }

    /// For a create in `namespace`: 404 when it does not exist, 403 while it terminates.
    async fn check_writable(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        let def = attrs.resource;
        let namespace = attrs.namespace;
        let target = namespace_target(namespace)?;
        let store = self.store.upgrade().ok_or_else(closed)?;
        let kv = store
            .get(&target.key())
            .await
            .map_err(|e| store_status(e, Some(&target)))?
            .ok_or_else(|| target.not_found())?;
        let ns = decode_object(&kv)?;
        if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
            || is_deleting(&ns)
        {
            return Err(Status::forbidden_resource(
                Some(GroupResource::new(def.group, def.plural)),
                attrs.name,
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            ));
        }
        Ok(())
    }
}

/// The store closed under a request: the server is shutting down.
fn closed() -> Status {
    Status::service_unavailable("the server is shutting down")
}

fn namespace_target(name: &str) -> Result<Target<'_>, Status> {
    Ok(Target {
        def: resources::lookup("", "v1", "namespaces").ok_or_else(Status::path_not_found)?,
        namespace: None,
        name,
    })
}

#[async_trait]
impl AdmissionPlugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    fn handles(&self, operation: Operation) -> bool {
        matches!(operation, Operation::Create | Operation::Delete)
    }

    async fn admit(&self, attrs: &mut Attributes<'_>) -> Result<(), Status> {
        let namespace_kind = attrs.resource.group.is_empty() && attrs.resource.kind == "Namespace";
        match attrs.operation {
            Operation::Delete if namespace_kind && IMMORTAL.contains(&attrs.name) => {
                Err(Status::forbidden_resource(
                    Some(GroupResource::new("", "namespaces")),
                    attrs.name,
                    "this namespace may not be deleted",
                ))
            }
            Operation::Create if attrs.resource.namespaced && !attrs.namespace.is_empty() => {
                self.check_writable(attrs).await
            }
            _ => Ok(()),
        }
    }
}
