//! Authorization: the [`AuthorizerChain`] decides on the authenticated (possibly impersonated)
//! user and the [`RequestInfo`]; an allowed request continues as an [`AuthorizedRequest`] (the
//! request with its [`Authorized`] proof), the only type the handlers behind accept; a denial is
//! a 403 in kube-apiserver's words.
//!
//! Threat model: this is the last gate before the upstream. It decides only on what earlier
//! stages proved (the [`Authenticated`] proof, the parsed [`RequestInfo`]), never on headers or
//! the raw path; if either is missing the chain was wired wrong, and the request fails closed
//! with a 500 rather than being decided on less.

use crate::authorized::AuthorizedRequest;
use crate::error::GatewayError;
use crate::layers::{proceed, refuse, StageFuture};
use axum::body::Body;
use http::{Request, Response};
use kgate_core::authn::Authenticated;
use kgate_core::authz::{Authorized, AuthorizerChain};
use kgate_core::RequestInfo;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Runs the authorizers; see the module docs.
#[derive(Debug, Clone)]
pub struct AuthorizationLayer {
    authorizer: AuthorizerChain,
}

impl AuthorizationLayer {
    pub fn new(authorizer: AuthorizerChain) -> Self {
        Self { authorizer }
    }
}

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Authorization<S>;
    fn layer(&self, inner: S) -> Authorization<S> {
        Authorization {
            inner,
            authorizer: self.authorizer.clone(),
        }
    }
}

/// The authorization service.
#[derive(Debug, Clone)]
pub struct Authorization<S> {
    inner: S,
    authorizer: AuthorizerChain,
}

impl<S> Authorization<S> {
    fn authorize(&self, request: &Request<Body>) -> Result<Authorized, GatewayError> {
        let extensions = request.extensions();
        let Some(authenticated) = extensions.get::<Authenticated>() else {
            return Err(GatewayError::MissingProof {
                stage: "authorization",
                proof: "Authenticated",
            });
        };
        let Some(info) = extensions.get::<RequestInfo>() else {
            return Err(GatewayError::MissingProof {
                stage: "authorization",
                proof: "RequestInfo",
            });
        };
        self.authorizer
            .authorize(authenticated, info)
            .map_err(|denied| {
                tracing::info!(reason = %denied.reason, "authorization denied");
                GatewayError::Forbidden(Box::new(denied))
            })
    }
}

impl<S> Service<Request<Body>> for Authorization<S>
where
    S: Service<AuthorizedRequest, Response = Response<Body>, Error = GatewayError>,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = StageFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match self.authorize(&request) {
            Ok(authorized) => {
                tracing::debug!(reason = %authorized.reason(), "authorized");
                proceed(self.inner.call(AuthorizedRequest::new(authorized, request)))
            }
            Err(error) => refuse(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{body_text, Recorder};
    use kgate_core::authn::{
        Authenticator, AuthenticatorUnion, AuthnFuture, AuthnResponse, Credentials,
    };
    use kgate_core::authz::Authorizer;
    use kgate_core::{Attributes, Decision, UserInfo};
    use std::sync::Arc;
    use tower::ServiceExt;

    /// Allows `get` and `list` of pods in namespace "team".
    struct TeamPods;
    impl Authorizer for TeamPods {
        fn name(&self) -> &'static str {
            "team-pods"
        }
        fn authorize(&self, a: &Attributes) -> Decision {
            if a.namespace == "team"
                && a.resource == "pods"
                && (a.verb == "get" || a.verb == "list")
            {
                Decision::allow("RBAC: allowed by RoleBinding \"view\"")
            } else {
                Decision::no_opinion("")
            }
        }
    }

    async fn alice() -> Option<Authenticated> {
        struct Alice;
        impl Authenticator for Alice {
            fn name(&self) -> &'static str {
                "test"
            }
            fn authenticate<'a>(&'a self, _: &'a Credentials) -> AuthnFuture<'a> {
                Box::pin(async {
                    Ok(Some(AuthnResponse {
                        user: UserInfo::new("alice"),
                    }))
                })
            }
        }
        AuthenticatorUnion::new(vec![Arc::new(Alice)])
            .authenticate(&Credentials::default())
            .await
            .ok()
    }

    async fn request(method: &str, uri: &str, proof: bool) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()));
        if let Ok(info) = RequestInfo::parse(method, uri, None) {
            request.extensions_mut().insert(info);
        }
        if proof {
            if let Some(alice) = alice().await {
                request.extensions_mut().insert(alice);
            }
        }
        request
    }

    fn stage(recorder: &Recorder) -> Authorization<Recorder> {
        AuthorizationLayer::new(AuthorizerChain::new(vec![Arc::new(TeamPods)]))
            .layer(recorder.clone())
    }

    #[tokio::test]
    async fn allowed_requests_carry_the_authorized_proof() {
        let recorder = Recorder::default();
        let result = stage(&recorder)
            .oneshot(request("GET", "/api/v1/namespaces/team/pods", true).await)
            .await;
        assert!(result.is_ok());
        let seen = recorder.seen().and_then(|s| s.extensions);
        let authorized = seen.as_ref().and_then(|e| e.get::<Authorized>());
        assert_eq!(
            authorized.map(|a| (
                a.attributes().verb.as_str(),
                a.attributes().user.name.as_str()
            )),
            Some(("list", "alice"))
        );
    }

    #[tokio::test]
    async fn denials_are_403_statuses_in_kube_words() {
        let recorder = Recorder::default();
        let service = crate::layers::rescue::RescueLayer::new().layer(stage(&recorder));
        let response = service
            .oneshot(request("POST", "/api/v1/namespaces/team/pods", true).await)
            .await
            .unwrap_or_else(|never| match never {});
        assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
        let body: serde_json::Value =
            serde_json::from_str(&body_text(response).await).unwrap_or_default();
        assert_eq!(
            body["message"],
            r#"pods is forbidden: User "alice" cannot create resource "pods" in API group "" in the namespace "team""#
        );
        assert_eq!(body["reason"], "Forbidden");
        assert!(recorder.seen().is_none());
    }

    #[tokio::test]
    async fn a_missing_proof_is_a_wiring_bug() {
        let recorder = Recorder::default();
        let result = stage(&recorder)
            .oneshot(request("GET", "/api/v1/namespaces/team/pods", false).await)
            .await;
        assert!(matches!(
            result,
            Err(GatewayError::MissingProof {
                proof: "Authenticated",
                ..
            })
        ));
        let mut without_info = request("GET", "/api/v1/namespaces/team/pods", true).await;
        without_info.extensions_mut().remove::<RequestInfo>();
        let result = stage(&recorder).oneshot(without_info).await;
        assert!(matches!(
            result,
            Err(GatewayError::MissingProof {
                proof: "RequestInfo",
                ..
            })
        ));
    }
}
