//! kgate-authz: who may do what. It owns Kubernetes RBAC with Kubernetes' semantics (Roles,
//! ClusterRoles, RoleBindings, ClusterRoleBindings, parsed into [`objects`]), evaluated through an
//! index by subject and namespace ([`RbacAuthorizer`]), the `system:masters` short cut
//! ([`PrivilegedGroups`]), and the [`bootstrap`] policy every cluster starts with.
//!
//! It depends on `kgate-core` only (the [`kgate_core::authz::Authorizer`] trait and
//! [`kgate_core::Attributes`]); it does no I/O. The gateway feeds it objects from list+watch
//! through [`RbacAuthorizer::upsert`], [`RbacAuthorizer::remove`] and
//! [`RbacAuthorizer::replace_kind`].
//!
//! Threat model: RBAC only ever allows or has no opinion; a bug that fails to match denies. The
//! inputs are objects from the control plane (validated there, but parsed defensively: a bad
//! object is refused with an [`RbacError`], never a panic) and request attributes from the
//! authenticated pipeline.

// Tests may unwrap: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod authorizer;
pub mod bootstrap;
mod error;
mod index;
pub mod objects;
mod rule;
#[cfg(test)]
mod scan_tests;

pub use authorizer::{PrivilegedGroups, RbacAuthorizer};
pub use error::RbacError;
pub use objects::{RbacKind, RbacObject};
