//! The whole chain driven with `oneshot`: each stage's effect seen from the outside, in order.

use super::*;
use crate::layers::testing::body_text;
use http::StatusCode;
use kgate_core::authn::{Authenticator, AuthnError, AuthnFuture, AuthnResponse, Credentials};
use kgate_core::authz::{Authorized, Authorizer};
use kgate_core::{Attributes, Decision, UserInfo};
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use tower::ServiceExt;

/// Token "alice" is alice, "bob" is bob; anything else is refused.
struct Tokens;
impl Authenticator for Tokens {
    fn name(&self) -> &'static str {
        "tokens"
    }
    fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a> {
        let answer = match credentials.bearer_token.as_ref().map(|t| t.expose_secret()) {
            None => Ok(None),
            Some(name @ ("alice" | "bob")) => Ok(Some(AuthnResponse {
                user: UserInfo::new(name),
            })),
            Some(_) => Err(AuthnError::Invalid {
                authenticator: "tokens",
                reason: "unknown token".into(),
            }),
        };
        Box::pin(async move { answer })
    }
}

/// alice may do anything, impersonation included; bob may only list pods in "team".
struct Rules;
impl Authorizer for Rules {
    fn name(&self) -> &'static str {
        "rules"
    }
    fn authorize(&self, a: &Attributes) -> Decision {
        let bob_lists_team_pods = a.user.name == "bob"
            && a.verb == "list"
            && a.resource == "pods"
            && a.namespace == "team";
        if a.user.name == "alice" || bob_lists_team_pods {
            Decision::allow("rules")
        } else {
            Decision::no_opinion("")
        }
    }
}

/// A handler like the proxy: it takes the authorized request and records what it saw.
#[derive(Clone, Default)]
struct Handler {
    seen: Arc<Mutex<Vec<(http::HeaderMap, Authorized)>>>,
}

impl tower::Service<AuthorizedRequest> for Handler {
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = futures::future::Ready<Result<Response<Body>, GatewayError>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), GatewayError>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, request: AuthorizedRequest) -> Self::Future {
        let (authorized, request) = request.into_parts();
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((request.headers().clone(), authorized));
        futures::future::ready(Ok(Response::new(Body::from("upstream"))))
    }
}

fn config(readiness: Readiness) -> ChainConfig {
    ChainConfig {
        authenticator: AuthenticatorUnion::new(vec![Arc::new(Tokens)]),
        authorizer: AuthorizerChain::new(vec![Arc::new(Rules)]),
        max_body_bytes: 64,
        max_header_bytes: 1024,
        readiness,
        scopes: Arc::new(kgate_core::scope::UnknownResources),
        rules: RulesSource {
            rbac: Arc::new(kgate_authz::RbacAuthorizer::new()),
            other_authorizers: true,
        },
        issuer: None,
    }
}

async fn send(
    service: &GatewayService,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> (StatusCode, String) {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder
        .body(Body::from(body))
        .unwrap_or_else(|_| Request::new(Body::empty()));
    let response = service
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    (response.status(), body_text(response).await)
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_authorized_request_reaches_the_handler_clean() {
    let handler = Handler::default();
    let service = build(config(Readiness::default()), handler.clone());
    let (code, body) = send(
        &service,
        "GET",
        "/api/v1/namespaces/team/pods",
        &[
            ("authorization", "Bearer bob"),
            ("x-remote-user", "alice"),
            ("x-remote-group", "system:masters"),
            ("x-forwarded-user", "alice"),
        ],
        "",
    )
    .await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "upstream"));
    let seen = handler.seen.lock().unwrap_or_else(PoisonError::into_inner);
    let (headers, authorized) = &seen[0];
    assert!(headers.is_empty(), "{headers:?}");
    assert_eq!(authorized.attributes().user.name, "bob");
}

/// method, path, headers, body, expected code, expected reason.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    u16,
    &'static str,
);

#[tokio::test]
async fn every_refusal_is_a_status_with_kube_codes() {
    let service = build(config(Readiness::default()), Handler::default());
    let cases: [Case; 7] = [
        ("GET", "/api/v1/pods", &[], "", 401, "Unauthorized"),
        (
            "GET",
            "/api/v1/pods",
            &[("authorization", "Bearer nope")],
            "",
            401,
            "Unauthorized",
        ),
        (
            "GET",
            "/api/v1/pods",
            &[("authorization", "Token bob")],
            "",
            401,
            "Unauthorized",
        ),
        (
            "GET",
            "/api/v1/namespaces/team/../kube-system/secrets",
            &[],
            "",
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/secrets",
            &[("authorization", "Bearer bob")],
            "",
            403,
            "Forbidden",
        ),
        (
            "POST",
            "/api/v1/namespaces/team/configmaps",
            &[("authorization", "Bearer alice")],
            "this body is longer than the sixty-four bytes the test chain allows",
            413,
            "RequestEntityTooLarge",
        ),
        (
            "GET",
            "/api/v1/pods",
            &[
                ("authorization", "Bearer bob"),
                ("impersonate-user", "alice"),
            ],
            "",
            403,
            "Forbidden",
        ),
    ];
    for (method, uri, headers, body, code, reason) in cases {
        let (got, text) = send(&service, method, uri, headers, body).await;
        let status = json(&text);
        assert_eq!(got.as_u16(), code, "{method} {uri} {headers:?}: {text}");
        assert_eq!(status["code"], code);
        assert_eq!(status["reason"], reason, "{text}");
        assert_eq!(status["kind"], "Status");
    }
}

#[tokio::test]
async fn forbidden_names_user_verb_resource_and_namespace() {
    let service = build(config(Readiness::default()), Handler::default());
    let (_, text) = send(
        &service,
        "DELETE",
        "/api/v1/namespaces/team/pods/web",
        &[("authorization", "Bearer bob")],
        "",
    )
    .await;
    assert_eq!(
        json(&text)["message"],
        r#"pods "web" is forbidden: User "bob" cannot delete resource "pods" in API group "" in the namespace "team""#
    );
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let service = build(config(Readiness::default()), Handler::default());
    let padding = "x".repeat(2000);
    let (code, text) = send(
        &service,
        "GET",
        "/api/v1/pods",
        &[("authorization", "Bearer alice"), ("x-padding", &padding)],
        "",
    )
    .await;
    assert_eq!(code.as_u16(), 431, "{text}");
    assert_eq!(json(&text)["code"], 431);
}

#[tokio::test]
async fn impersonation_lets_kubectl_as_work() {
    let handler = Handler::default();
    let service = build(config(Readiness::default()), handler.clone());
    let (code, text) = send(
        &service,
        "GET",
        "/api/v1/namespaces/team/pods",
        &[
            ("authorization", "Bearer alice"),
            ("impersonate-user", "bob"),
        ],
        "",
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{text}");
    let seen = handler.seen.lock().unwrap_or_else(PoisonError::into_inner);
    let (headers, authorized) = &seen[0];
    assert!(headers.is_empty(), "{headers:?}");
    let user = &authorized.attributes().user;
    assert_eq!(user.name, "bob");
    assert_eq!(user.groups, ["system:authenticated"]);
}

#[tokio::test]
async fn health_answers_without_credentials() {
    let readiness = Readiness::default();
    readiness.register("rbac");
    let service = build(config(readiness.clone()), Handler::default());
    assert_eq!(
        send(&service, "GET", "/healthz", &[], "").await,
        (StatusCode::OK, "ok".to_owned())
    );
    let (code, text) = send(&service, "GET", "/readyz", &[], "").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert!(text.contains("rbac"));
    readiness.set("rbac", true);
    assert_eq!(
        send(&service, "GET", "/readyz", &[], "").await,
        (StatusCode::OK, "ok".to_owned())
    );
}

#[tokio::test]
async fn a_missing_proof_below_is_a_generic_500() {
    // A stage that finds a proof missing (the chain miswired) fails closed: 500, no details.
    #[derive(Clone)]
    struct Forgetful;
    impl tower::Service<AuthorizedRequest> for Forgetful {
        type Response = Response<Body>;
        type Error = GatewayError;
        type Future = futures::future::Ready<Result<Response<Body>, GatewayError>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), GatewayError>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: AuthorizedRequest) -> Self::Future {
            futures::future::ready(Err(GatewayError::MissingProof {
                stage: "proxy",
                proof: "Authorized",
            }))
        }
    }
    let service = build(config(Readiness::default()), Forgetful);
    let (code, text) = send(
        &service,
        "GET",
        "/api/v1/pods",
        &[("authorization", "Bearer alice")],
        "",
    )
    .await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json(&text)["reason"], "InternalError");
    assert!(!text.contains("Authorized"));
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_status_and_the_pipeline_keeps_serving() {
    /// A handler with a bug: it panics on the pod named "panic".
    #[derive(Clone)]
    struct Buggy;
    impl tower::Service<AuthorizedRequest> for Buggy {
        type Response = Response<Body>;
        type Error = GatewayError;
        type Future = futures::future::Ready<Result<Response<Body>, GatewayError>>;
        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), GatewayError>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn call(&mut self, request: AuthorizedRequest) -> Self::Future {
            if request.request().uri().path().ends_with("/panic") {
                panic!("a bug in the handler");
            }
            futures::future::ready(Ok(Response::new(Body::from("upstream"))))
        }
    }
    let service = build(config(Readiness::default()), Buggy);
    let alice = [("authorization", "Bearer alice")];
    let (code, text) = send(
        &service,
        "GET",
        "/api/v1/namespaces/team/pods/panic",
        &alice,
        "",
    )
    .await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    let status = json(&text);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "InternalError");
    assert!(!text.contains("a bug"), "{text}");
    // The same service answers the next request.
    let (code, text) = send(
        &service,
        "GET",
        "/api/v1/namespaces/team/pods/x",
        &alice,
        "",
    )
    .await;
    assert_eq!((code, text.as_str()), (StatusCode::OK, "upstream"));
}
