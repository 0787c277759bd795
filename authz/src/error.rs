//! Why an RBAC object was refused.

use crate::objects::RbacKind;
use thiserror::Error;

/// An RBAC object that could not be taken in. The authorizer drops its previous version of that
/// object, if it can tell which object it was (kind, namespace, name), and fails closed: the
/// control plane no longer holds that version. Nothing else changes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RbacError {
    /// The object has no `kind` string, so it cannot be classified.
    #[error("object has no kind")]
    MissingKind,
    /// `kind` is not Role, ClusterRole, RoleBinding or ClusterRoleBinding.
    #[error("kind {kind:?} is not an RBAC kind")]
    UnsupportedKind { kind: String },
    /// A relist of one kind held an object of another kind.
    #[error("expected a {expected}, found kind {found:?}")]
    KindMismatch { expected: RbacKind, found: String },
    /// A field has the wrong JSON type (for example `verbs` is not a list of strings).
    #[error("malformed {kind}")]
    Malformed {
        kind: RbacKind,
        #[source]
        source: serde_json::Error,
    },
    /// `metadata.name` is missing or empty.
    #[error("{kind} has no metadata.name")]
    MissingName { kind: RbacKind },
    /// A Role or RoleBinding without `metadata.namespace`.
    #[error("{kind} {name:?} has no metadata.namespace")]
    MissingNamespace { kind: RbacKind, name: String },
    /// `roleRef` is missing, names no role, or has a kind other than Role or ClusterRole (a
    /// ClusterRoleBinding may only refer to a ClusterRole).
    #[error("{kind} {name:?} has an invalid roleRef (kind {role_kind:?}, name {role_name:?})")]
    InvalidRoleRef {
        kind: RbacKind,
        name: String,
        role_kind: String,
        role_name: String,
    },
    /// A subject whose kind is not User, Group or ServiceAccount, or that has no name.
    #[error(
        "{kind} {name:?} has an invalid subject (kind {subject_kind:?}, name {subject_name:?})"
    )]
    InvalidSubject {
        kind: RbacKind,
        name: String,
        subject_kind: String,
        subject_name: String,
    },
    /// A ServiceAccount subject of a ClusterRoleBinding without a namespace: it could never match.
    #[error("{kind} {name:?}: ServiceAccount subject {subject_name:?} needs a namespace")]
    ServiceAccountWithoutNamespace {
        kind: RbacKind,
        name: String,
        subject_name: String,
    },
    /// Some objects of a relist were refused; the others were applied. Each refusal is in
    /// `errors`, in list order.
    #[error("{} {kind} objects skipped, {applied} applied", errors.len())]
    Skipped {
        kind: RbacKind,
        applied: usize,
        errors: Vec<RbacError>,
    },
}
