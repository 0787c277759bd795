//! The claims of ServiceAccount tokens, shaped as Kubernetes writes them
//! (k8s.io/kubernetes/pkg/serviceaccount/claims.go and legacy.go), for both issuing and
//! verifying.

use serde::{Deserialize, Serialize};

/// The issuer of legacy (Secret-based, non-expiring) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// `system:serviceaccount:` + namespace + `:` + name is a ServiceAccount's user name.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";
/// Every ServiceAccount is in this group.
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// User extra keys, as kube-apiserver sets them.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// The user name of a ServiceAccount.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// The group of a namespace's ServiceAccounts.
pub fn namespace_group(namespace: &str) -> String {
    format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{namespace}")
}

/// A `{name, uid}` reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ref {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The `kubernetes.io` private claim of bound tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KubernetesClaim {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default)]
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

/// The claims of a bound token, in Kubernetes' (alphabetical) order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BoundClaims<'a> {
    pub aud: &'a [String],
    pub exp: i64,
    pub iat: i64,
    pub iss: &'a str,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    pub nbf: i64,
    pub sub: String,
}

/// The claims of a legacy token.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LegacyClaims<'a> {
    pub iss: &'static str,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    pub namespace: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    pub secret_name: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub service_account_name: &'a str,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub service_account_uid: &'a str,
    pub sub: String,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains_any(&self, wanted: &[String]) -> bool {
        match self {
            Self::One(a) => wanted.contains(a),
            Self::Many(list) => list.iter().any(|a| wanted.contains(a)),
        }
    }
}

/// Every claim the verifier reads, of either kind of token. Unknown claims are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ReceivedClaims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Audience>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: Option<KubernetesClaim>,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    pub legacy_namespace: Option<String>,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    pub legacy_secret_name: Option<String>,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub legacy_service_account_name: Option<String>,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub legacy_service_account_uid: Option<String>,
}

/// Only the issuer, read before anything is verified to decide whether a token is ours.
#[derive(Debug, Deserialize)]
pub(crate) struct IssuerOnly {
    pub iss: Option<String>,
}
