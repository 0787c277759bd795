//! Reviews answered inside the pipeline: the answer is about the right user, the upstream never
//! sees a review, and bad reviews are 400 Status objects.

use super::*;
use crate::chain::{build, ChainConfig, GatewayService};
use crate::layers::testing::body_text;
use crate::readiness::Readiness;
use http::Request;
use kgate_core::authn::{
    Authenticator, AuthenticatorUnion, AuthnFuture, AuthnResponse, Credentials,
};
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, Decision};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

/// The bearer token is the user name; every user is in system:authenticated.
struct NameTokens;
impl Authenticator for NameTokens {
    fn name(&self) -> &'static str {
        "names"
    }
    fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a> {
        let user = credentials.bearer_token.as_ref().map(|t| {
            let mut user = UserInfo::new(t.expose_secret());
            user.add_authenticated_group();
            AuthnResponse { user }
        });
        Box::pin(async move { Ok(user) })
    }
}

/// Everyone may create reviews; alice may get pods in team; nobody else may do anything.
struct Rules;
impl Authorizer for Rules {
    fn name(&self) -> &'static str {
        "rules"
    }
    fn authorize(&self, a: &Attributes) -> Decision {
        let review = a.verb == "create" && a.resource.ends_with("reviews");
        let alice = a.user.name == "alice" && a.verb == "get" && a.namespace == "team";
        if review || alice {
            Decision::allow(format!("rules allow {}", a.user.name))
        } else {
            Decision::no_opinion("")
        }
    }
}

/// Counts what reaches the upstream.
#[derive(Clone, Default)]
struct Upstream(Arc<AtomicUsize>);
impl tower::Service<AuthorizedRequest> for Upstream {
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = futures::future::Ready<Result<Response<Body>, GatewayError>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: AuthorizedRequest) -> Self::Future {
        self.0.fetch_add(1, Ordering::SeqCst);
        futures::future::ready(Ok(Response::new(Body::from("upstream"))))
    }
}

fn service(upstream: Upstream) -> GatewayService {
    let authorizer = AuthorizerChain::new(vec![Arc::new(Rules)]);
    let authenticator = AuthenticatorUnion::new(vec![Arc::new(NameTokens)]);
    let config = ChainConfig {
        authenticator,
        authorizer,
        max_body_bytes: 1 << 20,
        max_header_bytes: 8192,
        readiness: Readiness::default(),
        scopes: Arc::new(kgate_controlplane::resources::BuiltinResources),
        rules: RulesSource {
            rbac: Arc::new(RbacAuthorizer::new()),
            other_authorizers: false,
        },
        issuer: None,
    };
    build(config, upstream)
}

async fn post(service: &GatewayService, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| Request::new(Body::empty()));
    let response = service
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let code = response.status().as_u16();
    let text = body_text(response).await;
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

const SSAR: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

#[tokio::test]
async fn a_self_review_answers_for_the_caller_and_never_goes_upstream() {
    let upstream = Upstream::default();
    let service = service(upstream.clone());
    let question = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "team"}}
    });
    let (code, alice) = post(&service, "alice", SSAR, &question).await;
    assert_eq!(code, 201, "{alice}");
    assert_eq!(
        alice["status"],
        json!({"allowed": true, "reason": "rules allow alice"})
    );
    let (_, bob) = post(&service, "bob", SSAR, &question).await;
    assert_eq!(bob["status"]["allowed"], false);
    let (code, who) = post(
        &service,
        "bob",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        who["status"]["userInfo"],
        json!({"username": "bob", "groups": ["system:authenticated"]})
    );
    assert_eq!(upstream.0.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn other_requests_go_upstream() {
    let upstream = Upstream::default();
    let service = service(upstream.clone());
    // A name in the path: not a review create, so the upstream answers (kube would 405).
    let (code, body) = post(
        &service,
        "alice",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/x",
        &json!({}),
    )
    .await;
    assert_eq!((code, body), (200, Value::String("upstream".into())));
    let request = Request::builder()
        .uri("/api/v1/namespaces/team/pods/web")
        .header("authorization", "Bearer alice")
        .body(Body::empty())
        .unwrap_or_else(|_| Request::new(Body::empty()));
    let response = service
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    assert_eq!(body_text(response).await, "upstream");
    assert_eq!(upstream.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bad_reviews_are_status_objects_invalid_ones_422() {
    let service = service(Upstream::default());
    // Fails kube's validation: 422 Invalid, as kube-apiserver answers (differential_rbac).
    let (code, status) = post(
        &service,
        "alice",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "x"}}),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        r#".authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );
    assert_eq!(
        status["details"],
        json!({"group": "authorization.k8s.io", "causes": [{"reason": "FieldValueInvalid",
            "message": "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified",
            "field": "spec.resourceAttributes"}]})
    );
    // Does not decode: 400.
    let (code, status) = post(&service, "alice", SSAR, &json!("not an object")).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (400, Some("BadRequest")),
        "{status}"
    );
}

#[tokio::test]
async fn a_token_review_runs_the_authenticators_and_does_not_echo_the_token() {
    let service = service(Upstream::default());
    let path = "/apis/authentication.k8s.io/v1/tokenreviews";
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "carol"}});
    let (code, review) = post(&service, "alice", path, &body).await;
    assert_eq!(code, 201, "{review}");
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(review["status"]["user"]["username"], "carol");
    assert_eq!(
        review["status"]["user"]["groups"],
        json!(["system:authenticated"])
    );
    assert!(review["spec"].get("token").is_none(), "{review}");
    let (code, status) = post(&service, "alice", path, &json!({"spec": {}})).await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "token is required for TokenReview in authentication"
    );
}

#[test]
fn only_creates_of_review_resources_are_reviews() {
    let parse = |method: &str, path: &str| {
        RequestInfo::parse(method, path, None).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let ssar = parse("POST", SSAR);
    assert_eq!(
        review_kind(&ssar),
        Some(ReviewKind::SelfSubjectAccessReview)
    );
    let lsar = parse(
        "POST",
        "/apis/authorization.k8s.io/v1/namespaces/team/localsubjectaccessreviews",
    );
    assert_eq!(
        review_kind(&lsar),
        Some(ReviewKind::LocalSubjectAccessReview)
    );
    assert_eq!(review_kind(&parse("GET", SSAR)), None);
    assert_eq!(
        review_kind(&parse(
            "POST",
            "/apis/authorization.k8s.io/v1beta1/selfsubjectaccessreviews"
        )),
        None
    );
    assert_eq!(
        review_kind(&parse("POST", "/api/v1/namespaces/x/pods")),
        None
    );
}

#[test]
fn a_review_path_at_the_wrong_scope_is_not_a_review() {
    let parse = |path: &str| {
        RequestInfo::parse("POST", path, None).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    for path in [
        "/apis/authorization.k8s.io/v1/namespaces/team/subjectaccessreviews",
        "/apis/authorization.k8s.io/v1/namespaces/team/selfsubjectaccessreviews",
        "/apis/authorization.k8s.io/v1/namespaces/team/selfsubjectrulesreviews",
        "/apis/authentication.k8s.io/v1/namespaces/team/tokenreviews",
        "/apis/authentication.k8s.io/v1/namespaces/team/selfsubjectreviews",
        "/apis/authorization.k8s.io/v1/localsubjectaccessreviews",
    ] {
        assert_eq!(review(&parse(path)), None, "{path}");
    }
    for path in [
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        "/apis/authorization.k8s.io/v1/namespaces/team/localsubjectaccessreviews",
        "/apis/authentication.k8s.io/v1/tokenreviews",
    ] {
        assert!(review(&parse(path)).is_some(), "{path}");
    }
}

#[tokio::test]
async fn reviews_under_the_wrong_scope_are_404_and_never_answered() {
    let upstream = Upstream::default();
    let service = service(upstream.clone());
    let question = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods"}}
    });
    let (code, body) = post(
        &service,
        "alice",
        "/apis/authorization.k8s.io/v1/namespaces/team/subjectaccessreviews",
        &question,
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(upstream.0.load(Ordering::SeqCst), 0);
}
