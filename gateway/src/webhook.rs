//! Webhook mode: kgate as the token authentication and authorization webhook of a cluster it
//! does not run. kube-apiserver (`--authentication-token-webhook-config-file`, and a webhook
//! authorizer of an `AuthorizationConfiguration`) POSTs a TokenReview to `/authenticate` and a
//! SubjectAccessReview to `/authorize`; this module answers them, in the version asked
//! (`v1` or `v1beta1`).
//!
//! - Who may call: only a client certificate from the webhook's client CA whose name is allowed
//!   (kube-apiserver's identity); no certificate is 401, another name 403. `/healthz` and
//!   `/readyz` are open, as kube's are.
//! - Authentication: kgate's machine tokens ([`kgate_tokens::machine`]) and the OIDC issuers of
//!   the AuthenticationConfiguration. `status.error` names the check, never the token.
//! - Authorization: only the policy layer. A deny line answers `denied: true` (kube-apiserver
//!   asks no further authorizer), an allow line `allowed: true`, anything else no opinion, so
//!   the cluster's own RBAC decides.

use crate::peer::{PeerAddr, PeerCertificates};
use crate::readiness::Readiness;
use crate::x509::X509Authenticator;
use axum::body::Body;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use kgate_authz::review::{self, ReviewKind};
use kgate_authz::SubjectRules;
use kgate_core::authn::{Authenticator, BearerToken, Credentials};
use kgate_core::authz::AuthorizerChain;
use kgate_core::{Status, UserInfo};
use kgate_tokens::machine::MachineTokenVerifier;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Reviews are a few hundred bytes; anything much larger is not a review.
pub const MAX_REVIEW_BYTES: usize = 64 * 1024;

const AUTHENTICATION_VERSIONS: [&str; 2] =
    ["authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"];
const AUTHORIZATION_VERSIONS: [&str; 2] =
    ["authorization.k8s.io/v1", "authorization.k8s.io/v1beta1"];

/// Why a review is refused; the edge ([`WebhookError::status`]) makes it a Status. No variant
/// carries the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("a review is at most {MAX_REVIEW_BYTES} bytes")]
    TooLarge,
    /// serde_json's message gives a position, never the input.
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("this endpoint takes a {kind} of {versions}, not {found_kind:?} of {found_version:?}")]
    WrongKind {
        kind: &'static str,
        versions: String,
        found_kind: String,
        found_version: String,
    },
    #[error("{0} must be a list of strings")]
    NotStrings(&'static str),
    /// kube-apiserver's words.
    #[error("token is required for TokenReview in authentication")]
    NoToken,
    /// kube's SubjectAccessReview validation refused it.
    #[error(transparent)]
    Review(#[from] kgate_authz::review::ReviewError),
}

impl WebhookError {
    /// 413 for an oversized body, 422 for a review kube's validation refuses, 400 otherwise.
    pub fn status(self) -> Status {
        match self {
            WebhookError::TooLarge => Status::request_entity_too_large(self.to_string()),
            WebhookError::Review(error) => crate::reviews::review_status(error),
            other => Status::bad_request(other.to_string()),
        }
    }
}

/// A caller refused for its certificate: 401 (none, or not from the client CA) or 403 (a name
/// not allowed).
#[derive(Debug)]
struct RefusedCaller {
    forbidden: bool,
    why: String,
}

/// What the webhook answers with.
pub struct WebhookConfig {
    /// Verifies the callers' client certificates (the webhook's client CA).
    pub clients: X509Authenticator,
    /// The certificate names (CN) allowed to call.
    pub allowed_client_names: Vec<String>,
    pub machine_tokens: Arc<MachineTokenVerifier>,
    /// The OIDC issuers, when configured.
    pub oidc: Option<Arc<dyn Authenticator>>,
    /// The policy layer: `[deny lines, allow lines]`, or empty without a policy file.
    pub authorizer: AuthorizerChain,
    pub readiness: Readiness,
}

/// Counts for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    token_authenticated: AtomicU64,
    token_refused: AtomicU64,
    access_allowed: AtomicU64,
    access_denied: AtomicU64,
    access_no_opinion: AtomicU64,
    bad_requests: AtomicU64,
    refused_clients: AtomicU64,
}

/// The webhook's HTTP service (for [`crate::serve::serve`], which sets the peer extensions).
#[derive(Clone)]
pub struct WebhookService {
    inner: Arc<Inner>,
}

struct Inner {
    config: WebhookConfig,
    counters: Counters,
}

impl WebhookService {
    pub fn new(config: WebhookConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                counters: Counters::default(),
            }),
        }
    }
}

impl tower::Service<Request<Body>> for WebhookService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.handle(request).await) })
    }
}

fn status(s: &Status) -> Response<Body> {
    kgate_controlplane::apiserver::codec::status_response(s)
}

fn text(code: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Inner {
    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let path = request.uri().path().to_owned();
        match (request.method().clone(), path.as_str()) {
            (_, "/healthz" | "/livez") => text(StatusCode::OK, "ok".into()),
            (_, "/readyz") => self.readyz(),
            (Method::GET, "/metrics") => match self.caller(&request) {
                Ok(_) => text(StatusCode::OK, self.metrics()),
                Err(refused) => self.refuse(&request, refused),
            },
            (Method::POST, "/authenticate" | "/authorize") => {
                if let Err(refused) = self.caller(&request) {
                    return self.refuse(&request, refused);
                }
                let answer = match read_body(request).await {
                    Ok(body) if path == "/authenticate" => self.token_review(&body).await,
                    Ok(body) => self.access_review(&body),
                    Err(error) => Err(error),
                };
                match answer {
                    Ok(reply) => {
                        kgate_controlplane::apiserver::codec::json_response(StatusCode::OK, &reply)
                    }
                    Err(error) => {
                        self.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(path, reason = %error, "webhook request refused");
                        status(&error.status())
                    }
                }
            }
            (_, "/authenticate" | "/authorize" | "/metrics") => {
                status(&Status::no_route_for_method())
            }
            _ => status(&Status::path_not_found()),
        }
    }

    fn readyz(&self) -> Response<Body> {
        let failures = self.config.readiness.failures();
        if failures.is_empty() {
            return text(StatusCode::OK, "ok".into());
        }
        let listed: Vec<String> = failures
            .iter()
            .map(|(name, problem)| format!("[-]{name} failed: {problem}"))
            .collect();
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\nreadyz check failed", listed.join("\n")),
        )
    }

    /// The caller, if its certificate is from the client CA and its name allowed.
    fn caller(&self, request: &Request<Body>) -> Result<UserInfo, RefusedCaller> {
        let unauthorized = |why: &str| RefusedCaller {
            forbidden: false,
            why: why.to_owned(),
        };
        let chain = request
            .extensions()
            .get::<PeerCertificates>()
            .map(|c| c.0.clone())
            .unwrap_or_default();
        if chain.is_empty() {
            return Err(unauthorized("no client certificate was presented"));
        }
        let user = self
            .config
            .clients
            .verify(&chain, rustls::pki_types::UnixTime::now())
            .map_err(|_| {
                unauthorized("the client certificate is not from the webhook's client CA")
            })?;
        if !self.config.allowed_client_names.contains(&user.name) {
            return Err(RefusedCaller {
                forbidden: true,
                why: format!("client {:?} may not call this webhook", user.name),
            });
        }
        Ok(user)
    }

    /// The 401 or 403 of a refused caller, logged with its address.
    fn refuse(&self, request: &Request<Body>, refused: RefusedCaller) -> Response<Body> {
        self.counters
            .refused_clients
            .fetch_add(1, Ordering::Relaxed);
        let peer = request
            .extensions()
            .get::<PeerAddr>()
            .map(|p| p.0.to_string())
            .unwrap_or_default();
        tracing::warn!(%peer, why = %refused.why, "webhook caller refused");
        if refused.forbidden {
            status(&Status::failure(403, "Forbidden", refused.why))
        } else {
            status(&Status::unauthorized())
        }
    }

    /// TokenReview: machine tokens, then the OIDC issuers.
    async fn token_review(&self, body: &[u8]) -> Result<Value, WebhookError> {
        let object = decode(body)?;
        let api_version = kind_and_version(&object, "TokenReview", &AUTHENTICATION_VERSIONS)?;
        let spec = object
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let token = match spec.get("token") {
            Some(Value::String(token)) if !token.is_empty() => token.clone(),
            _ => return Err(WebhookError::NoToken),
        };
        let audiences = string_list(spec.get("audiences"), "spec.audiences")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let outcome: Result<(UserInfo, Vec<String>), String> =
            match self.config.machine_tokens.verify(&token, &audiences, now) {
                Ok(Some(identity)) => Ok((identity.user, identity.audiences)),
                Err(error) => Err(error.to_string()),
                Ok(None) => self.oidc(&token).await,
            };
        let status = match outcome {
            Ok((user, audiences)) => {
                self.counters
                    .token_authenticated
                    .fetch_add(1, Ordering::Relaxed);
                let mut status = json!({"authenticated": true, "user": crate::reviews::token_review_user(&user)});
                if !audiences.is_empty() {
                    status["audiences"] = json!(audiences);
                }
                status
            }
            Err(error) => {
                self.counters.token_refused.fetch_add(1, Ordering::Relaxed);
                json!({"authenticated": false, "user": {}, "error": error})
            }
        };
        let mut answered_spec = Map::new();
        if !audiences.is_empty() {
            answered_spec.insert("audiences".into(), json!(audiences));
        }
        Ok(json!({
            "apiVersion": api_version,
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": null},
            "spec": answered_spec,
            "status": status,
        }))
    }

    /// An OIDC ID token's user (OIDC tokens are checked against their issuer's audiences, so
    /// they claim none of the caller's: kube-apiserver then applies its own).
    async fn oidc(&self, token: &str) -> Result<(UserInfo, Vec<String>), String> {
        let Some(oidc) = &self.config.oidc else {
            return Err("no authenticator accepts the token".into());
        };
        let credentials = Credentials {
            bearer_token: Some(BearerToken::new(token)),
            ..Credentials::default()
        };
        match oidc.authenticate(&credentials).await {
            Ok(Some(response)) => Ok((response.user, Vec::new())),
            Ok(None) => Err("no authenticator accepts the token".into()),
            Err(error) => Err(error.to_string()),
        }
    }

    /// SubjectAccessReview: the policy layer's answer, or no opinion.
    fn access_review(&self, body: &[u8]) -> Result<Value, WebhookError> {
        let mut object = Value::Object(decode(body)?);
        let api_version = kind_and_version(
            as_map(&object),
            "SubjectAccessReview",
            &AUTHORIZATION_VERSIONS,
        )?;
        let beta = api_version.ends_with("v1beta1");
        if beta {
            // v1beta1 names the groups `group`; the answer keeps the caller's spelling.
            if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                if let Some(groups) = spec.remove("group") {
                    spec.insert("groups".into(), groups);
                }
            }
            object["apiVersion"] = json!("authorization.k8s.io/v1");
        }
        // The requester only matters to the self reviews, which this endpoint does not answer.
        let nobody = UserInfo::default();
        let mut reply = review::answer(
            ReviewKind::SubjectAccessReview,
            &object,
            "",
            &nobody,
            &self.config.authorizer,
            &|_, _| SubjectRules::default(),
        )?;
        let counter = match (
            reply["status"]["allowed"].as_bool(),
            reply["status"]["denied"].as_bool(),
        ) {
            (Some(true), _) => &self.counters.access_allowed,
            (_, Some(true)) => &self.counters.access_denied,
            _ => &self.counters.access_no_opinion,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if beta {
            reply["apiVersion"] = json!(api_version);
            if let Some(spec) = reply.get_mut("spec").and_then(Value::as_object_mut) {
                if let Some(groups) = spec.remove("groups") {
                    spec.insert("group".into(), groups);
                }
            }
        }
        Ok(reply)
    }

    fn metrics(&self) -> String {
        let c = &self.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        format!(
            "# HELP kgate_webhook_token_reviews_total TokenReviews answered, by result.\n\
             # TYPE kgate_webhook_token_reviews_total counter\n\
             kgate_webhook_token_reviews_total{{result=\"authenticated\"}} {}\n\
             kgate_webhook_token_reviews_total{{result=\"refused\"}} {}\n\
             # HELP kgate_webhook_access_reviews_total SubjectAccessReviews answered, by decision.\n\
             # TYPE kgate_webhook_access_reviews_total counter\n\
             kgate_webhook_access_reviews_total{{decision=\"allowed\"}} {}\n\
             kgate_webhook_access_reviews_total{{decision=\"denied\"}} {}\n\
             kgate_webhook_access_reviews_total{{decision=\"no-opinion\"}} {}\n\
             # HELP kgate_webhook_bad_requests_total Reviews refused as malformed.\n\
             # TYPE kgate_webhook_bad_requests_total counter\n\
             kgate_webhook_bad_requests_total {}\n\
             # HELP kgate_webhook_refused_clients_total Calls refused for their client certificate.\n\
             # TYPE kgate_webhook_refused_clients_total counter\n\
             kgate_webhook_refused_clients_total {}\n",
            get(&c.token_authenticated),
            get(&c.token_refused),
            get(&c.access_allowed),
            get(&c.access_denied),
            get(&c.access_no_opinion),
            get(&c.bad_requests),
            get(&c.refused_clients),
        )
    }
}

fn as_map(value: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    value.as_object().unwrap_or(&EMPTY)
}

/// The body, up to [`MAX_REVIEW_BYTES`].
async fn read_body(request: Request<Body>) -> Result<Vec<u8>, WebhookError> {
    axum::body::to_bytes(request.into_body(), MAX_REVIEW_BYTES)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| WebhookError::TooLarge)
}

fn decode(body: &[u8]) -> Result<Map<String, Value>, WebhookError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(WebhookError::NotAnObject),
        Err(error) => Err(WebhookError::NotJson(error.to_string())),
    }
}

/// The object's apiVersion, if it is `kind` in one of `versions`.
fn kind_and_version(
    object: &Map<String, Value>,
    kind: &'static str,
    versions: &[&'static str],
) -> Result<&'static str, WebhookError> {
    let found_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let found_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    match versions.iter().find(|v| **v == found_version) {
        Some(version) if found_kind == kind => Ok(version),
        // Named by their first bytes only: the caller's input, shown back to it.
        _ => Err(WebhookError::WrongKind {
            kind,
            versions: versions.join(" or "),
            found_kind: found_kind.chars().take(64).collect(),
            found_version: found_version.chars().take(64).collect(),
        }),
    }
}

fn string_list(value: Option<&Value>, field: &'static str) -> Result<Vec<String>, WebhookError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(WebhookError::NotStrings(field))
            })
            .collect(),
        Some(_) => Err(WebhookError::NotStrings(field)),
    }
}

#[cfg(test)]
// Tests may unwrap: a panic there is a failing test.
#[allow(clippy::unwrap_used)]
#[path = "webhook_tests.rs"]
mod tests;
