//! The review APIs, answered here rather than upstream: SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview, SelfSubjectRulesReview and
//! SelfSubjectReview. The gateway holds the authorizer chain (policy layer included) and knows
//! who is asking, so `kubectl auth can-i` and `kubectl auth whoami` get the answer the gateway
//! itself would act on, whether the upstream is kgate's control plane or a real cluster.
//!
//! [`Reviews`] wraps the last-hop handler: a `create` of a review resource is answered from
//! `kgate_authz::review`; everything else goes on to the upstream. It runs after authorization,
//! so asking needs `create` on the review resource, as in Kubernetes (the bootstrap
//! `system:basic-user` role grants the self reviews to everyone authenticated).

use crate::error::GatewayError;
use axum::body::Body;
use futures::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use kgate_authz::review::{self, ReviewKind};
use kgate_authz::{RbacAuthorizer, SubjectRules};
use kgate_core::authz::{Authorized, AuthorizerChain};
use kgate_core::{RequestInfo, UserInfo};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;

/// Reviews are a few hundred bytes; anything much larger is not a review.
const MAX_REVIEW_BYTES: usize = 256 * 1024;

/// What the review answers are computed from.
#[derive(Clone, Debug)]
pub struct ReviewContext {
    /// The whole chain: a review answers what a request would get.
    pub authorizer: AuthorizerChain,
    /// RBAC, for SelfSubjectRulesReview's rule lists.
    pub rbac: Arc<RbacAuthorizer>,
    /// Set when an authorizer besides RBAC (the policy layer) can change decisions, so a rules
    /// list from RBAC alone is marked incomplete.
    pub other_authorizers: bool,
}

/// Answers review requests, forwards the rest to `inner`.
#[derive(Clone, Debug)]
pub struct Reviews<S> {
    inner: S,
    context: Arc<ReviewContext>,
}

impl<S> Reviews<S> {
    pub fn new(context: ReviewContext, inner: S) -> Self {
        Self {
            inner,
            context: Arc::new(context),
        }
    }
}

/// The review a request creates, if it is one.
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

impl<S> Service<Request<Body>> for Reviews<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = BoxFuture<'static, Result<Response<Body>, GatewayError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let kind = request
            .extensions()
            .get::<RequestInfo>()
            .and_then(review_kind);
        let Some(kind) = kind else {
            return Box::pin(self.inner.call(request));
        };
        let context = self.context.clone();
        Box::pin(async move { answer(&context, kind, request).await })
    }
}

async fn answer(
    context: &ReviewContext,
    kind: ReviewKind,
    request: Request<Body>,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = request.into_parts();
    let Some(authorized) = parts.extensions.get::<Authorized>() else {
        return Err(GatewayError::MissingProof {
            stage: "reviews",
            proof: "Authorized",
        });
    };
    let requester = &authorized.attributes().user;
    let namespace = &authorized.attributes().namespace;
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
    let rules_for = |user: &UserInfo, ns: &str| rules_review(context, user, ns);
    let reply = review::answer(
        kind,
        &object,
        namespace,
        requester,
        &context.authorizer,
        &rules_for,
    )
    .map_err(|e| GatewayError::BadRequest(e.to_string()))?;
    tracing::debug!(review = kind.as_str(), "review answered");
    Ok(kgate_controlplane::apiserver::codec::json_response(
        StatusCode::CREATED,
        &reply,
    ))
}

fn rules_review(context: &ReviewContext, user: &UserInfo, namespace: &str) -> SubjectRules {
    let mut review = context.rbac.rules_for(user, namespace);
    if context.other_authorizers {
        // As kube-apiserver does for authorizers that cannot list rules (webhooks).
        review.incomplete = true;
    }
    review
}

#[cfg(test)]
#[path = "reviews_tests.rs"]
mod tests;
