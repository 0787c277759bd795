//! The objects ServiceAccount tokens depend on: the UID of every ServiceAccount, Pod, Secret and
//! Node, kept by list+watch ([`OBJECTS`], through [`crate::rbac_sync`]) so that verifying a
//! token asks memory, not the control plane. When an object is deleted (or replaced by one with
//! another UID), every cached verification that depended on it is dropped at once through
//! [`ForgetObject`]: a token of a deleted ServiceAccount gets 401 on its next request.
//!
//! Only names and UIDs are kept, and only metadata is synced ([`Kind::metadata_only`]): a Secret's
//! data never reaches the gateway, nor a Pod's spec and status.

use crate::rbac_sync::{Kind, RbacSink, SinkError, SyncSet};
use kgate_tokens::{ObjectKind, ObjectLookup};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The readiness check of this set: tokens are not verified against a partial picture.
pub const READINESS_CHECK: &str = "token-objects";

/// ServiceAccounts, Pods, Secrets and Nodes, metadata only: [`identity`] reads nothing else.
pub static OBJECTS: SyncSet = SyncSet {
    readiness_check: READINESS_CHECK,
    kinds: &[
        Kind {
            kind: "ServiceAccount",
            api_version: "v1",
            path: "/api/v1/serviceaccounts",
            metadata_only: true,
        },
        Kind {
            kind: "Pod",
            api_version: "v1",
            path: "/api/v1/pods",
            metadata_only: true,
        },
        Kind {
            kind: "Secret",
            api_version: "v1",
            path: "/api/v1/secrets",
            metadata_only: true,
        },
        Kind {
            kind: "Node",
            api_version: "v1",
            path: "/api/v1/nodes",
            metadata_only: true,
        },
    ],
};

/// Told when an object is gone, so that what depended on it is dropped.
pub trait ForgetObject: Send + Sync {
    fn forget(&self, kind: ObjectKind, namespace: &str, name: &str);
}

/// (namespace, name) → UID, per kind.
type Uids = HashMap<(String, String), String>;

/// The UIDs, and who to tell when one goes.
#[derive(Default)]
pub struct ObjectIndex {
    kinds: RwLock<HashMap<&'static str, Uids>>,
    forget: RwLock<Vec<Arc<dyn ForgetObject>>>,
}

impl std::fmt::Debug for ObjectIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectIndex").finish_non_exhaustive()
    }
}

fn kind_name(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::ServiceAccount => "ServiceAccount",
        ObjectKind::Pod => "Pod",
        ObjectKind::Secret => "Secret",
        ObjectKind::Node => "Node",
    }
}

fn object_kind(kind: &str) -> Option<ObjectKind> {
    match kind {
        "ServiceAccount" => Some(ObjectKind::ServiceAccount),
        "Pod" => Some(ObjectKind::Pod),
        "Secret" => Some(ObjectKind::Secret),
        "Node" => Some(ObjectKind::Node),
        _ => None,
    }
}

/// `(namespace, name, uid)` of an object; `None` without a name or UID.
fn identity(object: &Value) -> Option<(String, String, String)> {
    let field = |name: &str| {
        object
            .pointer(&format!("/metadata/{name}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (namespace, name, uid) = (field("namespace"), field("name"), field("uid"));
    (!name.is_empty() && !uid.is_empty()).then_some((namespace, name, uid))
}

impl ObjectIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a listener told of every object that disappears or changes UID.
    pub fn on_forget(&self, listener: Arc<dyn ForgetObject>) {
        self.forget
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    fn tell(&self, kind: &str, namespace: &str, name: &str) {
        let Some(kind) = object_kind(kind) else {
            return;
        };
        for listener in self
            .forget
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            listener.forget(kind, namespace, name);
        }
    }
}

impl ObjectLookup for ObjectIndex {
    fn uid_of(&self, kind: ObjectKind, namespace: &str, name: &str) -> Option<String> {
        let kinds = self.kinds.read().unwrap_or_else(PoisonError::into_inner);
        // A map keyed by owned strings: the lookup key is built once per check.
        kinds
            .get(kind_name(kind))?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
}

impl RbacSink for ObjectIndex {
    fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), SinkError> {
        let Some(kind) = object_kind(kind).map(kind_name) else {
            return Err(format!("kind {kind:?} is not indexed").into());
        };
        let fresh: Uids = objects
            .iter()
            .filter_map(identity)
            .map(|(namespace, name, uid)| ((namespace, name), uid))
            .collect();
        let old = {
            let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
            kinds.insert(kind, fresh.clone()).unwrap_or_default()
        };
        // A relist after missed events: whatever vanished or changed UID meanwhile is forgotten.
        for ((namespace, name), uid) in old {
            if fresh.get(&(namespace.clone(), name.clone())) != Some(&uid) {
                self.tell(kind, &namespace, &name);
            }
        }
        Ok(())
    }

    fn upsert(&self, object: &Value) -> Result<(), SinkError> {
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .and_then(object_kind)
            .map(kind_name)
            .ok_or("an object of a kind that is not indexed")?;
        let (namespace, name, uid) = identity(object).ok_or("an object without name or uid")?;
        let previous = {
            let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
            kinds
                .entry(kind)
                .or_default()
                .insert((namespace.clone(), name.clone()), uid.clone())
        };
        if previous.is_some_and(|old| old != uid) {
            self.tell(kind, &namespace, &name);
        }
        Ok(())
    }

    fn remove(&self, kind: &str, namespace: &str, name: &str) {
        let Some(kind) = object_kind(kind).map(kind_name) else {
            return;
        };
        {
            let mut kinds = self.kinds.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(uids) = kinds.get_mut(kind) {
                uids.remove(&(namespace.to_owned(), name.to_owned()));
            }
        }
        self.tell(kind, namespace, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Forgotten(Mutex<Vec<String>>);
    impl ForgetObject for Forgotten {
        fn forget(&self, kind: ObjectKind, namespace: &str, name: &str) {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{}/{namespace}/{name}", kind_name(kind)));
        }
    }

    fn sa(name: &str, uid: &str) -> Value {
        json!({"kind": "ServiceAccount", "metadata": {"namespace": "ci", "name": name, "uid": uid}})
    }

    fn forgotten(f: &Forgotten) -> Vec<String> {
        std::mem::take(&mut *f.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    #[test]
    fn uids_follow_lists_and_events_and_losses_are_told() {
        let index = ObjectIndex::new();
        let told = Arc::new(Forgotten::default());
        index.on_forget(told.clone());
        index
            .replace_kind("ServiceAccount", &[sa("jenkins", "u1"), sa("ci", "u2")])
            .expect("list");
        assert_eq!(
            index.uid_of(ObjectKind::ServiceAccount, "ci", "jenkins"),
            Some("u1".into())
        );
        assert_eq!(index.uid_of(ObjectKind::Pod, "ci", "jenkins"), None);

        // Same UID again: nothing to forget. A new UID (deleted and re-created): forget.
        index.upsert(&sa("jenkins", "u1")).expect("upsert");
        assert!(forgotten(&told).is_empty());
        index.upsert(&sa("jenkins", "u3")).expect("upsert");
        assert_eq!(forgotten(&told), ["ServiceAccount/ci/jenkins"]);

        index.remove("ServiceAccount", "ci", "jenkins");
        assert_eq!(
            index.uid_of(ObjectKind::ServiceAccount, "ci", "jenkins"),
            None
        );
        assert_eq!(forgotten(&told), ["ServiceAccount/ci/jenkins"]);

        // A relist without "ci" forgets it.
        index.replace_kind("ServiceAccount", &[]).expect("list");
        assert_eq!(forgotten(&told), ["ServiceAccount/ci/ci"]);
    }

    #[test]
    fn every_kind_is_synced_as_metadata_only() {
        // `identity` reads only metadata; a Secret's data must never be asked for.
        for kind in OBJECTS.kinds {
            assert!(kind.metadata_only, "{}", kind.kind);
            assert!(object_kind(kind.kind).is_some(), "{}", kind.kind);
        }
    }

    #[test]
    fn objects_without_identity_or_of_other_kinds_are_refused() {
        let index = ObjectIndex::new();
        assert!(index
            .upsert(&json!({"kind": "ServiceAccount", "metadata": {"name": "x"}}))
            .is_err());
        assert!(index
            .upsert(&json!({"kind": "ConfigMap", "metadata": {"name": "x", "uid": "u"}}))
            .is_err());
        assert!(index.replace_kind("ConfigMap", &[]).is_err());
    }
}
