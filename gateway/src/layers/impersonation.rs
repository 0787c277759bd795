//! Impersonation: `Impersonate-User`, `-Group`, `-Uid` and `-Extra-<key>` let an authenticated
//! user act as another (`kubectl --as`, `--as-group`). Each requested attribute is checked with
//! the `impersonate` verb exactly as k8s.io/apiserver's `WithImpersonation` checks it:
//!
//! | header | resource | API group | name | namespace |
//! |---|---|---|---|---|
//! | `Impersonate-User: alice` | `users` | `""` | `alice` | |
//! | `Impersonate-User: system:serviceaccount:ns:sa` | `serviceaccounts` | `""` | `sa` | `ns` |
//! | `Impersonate-Group: dev` | `groups` | `""` | `dev` | |
//! | `Impersonate-Extra-scopes: view` | `userextras/scopes` | `authentication.k8s.io` | `view` | |
//! | `Impersonate-Uid: 42` | `uids` | `authentication.k8s.io` | `42` | |
//!
//! The first refusal is a 403 worded as kube's (`users "alice" is forbidden: User "bob" cannot
//! impersonate resource "users" in API group "" at the cluster scope`). When every check passes,
//! the [`Authenticated`] proof's user is replaced, with kube's group rules: a ServiceAccount
//! given no groups gets `system:serviceaccounts` and `system:serviceaccounts:<ns>`, and any user
//! but `system:anonymous` gets `system:authenticated` unless `system:unauthenticated` was asked.
//!
//! Threat model: these headers are the client's claim to another identity; nothing behind this
//! stage may see them. They are removed once checked, and a request that asks for groups, extras
//! or a uid without a user, or names two users, is refused (400) rather than guessed at. (kube
//! answers the first case with 500; it is the client's mistake, so 400 here.)

use crate::error::GatewayError;
use crate::layers::{proceed, refuse, trace, StageFuture};
use axum::body::Body;
use http::header::HeaderName;
use http::{HeaderMap, Request, Response};
use kgate_core::authn::Authenticated;
use kgate_core::authz::{AuthorizerChain, Denied};
use kgate_core::headers::{
    IMPERSONATE_EXTRA_PREFIX, IMPERSONATE_GROUP, IMPERSONATE_UID, IMPERSONATE_USER,
};
use kgate_core::user::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS};
use kgate_core::{Attributes, Decision, UserInfo};
use percent_encoding::percent_decode_str;
use std::collections::BTreeMap;
use std::task::{Context, Poll};
use tower::{Layer, Service};

const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// Checks and applies impersonation; see the module docs.
#[derive(Debug, Clone)]
pub struct ImpersonationLayer {
    authorizer: AuthorizerChain,
}

impl ImpersonationLayer {
    pub fn new(authorizer: AuthorizerChain) -> Self {
        Self { authorizer }
    }
}

impl<S> Layer<S> for ImpersonationLayer {
    type Service = Impersonation<S>;
    fn layer(&self, inner: S) -> Impersonation<S> {
        Impersonation {
            inner,
            authorizer: self.authorizer.clone(),
        }
    }
}

/// The impersonation service.
#[derive(Debug, Clone)]
pub struct Impersonation<S> {
    inner: S,
    authorizer: AuthorizerChain,
}

/// What the `Impersonate-*` headers ask for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Requested {
    user: String,
    groups: Vec<String>,
    uid: Option<String>,
    extra: BTreeMap<String, Vec<String>>,
}

fn header_text<'a>(name: &str, value: &'a http::HeaderValue) -> Result<&'a str, GatewayError> {
    std::str::from_utf8(value.as_bytes())
        .map_err(|_| GatewayError::BadRequest(format!("the {name} header is not UTF-8")))
}

/// Reads the `Impersonate-*` headers; `None` when there are none.
fn requested(headers: &HeaderMap) -> Result<Option<Requested>, GatewayError> {
    let mut requested = Requested::default();
    let mut any = false;
    let mut users = headers.get_all(IMPERSONATE_USER).iter();
    if let Some(value) = users.next() {
        any = true;
        if users.next().is_some() {
            return Err(GatewayError::BadRequest(
                "only one Impersonate-User may be given".into(),
            ));
        }
        requested.user = header_text(IMPERSONATE_USER, value)?.to_owned();
    }
    for value in headers.get_all(IMPERSONATE_GROUP) {
        any = true;
        requested
            .groups
            .push(header_text(IMPERSONATE_GROUP, value)?.to_owned());
    }
    let mut uids = headers.get_all(IMPERSONATE_UID).iter();
    if let Some(value) = uids.next() {
        any = true;
        if uids.next().is_some() {
            return Err(GatewayError::BadRequest(
                "only one Impersonate-Uid may be given".into(),
            ));
        }
        requested.uid = Some(header_text(IMPERSONATE_UID, value)?.to_owned());
    }
    for (name, value) in headers {
        let Some(raw_key) = name.as_str().strip_prefix(IMPERSONATE_EXTRA_PREFIX) else {
            continue;
        };
        any = true;
        // Keys are sent percent-encoded (they may hold `/`); kube keeps an undecodable key as is.
        let key = percent_decode_str(raw_key)
            .decode_utf8()
            .map_or_else(|_| raw_key.to_owned(), |k| k.into_owned());
        requested
            .extra
            .entry(key)
            .or_default()
            .push(header_text(name.as_str(), value)?.to_owned());
    }
    if !any {
        return Ok(None);
    }
    // An empty Impersonate-User counts as none (kube's rule): what else was asked has no user.
    if requested.user.is_empty() {
        return Err(GatewayError::BadRequest(
            "Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* require Impersonate-User"
                .into(),
        ));
    }
    Ok(Some(requested))
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
fn checks(requestor: &UserInfo, requested: &Requested) -> Vec<Attributes> {
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
fn impersonated_user(requested: Requested) -> UserInfo {
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

/// Removes every `Impersonate-*` header.
fn strip_impersonation(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| super::authentication::is_impersonation_header(name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

impl<S> Impersonation<S> {
    /// Checks and applies the request's impersonation headers, if any.
    fn impersonate(&self, request: &mut Request<Body>) -> Result<(), GatewayError> {
        let Some(requested) = requested(request.headers())? else {
            return Ok(());
        };
        let Some(authenticated) = request.extensions_mut().remove::<Authenticated>() else {
            return Err(GatewayError::MissingProof {
                stage: "impersonation",
                proof: "Authenticated",
            });
        };
        for attributes in checks(authenticated.user(), &requested) {
            let decision = self.authorizer.decide(&attributes);
            if let Decision::Allow { .. } = decision {
                continue;
            }
            tracing::info!(
                resource = %attributes.resource_with_subresource(),
                name = %attributes.name,
                reason = %decision.reason(),
                "impersonation refused"
            );
            return Err(GatewayError::Forbidden(Box::new(Denied {
                reason: decision.reason().to_owned(),
                attributes,
            })));
        }
        let user = impersonated_user(requested);
        trace::record("impersonated.name", &user.name);
        request
            .extensions_mut()
            .insert(authenticated.impersonate(user));
        strip_impersonation(request.headers_mut());
        Ok(())
    }
}

impl<S> Service<Request<Body>> for Impersonation<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = StageFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        match self.impersonate(&mut request) {
            Ok(()) => proceed(self.inner.call(request)),
            Err(error) => refuse(error),
        }
    }
}

#[cfg(test)]
#[path = "impersonation_tests.rs"]
mod tests;
