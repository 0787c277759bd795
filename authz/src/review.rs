//! The review APIs' logic: SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectAccessReview, SelfSubjectRulesReview (authorization.k8s.io/v1) and
//! SelfSubjectReview (authentication.k8s.io/v1), as kube-apiserver answers them. A review is a
//! question, not an object: the answer is the request with its `status` filled in, and nothing is
//! stored.
//!
//! No HTTP here: the caller (the gateway, which holds the authenticator and the authorizer
//! chain) decodes the body, hands over the requesting user, and turns a [`ReviewError`] into a
//! `Status`: 422 Invalid for a review that fails kube's validation ([`ReviewError::Rejected`]),
//! 400 for the rest. A SubjectAccessReview webhook, when it lands, is to answer with the same
//! functions.

use crate::quote::go_quote;
use crate::rules_for::SubjectRules;
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, Decision, UserInfo};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

const AUTHORIZATION_V1: &str = "authorization.k8s.io/v1";
const AUTHENTICATION_V1: &str = "authentication.k8s.io/v1";

/// The review kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReviewKind {
    SubjectAccessReview,
    LocalSubjectAccessReview,
    SelfSubjectAccessReview,
    SelfSubjectRulesReview,
    SelfSubjectReview,
}

impl ReviewKind {
    /// The kind served at `group`/`resource`, if it is a review.
    pub fn from_resource(group: &str, resource: &str) -> Option<Self> {
        match (group, resource) {
            ("authorization.k8s.io", "subjectaccessreviews") => Some(Self::SubjectAccessReview),
            ("authorization.k8s.io", "localsubjectaccessreviews") => {
                Some(Self::LocalSubjectAccessReview)
            }
            ("authorization.k8s.io", "selfsubjectaccessreviews") => {
                Some(Self::SelfSubjectAccessReview)
            }
            ("authorization.k8s.io", "selfsubjectrulesreviews") => {
                Some(Self::SelfSubjectRulesReview)
            }
            ("authentication.k8s.io", "selfsubjectreviews") => Some(Self::SelfSubjectReview),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubjectAccessReview => "SubjectAccessReview",
            Self::LocalSubjectAccessReview => "LocalSubjectAccessReview",
            Self::SelfSubjectAccessReview => "SelfSubjectAccessReview",
            Self::SelfSubjectRulesReview => "SelfSubjectRulesReview",
            Self::SelfSubjectReview => "SelfSubjectReview",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Self::SelfSubjectReview => AUTHENTICATION_V1,
            _ => AUTHORIZATION_V1,
        }
    }
}

/// Why a review could not be answered: the request is malformed. Never carries credentials
/// (reviews hold none).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReviewError {
    /// The body is not the kind the URL serves.
    #[error("the body is a {found}, but this endpoint takes a {expected} of {api_version}")]
    WrongKind {
        expected: &'static str,
        api_version: &'static str,
        found: String,
    },
    /// A field has the wrong type or value; the message is kube's field error.
    #[error("{kind} is invalid: {field}: {message}")]
    Invalid {
        kind: &'static str,
        field: &'static str,
        message: String,
    },
    /// A LocalSubjectAccessReview about another namespace than its URL's.
    #[error("spec.resourceAttributes.namespace must match namespace: {0}")]
    NamespaceMismatch(String),
    /// The review decodes but fails kube's validation (`pkg/apis/authorization/validation`):
    /// every field error, in kube's order. kube-apiserver answers it 422 Invalid, with the
    /// review's group and an empty kind and name (`apierrors.NewInvalid(Kind(""), "", errs)`).
    #[error("{kind} is invalid: {}", describe_field_errors(.errors))]
    Rejected {
        kind: &'static str,
        errors: Vec<FieldInvalid>,
    },
}

/// One `field.Invalid` error of a review's validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInvalid {
    /// `spec.user`.
    pub field: &'static str,
    /// The bad value as Go's field errors print it: a string quoted, a nil pointer `null`, a
    /// struct as its JSON.
    pub value: String,
    /// What is wrong.
    pub detail: &'static str,
}

impl FieldInvalid {
    /// The cause's message, as `field.Error.ErrorBody`: `Invalid value: "": at least one ...`.
    pub fn message(&self) -> String {
        format!("Invalid value: {}: {}", self.value, self.detail)
    }
}

fn describe_field_errors(errors: &[FieldInvalid]) -> String {
    let listed: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message()))
        .collect();
    match listed.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Answers one review. `url_namespace` is the namespace of the request path (only
/// LocalSubjectAccessReview has one); `requester` is the authenticated user who asked;
/// `rules_for` lists a user's rules in a namespace (SelfSubjectRulesReview only).
pub fn answer(
    kind: ReviewKind,
    body: &Value,
    url_namespace: &str,
    requester: &UserInfo,
    authorizer: &dyn Authorizer,
    rules_for: &dyn Fn(&UserInfo, &str) -> SubjectRules,
) -> Result<Value, ReviewError> {
    let object = check_kind(kind, body)?;
    let spec = object_field(kind, object, "spec")?;
    let status = match kind {
        ReviewKind::SubjectAccessReview => {
            validate_spec(kind, spec, true)?;
            let user = spec_user(kind, spec)?;
            access_status(authorizer, &attributes(kind, spec, user, None)?)
        }
        ReviewKind::LocalSubjectAccessReview => {
            local_namespace(object, url_namespace)?;
            let mut errors = spec_errors(kind, spec, true)?;
            errors.extend(local_errors(kind, spec, url_namespace)?);
            rejected(kind, errors)?;
            let user = spec_user(kind, spec)?;
            access_status(
                authorizer,
                &attributes(kind, spec, user, Some(url_namespace))?,
            )
        }
        ReviewKind::SelfSubjectAccessReview => {
            validate_spec(kind, spec, false)?;
            access_status(
                authorizer,
                &attributes(kind, spec, requester.clone(), None)?,
            )
        }
        ReviewKind::SelfSubjectRulesReview => {
            let namespace = str_field(kind, spec, "namespace", "spec.namespace")?;
            rules_status(&rules_for(requester, namespace))
        }
        ReviewKind::SelfSubjectReview => json!({"userInfo": user_info(requester)}),
    };
    let mut out = object.clone();
    out.insert("apiVersion".into(), kind.api_version().into());
    out.insert("kind".into(), kind.as_str().into());
    out.entry("metadata")
        .or_insert_with(|| json!({"creationTimestamp": null}));
    match kind {
        // kube's handler fills a namespaced object's namespace from the URL.
        ReviewKind::LocalSubjectAccessReview => {
            if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("namespace".into(), url_namespace.into());
            }
        }
        // kube answers a SelfSubjectRulesReview with a new object: the status, an empty spec.
        ReviewKind::SelfSubjectRulesReview => {
            out.insert("spec".into(), json!({}));
        }
        _ => {}
    }
    out.insert("status".into(), status);
    Ok(Value::Object(out))
}

fn invalid(kind: ReviewKind, field: &'static str, message: impl Into<String>) -> ReviewError {
    ReviewError::Invalid {
        kind: kind.as_str(),
        field,
        message: message.into(),
    }
}

fn check_kind(kind: ReviewKind, body: &Value) -> Result<&Map<String, Value>, ReviewError> {
    let wrong = |found: &str| ReviewError::WrongKind {
        expected: kind.as_str(),
        api_version: kind.api_version(),
        found: found.to_owned(),
    };
    let object = body.as_object().ok_or_else(|| wrong("non-object"))?;
    // A body without apiVersion/kind is taken as the endpoint's kind, as kube's decoder does.
    if let Some(found) = object.get("kind").and_then(Value::as_str) {
        if found != kind.as_str() {
            return Err(wrong(found));
        }
    }
    if let Some(found) = object.get("apiVersion").and_then(Value::as_str) {
        if found != kind.api_version() {
            return Err(wrong(&format!("{} of {found}", kind.as_str())));
        }
    }
    Ok(object)
}

/// `spec` (or any object field): absent means empty, as Go decodes it.
fn object_field<'a>(
    kind: ReviewKind,
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Map<String, Value>, ReviewError> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    match object.get(field) {
        None | Some(Value::Null) => Ok(&EMPTY),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(invalid(kind, field, "must be an object")),
    }
}

fn str_field<'a>(
    kind: ReviewKind,
    object: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a str, ReviewError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(invalid(kind, field, "must be a string")),
    }
}

fn string_list(
    kind: ReviewKind,
    value: Option<&Value>,
    field: &'static str,
) -> Result<Vec<String>, ReviewError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(kind, field, "must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(invalid(kind, field, "must be a list of strings")),
    }
}

/// kube's `ValidateSubjectAccessReviewSpec` (`with_user`) or
/// `ValidateSelfSubjectAccessReviewSpec`: exactly one of the two attributes, and a user or a
/// group; every error, in kube's order.
fn spec_errors(
    kind: ReviewKind,
    spec: &Map<String, Value>,
    with_user: bool,
) -> Result<Vec<FieldInvalid>, ReviewError> {
    let present = |key: &str| spec.get(key).filter(|v| !v.is_null());
    let mut errors = Vec::new();
    match (
        present("resourceAttributes"),
        present("nonResourceAttributes"),
    ) {
        (Some(_), Some(non_resource)) => errors.push(FieldInvalid {
            field: "spec.nonResourceAttributes",
            value: non_resource_value(kind, non_resource)?,
            detail: "cannot be specified in combination with resourceAttributes",
        }),
        (None, None) => errors.push(FieldInvalid {
            field: "spec.resourceAttributes",
            // kube prints spec.nonResourceAttributes here, which is nil.
            value: "null".to_owned(),
            detail: "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        }),
        _ => {}
    }
    if with_user {
        let name = str_field(kind, spec, "user", "spec.user")?;
        let groups = string_list(kind, spec.get("groups"), "spec.groups")?;
        if name.is_empty() && groups.is_empty() {
            errors.push(FieldInvalid {
                field: "spec.user",
                value: go_quote(name),
                detail: "at least one of user or group must be specified",
            });
        }
    }
    Ok(errors)
}

/// [`spec_errors`], as a [`ReviewError::Rejected`] if there are any.
fn validate_spec(
    kind: ReviewKind,
    spec: &Map<String, Value>,
    with_user: bool,
) -> Result<(), ReviewError> {
    rejected(kind, spec_errors(kind, spec, with_user)?)
}

fn rejected(kind: ReviewKind, errors: Vec<FieldInvalid>) -> Result<(), ReviewError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ReviewError::Rejected {
            kind: kind.as_str(),
            errors,
        })
    }
}

/// The internal `NonResourceAttributes` as Go's `json.Marshal` writes it (no JSON tags on
/// internal types: the Go field names).
fn non_resource_value(kind: ReviewKind, value: &Value) -> Result<String, ReviewError> {
    let object = match value {
        Value::Object(map) => map,
        _ => {
            return Err(invalid(
                kind,
                "spec.nonResourceAttributes",
                "must be an object",
            ))
        }
    };
    let path = str_field(kind, object, "path", "spec.nonResourceAttributes.path")?;
    let verb = str_field(kind, object, "verb", "spec.nonResourceAttributes.verb")?;
    Ok(format!(
        "{{\"Path\":{},\"Verb\":{}}}",
        go_json_string(path),
        go_json_string(verb)
    ))
}

/// A string as Go's `encoding/json` writes it inside a struct's JSON (it escapes `<`, `>`, `&`
/// besides what JSON needs).
fn go_json_string(s: &str) -> String {
    let quoted = Value::from(s).to_string();
    quoted
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The user a SubjectAccessReview asks about: `user`, `groups`, `uid`, `extra`.
fn spec_user(kind: ReviewKind, spec: &Map<String, Value>) -> Result<UserInfo, ReviewError> {
    let name = str_field(kind, spec, "user", "spec.user")?;
    // A user or a group: `spec_errors` checked it before.
    let groups = string_list(kind, spec.get("groups"), "spec.groups")?;
    let mut extra = BTreeMap::new();
    match spec.get("extra") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, values) in map {
                extra.insert(key.clone(), string_list(kind, Some(values), "spec.extra")?);
            }
        }
        Some(_) => return Err(invalid(kind, "spec.extra", "must be a map of string lists")),
    }
    let mut user = UserInfo::new(name).with_groups(groups);
    user.uid = str_field(kind, spec, "uid", "spec.uid")?.to_owned();
    user.extra = extra;
    Ok(user)
}

/// The namespace checks of a LocalSubjectAccessReview, as kube-apiserver makes them.
fn local_namespace(object: &Map<String, Value>, url_namespace: &str) -> Result<(), ReviewError> {
    let kind = ReviewKind::LocalSubjectAccessReview;
    if url_namespace.is_empty() {
        return Err(invalid(kind, "metadata.namespace", "namespace is required"));
    }
    let meta = object_field(kind, object, "metadata")?;
    let meta_ns = str_field(kind, meta, "namespace", "metadata.namespace")?;
    if !meta_ns.is_empty() && meta_ns != url_namespace {
        return Err(ReviewError::NamespaceMismatch(url_namespace.to_owned()));
    }
    Ok(())
}

/// kube's `ValidateLocalSubjectAccessReview` beyond the spec's own checks: the resource
/// attributes' namespace is the review's (an empty one included), and no non-resource
/// attributes; in kube's order, after [`spec_errors`].
fn local_errors(
    kind: ReviewKind,
    spec: &Map<String, Value>,
    url_namespace: &str,
) -> Result<Vec<FieldInvalid>, ReviewError> {
    let mut errors = Vec::new();
    if let Some(Value::Object(attrs)) = spec.get("resourceAttributes") {
        let attrs_ns = str_field(
            kind,
            attrs,
            "namespace",
            "spec.resourceAttributes.namespace",
        )?;
        if attrs_ns != url_namespace {
            errors.push(FieldInvalid {
                field: "spec.resourceAttributes.namespace",
                value: go_quote(attrs_ns),
                detail: "must match metadata.namespace",
            });
        }
    }
    if let Some(non_resource) = spec.get("nonResourceAttributes").filter(|v| !v.is_null()) {
        errors.push(FieldInvalid {
            field: "spec.nonResourceAttributes",
            value: non_resource_value(kind, non_resource)?,
            detail: "disallowed on this kind of request",
        });
    }
    Ok(errors)
}

/// The request a SubjectAccessReview-like spec asks about.
fn attributes(
    kind: ReviewKind,
    spec: &Map<String, Value>,
    user: UserInfo,
    namespace: Option<&str>,
) -> Result<Attributes, ReviewError> {
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(_), Some(_)) => Err(invalid(
            kind,
            "spec.nonResourceAttributes",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(invalid(
            kind,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        (Some(_), None) => {
            let a = object_field(kind, spec, "resourceAttributes")?;
            let field = |key: &str, name: &'static str| str_field(kind, a, key, name);
            Ok(Attributes {
                user,
                verb: field("verb", "spec.resourceAttributes.verb")?.to_owned(),
                resource_request: true,
                path: String::new(),
                namespace: match namespace {
                    Some(ns) => ns.to_owned(),
                    None => field("namespace", "spec.resourceAttributes.namespace")?.to_owned(),
                },
                api_group: field("group", "spec.resourceAttributes.group")?.to_owned(),
                api_version: field("version", "spec.resourceAttributes.version")?.to_owned(),
                resource: field("resource", "spec.resourceAttributes.resource")?.to_owned(),
                subresource: field("subresource", "spec.resourceAttributes.subresource")?
                    .to_owned(),
                name: field("name", "spec.resourceAttributes.name")?.to_owned(),
            })
        }
        (None, Some(_)) => {
            let a = object_field(kind, spec, "nonResourceAttributes")?;
            Ok(Attributes::non_resource(
                user,
                str_field(kind, a, "verb", "spec.nonResourceAttributes.verb")?,
                str_field(kind, a, "path", "spec.nonResourceAttributes.path")?,
            ))
        }
    }
}

/// `SubjectAccessReviewStatus`: allowed, denied (an explicit Deny only), reason.
fn access_status(authorizer: &dyn Authorizer, attributes: &Attributes) -> Value {
    let decision = authorizer.authorize(attributes);
    let mut status = Map::new();
    status.insert("allowed".into(), decision.is_allow().into());
    if matches!(decision, Decision::Deny { .. }) {
        status.insert("denied".into(), true.into());
    }
    if !decision.reason().is_empty() {
        status.insert("reason".into(), decision.reason().into());
    }
    Value::Object(status)
}

fn rules_status(rules: &SubjectRules) -> Value {
    let resource_rules: Vec<Value> = rules
        .resource_rules
        .iter()
        .map(|r| {
            let mut rule = json!({
                "verbs": r.verbs,
                "apiGroups": r.api_groups,
                "resources": r.resources,
            });
            if !r.resource_names.is_empty() {
                rule["resourceNames"] = json!(r.resource_names);
            }
            rule
        })
        .collect();
    let non_resource_rules: Vec<Value> = rules
        .non_resource_rules
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": rules.incomplete,
    });
    if !rules.evaluation_error.is_empty() {
        status["evaluationError"] = rules.evaluation_error.clone().into();
    }
    status
}

/// `authentication.k8s.io/v1` UserInfo: username, uid, groups, extra (empty ones omitted).
fn user_info(user: &UserInfo) -> Value {
    let mut info = Map::new();
    info.insert("username".into(), user.name.clone().into());
    if !user.uid.is_empty() {
        info.insert("uid".into(), user.uid.clone().into());
    }
    if !user.groups.is_empty() {
        info.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        info.insert("extra".into(), json!(user.extra));
    }
    Value::Object(info)
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
