//! Routing by scope: whether a request's path can address a resource at all, given whether the
//! resource is namespaced, as kube-apiserver's routes are made from each resource's scope
//! (k8s.io/apiserver `endpoints/installer.go`). A cluster-scoped resource has no path under
//! `/namespaces/{ns}/`; a namespaced one has no object path outside a namespace, and outside a
//! namespace only its list and watch (across all namespaces) exist.
//!
//! Threat model: the namespace in a path is what authorization decides on, so a path that names
//! a namespace for a cluster-scoped object would be authorized by a grant in that namespace and
//! then reach an object that belongs to no namespace. The gateway asks [`route`] before
//! authorization and the embedded API server asks it again before it serves, from one table
//! ([`ResourceScopes`]).

use crate::request_info::RequestInfo;
use crate::status::{Status, StatusCause, StatusDetails};

/// What routing needs to know of a resource the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownResource {
    /// Objects live in a namespace.
    pub namespaced: bool,
    /// The resource answers `list` (and so has a collection path across namespaces).
    pub listable: bool,
}

/// The table of the resources a server serves, by group, version and plural.
pub trait ResourceScopes: Send + Sync {
    /// `None` for a resource the table does not know: routing then leaves the path to the
    /// server behind (which answers 404 if it does not know it either).
    fn lookup(&self, group: &str, version: &str, resource: &str) -> Option<KnownResource>;
}

/// A table that knows no resource: every path goes on (in front of a server whose resources are
/// not known here).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownResources;

impl ResourceScopes for UnknownResources {
    fn lookup(&self, _: &str, _: &str, _: &str) -> Option<KnownResource> {
        None
    }
}

/// Why a path has no route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoRoute {
    /// No such path (404), as for any unknown URL.
    #[error("the server could not find the requested resource")]
    NotFound,
    /// The path exists for other methods (405): a namespaced resource's collection outside a
    /// namespace answers only list and watch.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
}

impl NoRoute {
    /// The Status kube-apiserver answers: its not-found for unknown paths, and go-restful's
    /// 405 as `NewGenericServerResponse` words it.
    pub fn to_status(self) -> Status {
        match self {
            NoRoute::NotFound => Status::path_not_found(),
            NoRoute::MethodNotAllowed => Status::failure(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
            .with_details(StatusDetails {
                causes: vec![StatusCause {
                    reason: "UnexpectedServerResponse".to_owned(),
                    message: "405: Method Not Allowed".to_owned(),
                    field: String::new(),
                }],
                ..StatusDetails::default()
            }),
        }
    }
}

/// Whether `info`'s path addresses `resource` at its scope. Non-resource requests pass.
pub fn route(info: &RequestInfo, resource: KnownResource) -> Result<(), NoRoute> {
    if !info.is_resource_request {
        return Ok(());
    }
    if info.under_namespace {
        return if resource.namespaced {
            Ok(())
        } else {
            Err(NoRoute::NotFound)
        };
    }
    if !resource.namespaced {
        return Ok(());
    }
    // A namespaced resource outside a namespace: no object paths (the name is read from the
    // path's segments, not from a `metadata.name` field selector, which a list may carry)...
    if info.parts.len() > 1 {
        return Err(NoRoute::NotFound);
    }
    // ...and of the collection only list and watch, where it lists at all.
    match (resource.listable, info.verb.as_str()) {
        (false, _) => Err(NoRoute::NotFound),
        (true, "list" | "watch") => Ok(()),
        (true, _) => Err(NoRoute::MethodNotAllowed),
    }
}

/// [`route`] for a request whose resource `scopes` may know.
pub fn route_known(info: &RequestInfo, scopes: &dyn ResourceScopes) -> Result<(), NoRoute> {
    if !info.is_resource_request {
        return Ok(());
    }
    match scopes.lookup(&info.api_group, &info.api_version, &info.resource) {
        Some(resource) => route(info, resource),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMESPACED: KnownResource = KnownResource {
        namespaced: true,
        listable: true,
    };
    const CLUSTER: KnownResource = KnownResource {
        namespaced: false,
        listable: true,
    };
    /// LocalSubjectAccessReview: namespaced, create only.
    const NAMESPACED_CREATE_ONLY: KnownResource = KnownResource {
        namespaced: true,
        listable: false,
    };

    fn routed(method: &str, url: &str, resource: KnownResource) -> Result<(), NoRoute> {
        let (path, query) = url
            .split_once('?')
            .map_or((url, None), |(p, q)| (p, Some(q)));
        let info = RequestInfo::parse(method, path, query).expect(url);
        route(&info, resource)
    }

    // Written from installer.go's actions for each scope.
    #[test]
    fn paths_follow_the_scope_of_the_resource() {
        use NoRoute::*;
        #[rustfmt::skip]
        let cases: &[(&str, &str, KnownResource, Result<(), NoRoute>)] = &[
            ("GET", "/api/v1/namespaces", CLUSTER, Ok(())),
            ("GET", "/api/v1/namespaces/team", CLUSTER, Ok(())),
            ("PUT", "/api/v1/namespaces/team/status", CLUSTER, Ok(())),
            ("PUT", "/api/v1/namespaces/team/finalize", CLUSTER, Ok(())),
            ("DELETE", "/api/v1/namespaces/team", CLUSTER, Ok(())),
            ("GET", "/api/v1/namespaces/team/namespaces", CLUSTER, Err(NotFound)),
            ("GET", "/api/v1/namespaces/team/namespaces/other", CLUSTER, Err(NotFound)),
            ("DELETE", "/api/v1/namespaces/team/namespaces/other", CLUSTER, Err(NotFound)),
            ("GET", "/api/v1/namespaces/team/namespaces?watch=1", CLUSTER, Err(NotFound)),
            ("GET", "/api/v1/watch/namespaces/team/nodes", CLUSTER, Err(NotFound)),
            ("PATCH", "/api/v1/namespaces/team/nodes/n1/status", CLUSTER, Err(NotFound)),
            ("POST", "/apis/authorization.k8s.io/v1/namespaces/team/subjectaccessreviews", CLUSTER, Err(NotFound)),
            ("GET", "/api/v1/nodes/n1", CLUSTER, Ok(())),
            ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", CLUSTER, Ok(())),
            ("GET", "/api/v1/pods", NAMESPACED, Ok(())),
            ("GET", "/api/v1/pods?watch=true", NAMESPACED, Ok(())),
            ("GET", "/api/v1/watch/pods", NAMESPACED, Ok(())),
            ("GET", "/api/v1/pods?fieldSelector=metadata.name%3Dweb", NAMESPACED, Ok(())),
            ("POST", "/api/v1/pods", NAMESPACED, Err(MethodNotAllowed)),
            ("DELETE", "/api/v1/pods", NAMESPACED, Err(MethodNotAllowed)),
            ("GET", "/api/v1/pods/web", NAMESPACED, Err(NotFound)),
            ("DELETE", "/api/v1/pods/web", NAMESPACED, Err(NotFound)),
            ("GET", "/api/v1/watch/pods/web", NAMESPACED, Err(NotFound)),
            ("PUT", "/api/v1/pods/web/status", NAMESPACED, Err(NotFound)),
            ("GET", "/api/v1/namespaces/team/pods/web", NAMESPACED, Ok(())),
            ("POST", "/api/v1/namespaces/team/pods", NAMESPACED, Ok(())),
            ("POST", "/apis/authorization.k8s.io/v1/namespaces/team/localsubjectaccessreviews", NAMESPACED_CREATE_ONLY, Ok(())),
            ("POST", "/apis/authorization.k8s.io/v1/localsubjectaccessreviews", NAMESPACED_CREATE_ONLY, Err(NotFound)),
            ("GET", "/apis/authorization.k8s.io/v1/localsubjectaccessreviews", NAMESPACED_CREATE_ONLY, Err(NotFound)),
        ];
        for (method, url, resource, expected) in cases {
            assert_eq!(routed(method, url, *resource), *expected, "{method} {url}");
        }
    }

    #[test]
    fn unknown_resources_and_non_resource_paths_go_on() {
        for url in [
            "/api/v1/namespaces/team/widgets/w",
            "/healthz",
            "/apis/apps/v1",
        ] {
            let info = RequestInfo::parse("GET", url, None).expect(url);
            assert_eq!(route_known(&info, &UnknownResources), Ok(()), "{url}");
        }
    }

    #[test]
    fn the_405_is_worded_as_kube_apiserver_words_it() {
        let status = NoRoute::MethodNotAllowed.to_status();
        assert_eq!(status.code, 405);
        assert_eq!(status.reason, "MethodNotAllowed");
        assert_eq!(
            status.message,
            "the server does not allow this method on the requested resource"
        );
        let not_found = NoRoute::NotFound.to_status();
        assert_eq!(
            (not_found.code, not_found.reason.as_str()),
            (404, "NotFound")
        );
    }
}
