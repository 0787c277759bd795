//! Scope: a path that puts a resource at the wrong scope (a cluster-scoped resource under
//! `/namespaces/{ns}/`, a namespaced object outside a namespace) has no route, and is answered
//! 404 (or 405) here, before authorization, from the upstream's table of resources
//! ([`ResourceScopes`]) by [`kgate_core::scope::route`].
//!
//! Threat model: authorization decides on the namespace the path names. Without this stage a
//! grant in namespace `team` would authorize `/api/v1/namespaces/team/namespaces/other`, and
//! the request would reach an object that lives in no namespace; the same for the review APIs,
//! which the gateway answers itself. A resource the table does not know goes on: the upstream
//! answers for it.

use crate::error::GatewayError;
use crate::layers::{proceed, refuse, StageFuture};
use axum::body::Body;
use http::{Request, Response};
use kgate_core::scope::{route_known, ResourceScopes};
use kgate_core::RequestInfo;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// Refuses paths at the wrong scope; see the module docs.
#[derive(Clone)]
pub struct ScopeLayer {
    scopes: Arc<dyn ResourceScopes>,
}

impl fmt::Debug for ScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeLayer").finish_non_exhaustive()
    }
}

impl ScopeLayer {
    pub fn new(scopes: Arc<dyn ResourceScopes>) -> Self {
        Self { scopes }
    }
}

impl<S> Layer<S> for ScopeLayer {
    type Service = Scope<S>;
    fn layer(&self, inner: S) -> Scope<S> {
        Scope {
            inner,
            scopes: self.scopes.clone(),
        }
    }
}

/// The scope service.
#[derive(Clone)]
pub struct Scope<S> {
    inner: S,
    scopes: Arc<dyn ResourceScopes>,
}

impl<S> fmt::Debug for Scope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

impl<S> Service<Request<Body>> for Scope<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = StageFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(info) = request.extensions().get::<RequestInfo>() else {
            return refuse(GatewayError::MissingProof {
                stage: "scope",
                proof: "RequestInfo",
            });
        };
        match route_known(info, self.scopes.as_ref()) {
            Ok(()) => proceed(self.inner.call(request)),
            Err(no_route) => refuse(GatewayError::NoRoute(no_route)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Recorder;
    use kgate_core::scope::{KnownResource, UnknownResources};
    use tower::ServiceExt;

    /// `nodes` cluster-scoped, `pods` namespaced.
    struct Table;
    impl ResourceScopes for Table {
        fn lookup(&self, group: &str, _: &str, resource: &str) -> Option<KnownResource> {
            match (group, resource) {
                ("", "nodes") => Some(KnownResource {
                    namespaced: false,
                    listable: true,
                }),
                ("", "pods") => Some(KnownResource {
                    namespaced: true,
                    listable: true,
                }),
                _ => None,
            }
        }
    }

    async fn call(
        scopes: Arc<dyn ResourceScopes>,
        method: &str,
        path: &str,
    ) -> (Result<Response<Body>, GatewayError>, bool) {
        let recorder = Recorder::default();
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap_or_default();
        if let Ok(info) = RequestInfo::parse(method, path, None) {
            request.extensions_mut().insert(info);
        }
        let result = ScopeLayer::new(scopes)
            .layer(recorder.clone())
            .oneshot(request)
            .await;
        (result, recorder.seen().is_some())
    }

    #[tokio::test]
    async fn wrong_scope_paths_stop_here_and_the_rest_go_on() {
        for (method, path, reaches, code) in [
            ("GET", "/api/v1/namespaces/team/nodes/n1", false, 404),
            ("POST", "/api/v1/pods", false, 405),
            ("GET", "/api/v1/pods/web", false, 404),
            ("GET", "/api/v1/nodes/n1", true, 200),
            ("GET", "/api/v1/namespaces/team/pods/web", true, 200),
            ("GET", "/api/v1/namespaces/team/widgets/w", true, 200),
            ("GET", "/version", true, 200),
        ] {
            let (result, reached) = call(Arc::new(Table), method, path).await;
            assert_eq!(reached, reaches, "{method} {path}");
            match result {
                Ok(_) => assert_eq!(code, 200, "{method} {path}"),
                Err(GatewayError::NoRoute(no_route)) => {
                    assert_eq!(no_route.to_status().code, code, "{method} {path}")
                }
                Err(other) => panic!("{method} {path}: {other}"),
            }
        }
    }

    #[tokio::test]
    async fn an_unknown_table_passes_everything() {
        let (result, reached) = call(
            Arc::new(UnknownResources),
            "GET",
            "/api/v1/namespaces/team/nodes/n1",
        )
        .await;
        assert!(result.is_ok() && reached);
    }

    #[tokio::test]
    async fn without_request_info_the_chain_is_miswired() {
        let recorder = Recorder::default();
        let request = Request::get("/api/v1/pods")
            .body(Body::empty())
            .unwrap_or_default();
        let result = ScopeLayer::new(Arc::new(Table))
            .layer(recorder.clone())
            .oneshot(request)
            .await;
        assert!(matches!(result, Err(GatewayError::MissingProof { .. })));
        assert!(recorder.seen().is_none());
    }
}
