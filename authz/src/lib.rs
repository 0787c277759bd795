//! kgate-authz: who may do what. It owns Kubernetes RBAC with Kubernetes' semantics (Roles,
//! ClusterRoles, RoleBindings, ClusterRoleBindings, parsed into [`objects`]), evaluated through an
//! index by subject and namespace ([`RbacAuthorizer`]), the `system:masters` short cut
//! ([`PrivilegedGroups`]), the [`bootstrap`] policy every cluster starts with, ClusterRole
//! [`aggregation`], the casbin [`policy`] layer around RBAC, and the logic of the [`review`] APIs.
//!
//! Among kgate's crates it depends on `kgate-core` only (the [`kgate_core::authz::Authorizer`]
//! trait and [`kgate_core::Attributes`]); it does no I/O. The gateway feeds it objects from
//! list+watch through [`RbacAuthorizer::upsert`], [`RbacAuthorizer::remove`] and
//! [`RbacAuthorizer::replace_kind`]. Review endpoints, escalation checks and the CLI ask it
//! [`RbacAuthorizer::rules_for`], [`RbacAuthorizer::who_can`], [`RbacAuthorizer::explain`] and
//! [`RbacAuthorizer::confirm_no_escalation`] (with [`covers`]).
//!
//! Threat model: RBAC only ever allows or has no opinion; a bug that fails to match denies. The
//! inputs are objects from the control plane (validated there, but parsed defensively: a bad
//! object is refused with an [`RbacError`], never a panic) and request attributes from the
//! authenticated pipeline.

// Tests may unwrap: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod aggregation;
mod authorizer;
pub mod bootstrap;
mod error;
mod escalation;
mod explain;
mod index;
pub mod objects;
pub mod policy;
mod quote;
pub mod review;
mod roles;
mod rule;
mod rules_for;
#[cfg(test)]
mod scan_tests;
mod who_can;

pub use authorizer::{PrivilegedGroups, RbacAuthorizer};
pub use error::RbacError;
pub use escalation::{covers, EscalationError};
pub use explain::{BindingExplanation, Explanation, RuleMatch};
pub use objects::{RbacKind, RbacObject};
pub use policy::{Policy, PolicyAuthorizer, PolicyError, PolicyHandle};
pub use rules_for::SubjectRules;
pub use who_can::{BindingRef, Grant};
