//! The impersonation step: an authenticated user asks to act as another (`kubectl --as`,
//! `--as-group`, the `Impersonate-*` headers), each requested attribute is checked with the
//! `impersonate` verb exactly as k8s.io/apiserver's `WithImpersonation` checks it, and only when
//! every check passes is a new [`Authenticated`] proof made for the requested user, keeping the
//! user who authenticated ([`Authenticated::original_user`]) for audit.
//!
//! | asked for | resource | API group | name | namespace |
//! |---|---|---|---|---|
//! | user `alice` | `users` | `""` | `alice` | |
//! | user `system:serviceaccount:ns:sa` | `serviceaccounts` | `""` | `sa` | `ns` |
//! | group `dev` | `groups` | `""` | `dev` | |
//! | extra `scopes: view` | `userextras/scopes` | `authentication.k8s.io` | `view` | |
//! | uid `42` | `uids` | `authentication.k8s.io` | `42` | |
//!
//! The new user gets kube's group rules: a ServiceAccount given no groups gets
//! `system:serviceaccounts` and `system:serviceaccounts:<ns>`, and any user but
//! `system:anonymous` gets `system:authenticated` unless `system:unauthenticated` was asked.
//!
//! Threat model: this is the only code that makes a proof for a user other than the one who
//! authenticated; the first refusal ends it, and reading the request (headers, in the gateway)
//! is the caller's.

use crate::attributes::Attributes;
use crate::authn::Authenticated;
use crate::authz::{AuthorizerChain, Denied};
use crate::decision::Decision;
use crate::user::{UserInfo, ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS};
use std::collections::BTreeMap;

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// Who a request asks to act as. `user` is never empty (the caller refuses groups, a uid or
/// extras without a user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImpersonationRequest {
    pub user: String,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Checks `requested` for `authenticated`'s user with `authorizer` (the request chain, deny
/// lines first) and makes the proof for the requested user; the first refusal is returned, with
/// the attributes that were refused for the 403's words.
// A denial carries the attributes for the 403 text; it is the rare path and callers box it.
#[allow(clippy::result_large_err)]
pub fn impersonate(
    authenticated: Authenticated,
    requested: ImpersonationRequest,
    authorizer: &AuthorizerChain,
) -> Result<Authenticated, Denied> {
    for attributes in checks(authenticated.user(), &requested) {
        let decision = authorizer.decide(&attributes);
        if let Decision::Allow { .. } = decision {
            continue;
        }
        return Err(Denied {
            reason: decision.reason().to_owned(),
            attributes,
        });
    }
    Ok(authenticated.acting_as(impersonated_user(requested)))
}

/// `(namespace, name)` of a ServiceAccount user name, as `serviceaccount.SplitUsername`.
fn service_account(user: &str) -> Option<(&str, &str)> {
    let (namespace, name) = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((namespace, name))
}

/// The `impersonate` checks the request needs, in kube's order: user, groups, extras, uid.
fn checks(requestor: &UserInfo, requested: &ImpersonationRequest) -> Vec<Attributes> {
    let check =
        |group: &str, resource: &str, subresource: &str, namespace: &str, name: &str| Attributes {
            user: requestor.clone(),
            verb: "impersonate".to_owned(),
            resource_request: true,
            api_group: group.to_owned(),
            api_version: "v1".to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            ..Attributes::default()
        };
    let mut checks = vec![match service_account(&requested.user) {
        Some((namespace, name)) => check("", "serviceaccounts", "", namespace, name),
        None => check("", "users", "", "", &requested.user),
    }];
    for group in &requested.groups {
        checks.push(check("", "groups", "", "", group));
    }
    for (key, values) in &requested.extra {
        for value in values {
            checks.push(check(AUTHENTICATION_GROUP, "userextras", key, "", value));
        }
    }
    if let Some(uid) = &requested.uid {
        checks.push(check(AUTHENTICATION_GROUP, "uids", "", "", uid));
    }
    checks
}

/// The user the request acts as once every check passed, with kube's group defaults.
fn impersonated_user(requested: ImpersonationRequest) -> UserInfo {
    let mut groups = requested.groups;
    if groups.is_empty() {
        if let Some((namespace, _)) = service_account(&requested.user) {
            groups = vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
            ];
        }
    }
    if requested.user == ANONYMOUS {
        if !groups.iter().any(|g| g == ALL_UNAUTHENTICATED) {
            groups.push(ALL_UNAUTHENTICATED.to_owned());
        }
    } else if !groups
        .iter()
        .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
    {
        groups.push(ALL_AUTHENTICATED.to_owned());
    }
    UserInfo {
        name: requested.user,
        uid: requested.uid.unwrap_or_default(),
        groups,
        extra: requested.extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impersonating_anonymous_keeps_it_unauthenticated() {
        let user = impersonated_user(ImpersonationRequest {
            user: ANONYMOUS.to_owned(),
            ..ImpersonationRequest::default()
        });
        assert_eq!(user.groups, [ALL_UNAUTHENTICATED]);
    }
}
