//! The issuer discovery documents kube-apiserver serves so that others can verify its tokens
//! (k8s.io/kubernetes/pkg/serviceaccount/openidmetadata.go): `/.well-known/openid-configuration`
//! and, at its `jwks_uri` (usually `/openid/v1/jwks`), the keys ([`crate::KeySet::jwks`]).

use crate::keys::KeySet;
use serde_json::{json, Value};

/// The path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The path kube-apiserver serves the JWKS at.
pub const JWKS_PATH: &str = "/openid/v1/jwks";

/// `/.well-known/openid-configuration` as kube-apiserver serves it. Without the key set at
/// hand it lists both algorithms kgate can sign with; [`discovery_document_for`] lists those
/// of the keys.
pub fn discovery_document(issuer: &str, jwks_uri: &str) -> Value {
    document(issuer, jwks_uri, &["ES256", "RS256"])
}

/// [`discovery_document`] listing the algorithms of `keys`, as kube-apiserver does.
pub fn discovery_document_for(issuer: &str, jwks_uri: &str, keys: &KeySet) -> Value {
    document(issuer, jwks_uri, &keys.algorithms())
}

fn document(issuer: &str, jwks_uri: &str, algorithms: &[&str]) -> Value {
    json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
    })
}
