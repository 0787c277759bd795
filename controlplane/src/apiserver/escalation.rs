//! Privilege-escalation prevention for RBAC writes, as kube-apiserver's RBAC registry does it:
//! a user may create or update a Role or ClusterRole only with every permission it grants (in
//! that namespace) or the `escalate` verb on it; and a RoleBinding or ClusterRoleBinding only
//! with every permission of the role it binds or the `bind` verb on that role. Members of
//! `system:masters` may do both.
//!
//! The writer is the user the gateway names in its front-proxy headers. What the writer holds
//! comes from [`RbacAuthorizer`], fed from this server's own watch like the gateway's, so the
//! answer is the one the gateway would give. The check is synchronous so it can run inside the
//! compare-and-swap loop of an update, on the object actually being written.

use std::sync::Arc;

use http::HeaderMap;
use kgate_authz::objects::{Binding, PolicyRule, RoleRefKind};
use kgate_authz::{PrivilegedGroups, RbacAuthorizer, RbacObject};
use kgate_core::authz::{Authorizer, AuthorizerChain};
use kgate_core::headers::{REMOTE_EXTRA_PREFIX, REMOTE_GROUP, REMOTE_UID, REMOTE_USER};
use kgate_core::status::GroupResource;
use kgate_core::{Attributes, Status, UserInfo};
use serde_json::Value;

use crate::resources::ResourceDef;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Checks RBAC writes against what the writer holds.
#[derive(Clone)]
pub struct EscalationGuard {
    rbac: Arc<RbacAuthorizer>,
    /// `[system:masters, RBAC]`: who may `escalate` and `bind`.
    authorizer: AuthorizerChain,
}

impl std::fmt::Debug for EscalationGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscalationGuard").finish_non_exhaustive()
    }
}

impl EscalationGuard {
    pub fn new(rbac: Arc<RbacAuthorizer>) -> Self {
        let authorizer =
            AuthorizerChain::new(vec![Arc::new(PrivilegedGroups::default()), rbac.clone()]);
        Self { rbac, authorizer }
    }

    /// Allows or refuses writing `new` (replacing `old`, for an update) as `user`. Objects of
    /// other groups pass.
    pub(crate) fn check(
        &self,
        user: Option<&UserInfo>,
        def: &ResourceDef,
        new: &Value,
        old: Option<&Value>,
    ) -> Result<(), Status> {
        if def.group != RBAC_GROUP {
            return Ok(());
        }
        let parsed = RbacObject::from_value(new).map_err(|e| Status::bad_request(e.to_string()))?;
        let gr = GroupResource::new(def.group, def.plural);
        let Some(user) = user else {
            // Only the gateway talks to this server, and it always names the user.
            return Err(Status::forbidden_resource(
                Some(gr),
                object_name(&parsed),
                "no user is named on this request",
            ));
        };
        if PrivilegedGroups::default()
            .authorize(&probe(user))
            .is_allow()
        {
            return Ok(());
        }
        match &parsed {
            RbacObject::Role(role) | RbacObject::ClusterRole(role) => {
                let aggregation = new.get("aggregationRule").filter(|v| !v.is_null());
                let old_aggregation = old
                    .and_then(|o| o.get("aggregationRule"))
                    .filter(|v| !v.is_null());
                let old_rules = old.and_then(|o| RbacObject::from_value(o).ok());
                let unchanged = matches!(
                    &old_rules,
                    Some(RbacObject::Role(r) | RbacObject::ClusterRole(r)) if r.rules == role.rules
                ) && aggregation == old_aggregation;
                if unchanged {
                    return Ok(());
                }
                let may_escalate =
                    self.allowed(user, "escalate", def.plural, &role.namespace, &role.name);
                if may_escalate {
                    return Ok(());
                }
                if aggregation.is_some() {
                    return Err(Status::forbidden_resource(
                        Some(gr),
                        &role.name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    ));
                }
                self.confirm(user, &role.namespace, &role.rules, gr, &role.name)
            }
            RbacObject::RoleBinding(binding) | RbacObject::ClusterRoleBinding(binding) => {
                let unchanged = old
                    .and_then(|o| RbacObject::from_value(o).ok())
                    .is_some_and(|o| match o {
                        RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b) => {
                            b.subjects == binding.subjects && b.role_ref == binding.role_ref
                        }
                        _ => false,
                    });
                if unchanged {
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
                    &binding.namespace,
                    &binding.role_ref.name,
                ) {
                    return Ok(());
                }
                let rules = self.role_rules(binding, role_resource)?;
                self.confirm(user, &binding.namespace, &rules, gr, &binding.name)
            }
            _ => Ok(()),
        }
    }

    /// `verb` on an RBAC resource, as kube's `RoleEscalationAuthorized` / `BindingAuthorized`.
    fn allowed(&self, user: &UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
        let mut attributes = Attributes::resource(user.clone(), verb, RBAC_GROUP, resource, ns);
        attributes.api_version = "*".to_owned();
        attributes.name = name.to_owned();
        self.authorizer.decide(&attributes).is_allow()
    }

    /// The rules of the role a binding names; a missing role is 404, as kube answers.
    fn role_rules(
        &self,
        binding: &Binding,
        role_resource: &str,
    ) -> Result<Vec<PolicyRule>, Status> {
        self.rbac
            .role_rules(
                binding.role_ref.kind,
                &binding.namespace,
                &binding.role_ref.name,
            )
            .ok_or_else(|| {
                Status::not_found(
                    GroupResource::new(RBAC_GROUP, role_resource),
                    &binding.role_ref.name,
                )
            })
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

/// An attribute set that only carries the user, for the privileged-group test.
fn probe(user: &UserInfo) -> Attributes {
    Attributes {
        user: user.clone(),
        ..Attributes::default()
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
