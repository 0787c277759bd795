//! Where objects live in the [`Store`](crate::store::Store) and how they are addressed: the key
//! layout (kube-apiserver's etcd layout: `/registry/<plural>[.<group>]/<namespace>/<name>`), the
//! addressed object ([`Target`]) and its Statuses, store errors as Statuses, and
//! resourceVersion preconditions. A leaf: it uses only [`super::meta`].

use kgate_core::status::GroupResource;
use kgate_core::Status;
use serde_json::Value;

use super::meta::meta_str;
use crate::resources::ResourceDef;
use crate::store::{Revision, StoreError};

/// The storage key of one object.
pub fn object_key(def: &ResourceDef, namespace: Option<&str>, name: &str) -> String {
    let mut key = collection_prefix(def, namespace);
    key.push_str(name);
    key
}

/// The key prefix of a collection: every object of `def`, or those in one namespace.
pub fn collection_prefix(def: &ResourceDef, namespace: Option<&str>) -> String {
    let mut prefix = def.key_prefix();
    if let (true, Some(ns)) = (def.namespaced, namespace) {
        prefix.push_str(ns);
        prefix.push('/');
    }
    prefix
}

/// One addressed object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub def: &'static ResourceDef,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

impl Target<'_> {
    pub fn key(&self) -> String {
        object_key(self.def, self.namespace, self.name)
    }

    pub fn gr(&self) -> GroupResource<'static> {
        GroupResource::new(self.def.group, self.def.plural)
    }

    pub fn not_found(&self) -> Status {
        Status::not_found(self.gr(), self.name)
    }

    pub fn conflict(&self) -> Status {
        Status::stale_conflict(self.gr(), self.name)
    }
}

/// A store error as the client sees it. Details of internal failures go to the log only.
pub(crate) fn store_status(err: StoreError, target: Option<&Target<'_>>) -> Status {
    let gr = target.map(Target::gr).unwrap_or(GroupResource::new("", ""));
    let name = target.map(|t| t.name).unwrap_or("");
    match err {
        StoreError::NotFound => Status::not_found(gr, name),
        StoreError::AlreadyExists => Status::already_exists(gr, name),
        StoreError::Conflict { .. } => Status::stale_conflict(gr, name),
        StoreError::Compacted { requested, .. } => Status::gone(format!(
            "The resourceVersion for the provided list is too old. requested: {requested}"
        )),
        // kube answers a resourceVersion from the future with a 504 and a hint to retry.
        StoreError::FutureRevision { requested, current } => Status::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        StoreError::TooLarge { .. } => {
            Status::request_entity_too_large("the object exceeds the storage size limit")
        }
        StoreError::Unavailable(detail) => {
            tracing::warn!(error = %detail, "store unavailable");
            Status::service_unavailable("storage is unavailable, please retry")
        }
        other => {
            tracing::error!(error = %other, "store failure");
            Status::internal("storage error")
        }
    }
}

/// Parses a client's resourceVersion precondition.
pub(crate) fn parse_resource_version(rv: &str) -> Result<Revision, Status> {
    rv.parse::<Revision>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Status::bad_request(format!("invalid resource version: {rv:?}")))
}

/// The `metadata.resourceVersion` of an object as a precondition (`None` when unset).
pub(crate) fn precondition_of(obj: &Value) -> Result<Option<Revision>, Status> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => parse_resource_version(rv).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[test]
    fn keys_follow_the_etcd_layout() {
        let pods = lookup("", "v1", "pods").expect("pods");
        assert_eq!(
            object_key(pods, Some("default"), "web"),
            "/registry/pods/default/web"
        );
        assert_eq!(collection_prefix(pods, None), "/registry/pods/");
        let ns = lookup("", "v1", "namespaces").expect("namespaces");
        assert_eq!(
            object_key(ns, Some("x"), "team"),
            "/registry/namespaces/team"
        );
        let deploy = lookup("apps", "v1", "deployments").expect("deployments");
        assert_eq!(
            collection_prefix(deploy, Some("a")),
            "/registry/deployments.apps/a/"
        );
    }

    #[test]
    fn resource_versions_must_be_positive_integers() {
        assert_eq!(parse_resource_version("12").ok(), Some(12));
        assert!(parse_resource_version("abc").is_err());
        assert!(parse_resource_version("0").is_err());
    }
}
