//! ServiceAccount issuer discovery, as kube-apiserver serves it: `GET
//! /.well-known/openid-configuration` (the OpenID provider metadata) and `GET /openid/v1/jwks`
//! (every public key that verifies a kgate token), so that a third party checks kgate's tokens
//! with a generic OIDC library. Both run after authorization like any non-resource URL: the
//! bootstrap `system:service-account-issuer-discovery` ClusterRole lets ServiceAccounts read them,
//! and an operator may bind it to `system:unauthenticated` to publish them.
//!
//! The JWKS is read from the live key set on every request, so a `kgate keys rotate` shows here
//! as soon as the gateway has reloaded its keys.

use crate::authorized::AuthorizedRequest;
use crate::error::GatewayError;
use axum::body::Body;
use futures::future::BoxFuture;
use http::{Method, Response, StatusCode};
use kgate_core::RequestInfo;
use kgate_tokens::SharedKeys;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

pub const OPENID_CONFIGURATION_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// What the documents are made from.
#[derive(Clone)]
pub struct IssuerDocuments {
    pub issuer: String,
    /// Where the JWKS is published: this gateway's URL plus [`JWKS_PATH`].
    pub jwks_uri: String,
    pub keys: SharedKeys,
}

impl std::fmt::Debug for IssuerDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerDocuments")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri)
            .finish_non_exhaustive()
    }
}

/// Serves the two documents in front of a handler.
#[derive(Clone, Debug)]
pub struct IssuerDiscoveryLayer {
    documents: Option<Arc<IssuerDocuments>>,
}

impl IssuerDiscoveryLayer {
    /// `documents` None: nothing is served here (no ServiceAccount keys configured).
    pub fn new(documents: Option<IssuerDocuments>) -> Self {
        Self {
            documents: documents.map(Arc::new),
        }
    }
}

impl<S> Layer<S> for IssuerDiscoveryLayer {
    type Service = IssuerDiscovery<S>;
    fn layer(&self, inner: S) -> IssuerDiscovery<S> {
        IssuerDiscovery {
            inner,
            documents: self.documents.clone(),
        }
    }
}

/// Serves the two documents, forwards everything else to `inner`.
#[derive(Clone, Debug)]
pub struct IssuerDiscovery<S> {
    inner: S,
    documents: Option<Arc<IssuerDocuments>>,
}

impl<S> Service<AuthorizedRequest> for IssuerDiscovery<S>
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
        let document = match (
            &self.documents,
            request.request().extensions().get::<RequestInfo>(),
        ) {
            (Some(documents), Some(info))
                if !info.is_resource_request && request.request().method() == Method::GET =>
            {
                match info.path.as_str() {
                    OPENID_CONFIGURATION_PATH => Some(kgate_tokens::discovery_document_for(
                        &documents.issuer,
                        &documents.jwks_uri,
                        &documents.keys.current(),
                    )),
                    JWKS_PATH => Some(documents.keys.current().jwks()),
                    _ => None,
                }
            }
            _ => None,
        };
        match document {
            // kube serves both as application/json (jwks as application/jwk-set+json).
            Some(document) => Box::pin(async move {
                Ok(kgate_controlplane::apiserver::codec::json_response(
                    StatusCode::OK,
                    &document,
                ))
            }),
            None => Box::pin(self.inner.call(request)),
        }
    }
}
