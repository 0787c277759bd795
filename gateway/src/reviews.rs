//! The review APIs, answered here rather than upstream: SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview
//! and TokenReview (with every authenticator the gateway has). The gateway holds the authorizer chain (policy layer included) and knows
//! who is asking, so `kubectl auth can-i` and `kubectl auth whoami` get the answer the gateway
//! itself would act on, whether the upstream is kgate's control plane or a real cluster.
//!
//! [`Reviews`] is the first handler behind the authorization stage ([`crate::chain::build`]
//! places it): a `create` of a review resource is answered from `kgate_authz::review`;
//! everything else goes on to the upstream. It runs after authorization, so asking needs
//! `create` on the review resource, as in Kubernetes (the bootstrap `system:basic-user` role
//! grants the self reviews to everyone authenticated), and who asks is the request's proof.

use crate::authorized::AuthorizedRequest;
use crate::error::GatewayError;
use axum::body::Body;
use futures::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{Response, StatusCode};
use kgate_authz::review::{self, ReviewError, ReviewKind};
use kgate_authz::{RbacAuthorizer, SubjectRules};
use kgate_core::authn::{AuthenticatorUnion, BearerToken, Credentials};
use kgate_core::authz::{Authorized, AuthorizerChain};
use kgate_core::status::StatusCause;
use kgate_core::{RequestInfo, Status, UserInfo};
use serde_json::{json, Value};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Layer;
use tower::Service;

/// Reviews are a few hundred bytes; anything much larger is not a review.
const MAX_REVIEW_BYTES: usize = 256 * 1024;

/// What SelfSubjectRulesReview lists are computed from.
#[derive(Clone, Debug)]
pub struct RulesSource {
    /// RBAC, for SelfSubjectRulesReview's rule lists.
    pub rbac: Arc<RbacAuthorizer>,
    /// Set when an authorizer besides RBAC (the policy layer) can change decisions, so a rules
    /// list from RBAC alone is marked incomplete.
    pub other_authorizers: bool,
}

/// What the review answers are computed from.
#[derive(Clone, Debug)]
pub struct ReviewContext {
    /// Every authenticator, for TokenReview.
    pub authenticator: AuthenticatorUnion,
    /// The whole chain: a review answers what a request would get.
    pub authorizer: AuthorizerChain,
    /// Where SelfSubjectRulesReview's rule lists come from.
    pub rules: RulesSource,
}

/// Answers review requests in front of a handler; see the module docs.
#[derive(Clone, Debug)]
pub struct ReviewsLayer {
    context: Arc<ReviewContext>,
}

impl ReviewsLayer {
    pub fn new(context: ReviewContext) -> Self {
        Self {
            context: Arc::new(context),
        }
    }
}

impl<S> Layer<S> for ReviewsLayer {
    type Service = Reviews<S>;
    fn layer(&self, inner: S) -> Reviews<S> {
        Reviews {
            inner,
            context: self.context.clone(),
        }
    }
}

/// Answers review requests, forwards the rest to `inner`.
#[derive(Clone, Debug)]
pub struct Reviews<S> {
    inner: S,
    context: Arc<ReviewContext>,
}

/// The reviews answered here: the authorization ones and SelfSubjectReview (from authz), and
/// TokenReview (authentication, the gateway's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Review {
    Authz(ReviewKind),
    Token,
}

/// The review a request creates, if it is one at its own scope: LocalSubjectAccessReview under
/// `/namespaces/{ns}/`, the others outside. A review path at the wrong scope is not a review
/// (the scope stage has answered it 404 already; were it miswired, the upstream answers).
fn review(info: &RequestInfo) -> Option<Review> {
    let review = if info.api_group == "authentication.k8s.io" && info.resource == "tokenreviews" {
        review_kind_of(info, "tokenreviews").map(|()| Review::Token)
    } else {
        review_kind(info).map(Review::Authz)
    }?;
    let local = review == Review::Authz(ReviewKind::LocalSubjectAccessReview);
    (info.under_namespace == local).then_some(review)
}

/// `Some` when `info` is a create of `resource` in v1.
fn review_kind_of(info: &RequestInfo, resource: &str) -> Option<()> {
    (info.is_resource_request
        && info.verb == "create"
        && info.api_version == "v1"
        && info.resource == resource
        && info.subresource.is_empty()
        && info.name.is_empty())
    .then_some(())
}

/// The authz review a request creates, if it is one.
fn review_kind(info: &RequestInfo) -> Option<ReviewKind> {
    if !info.is_resource_request
        || info.verb != "create"
        || info.api_version != "v1"
        || !info.subresource.is_empty()
        || !info.name.is_empty()
    {
        return None;
    }
    ReviewKind::from_resource(&info.api_group, &info.resource)
}

impl<S> Service<AuthorizedRequest> for Reviews<S>
where
    S: Service<AuthorizedRequest, Response = Response<Body>, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = BoxFuture<'static, Result<Response<Body>, GatewayError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: AuthorizedRequest) -> Self::Future {
        let kind = request
            .request()
            .extensions()
            .get::<RequestInfo>()
            .and_then(review);
        let Some(kind) = kind else {
            return Box::pin(self.inner.call(request));
        };
        let context = self.context.clone();
        Box::pin(async move {
            match kind {
                Review::Authz(kind) => answer(&context, kind, request).await,
                Review::Token => token_review(&context, request).await,
            }
        })
    }
}

/// The decoded body of an authorized review request, and who asked.
async fn read_review(request: AuthorizedRequest) -> Result<(Authorized, Value), GatewayError> {
    let (authorized, request) = request.into_parts();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_REVIEW_BYTES)
        .await
        .map_err(|_| {
            GatewayError::TooLarge(format!("a review is limited to {MAX_REVIEW_BYTES} bytes"))
        })?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let object = kgate_controlplane::apiserver::codec::parse_body(content_type, &bytes)
        .map_err(|status| GatewayError::Undecodable(Box::new(status)))?;
    Ok((authorized, object))
}

async fn answer(
    context: &ReviewContext,
    kind: ReviewKind,
    request: AuthorizedRequest,
) -> Result<Response<Body>, GatewayError> {
    let (authorized, object) = read_review(request).await?;
    let requester = &authorized.attributes().user;
    let namespace = &authorized.attributes().namespace;
    let rules_for = |user: &UserInfo, ns: &str| rules_review(context, user, ns);
    let reply = review::answer(
        kind,
        &object,
        namespace,
        requester,
        &context.authorizer,
        &rules_for,
    )
    .map_err(review_error)?;
    tracing::debug!(review = kind.as_str(), "review answered");
    Ok(kgate_controlplane::apiserver::codec::json_response(
        StatusCode::CREATED,
        &reply,
    ))
}

/// A review kube-apiserver refuses: 422 Invalid for its validation's field errors (with the
/// review's group and, as kube's registry leaves them, no kind and no name), 400 otherwise.
fn review_error(error: ReviewError) -> GatewayError {
    let status = review_status(error);
    if status.code == 422 {
        GatewayError::Invalid(Box::new(status))
    } else {
        GatewayError::BadRequest(status.message)
    }
}

/// The Status of a refused review (see [`review_error`]); the webhook mode answers with it too.
pub(crate) fn review_status(error: ReviewError) -> Status {
    match error {
        ReviewError::Rejected { errors, .. } => {
            let causes = errors
                .iter()
                .map(|e| StatusCause {
                    reason: "FieldValueInvalid".to_owned(),
                    message: e.message(),
                    field: e.field.to_owned(),
                })
                .collect();
            Status::invalid("authorization.k8s.io", "", "", causes)
        }
        other => Status::bad_request(other.to_string()),
    }
}

/// TokenReview: runs every authenticator on `spec.token`, as kube-apiserver does. The token is
/// not echoed back (the caller has it), and neither it nor why it failed in detail is logged.
async fn token_review(
    context: &ReviewContext,
    request: AuthorizedRequest,
) -> Result<Response<Body>, GatewayError> {
    let (_, object) = read_review(request).await?;
    let kind_ok = object
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(|k| k == "TokenReview")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|v| v == "authentication.k8s.io/v1");
    if !kind_ok {
        return Err(GatewayError::BadRequest(
            "this endpoint takes a TokenReview of authentication.k8s.io/v1".into(),
        ));
    }
    let token = object
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if token.is_empty() {
        // kube-apiserver's words.
        return Err(GatewayError::BadRequest(
            "token is required for TokenReview in authentication".into(),
        ));
    }
    let credentials = Credentials {
        bearer_token: Some(BearerToken::new(token)),
        ..Credentials::default()
    };
    let status = match context.authenticator.authenticate(&credentials).await {
        Ok(authenticated) => {
            json!({"authenticated": true, "user": token_review_user(authenticated.user())})
        }
        Err(error) => json!({"authenticated": false, "error": error.to_string()}),
    };
    let mut reply = object;
    if let Some(spec) = reply.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("token");
    }
    if let Some(map) = reply.as_object_mut() {
        map.insert("apiVersion".into(), "authentication.k8s.io/v1".into());
        map.insert("kind".into(), "TokenReview".into());
        map.entry("metadata")
            .or_insert_with(|| json!({"creationTimestamp": null}));
        map.insert("status".into(), status);
    }
    Ok(kgate_controlplane::apiserver::codec::json_response(
        StatusCode::CREATED,
        &reply,
    ))
}

/// `status.user` of a TokenReview: name and groups always, uid and extra when set. The webhook
/// mode answers with it too.
pub(crate) fn token_review_user(user: &UserInfo) -> Value {
    let mut info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

fn rules_review(context: &ReviewContext, user: &UserInfo, namespace: &str) -> SubjectRules {
    let mut review = context.rules.rbac.rules_for(user, namespace);
    if context.rules.other_authorizers {
        // As kube-apiserver does for authorizers that cannot list rules (webhooks).
        review.incomplete = true;
    }
    review
}

#[cfg(test)]
#[path = "reviews_tests.rs"]
mod tests;
