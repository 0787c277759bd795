//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: the TokenRequest subresource
//! (`kubectl create token`), as kube-apiserver's `pkg/registry/core/serviceaccount/storage/
//! token.go`: the body is an `authentication.k8s.io/v1` TokenRequest (JSON, YAML or protobuf);
//! the answer is the same TokenRequest, defaulted, with `status.token` and
//! `status.expirationTimestamp`. Nothing is stored.
//!
//! Authorization (`create` on `serviceaccounts/token`) was done by the gateway. Threat model:
//! the answer carries a credential, so neither the token nor the response body is ever logged,
//! and no error message holds either. A token may be bound to a Pod, Secret or Node, which
//! must exist (and have the uid the request names), so that the token dies with the object.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::StatusCode;
use kgate_core::status::{GroupResource, StatusCause};
use kgate_core::Status;
use kgate_tokens::{BoundKind, BoundObject, TokenIssuer, TokenRequestSpec};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::admission::{Attributes, Operation};
use super::decode::{check_fields, check_type};
use super::escalation::front_proxy_user;
use super::keys::Target;
use super::meta::meta_str;
use super::request::{Reply, Req};
use super::state::Shared;
use super::storage::get_current;
use crate::resources::{self, ResourceDef};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";
/// kube's default `spec.expirationSeconds` (an hour).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest token kube issues (ten minutes).
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest `spec.expirationSeconds` kube's validation accepts (2^32).
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// The TokenRequest type, for the decoding checks shared with stored kinds (type, fields).
static TOKEN_REQUEST: ResourceDef = ResourceDef {
    group: GROUP,
    version: "v1",
    kind: KIND,
    plural: "tokenrequests",
    singular: "tokenrequest",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: &["create"],
    subresources: &[],
    deprecation: None,
    storage_version: None,
};

/// The answer while no issuer is configured: the subresource is not served, as on a
/// kube-apiserver started without a service account signing key.
fn not_enabled() -> Status {
    Status::failure(
        404,
        "NotFound",
        "the TokenRequest API (serviceaccounts/token) is not enabled: this control plane has no ServiceAccount token issuer",
    )
}

fn invalid(name: &str, field: &str, message: String) -> Status {
    Status::invalid(
        GROUP,
        KIND,
        name,
        vec![StatusCause {
            reason: "FieldValueInvalid".into(),
            message,
            field: field.into(),
        }],
    )
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn def(plural: &str) -> Result<&'static ResourceDef, Status> {
    resources::lookup("", "v1", plural).ok_or_else(Status::path_not_found)
}

/// POST serviceaccounts/{name}/token.
pub(crate) async fn create(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let issuer = shared.token_issuer.get().ok_or_else(not_enabled)?.clone();
    let namespace = req.namespace.as_deref().unwrap_or("");
    let name = req.name.as_str();
    let mut body = req.body_value()?;
    check_type(&TOKEN_REQUEST, &mut body)?;
    let warnings = check_fields(&TOKEN_REQUEST, &mut body, req.field_validation()?, true)?;
    let dry_run = req.dry_run()?;
    // The body's name and namespace, when given, must be the URL's (422, as kube).
    if let Some(n) = meta_str(&body, "name").filter(|n| !n.is_empty() && *n != name) {
        return Err(invalid(
            name,
            "metadata.name",
            format!("Invalid value: {n:?}: must match the service account name if specified"),
        ));
    }
    if let Some(n) = meta_str(&body, "namespace").filter(|n| !n.is_empty() && *n != namespace) {
        return Err(invalid(
            name,
            "metadata.namespace",
            format!("Invalid value: {n:?}: must match the service account namespace if specified"),
        ));
    }
    let accounts_def = def("serviceaccounts")?;
    // Mutating admission, on the TokenRequest as decoded.
    let user = front_proxy_user(&req.headers);
    let mut attrs = Attributes::new(Operation::Create, accounts_def, namespace, name)
        .with_subresource("token")
        .with_kind(KIND)
        .with_object(body)
        .with_user(user.as_ref())
        .with_dry_run(dry_run);
    shared.admission.admit(&mut attrs).await?;
    let body = attrs.object.take().unwrap_or_default();
    let accounts = Target {
        def: accounts_def,
        namespace: Some(namespace),
        name,
    };
    let (_, account) = get_current(shared.store.as_ref(), &accounts).await?;
    let account_uid = meta_str(&account, "uid").unwrap_or("").to_owned();
    // A request for another incarnation of the account (kube's
    // TokenRequestServiceAccountUIDValidation).
    if let Some(uid) = meta_str(&body, "uid").filter(|u| !u.is_empty() && *u != account_uid) {
        return Err(Status::conflict(
            GroupResource::new(GROUP, KIND),
            name,
            &format!("the UID in the token request ({uid}) does not match the UID of the service account ({account_uid})"),
        ));
    }
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.clone_from(&issuer.config().api_audiences);
    }
    let mut expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"),
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            "",
            "spec.expirationSeconds",
            format!(
                "Invalid value: {expiration}: may not specify a duration larger than 2^32 seconds"
            ),
        ));
    }
    let bound_ref = spec.get("boundObjectRef").filter(|r| r.is_object());
    let (bound, pod_node) = match bound_ref {
        Some(r) => bind(shared, namespace, name, r).await?,
        None => (None, None),
    };
    let mut warnings = warnings;
    let max = i64::try_from(issuer.config().max_expiration.as_secs()).unwrap_or(i64::MAX);
    if max > 0 && expiration > max {
        warnings.push(format!(
            "requested expiration of {expiration} seconds shortened to {max} seconds"
        ));
        expiration = max;
    }
    // Validating admission, once the request is known to be valid, before a token exists.
    attrs.object = Some(body);
    shared.admission.validate(&attrs).await?;
    let now = SystemTime::now();
    let request = TokenRequestSpec {
        namespace: namespace.to_owned(),
        service_account_name: name.to_owned(),
        service_account_uid: account_uid.clone(),
        audiences: audiences.clone(),
        expiration_seconds: expiration,
        bound,
        pod_node,
    };
    let issued = issue(&issuer, &request, now)?;
    // kube writes boundObjectRef even when unset (a pointer without omitempty: null).
    let out_spec = json!({
        "audiences": audiences,
        "expirationSeconds": expiration,
        "boundObjectRef": bound_ref.cloned().unwrap_or(Value::Null),
    });
    let answer = json!({
        "kind": KIND,
        "apiVersion": format!("{GROUP}/v1"),
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": account_uid,
            "creationTimestamp": rfc3339(unix_seconds(now)),
        },
        "spec": out_spec,
        "status": {
            "token": issued.token,
            "expirationTimestamp": rfc3339(issued.expiration_unix),
        },
    });
    Ok(Reply::new(StatusCode::CREATED, answer).with_warnings(warnings))
}

/// Issues the token; a failure is a 500 whose details (never a token) go to the log.
fn issue(
    issuer: &TokenIssuer,
    spec: &TokenRequestSpec,
    now: SystemTime,
) -> Result<kgate_tokens::IssuedToken, Status> {
    issuer.issue(spec, now).map_err(|error| {
        tracing::error!(namespace = %spec.namespace, serviceaccount = %spec.service_account_name, %error, "failed to generate a ServiceAccount token");
        Status::internal("failed to generate token")
    })
}

/// What a token bound by `spec.boundObjectRef` names: the object, and for a Pod, its node.
type Binding = (Option<BoundObject>, Option<(String, String)>);

/// Resolves `spec.boundObjectRef`: a Pod or Secret in `namespace`, or a Node, which must exist
/// and, if the reference names a uid, have it.
async fn bind(
    shared: &Arc<Shared>,
    namespace: &str,
    account: &str,
    reference: &Value,
) -> Result<Binding, Status> {
    let field = |f: &str| reference.get(f).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind, name, want_uid) = (
        field("apiVersion"),
        field("kind"),
        field("name"),
        field("uid"),
    );
    // As Go's schema.FromAPIVersionAndKind: `v1` and `` are the core group.
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (bound_kind, plural, in_namespace) = match (group, kind) {
        ("", "Pod") => (BoundKind::Pod, "pods", Some(namespace)),
        ("", "Secret") => (BoundKind::Secret, "secrets", Some(namespace)),
        ("", "Node") => (BoundKind::Node, "nodes", None),
        _ => {
            return Err(Status::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )))
        }
    };
    let target = Target {
        def: def(plural)?,
        namespace: in_namespace,
        name,
    };
    let (_, object) = get_current(shared.store.as_ref(), &target).await?;
    let uid = meta_str(&object, "uid").unwrap_or("").to_owned();
    let mut pod_node = None;
    if let BoundKind::Pod = bound_kind {
        let pod_account = object
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(super::admission::service_accounts::DEFAULT_SERVICE_ACCOUNT);
        if pod_account != account {
            return Err(Status::bad_request(format!(
                "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
            )));
        }
        pod_node = node_of(shared, &object).await?;
    }
    if !want_uid.is_empty() && want_uid != uid {
        return Err(Status::conflict(
            GroupResource::new(group, kind),
            name,
            &format!("the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"),
        ));
    }
    let bound = BoundObject {
        kind: bound_kind,
        name: name.to_owned(),
        uid,
    };
    Ok((Some(bound), pod_node))
}

/// The node a pod runs on, with the Node's uid; the name alone when the Node does not exist
/// (as kube, so the token still tells where the pod was placed).
async fn node_of(shared: &Arc<Shared>, pod: &Value) -> Result<Option<(String, String)>, Status> {
    let Some(node) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    let target = Target {
        def: def("nodes")?,
        namespace: None,
        name: node,
    };
    let uid = match get_current(shared.store.as_ref(), &target).await {
        Ok((_, obj)) => meta_str(&obj, "uid").unwrap_or("").to_owned(),
        Err(status) if status.code == 404 => String::new(),
        Err(status) => return Err(status),
    };
    Ok(Some((node.to_owned(), uid)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "token_request_tests.rs"]
mod tests;
