//! The request pipeline, built in one function in request order, as k8s.io/apiserver's
//! `DefaultBuildHandlerChain`: read [`build`] top to bottom to follow a request from the TLS
//! listener to the upstream. Each stage is a tower layer in [`crate::layers`]; the TLS stage
//! (server certificate, client certificates handed on as [`crate::peer::PeerCertificates`]) is
//! the listener's, before this chain.
//!
//! What it owns: the order of the stages and of the handlers behind them, all of it written in
//! [`build`]; what each stage does is its module's. The handlers behind authorization (the
//! review APIs, issuer discovery, then the caller's upstream handler) take an
//! [`AuthorizedRequest`], which only the authorization stage makes, so a handler wired without
//! that stage does not compile (see [`crate::authorized`]).
//!
//! Threat model: the order is the security. Nothing reads the path before request info has
//! refused non-canonical ones; nothing but the health probes runs before authentication; the
//! handlers run only with an [`kgate_core::authz::Authorized`] proof, which only the
//! authorization stage makes, after impersonation has settled who the user is.

use crate::authorized::AuthorizedRequest;
use crate::error::GatewayError;
use crate::issuer_discovery::{IssuerDiscoveryLayer, IssuerDocuments};
use crate::layers::authentication::AuthenticationLayer;
use crate::layers::authorization::AuthorizationLayer;
use crate::layers::health::HealthLayer;
use crate::layers::impersonation::ImpersonationLayer;
use crate::layers::limits::LimitsLayer;
use crate::layers::request_info::RequestInfoLayer;
use crate::layers::rescue::RescueLayer;
use crate::layers::scope::ScopeLayer;
use crate::layers::trace::TraceLayer;
use crate::readiness::Readiness;
use crate::reviews::{ReviewContext, ReviewsLayer, RulesSource};
use axum::body::Body;
use http::{Request, Response};
use kgate_core::authn::AuthenticatorUnion;
use kgate_core::authz::AuthorizerChain;
use kgate_core::scope::ResourceScopes;
use std::convert::Infallible;
use std::sync::Arc;
use tower::util::BoxCloneSyncService;
use tower::ServiceBuilder;

/// What the pipeline is built from.
#[derive(Clone)]
pub struct ChainConfig {
    /// Who is calling: x509, ServiceAccount and OIDC tokens, and anonymous where enabled.
    pub authenticator: AuthenticatorUnion,
    /// What they may do; also decides `impersonate` checks.
    pub authorizer: AuthorizerChain,
    /// The largest request body, by Content-Length or as streamed (413 over it).
    pub max_body_bytes: u64,
    /// The largest request line plus headers (431 over it).
    pub max_header_bytes: usize,
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// The upstream's resources and their scopes, for routing by scope before authorization.
    pub scopes: Arc<dyn ResourceScopes>,
    /// Where SelfSubjectRulesReview's rule lists come from.
    pub rules: RulesSource,
    /// The ServiceAccount issuer's discovery documents, when this gateway issues tokens.
    pub issuer: Option<IssuerDocuments>,
}

/// The whole pipeline as one service for the listener: it never fails, every error is already a
/// `metav1.Status` response.
pub type GatewayService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Builds the pipeline around `handler` (the upstream), which sees only authorized requests.
pub fn build<H>(config: ChainConfig, handler: H) -> GatewayService
where
    H: tower::Service<AuthorizedRequest, Response = Response<Body>, Error = GatewayError>
        + Clone
        + Send
        + Sync
        + 'static,
    H::Future: Send + 'static,
{
    let ChainConfig {
        authenticator,
        authorizer,
        max_body_bytes,
        max_header_bytes,
        readiness,
        scopes,
        rules,
        issuer,
    } = config;
    let reviews = ReviewContext {
        authenticator: authenticator.clone(),
        authorizer: authorizer.clone(),
        rules,
    };
    let service = ServiceBuilder::new()
        // 0. Trace: the request span (verb, resource, namespace, user.name are filled in by
        //    the stages below) and one log line with the final status. It only observes, so it
        //    may sit outside rescue and see the code of every response, refusals and panics
        //    included.
        .layer(TraceLayer::new())
        // 1. Rescue: every GatewayError below becomes a metav1.Status in this one place:
        //    client problems 4xx, upstream failures 502/503/504, our own bugs 500; and a panic
        //    anywhere below is a 500 for that request, logged once (kube's WithPanicRecovery).
        .layer(RescueLayer::new())
        // 2. Request info: method + raw path → RequestInfo in the extensions; `..`, `//`,
        //    `%2F` are 400 before any other stage reads the path.
        .layer(RequestInfoLayer::new())
        // 3. Limits: headers over max_header_bytes 431; a body over max_body_bytes 413,
        //    by Content-Length at once or as it streams. Before authentication, so an
        //    unauthenticated client cannot make us read more than the limit.
        .layer(LimitsLayer::new(max_header_bytes, max_body_bytes))
        // 4. Health: /healthz, /livez, /readyz answer without credentials, as kube's
        //    system:public-info-viewer lets anyone read them.
        .layer(HealthLayer::new(readiness))
        // 5. Authentication: client certificate and bearer token → Authenticated, or 401.
        //    Removes Authorization, X-Remote-* and X-Forwarded-*.
        .layer(AuthenticationLayer::new(authenticator))
        // (Audit goes here, outside impersonation, when it lands: an event then holds both
        //  the real and the impersonated user.)
        // 6. Impersonation: each Impersonate-* checked with the `impersonate` verb (403 on
        //    refusal), the proof's user replaced, the headers removed.
        .layer(ImpersonationLayer::new(authorizer.clone()))
        // (Flow control goes here when it lands: 429 with Retry-After over the bound.)
        // 7. Scope: a resource at the wrong scope in the path (a cluster-scoped one under
        //    /namespaces/{ns}/) has no route: 404 before authorization decides on that
        //    namespace.
        .layer(ScopeLayer::new(scopes))
        // 8. Authorization: Authenticated + RequestInfo → AuthorizedRequest, or 403 in kube's
        //    words. Below here every handler takes an AuthorizedRequest.
        .layer(AuthorizationLayer::new(authorizer.clone()))
        // 9. Reviews: TokenReview and the SubjectAccessReview family are answered here, from
        //    the same authenticators and authorizer chain, about the proof's user.
        .layer(ReviewsLayer::new(reviews))
        // 10. Issuer discovery: the ServiceAccount issuer's OpenID configuration and JWKS.
        .layer(IssuerDiscoveryLayer::new(issuer))
        // 11. The upstream handler: kgate's control plane (in process or remote) with the
        //     proof's user in front-proxy headers.
        .service(handler);
    BoxCloneSyncService::new(service)
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
