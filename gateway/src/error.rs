//! Every way a request can fail inside the gateway, classified by who caused it (the client, the
//! upstream, or us). The rescue layer is the one place that turns these into `metav1.Status`.

use kgate_core::authn::AuthnError;
use kgate_core::authz::Denied;
use kgate_core::request_info::RequestInfoError;
use thiserror::Error;

/// A failure the rescue layer answers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The path is not canonical or cannot be interpreted (400).
    #[error("bad request path")]
    RequestInfo(#[from] RequestInfoError),
    /// The path puts a resource at the wrong scope (404, or 405 for a namespaced collection
    /// outside a namespace).
    #[error("no route: {0}")]
    NoRoute(#[from] kgate_core::scope::NoRoute),
    /// Authentication failed (401).
    #[error("authentication failed")]
    Unauthenticated(#[source] AuthnError),
    /// Authorization denied the request (403).
    #[error("forbidden")]
    Forbidden(Box<Denied>),
    /// Headers or body over the configured limit (431 / 413).
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The request line and headers together are over the configured limit (431).
    #[error("request headers of {size} bytes exceed the limit of {limit} bytes")]
    HeadersTooLarge { size: usize, limit: usize },
    /// The body is over the configured limit, by its Content-Length or as it streamed (413).
    #[error("the request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// A malformed request the client can fix (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A body the gateway itself reads (a review) is refused: it cannot be decoded (400, or 415
    /// for a media type it does not read), or kube's validation would refuse it (422); the
    /// Status says which.
    #[error("undecodable body: {}", .0.message)]
    Undecodable(Box<kgate_core::Status>),
    /// A body the gateway itself reads (a review) decodes but fails validation: 422 Invalid,
    /// the Status listing each field error.
    #[error("invalid body: {}", .0.message)]
    Invalid(Box<kgate_core::Status>),
    /// The upstream could not be reached (503).
    #[error("upstream unavailable")]
    UpstreamUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The upstream did not answer in time (504).
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The upstream answered with something broken (502).
    #[error("upstream protocol error")]
    UpstreamProtocol(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stage that needs a proof found none: a wiring bug in kgate, never the client's fault (500).
    #[error("request reached {stage} without the {proof} proof")]
    MissingProof {
        stage: &'static str,
        proof: &'static str,
    },
    /// Any other bug of ours (500).
    #[error("internal error: {0}")]
    Internal(String),
}

pub use kgate_core::error_chain;
