//! The last hop: [`Proxy`] takes an authorized request, replaces every identity header with the
//! front-proxy headers of the authorized user, and forwards it to the [`Upstream`]: the embedded
//! control plane's router in this process, or a separate control plane over mutual TLS
//! ([`crate::upstream`]). Bodies stream both ways, so watches stream.
//!
//! Threat model: the upstream believes `X-Remote-*` from us. The authentication stage already
//! removed client identity headers; this module removes them again and then checks that none
//! survived before it sets its own (Pinniped's last-hop check), so a bug in an earlier stage
//! cannot let a client choose its identity upstream. Hop-by-hop headers are removed before the
//! identity is set, never after: a client's `Connection: X-Remote-User` would otherwise remove
//! the identity the gateway set ([`crate::hop_by_hop`]).

use crate::authorized::AuthorizedRequest;
use crate::error::GatewayError;
use crate::hop_by_hop::remove_hop_by_hop;
use crate::upstream::RemoteUpstream;
use axum::body::Body;
use futures::future::BoxFuture;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{HeaderMap, Request, Response};
use kgate_core::headers::{self, is_identity_header};
use kgate_core::user::UserInfo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::task::{Context, Poll};
use thiserror::Error;
use tower::{Service, ServiceExt};

/// Why the upstream could not answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No connection could be made (refused, TLS failure, DNS).
    #[error("cannot connect to the upstream")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Connecting took longer than the connect timeout.
    #[error("connecting to the upstream timed out")]
    Timeout,
    /// The connection broke or the upstream answered with something that is not HTTP.
    #[error("the upstream failed mid-request")]
    Protocol(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The identity headers the proxy set changed on the way out: a bug of ours, refused rather
    /// than forwarded.
    #[error("the identity headers changed after the proxy set them")]
    IdentityChanged,
}

impl From<UpstreamError> for GatewayError {
    fn from(error: UpstreamError) -> Self {
        match error {
            UpstreamError::Unavailable(source) => GatewayError::UpstreamUnavailable(source),
            UpstreamError::Timeout => GatewayError::UpstreamTimeout,
            UpstreamError::Protocol(source) => GatewayError::UpstreamProtocol(source),
            UpstreamError::IdentityChanged => GatewayError::Internal(
                "the identity headers changed after the proxy set them".into(),
            ),
        }
    }
}

/// Where requests go after the pipeline.
#[derive(Clone)]
pub enum Upstream {
    /// The embedded control plane's router, called in this process.
    InProcess(axum::Router),
    /// A control plane over HTTPS, the gateway presenting its front-proxy certificate.
    Remote(Box<RemoteUpstream>),
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::InProcess(_) => f.write_str("Upstream::InProcess"),
            Upstream::Remote(remote) => f.debug_tuple("Upstream::Remote").field(remote).finish(),
        }
    }
}

impl Upstream {
    /// Sends a request as it is; the caller has set the identity headers.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        match self {
            Upstream::InProcess(router) => match router.clone().oneshot(request).await {
                Ok(response) => Ok(response),
                Err(never) => match never {},
            },
            Upstream::Remote(remote) => remote.send(request).await,
        }
    }
}

/// The last-hop handler: a tower `Service` with `Error = GatewayError`, for `chain::build`.
#[derive(Clone, Debug)]
pub struct Proxy {
    upstream: Upstream,
}

impl Proxy {
    pub fn new(upstream: Upstream) -> Self {
        Self { upstream }
    }
}

impl Service<AuthorizedRequest> for Proxy {
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = BoxFuture<'static, Result<Response<Body>, GatewayError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both upstreams accept at any time; back-pressure is the connection pool's.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: AuthorizedRequest) -> Self::Future {
        let upstream = self.upstream.clone();
        Box::pin(async move {
            let (authorized, mut request) = request.into_parts();
            let user = &authorized.attributes().user;
            // Hop-by-hop headers go first: `Connection` can name any header, the identity
            // headers included, so stripping after they are set would let a client remove them.
            remove_hop_by_hop(request.headers_mut());
            // Identity last.
            set_front_proxy_headers(request.headers_mut(), user)?;
            Ok(upstream.send(request).await?)
        })
    }
}

/// Characters of an extra key that are sent percent-encoded: everything but unreserved ones, so
/// the header name is a valid token and `%` itself is always an escape.
const EXTRA_KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Removes `Authorization` and every client identity header, checks that none is left, and sets
/// `X-Remote-User`, `X-Remote-Uid`, one `X-Remote-Group` per group and
/// `X-Remote-Extra-<percent-encoded key>` per extra value.
pub fn set_front_proxy_headers(
    headers: &mut HeaderMap,
    user: &UserInfo,
) -> Result<(), GatewayError> {
    strip_identity_headers(headers);
    if let Some(name) = headers
        .keys()
        .find(|name| *name == AUTHORIZATION || is_identity_header(name.as_str()))
    {
        // Unreachable unless strip_identity_headers is broken: refuse rather than forward.
        return Err(GatewayError::Internal(format!(
            "identity header {name} survived the last-hop strip"
        )));
    }
    headers.insert(headers::REMOTE_USER, header_value("user name", &user.name)?);
    if !user.uid.is_empty() {
        headers.insert(headers::REMOTE_UID, header_value("uid", &user.uid)?);
    }
    for group in &user.groups {
        headers.append(headers::REMOTE_GROUP, header_value("group", group)?);
    }
    for (key, values) in &user.extra {
        let encoded = utf8_percent_encode(&key.to_ascii_lowercase(), EXTRA_KEY).to_string();
        let name =
            HeaderName::from_bytes(format!("{}{encoded}", headers::REMOTE_EXTRA_PREFIX).as_bytes())
                .map_err(|_| {
                    GatewayError::BadRequest(format!("extra key {key:?} cannot be sent upstream"))
                })?;
        for value in values {
            headers.append(name.clone(), header_value("extra value", value)?);
        }
    }
    Ok(())
}

/// Removes `Authorization` and every header a client could claim an identity with.
pub fn strip_identity_headers(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| **name == AUTHORIZATION || is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

fn header_value(what: &str, value: &str) -> Result<HeaderValue, GatewayError> {
    // from_bytes keeps UTF-8 names (obs-text); only control characters are refused.
    HeaderValue::from_bytes(value.as_bytes())
        .map_err(|_| GatewayError::BadRequest(format!("the {what} cannot be sent in a header")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn user() -> UserInfo {
        let mut user = UserInfo::new("alice").with_groups(["dev", "system:authenticated"]);
        user.uid = "42".into();
        user.extra = BTreeMap::from([(
            "Example.org/Team Name".to_owned(),
            vec!["a".into(), "b".into()],
        )]);
        user
    }

    #[test]
    fn client_identity_headers_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer secret"));
        headers.insert("x-remote-user", HeaderValue::from_static("mallory"));
        headers.append("x-remote-group", HeaderValue::from_static("system:masters"));
        headers.insert("X-Remote-Extra-Scopes", HeaderValue::from_static("all"));
        headers.insert("impersonate-user", HeaderValue::from_static("root"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert("accept", HeaderValue::from_static("application/json"));

        set_front_proxy_headers(&mut headers, &user()).expect("headers set");

        assert!(headers.get("authorization").is_none());
        assert!(headers.get("impersonate-user").is_none());
        assert!(headers.get("x-forwarded-for").is_none());
        assert!(headers.get("x-remote-extra-scopes").is_none());
        assert_eq!(headers["x-remote-user"], "alice");
        assert_eq!(headers["x-remote-uid"], "42");
        let groups: Vec<_> = headers.get_all("x-remote-group").iter().collect();
        assert_eq!(groups, ["dev", "system:authenticated"]);
        let extra: Vec<_> = headers
            .get_all("x-remote-extra-example.org%2fteam%20name")
            .iter()
            .collect();
        assert_eq!(extra, ["a", "b"]);
        assert_eq!(headers["accept"], "application/json");
    }

    #[test]
    fn control_characters_in_a_name_are_refused() {
        let mut headers = HeaderMap::new();
        let result = set_front_proxy_headers(&mut headers, &UserInfo::new("bad\nname"));
        assert!(matches!(result, Err(GatewayError::BadRequest(_))));
    }
}
