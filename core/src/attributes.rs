//! What an authorizer decides on: the user plus the request's verb and target, as
//! `k8s.io/apiserver/pkg/authorization/authorizer.Attributes`.

use crate::request_info::RequestInfo;
use crate::user::UserInfo;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    /// True for `/api/...` and `/apis/...` resource requests; false for non-resource URLs.
    pub resource_request: bool,
    /// The request path; meaningful for non-resource requests.
    pub path: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl Attributes {
    pub fn new(user: UserInfo, info: &RequestInfo) -> Self {
        Self {
            user,
            verb: info.verb.clone(),
            resource_request: info.is_resource_request,
            path: info.path.clone(),
            namespace: info.namespace.clone(),
            api_group: info.api_group.clone(),
            api_version: info.api_version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
        }
    }

    /// A resource request, for tests and review APIs.
    pub fn resource(
        user: UserInfo,
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
    ) -> Self {
        Self {
            user,
            verb: verb.to_owned(),
            resource_request: true,
            api_group: api_group.to_owned(),
            api_version: "*".to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            ..Self::default()
        }
    }

    /// A non-resource request, for tests and review APIs.
    pub fn non_resource(user: UserInfo, verb: &str, path: &str) -> Self {
        Self {
            user,
            verb: verb.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        }
    }

    /// `resource` or `resource/subresource`, as RBAC matches and messages print it.
    pub fn resource_with_subresource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}
