//! [`AuthorizedRequest`]: the only request type the handlers behind the pipeline accept. It is
//! made in one place, the authorization stage, from the [`Authorized`] proof it has just made
//! for this very request; nothing outside this crate can make one.
//!
//! Threat model: a handler that forwards to the upstream or answers a review acts on what the
//! proof says about who is asking. Taking the proof as part of the request type, rather than
//! looking it up in the request's extensions, makes a handler wired without the authorization
//! stage a compile error, not a 500 at run time:
//!
//! ```compile_fail
//! // A handler of plain requests cannot be put behind the pipeline.
//! use axum::body::Body;
//! use http::{Request, Response};
//! use kgate_gateway::chain::{build, ChainConfig};
//! use kgate_gateway::error::GatewayError;
//! use tower::util::BoxCloneSyncService;
//!
//! fn wire(
//!     config: ChainConfig,
//!     handler: BoxCloneSyncService<Request<Body>, Response<Body>, GatewayError>,
//! ) {
//!     let _ = build(config, handler);
//! }
//! ```
//!
//! ```compile_fail
//! // Nor can a caller outside the authorization stage make an authorized request.
//! use kgate_gateway::authorized::AuthorizedRequest;
//!
//! fn forge(proof: kgate_core::authz::Authorized, request: http::Request<axum::body::Body>) {
//!     let _ = AuthorizedRequest::new(proof, request);
//! }
//! ```
//!
//! while a handler of authorized requests is what [`crate::chain::build`] takes:
//!
//! ```no_run
//! use axum::body::Body;
//! use http::Response;
//! use kgate_gateway::authorized::AuthorizedRequest;
//! use kgate_gateway::chain::{build, ChainConfig};
//! use kgate_gateway::error::GatewayError;
//! use tower::util::BoxCloneSyncService;
//!
//! fn wire(
//!     config: ChainConfig,
//!     handler: BoxCloneSyncService<AuthorizedRequest, Response<Body>, GatewayError>,
//! ) {
//!     let _ = build(config, handler);
//! }
//! ```

use axum::body::Body;
use http::Request;
use kgate_core::authz::Authorized;

/// A request and the proof that it was authorized.
#[derive(Debug)]
pub struct AuthorizedRequest {
    proof: Authorized,
    request: Request<Body>,
}

impl AuthorizedRequest {
    /// Only the authorization stage calls this, with the proof it made for `request`.
    pub(crate) fn new(proof: Authorized, request: Request<Body>) -> Self {
        Self { proof, request }
    }

    /// What was allowed (the user, verb and resource) and why.
    pub fn proof(&self) -> &Authorized {
        &self.proof
    }

    pub fn request(&self) -> &Request<Body> {
        &self.request
    }

    /// The request, for a handler that edits headers before it forwards; the proof stays as it
    /// was made.
    pub fn request_mut(&mut self) -> &mut Request<Body> {
        &mut self.request
    }

    pub fn into_parts(self) -> (Authorized, Request<Body>) {
        (self.proof, self.request)
    }
}
