//! The embedded Kubernetes API server: one dispatcher over the resources of
//! [`crate::resources::RESOURCES`], storing JSON objects in a [`Store`].
//!
//! A request travels: [`RequestInfo`] parsing (a non-canonical path is 400) → discovery and the
//! other non-resource paths ([`discovery::handle`]) → the resource handlers by verb: reads
//! ([`read`]), watch ([`watch`]), create/update/patch ([`write`]), delete ([`delete`]) and the
//! subresources ([`subresources`]). Every failure is a [`Status`] with kube-apiserver's reason,
//! code and wording, so kubectl prints what it prints against a real cluster.
//!
//! A write runs decode → mutating admission → strategy (prepare, default, validate) →
//! validating admission → store: see [`strategy`] for the order and [`admission`] for the seam.
//!
//! Trust: this server does no authentication or authorization. The gateway in front of it has
//! done both and passes identity as front-proxy headers; whoever can reach this router directly
//! is the cluster admin.

// Every handler fails with a `Status` (about 330 bytes): it is the wire error, built once per
// failed request, and boxing it everywhere would cost more clarity than the moves it saves.
#![allow(clippy::result_large_err)]

pub mod codec;
pub mod discovery;
#[doc(hidden)]
pub mod fuzzing;
pub mod selectors;
pub mod watch;
pub mod watch_cache;

// The layers, lowest first; a module imports only modules above it in this list (and
// `codec`, `selectors`, `watch_cache`, which import only leaves), never one that imports it:
//   leaves:     meta (object helpers), keys (store keys, targets, store errors as Statuses)
//   objects:    decode (body vs URL, fieldValidation), defaults, validation, storage (CAS loop)
//   write path: strategy (prepare, default, validate), admission (the plugin chain),
//               escalation, service_ips, registry (the write path of the server's own writers)
//   handlers:   state (what they share), request, read, write, delete, namespaces,
//               subresources, token_request, bootstrap
//   router:     this module
pub(crate) mod admission;
mod bootstrap;
mod decode;
mod defaults;
mod delete;
pub mod escalation;
pub(crate) mod keys;
pub(crate) mod meta;
mod namespaces;
mod protobuf;
mod read;
pub(crate) mod registry;
mod request;
mod service_ips;
pub(crate) mod state;
mod storage;
pub(crate) mod strategy;
mod subresources;
mod token_request;
mod validation;
mod write;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::Router;
use http::{Method, Request, Response};
use kgate_core::request_info::QueryParams;
use kgate_core::{RequestInfo, Status};

use crate::resources;
use crate::store::Store;
use codec::status_response;
use request::Req;
use selectors::{FieldSelector, LabelSelector};
use state::Shared;

pub use admission::default_tolerations;
pub use bootstrap::ApiServerError;
pub use keys::{collection_prefix, object_key};
pub use request::MAX_BODY_BYTES;

/// The API server: cheap to clone, one [`Router`] per caller.
#[derive(Clone)]
pub struct ApiServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

impl ApiServer {
    /// Bootstraps the store (the system namespaces created when absent, the bootstrap RBAC
    /// policy reconciled: see `bootstrap`), resumes the deletion of namespaces left Terminating by
    /// a previous run, and returns the server. Its controllers are the [`crate::ControlPlane`]'s.
    pub async fn start(store: Arc<dyn Store>) -> Result<ApiServer, ApiServerError> {
        let shared = Arc::new(Shared::new(store));
        bootstrap::run(&shared).await?;
        namespaces::resume_terminating(&shared).await;
        Ok(ApiServer { shared })
    }

    /// The HTTP service: every path, every method.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(dispatch)
            .with_state(self.shared.clone())
    }

    /// Checks every RBAC write against what its writer holds (see [`escalation`]), as
    /// kube-apiserver does, with `rbac` telling what users hold and `authorizer` (the chain
    /// requests are authorized with, policy layer included) whether they may `escalate` or
    /// `bind`. Off until called: this server has no other notion of users, and a caller that
    /// does not feed `rbac` must not enable it. A second call changes nothing.
    pub fn enable_escalation_checks(
        &self,
        rbac: Arc<kgate_authz::RbacAuthorizer>,
        authorizer: kgate_core::authz::AuthorizerChain,
    ) {
        let _ = self
            .shared
            .escalation
            .set(escalation::EscalationGuard::new(rbac, authorizer));
    }

    /// Serves the TokenRequest subresource (`serviceaccounts/{name}/token`, what
    /// `kubectl create token` calls) with tokens from `issuer`. Until called it answers 404, as
    /// a kube-apiserver without a signing key. A second call changes nothing.
    pub fn enable_token_requests(&self, issuer: Arc<kgate_tokens::TokenIssuer>) {
        let _ = self.shared.token_issuer.set(issuer);
    }

    /// Sets the `tolerationSeconds` of the not-ready and unreachable tolerations that pods
    /// created from now on get (see [`default_tolerations`]); kube's 300 s until called. A
    /// second call changes nothing.
    pub fn set_default_toleration_seconds(
        &self,
        seconds: default_tolerations::DefaultTolerationSeconds,
    ) {
        self.shared.default_tolerations.set(seconds);
    }

    /// The store this server writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The admission chain of this server's writes, for the writers beside it (controllers).
    pub(crate) fn admission(&self) -> &Arc<admission::Admission> {
        &self.shared.admission
    }
}

async fn dispatch(State(shared): State<Arc<Shared>>, req: Request<Body>) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    let mut response = match route(&shared, req).await {
        Ok(r) => r,
        Err(status) => status_response(&status),
    };
    if head {
        // HEAD answers as GET would, headers only.
        *response.body_mut() = Body::empty();
    }
    response
}

async fn route(shared: &Arc<Shared>, req: Request<Body>) -> Result<Response<Body>, Status> {
    let (parts, body) = req.into_parts();
    let query = parts.uri.query();
    let info = RequestInfo::parse(parts.method.as_str(), parts.uri.path(), query)
        .map_err(|e| Status::bad_request(e.to_string()))?;
    if !info.is_resource_request {
        return Ok(
            discovery::handle(&parts.method, &info.path, query, &parts.headers)
                .unwrap_or_else(discovery::text_not_found),
        );
    }
    let Some(def) = resources::lookup(&info.api_group, &info.api_version, &info.resource) else {
        // A group this server does not serve has no handler at all; a served group answers
        // for its own unknown paths with a Status.
        let served = info.api_group.is_empty()
            || resources::group_versions()
                .iter()
                .any(|(group, _)| *group == info.api_group);
        if served {
            return Err(Status::path_not_found());
        }
        return Ok(discovery::text_not_found());
    };
    let result: Result<Response<Body>, Status> = async {
        // Deeper paths (`pods/x/status/y`) serve nothing.
        if info.parts.len() > 3 {
            return Err(Status::path_not_found());
        }
        // A cluster-scoped resource under /namespaces/{ns}/, or a namespaced object outside one,
        // has no route (the gateway refused it already; this server holds to it on its own).
        kgate_core::scope::route(&info, def.known()).map_err(|e| e.to_status())?;
        let namespace = if def.namespaced {
            Some(info.namespace.clone()).filter(|n| !n.is_empty())
        } else {
            None
        };
        if !info.subresource.is_empty() && !def.has_subresource(&info.subresource) {
            return Err(Status::path_not_found());
        }
        let verb = info.verb.as_str();
        let allowed = def.verbs.contains(&verb)
            || (!info.subresource.is_empty()
                && matches!(verb, "get" | "update" | "patch" | "create"));
        // kube installs no route for a verb a resource lacks, nor PUT or PATCH on a collection.
        let collection_write = info.name.is_empty() && matches!(verb, "update" | "patch");
        if !allowed || collection_write {
            return Err(Status::no_route_for_method());
        }
        if def.is_review() {
            // Listed in discovery, answered by the gateway (it holds the authenticator and the
            // authorizer); a review that reaches the store's API server was routed wrong.
            return Err(Status::path_not_found());
        }
        let query_params = QueryParams::parse(query.unwrap_or(""));
        if verb == "watch" {
            return serve_watch(shared, def, namespace, &info, &query_params, &parts.headers).await;
        }
        let body = match verb {
            "create" | "update" | "patch" | "delete" | "deletecollection" => {
                request::read_body(&parts.headers, body).await?
            }
            _ => bytes::Bytes::new(),
        };
        let req = Req {
            def,
            namespace,
            name: info.name.clone(),
            subresource: info.subresource.clone(),
            query: query_params,
            headers: parts.headers,
            body,
            options_kind: match verb {
                "create" => "CreateOptions",
                "update" => "UpdateOptions",
                "patch" => "PatchOptions",
                "delete" | "deletecollection" => "DeleteOptions",
                _ => "",
            },
        };
        let reply = match (verb, req.subresource.as_str()) {
            ("get", "") => read::get(shared, &req).await?,
            ("list", _) => read::list(shared, &req).await?,
            ("create", "") if req.name.is_empty() => write::create(shared, &req).await?,
            ("update", "") => write::update(shared, &req).await?,
            ("patch", "") => write::patch(shared, &req).await?,
            ("delete", "") => delete::delete(shared, &req).await?,
            ("deletecollection", _) => delete::delete_collection(shared, &req).await?,
            (_, sub) if !sub.is_empty() => subresources::handle(shared, &req, verb).await?,
            _ => return Err(Status::no_route_for_method()),
        };
        Ok(reply.into_response())
    }
    .await;
    match def.deprecation {
        // kube warns on every request to a deprecated resource, failed ones too.
        Some(warning) => {
            let mut response = result.unwrap_or_else(|status| status_response(&status));
            response.headers_mut().append(
                http::header::WARNING,
                http::HeaderValue::from_static(warning),
            );
            Ok(response)
        }
        None => result,
    }
}

async fn serve_watch(
    shared: &Arc<Shared>,
    def: &'static resources::ResourceDef,
    namespace: Option<String>,
    info: &RequestInfo,
    query: &QueryParams,
    headers: &http::HeaderMap,
) -> Result<Response<Body>, Status> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let timeout = match query.get("timeoutSeconds") {
        None | Some("") => None,
        Some(s) => Some(Duration::from_secs(s.parse::<u64>().map_err(|_| {
            // kube's words: the error of Go's strconv.ParseInt.
            Status::bad_request(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"))
        })?)),
    };
    let ctx = watch::WatchContext {
        store: shared.store.clone(),
        cache: shared.watch_cache.clone(),
        def,
        namespace,
        name: Some(info.name.clone()).filter(|n| !n.is_empty()),
        resource_version: query
            .get("resourceVersion")
            .map(str::to_owned)
            .filter(|v| !v.is_empty()),
        labels: LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?,
        fields: FieldSelector::parse(def, query.get("fieldSelector").unwrap_or(""))?,
        bookmarks: query.get("allowWatchBookmarks") == Some("true"),
        timeout,
        negotiated: codec::negotiate(accept, query)?,
    };
    let send_initial_events = watch::send_initial_events(
        query.get("sendInitialEvents"),
        query.get("resourceVersionMatch"),
        query.get("continue"),
    )?;
    let options = watch::WatchOptions::default().send_initial_events(send_initial_events);
    watch::serve_watch_with(ctx, options).await
}
