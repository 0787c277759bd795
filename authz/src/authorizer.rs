//! The two authorizers this crate gives the chain: [`PrivilegedGroups`] (members of
//! `system:masters` may do everything) and [`RbacAuthorizer`] (Kubernetes RBAC over the Roles,
//! ClusterRoles and bindings it is fed).
//!
//! The RBAC state sits behind a `std::sync::RwLock`: decisions take the read lock (many at once),
//! a watch event takes the write lock for one incremental index update. Parsing and rule
//! compilation happen before the write lock, so readers wait only for the map updates, and a
//! decision made after `upsert`/`remove`/`replace_kind` returns sees the change.

use crate::error::RbacError;
use crate::index::{Compiled, State};
use crate::objects::{RbacKind, RbacObject};
use kgate_core::authz::Authorizer;
use kgate_core::user::SYSTEM_PRIVILEGED_GROUP;
use kgate_core::{Attributes, Decision, UserInfo};
use serde_json::Value;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Allows every request of a member of the privileged groups, as kube-apiserver's
/// `privilegedGroupAuthorizer`, which runs before RBAC so that RBAC objects cannot lock out the
/// cluster admin. NoOpinion for everyone else.
#[derive(Debug, Clone)]
pub struct PrivilegedGroups {
    groups: Vec<String>,
}

impl PrivilegedGroups {
    pub fn new<I, S>(groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            groups: groups.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `user` is in one of the privileged groups, and so may do anything.
    pub fn includes(&self, user: &UserInfo) -> bool {
        self.groups.iter().any(|g| user.in_group(g))
    }
}

impl Default for PrivilegedGroups {
    /// `system:masters` only.
    fn default() -> Self {
        Self::new([SYSTEM_PRIVILEGED_GROUP])
    }
}

impl Authorizer for PrivilegedGroups {
    fn name(&self) -> &'static str {
        "privileged-groups"
    }

    fn authorize(&self, attributes: &Attributes) -> Decision {
        if self.includes(&attributes.user) {
            // Kubernetes gives no reason here either.
            Decision::allow("")
        } else {
            Decision::no_opinion("")
        }
    }
}

/// Kubernetes RBAC, indexed by subject and namespace, updated incrementally from watch events.
#[derive(Debug, Default)]
pub struct RbacAuthorizer {
    state: RwLock<State>,
}

impl RbacAuthorizer {
    /// An authorizer that knows no objects yet (and so allows nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one object; its kind is read from its `kind` field.
    ///
    /// A refused object is not taken in, and the previous version of the object it names (same
    /// kind, namespace and name), if any, is dropped: the control plane no longer holds that
    /// version, and going on evaluating it could keep granting what the cluster has taken back.
    /// RBAC fails closed, as `replace_kind` does for the objects it skips.
    pub fn upsert(&self, object: &Value) -> Result<(), RbacError> {
        match RbacObject::from_value(object) {
            Ok(parsed) => {
                self.upsert_object(&parsed);
                Ok(())
            }
            Err(error) => {
                if let Some((kind, namespace, name)) = identity(object) {
                    self.write().remove(kind, namespace, name);
                }
                Err(error)
            }
        }
    }

    /// Adds or replaces one parsed object.
    pub fn upsert_object(&self, object: &RbacObject) {
        let compiled = Compiled::new(object);
        self.write().insert(compiled);
    }

    /// Removes one object. Unknown kinds and absent objects are ignored (a delete event for
    /// something never seen is harmless). `namespace` is ignored for cluster-scoped kinds.
    pub fn remove(&self, kind: &str, namespace: &str, name: &str) {
        if let Some(kind) = RbacKind::from_kind(kind) {
            let namespace = if kind.is_namespaced() { namespace } else { "" };
            self.write().remove(kind, namespace, name);
        }
    }

    /// Replaces every object of `kind` with `objects` (a relist), in one step: a decision sees
    /// either the old set or the new one. Objects that do not parse are skipped, the others
    /// applied, and the skipped ones reported in [`RbacError::Skipped`]. An unknown `kind`
    /// changes nothing.
    pub fn replace_kind(&self, kind: &str, objects: &[Value]) -> Result<(), RbacError> {
        let kind = RbacKind::from_kind(kind).ok_or_else(|| RbacError::UnsupportedKind {
            kind: kind.to_owned(),
        })?;
        let mut compiled = Vec::with_capacity(objects.len());
        let mut errors = Vec::new();
        for object in objects {
            match RbacObject::from_value_as(kind, object) {
                Ok(parsed) => compiled.push(Compiled::new(&parsed)),
                Err(e) => errors.push(e),
            }
        }
        let applied = compiled.len();
        {
            let mut state = self.write();
            state.clear(kind);
            for c in compiled {
                state.insert(c);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(RbacError::Skipped {
                kind,
                applied,
                errors,
            })
        }
    }

    /// How many objects of `kind` are held.
    pub fn object_count(&self, kind: RbacKind) -> usize {
        self.read().count(kind)
    }

    // A panic while holding the lock cannot leave the maps half-updated in a way that breaks
    // later decisions (each insert/remove is a few map operations), so a poisoned lock is used.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The kind, namespace and name an object claims, read without parsing the rest; `None` when
/// it names no RBAC kind or no name.
fn identity(object: &Value) -> Option<(RbacKind, &str, &str)> {
    let kind = RbacKind::from_kind(object.get("kind")?.as_str()?)?;
    let metadata = object.get("metadata")?;
    let name = metadata.get("name")?.as_str().filter(|n| !n.is_empty())?;
    let namespace = if kind.is_namespaced() {
        metadata.get("namespace")?.as_str()?
    } else {
        ""
    };
    Some((kind, namespace, name))
}

impl Authorizer for RbacAuthorizer {
    fn name(&self) -> &'static str {
        "rbac"
    }

    fn authorize(&self, attributes: &Attributes) -> Decision {
        self.read().decide(attributes)
    }
}

#[cfg(test)]
#[path = "authorizer_tests.rs"]
mod tests;
