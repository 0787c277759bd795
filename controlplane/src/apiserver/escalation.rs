//! Privilege-escalation prevention for RBAC writes, as kube-apiserver's RBAC registry
//! (`pkg/registry/rbac/*/policybased`) does it, step for step:
//!
//! - **Role / ClusterRole**, create and update alike: allowed outright with the `escalate` verb
//!   on the role, asked with the request's namespace and name (empty on a create, so a grant
//!   limited by resourceNames never covers creating that role). Otherwise an update that changes
//!   nothing but the fields the garbage collector writes (ownerReferences, finalizers) passes;
//!   anything else must grant only what the writer already holds (the new rules), and a
//!   ClusterRole with an aggregationRule, on the new object or the old, needs full authority
//!   (`*` on `*.*` and every non-resource URL), since aggregation can gather anything.
//! - **RoleBinding / ClusterRoleBinding**: an update that changes only the GC fields passes;
//!   otherwise the `bind` verb on the role referred to, or holding every permission of that
//!   role.
//!
//! Whether the writer may `escalate` or `bind` is asked of the same [`AuthorizerChain`] as every
//! request (policy deny lines first, then `system:masters`, RBAC, policy allow lines): a deny
//! line there takes the shortcut away, and the writer must then hold the rules. What a writer
//! holds comes from RBAC alone ([`RbacAuthorizer`]), as kube's rule resolver, fed from this
//! server's objects like the gateway's. The check is synchronous so it can run inside the
//! compare-and-swap loop of an update, on the object actually being written.
//!
//! Threat model: the writer is the user the gateway names in its front-proxy headers; whoever
//! writes RBAC objects decides what everyone may do, so every write of the RBAC group passes
//! here, whatever verb or patch type made it. The comparison for "only GC fields" is on the
//! object as the writer sent it (before this server fills in system fields), as kube compares
//! it, so an update that drops the uid or resourceVersion is checked in full.
//!
//! Where it runs in a write ([`super::write`]): after the mutating admission and before the
//! resource's strategy ([`super::strategy`]), as kube's RBAC storage wraps the generic store.
//! No built-in admission plugin changes RBAC objects, so the object checked is the one sent.

use std::sync::Arc;

use http::HeaderMap;
use kgate_authz::objects::{PolicyRule, RoleRefKind};
use kgate_authz::{RbacAuthorizer, RbacObject};
use kgate_core::authz::AuthorizerChain;
use kgate_core::headers::{REMOTE_EXTRA_PREFIX, REMOTE_GROUP, REMOTE_UID, REMOTE_USER};
use kgate_core::status::GroupResource;
use kgate_core::{Attributes, Status, UserInfo};
use serde_json::Value;

use crate::resources::ResourceDef;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The metadata fields the garbage collector writes, which an update may change alone without
/// an escalation check (kube's `IsOnlyMutatingGCFields`, which also ignores selfLink and
/// managedFields).
const GC_FIELDS: [&str; 4] = ["ownerReferences", "finalizers", "selfLink", "managedFields"];

/// An RBAC write, as the checks see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RbacWrite<'a> {
    pub def: &'a ResourceDef,
    /// The namespace in the URL; empty for cluster-scoped objects.
    pub namespace: &'a str,
    /// The name in the URL: empty on a create (kube authorizes `escalate` with it).
    pub name: &'a str,
    /// The object as the writer sent it (patch applied), before system fields.
    pub new: &'a Value,
    /// The stored object an update replaces; `None` on a create.
    pub old: Option<&'a Value>,
}

/// Checks RBAC writes against what the writer holds.
#[derive(Clone)]
pub struct EscalationGuard {
    /// Kube's rule resolver: what a user holds, for `ConfirmNoEscalation`.
    rbac: Arc<RbacAuthorizer>,
    /// The request chain, for the `escalate` and `bind` questions.
    authorizer: AuthorizerChain,
}

impl std::fmt::Debug for EscalationGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscalationGuard").finish_non_exhaustive()
    }
}

impl EscalationGuard {
    /// `rbac` tells what users hold; `authorizer` is the chain requests are authorized with,
    /// which answers whether a user may `escalate` or `bind`.
    pub fn new(rbac: Arc<RbacAuthorizer>, authorizer: AuthorizerChain) -> Self {
        Self { rbac, authorizer }
    }

    /// Allows or refuses `write` by `user`. Objects of other groups pass.
    pub(crate) fn check(
        &self,
        user: Option<&UserInfo>,
        write: &RbacWrite<'_>,
    ) -> Result<(), Status> {
        let def = write.def;
        if def.group != RBAC_GROUP {
            return Ok(());
        }
        let parsed =
            RbacObject::from_value(write.new).map_err(|e| Status::bad_request(e.to_string()))?;
        let gr = GroupResource::new(def.group, def.plural);
        let Some(user) = user else {
            // Only the gateway talks to this server, and it always names the user.
            return Err(Status::forbidden_resource(
                Some(gr),
                object_name(&parsed),
                "no user is named on this request",
            ));
        };
        let gc_only = write
            .old
            .is_some_and(|old| only_gc_fields_change(write.new, old));
        match &parsed {
            RbacObject::Role(role) | RbacObject::ClusterRole(role) => {
                if self.allowed(user, "escalate", def.plural, write.namespace, write.name) {
                    return Ok(());
                }
                if gc_only {
                    return Ok(());
                }
                self.confirm(user, write.namespace, &role.rules, gr, &role.name)?;
                let aggregates =
                    has_aggregation_rule(write.new) || write.old.is_some_and(has_aggregation_rule);
                if matches!(parsed, RbacObject::ClusterRole(_)) && aggregates {
                    self.rbac
                        .confirm_no_escalation(user, "", &full_authority())
                        .map_err(|_| {
                            Status::forbidden_resource(
                                Some(gr),
                                &role.name,
                                "must have cluster-admin privileges to use the aggregationRule",
                            )
                        })?;
                }
                Ok(())
            }
            RbacObject::RoleBinding(binding) | RbacObject::ClusterRoleBinding(binding) => {
                if gc_only {
                    return Ok(());
                }
                let role_resource = if binding.role_ref.kind == RoleRefKind::Role {
                    "roles"
                } else {
                    "clusterroles"
                };
                if self.allowed(
                    user,
                    "bind",
                    role_resource,
                    write.namespace,
                    &binding.role_ref.name,
                ) {
                    return Ok(());
                }
                let rules = self
                    .rbac
                    .role_rules(
                        binding.role_ref.kind,
                        write.namespace,
                        &binding.role_ref.name,
                    )
                    .ok_or_else(|| {
                        Status::not_found(
                            GroupResource::new(RBAC_GROUP, role_resource),
                            &binding.role_ref.name,
                        )
                    })?;
                self.confirm(user, write.namespace, &rules, gr, &binding.name)
            }
            _ => Ok(()),
        }
    }

    /// `verb` on an RBAC resource, asked of the request chain, as kube's
    /// `RoleEscalationAuthorized` / `BindingAuthorized`.
    fn allowed(&self, user: &UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
        let mut attributes = Attributes::resource(user.clone(), verb, RBAC_GROUP, resource, ns);
        attributes.api_version = "*".to_owned();
        attributes.name = name.to_owned();
        self.authorizer.decide(&attributes).is_allow()
    }

    fn confirm(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
        gr: GroupResource<'_>,
        name: &str,
    ) -> Result<(), Status> {
        self.rbac
            .confirm_no_escalation(user, namespace, rules)
            .map_err(|e| Status::forbidden_resource(Some(gr), name, &e.to_string()))
    }
}

/// `*` on `*.*` and on every non-resource URL: what setting an aggregationRule needs.
fn full_authority() -> [PolicyRule; 2] {
    let all = || vec!["*".to_owned()];
    [
        PolicyRule {
            verbs: all(),
            api_groups: all(),
            resources: all(),
            resource_names: Vec::new(),
            non_resource_urls: Vec::new(),
        },
        PolicyRule {
            verbs: all(),
            api_groups: Vec::new(),
            resources: Vec::new(),
            resource_names: Vec::new(),
            non_resource_urls: all(),
        },
    ]
}

/// An aggregationRule with at least one selector (kube's `hasAggregationRule`).
fn has_aggregation_rule(object: &Value) -> bool {
    object
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        .is_some_and(|selectors| !selectors.is_empty())
}

/// True when `new` differs from `old` in the GC fields alone: `new` with `old`'s GC fields put
/// back equals `old`, by kube's semantic equality (an absent field, `null` and an empty value
/// are the same, as a Go struct decoded from either).
pub(crate) fn only_gc_fields_change(new: &Value, old: &Value) -> bool {
    let mut copied = new.clone();
    let Some(copied_meta) = copied.get_mut("metadata").and_then(Value::as_object_mut) else {
        return false;
    };
    let old_meta = old.get("metadata").and_then(Value::as_object);
    for field in GC_FIELDS {
        match old_meta.and_then(|m| m.get(field)) {
            Some(value) => {
                copied_meta.insert(field.to_owned(), value.clone());
            }
            None => {
                copied_meta.remove(field);
            }
        }
    }
    semantically_equal(&copied, old)
}

/// JSON equality where a missing field, `null`, `""`, `[]` and `{}` are all the zero value.
fn semantically_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let zero = Value::Null;
            a.keys()
                .chain(b.keys())
                .all(|k| semantically_equal(a.get(k).unwrap_or(&zero), b.get(k).unwrap_or(&zero)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| semantically_equal(a, b))
        }
        (a, b) if is_zero(a) && is_zero(b) => true,
        (a, b) => a == b,
    }
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

fn object_name(object: &RbacObject) -> &str {
    match object {
        RbacObject::Role(r) | RbacObject::ClusterRole(r) => &r.name,
        RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b) => &b.name,
        _ => "",
    }
}

/// The user the gateway names in its front-proxy headers (`X-Remote-User`, one
/// `X-Remote-Group` per group, `X-Remote-Uid`, `X-Remote-Extra-<percent-encoded key>`); `None`
/// without `X-Remote-User`. Only the gateway can send these: `kgate controlplane` accepts them
/// from the gateway's client certificate alone, and `kgate up` calls this server in-process.
pub(crate) fn front_proxy_user(headers: &HeaderMap) -> Option<UserInfo> {
    let name = headers.get(REMOTE_USER)?.to_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let groups = headers
        .get_all(REMOTE_GROUP)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut user = UserInfo::new(name).with_groups(groups);
    if let Some(uid) = headers.get(REMOTE_UID).and_then(|v| v.to_str().ok()) {
        user.uid = uid.to_owned();
    }
    for (header, value) in headers {
        let Some(key) = header.as_str().strip_prefix(REMOTE_EXTRA_PREFIX) else {
            continue;
        };
        let (Ok(key), Ok(value)) = (
            percent_encoding::percent_decode_str(key).decode_utf8(),
            value.to_str(),
        ) else {
            continue;
        };
        user.extra
            .entry(key.into_owned())
            .or_default()
            .push(value.to_owned());
    }
    Some(user)
}

#[cfg(test)]
#[path = "escalation_tests.rs"]
mod tests;
