//! Impersonation: `Impersonate-User`, `-Group`, `-Uid` and `-Extra-<key>` let an authenticated
//! user act as another (`kubectl --as`, `--as-group`). This stage reads the headers; the checks
//! (the `impersonate` verb on each requested attribute, as k8s.io/apiserver's
//! `WithImpersonation`) and the new [`Authenticated`] proof, which keeps the original user, are
//! [`kgate_core::impersonation`]'s. The first refusal is a 403 worded as kube's (`users "alice"
//! is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster
//! scope`).
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
use kgate_core::authz::AuthorizerChain;
use kgate_core::headers::{
    IMPERSONATE_EXTRA_PREFIX, IMPERSONATE_GROUP, IMPERSONATE_UID, IMPERSONATE_USER,
};
use kgate_core::impersonation::{impersonate, ImpersonationRequest};
use percent_encoding::percent_decode_str;
use std::task::{Context, Poll};
use tower::{Layer, Service};

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

fn header_text<'a>(name: &str, value: &'a http::HeaderValue) -> Result<&'a str, GatewayError> {
    std::str::from_utf8(value.as_bytes())
        .map_err(|_| GatewayError::BadRequest(format!("the {name} header is not UTF-8")))
}

/// Reads the `Impersonate-*` headers; `None` when there are none.
fn requested(headers: &HeaderMap) -> Result<Option<ImpersonationRequest>, GatewayError> {
    let mut requested = ImpersonationRequest::default();
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
        let impersonated =
            impersonate(authenticated, requested, &self.authorizer).map_err(|denied| {
                tracing::info!(
                    resource = %denied.attributes.resource_with_subresource(),
                    name = %denied.attributes.name,
                    reason = %denied.reason,
                    "impersonation refused"
                );
                GatewayError::Forbidden(Box::new(denied))
            })?;
        trace::record("impersonated.name", &impersonated.user().name);
        request.extensions_mut().insert(impersonated);
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
