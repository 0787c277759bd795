//! `metav1.Status`: how every failure looks on the wire, with the reasons, codes and wording of
//! `k8s.io/apimachinery/pkg/api/errors`, so kubectl prints them as it prints kube-apiserver's.

use crate::attributes::Attributes;
use serde::{Deserialize, Serialize};

/// A `metav1.Status` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub kind: String,
    pub api_version: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Success` or `Failure`.
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    pub code: u16,
}

/// `metav1.StatusDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_after_seconds: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `metav1.StatusCause`: one field-level problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// A group and resource, printed as kube-apiserver prints `schema.GroupResource`
/// (`pods`, `deployments.apps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
}

impl<'a> GroupResource<'a> {
    pub fn new(group: &'a str, resource: &'a str) -> Self {
        Self { group, resource }
    }
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

impl Status {
    /// A failure with a reason and code and no details.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: "Status".to_owned(),
            api_version: "v1".to_owned(),
            metadata: serde_json::Map::new(),
            status: "Failure".to_owned(),
            message: message.into(),
            reason: reason.to_owned(),
            details: None,
            code,
        }
    }

    /// `{"status":"Success"}` as a DELETE of a collection or a non-object answer returns.
    pub fn success(details: Option<StatusDetails>) -> Self {
        Self {
            status: "Success".to_owned(),
            details,
            ..Self::failure(200, "", "")
        }
    }

    pub fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(details);
        self
    }

    fn resource_details(resource: GroupResource<'_>, name: &str) -> StatusDetails {
        StatusDetails {
            name: name.to_owned(),
            group: resource.group.to_owned(),
            kind: resource.resource.to_owned(),
            ..StatusDetails::default()
        }
    }

    /// 401: no valid credential. kube-apiserver says only "Unauthorized", whatever the cause,
    /// so that a caller learns nothing about which check failed.
    pub fn unauthorized() -> Self {
        Self::failure(401, "Unauthorized", "Unauthorized")
    }

    /// 403 for an authorization denial, worded as kube-apiserver's `responsewriters.Forbidden`.
    pub fn forbidden(attrs: &Attributes, reason: &str) -> Self {
        let what = if !attrs.resource_request {
            format!(
                "User {:?} cannot {} path {:?}",
                attrs.user.name, attrs.verb, attrs.path
            )
        } else if attrs.namespace.is_empty() {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                attrs.user.name,
                attrs.verb,
                attrs.resource_with_subresource(),
                attrs.api_group
            )
        } else {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                attrs.user.name,
                attrs.verb,
                attrs.resource_with_subresource(),
                attrs.api_group,
                attrs.namespace
            )
        };
        let cause = if reason.is_empty() {
            what
        } else {
            format!("{what}: {reason}")
        };
        let resource = GroupResource::new(&attrs.api_group, &attrs.resource);
        Self::forbidden_resource(
            if attrs.resource_request {
                Some(resource)
            } else {
                None
            },
            &attrs.name,
            &cause,
        )
    }

    /// 403 as `apierrors.NewForbidden(resource, name, cause)`.
    pub fn forbidden_resource(
        resource: Option<GroupResource<'_>>,
        name: &str,
        cause: &str,
    ) -> Self {
        match resource {
            None => Self::failure(403, "Forbidden", format!("forbidden: {cause}"))
                .with_details(StatusDetails::default()),
            Some(gr) => {
                let message = if name.is_empty() {
                    format!("{gr} is forbidden: {cause}")
                } else {
                    format!("{gr} {name:?} is forbidden: {cause}")
                };
                Self::failure(403, "Forbidden", message)
                    .with_details(Self::resource_details(gr, name))
            }
        }
    }

    /// 404 for an object: `pods "x" not found`.
    pub fn not_found(resource: GroupResource<'_>, name: &str) -> Self {
        Self::failure(404, "NotFound", format!("{resource} {name:?} not found"))
            .with_details(Self::resource_details(resource, name))
    }

    /// 404 for a path that serves nothing.
    pub fn path_not_found() -> Self {
        Self::failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 409 on create of an existing name: `pods "x" already exists`.
    pub fn already_exists(resource: GroupResource<'_>, name: &str) -> Self {
        Self::failure(
            409,
            "AlreadyExists",
            format!("{resource} {name:?} already exists"),
        )
        .with_details(Self::resource_details(resource, name))
    }

    /// 409 on a stale resourceVersion.
    pub fn conflict(resource: GroupResource<'_>, name: &str, cause: &str) -> Self {
        Self::failure(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {resource} {name:?}: {cause}"),
        )
        .with_details(Self::resource_details(resource, name))
    }

    /// The usual optimistic-concurrency conflict.
    pub fn stale_conflict(resource: GroupResource<'_>, name: &str) -> Self {
        Self::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `Pod "x" is invalid: [field: reason, ...]`, as `apierrors.NewInvalid`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        // The message lists each distinct cause once, as kube's `ErrorList.ToAggregate` does;
        // the details keep every cause.
        let mut listed: Vec<String> = Vec::with_capacity(causes.len());
        for c in &causes {
            let line = if c.field.is_empty() {
                c.message.clone()
            } else {
                format!("{}: {}", c.field, c.message)
            };
            if !listed.contains(&line) {
                listed.push(line);
            }
        }
        let summary = match listed.as_slice() {
            [] => String::new(),
            [one] => format!(": {one}"),
            many => format!(": [{}]", many.join(", ")),
        };
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        Self::failure(
            422,
            "Invalid",
            format!("{qualified} {name:?} is invalid{summary}"),
        )
        .with_details(StatusDetails {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            causes,
            ..StatusDetails::default()
        })
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, "BadRequest", message)
    }

    /// 405.
    pub fn method_not_allowed(resource: GroupResource<'_>, verb: &str) -> Self {
        Self::failure(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind {resource:?}",
                resource = resource.to_string()
            ),
        )
        .with_details(Self::resource_details(resource, ""))
    }

    /// 405 for a method the path has no route for (kube's route table answers this, with
    /// `NewGenericServerResponse`'s message and empty details).
    pub fn no_route_for_method() -> Self {
        Self::failure(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 410: a resourceVersion older than the store keeps.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::failure(410, "Expired", message)
    }

    /// 413.
    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::failure(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {}", message.into()),
        )
    }

    /// 415 for an object body (create, update) of a type not decoded, in kube's words
    /// (`NewUnsupportedMediaTypeError` with the serializers' media types).
    pub fn unsupported_media_type() -> Self {
        Self::failure(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    }

    /// 415 for a patch of a type no patch route consumes: go-restful's answer, which kube
    /// turns into a Status with its generic message and empty details.
    pub fn unsupported_patch_type() -> Self {
        Self::failure(415, "UnsupportedMediaType", "415: Unsupported Media Type")
            .with_details(StatusDetails::default())
    }

    /// 429 with Retry-After.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Self::failure(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(StatusDetails {
            retry_after_seconds,
            ..StatusDetails::default()
        })
    }

    /// 500. The cause given here goes to the client: pass a short, safe description and log the rest.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::failure(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 502: the upstream answered with something that is not HTTP, or failed mid-answer.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::failure(
            502,
            "InternalError",
            format!("upstream error: {}", message.into()),
        )
    }

    /// 503.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::failure(503, "ServiceUnavailable", message)
    }

    /// 504.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::failure(504, "Timeout", message)
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        // A Status has only strings, numbers and maps: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::UserInfo;
    use serde_json::json;

    #[test]
    fn forbidden_matches_kube_apiserver_wording() {
        let attrs = Attributes::resource(UserInfo::new("alice"), "list", "", "pods", "team");
        let s = Status::forbidden(&attrs, "");
        assert_eq!(
            s.message,
            r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team""#
        );
        let mut attrs =
            Attributes::resource(UserInfo::new("bob"), "get", "apps", "deployments", "");
        attrs.name = "web".into();
        attrs.subresource = "scale".into();
        let s = Status::forbidden(&attrs, "no rule allows it");
        assert_eq!(
            s.message,
            r#"deployments.apps "web" is forbidden: User "bob" cannot get resource "deployments/scale" in API group "apps" at the cluster scope: no rule allows it"#
        );
        let attrs = Attributes::non_resource(UserInfo::new("eve"), "get", "/metrics");
        assert_eq!(
            Status::forbidden(&attrs, "").message,
            r#"forbidden: User "eve" cannot get path "/metrics""#
        );
    }

    #[test]
    fn golden_json_for_not_found() {
        let s = Status::not_found(GroupResource::new("apps", "deployments"), "web");
        assert_eq!(
            serde_json::to_value(&s).expect("serializes"),
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "deployments.apps \"web\" not found", "reason": "NotFound",
                "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404
            })
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let s = Status::invalid(
            "",
            "Pod",
            "p",
            vec![StatusCause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.containers".into(),
            }],
        );
        assert_eq!(
            s.message,
            r#"Pod "p" is invalid: spec.containers: Required value"#
        );
        assert_eq!(s.code, 422);
    }
}
