//! Authentication: the request's credentials (the client certificate chain from the TLS
//! listener, an `Authorization: Bearer` token) go to the [`AuthenticatorUnion`]; the request
//! continues with an [`Authenticated`] proof in its extensions, or ends with 401.
//!
//! Threat model:
//! - A credential that is presented and refused is 401, never anonymous (the union's rule), and
//!   an `Authorization` header that is not one well-formed bearer token counts as presented.
//! - The 401 body says only "Unauthorized"; the reason is logged, the token never is (it is
//!   held as a [`BearerToken`], whose `Debug` is redacted, and no log line names it).
//! - After success, `Authorization` and every client identity header (`X-Remote-*`,
//!   `X-Forwarded-*`) are removed, so nothing behind this stage, the upstream included, can
//!   mistake a client's claim for the gateway's. `Impersonate-*` stay for the impersonation
//!   stage, which checks and removes them.

use crate::error::GatewayError;
use crate::layers::trace;
use crate::peer::PeerCertificates;
use axum::body::Body;
use futures::future::BoxFuture;
use http::header::{HeaderName, AUTHORIZATION};
use http::{HeaderMap, Request, Response};
use kgate_core::authn::{Authenticated, AuthenticatorUnion, BearerToken, Credentials};
use kgate_core::headers::{is_identity_header, IMPERSONATE_EXTRA_PREFIX};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Runs the authenticators; see the module docs.
#[derive(Debug, Clone)]
pub struct AuthenticationLayer {
    authenticator: AuthenticatorUnion,
}

impl AuthenticationLayer {
    pub fn new(authenticator: AuthenticatorUnion) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Authentication<S>;
    fn layer(&self, inner: S) -> Authentication<S> {
        Authentication {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// The authentication service.
#[derive(Debug, Clone)]
pub struct Authentication<S> {
    inner: S,
    authenticator: AuthenticatorUnion,
}

/// What a request presented: its certificate chain and its `Authorization` header.
pub fn credentials(request: &Request<Body>) -> Credentials {
    let client_certificates = request
        .extensions()
        .get::<PeerCertificates>()
        .map(|certs| certs.0.as_ref().clone())
        .unwrap_or_default();
    let mut credentials = Credentials {
        client_certificates,
        ..Credentials::default()
    };
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => {}
        (Some(value), None) => match value.to_str().ok().and_then(bearer_token) {
            Some(token) => credentials.bearer_token = Some(BearerToken::new(token)),
            None => credentials.malformed_authorization = true,
        },
        // Two Authorization headers: which one counts would be a guess.
        (Some(_), Some(_)) => credentials.malformed_authorization = true,
    }
    credentials
}

/// The token of `Bearer <token>`: the scheme case-insensitive (RFC 9110, as kube's bearer
/// authenticator), exactly one space, then a non-empty token with no whitespace.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(|c: char| c.is_ascii_whitespace())
    {
        return None;
    }
    Some(token)
}

/// Removes `Authorization` and the client identity headers this stage owns (all but
/// `Impersonate-*`, which the impersonation stage checks and removes).
pub fn strip_client_identity(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            *name == AUTHORIZATION
                || (is_identity_header(name.as_str()) && !is_impersonation_header(name.as_str()))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// `Impersonate-User`, `-Group`, `-Uid`, `-Extra-*` (header names are lower-case in `http`).
pub(crate) fn is_impersonation_header(name: &str) -> bool {
    // Every impersonation header shares the prefix of the extra ones, less "extra-".
    let prefix = IMPERSONATE_EXTRA_PREFIX.trim_end_matches("extra-");
    name.starts_with(prefix)
}

impl<S> Service<Request<Body>> for Authentication<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = BoxFuture<'static, Result<Response<Body>, GatewayError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // The inner service is called after an await: take the one that was polled ready and
        // leave a fresh clone, which will be polled before its own call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let credentials = credentials(&request);
            let authenticated: Authenticated = match authenticator.authenticate(&credentials).await
            {
                Ok(authenticated) => authenticated,
                Err(error) => {
                    // AuthnError's text names the check that failed, never the credential.
                    tracing::info!(reason = %error, "authentication failed");
                    return Err(GatewayError::Unauthenticated(error));
                }
            };
            drop(credentials);
            trace::record("user.name", &authenticated.user().name);
            tracing::debug!(
                authenticator = authenticated.authenticator(),
                "authenticated"
            );
            strip_client_identity(request.headers_mut());
            request.extensions_mut().insert(authenticated);
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{body_text, Recorder};
    use kgate_core::authn::{Authenticator, AuthnError, AuthnFuture, AuthnResponse};
    use kgate_core::UserInfo;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// Accepts the token "good" as alice and the certificate chain `[[1, 2, 3]]` as bob.
    struct Fake;
    impl Authenticator for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a> {
            let answer = if credentials.client_certificates == [vec![1, 2, 3]] {
                Ok(Some(AuthnResponse {
                    user: UserInfo::new("bob"),
                }))
            } else {
                match credentials.bearer_token.as_ref().map(|t| t.expose_secret()) {
                    Some("good") => Ok(Some(AuthnResponse {
                        user: UserInfo::new("alice"),
                    })),
                    Some(_) => Err(AuthnError::Invalid {
                        authenticator: "fake",
                        reason: "token not recognised".into(),
                    }),
                    None => Ok(None),
                }
            };
            Box::pin(async move { answer })
        }
    }

    fn stage(recorder: &Recorder) -> Authentication<Recorder> {
        AuthenticationLayer::new(AuthenticatorUnion::new(vec![Arc::new(Fake)]))
            .layer(recorder.clone())
    }

    fn request(headers: &[(&'static str, &'static str)]) -> Request<Body> {
        let mut builder = Request::get("/api/v1/pods");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()))
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer  abc",
            "Bearer a b",
            "Basic YWxpY2U6cGFzcw==",
            "abc",
        ] {
            assert_eq!(bearer_token(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_good_token_reaches_the_handler_without_identity_headers() {
        let recorder = Recorder::default();
        let result = stage(&recorder)
            .oneshot(request(&[
                ("authorization", "Bearer good"),
                ("x-remote-user", "system:admin"),
                ("X-Remote-Group", "system:masters"),
                ("x-remote-extra-scopes", "all"),
                ("x-forwarded-for", "10.0.0.1"),
                ("impersonate-user", "carol"),
                ("accept", "application/json"),
            ]))
            .await;
        assert!(result.is_ok(), "{result:?}");
        let seen = recorder.seen().unwrap_or_default();
        let mut names: Vec<&str> = seen.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "impersonate-user"]);
        let user = seen
            .extensions
            .as_ref()
            .and_then(|e| e.get::<Authenticated>())
            .map(|a| a.user().name.clone());
        assert_eq!(user.as_deref(), Some("alice"));
    }

    #[tokio::test]
    async fn a_client_certificate_authenticates() {
        let recorder = Recorder::default();
        let mut request = request(&[]);
        request
            .extensions_mut()
            .insert(PeerCertificates(Arc::new(vec![vec![1, 2, 3]])));
        assert!(stage(&recorder).oneshot(request).await.is_ok());
        let seen = recorder.seen().and_then(|s| s.extensions);
        let user = seen.as_ref().and_then(|e| e.get::<Authenticated>());
        assert_eq!(user.map(|a| a.user().name.as_str()), Some("bob"));
    }

    #[tokio::test]
    async fn missing_garbage_and_malformed_credentials_are_401() {
        let cases: [&[(&str, &str)]; 5] = [
            &[],
            &[("authorization", "Bearer garbage")],
            &[("authorization", "Basic YWxpY2U6cGFzcw==")],
            &[("authorization", "Bearer ")],
            &[
                ("authorization", "Bearer good"),
                ("authorization", "Bearer good"),
            ],
        ];
        for headers in cases {
            let recorder = Recorder::default();
            let result = stage(&recorder).oneshot(request(headers)).await;
            assert!(
                matches!(result, Err(GatewayError::Unauthenticated(_))),
                "{headers:?}: {result:?}"
            );
            assert!(recorder.seen().is_none());
        }
    }

    #[tokio::test]
    async fn a_401_is_a_status_without_the_token() {
        let service = crate::layers::rescue::RescueLayer::new().layer(stage(&Recorder::default()));
        let response = service
            .oneshot(request(&[("authorization", "Bearer s3cr3t-t0ken")]))
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        let body = body_text(response).await;
        assert!(body.contains(r#""reason":"Unauthorized""#), "{body}");
        assert!(!body.contains("s3cr3t"));
    }
}
