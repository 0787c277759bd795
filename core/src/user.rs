//! The authenticated identity, shaped like `k8s.io/apiserver/pkg/authentication/user.Info`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The group every authenticated user is in.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of the anonymous user.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The name given to requests without credentials, where anonymous access is enabled.
pub const ANONYMOUS: &str = "system:anonymous";
/// Members may do everything; no authorizer can take that away (kube-apiserver's privileged group).
pub const SYSTEM_PRIVILEGED_GROUP: &str = "system:masters";

/// Who a request is from: name, uid, groups and extra attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// The anonymous user, as kube-apiserver names it.
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS).with_groups([ALL_UNAUTHENTICATED])
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` unless present, as kube-apiserver's `AuthenticatedGroupAdder` does.
    pub fn add_authenticated_group(&mut self) {
        if !self.in_group(ALL_AUTHENTICATED) {
            self.groups.push(ALL_AUTHENTICATED.to_owned());
        }
    }
}
