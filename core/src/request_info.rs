//! Turns a method and a URL into what the request asks for, as k8s.io/apiserver's
//! `RequestInfoFactory` does: verb, API group and version, resource, subresource, namespace and
//! name, or a non-resource URL.
//!
//! Threat model: everything here comes from the client. A path that could mean two things to two
//! readers (`..`, `.`, `//`, an encoded `/` or `\`, a NUL) is refused before any other stage sees
//! it, so the authorizer and the upstream never disagree about which object is addressed.

use percent_encoding::percent_decode_str;
use thiserror::Error;

/// Why a path was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestInfoError {
    /// The path is not in canonical form (dot segments, empty segments, encoded separators).
    #[error("the path is not canonical: {0}")]
    NonCanonicalPath(&'static str),
    /// A special-verb path (`/watch/`, `/proxy/`) without a resource after it.
    #[error("unable to determine kind and namespace from url {0}")]
    Incomplete(String),
}

/// What a request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource_request: bool,
    /// The decoded path.
    pub path: String,
    /// get, list, watch, create, update, patch, delete, deletecollection, proxy; or for
    /// non-resource URLs the lower-cased HTTP method.
    pub verb: String,
    /// `api` or `apis`.
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The path segments from the resource on: `[resource, name, subresource, ...]`.
    pub parts: Vec<String>,
    /// The resource was addressed under `/namespaces/{namespace}/` (`/api/v1/namespaces/a/pods`),
    /// as opposed to a path of its own (`/api/v1/pods`, or a namespace itself:
    /// `/api/v1/namespaces/a`). Routing compares it with the resource's scope
    /// ([`crate::scope`]); `namespace` alone cannot tell `/api/v1/namespaces/a` from
    /// `/api/v1/namespaces/a/namespaces/a`.
    pub under_namespace: bool,
}

/// Verbs that may stand in the path before the resource (`/api/v1/watch/pods`).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Subresources of a namespace itself: `/api/v1/namespaces/x/status` is the namespace's status.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl RequestInfo {
    /// Parses `method`, the raw (still percent-encoded) `path` and the raw `query`.
    pub fn parse(method: &str, path: &str, query: Option<&str>) -> Result<Self, RequestInfoError> {
        let segments = canonical_segments(path)?;
        let decoded_path = if segments.is_empty() {
            "/".to_owned()
        } else {
            format!("/{}", segments.join("/"))
        };
        let mut info = RequestInfo {
            path: decoded_path,
            verb: method.to_ascii_lowercase(),
            ..Self::default()
        };

        if segments.len() < 3 || !(segments[0] == "api" || segments[0] == "apis") {
            return Ok(info);
        }
        info.api_prefix = segments[0].clone();
        let mut rest: &[String] = &segments[1..];
        if info.api_prefix == "apis" {
            if rest.len() < 3 {
                return Ok(info);
            }
            info.api_group = rest[0].clone();
            rest = &rest[1..];
        }
        info.is_resource_request = true;
        info.api_version = rest[0].clone();
        rest = &rest[1..];

        let mut via_special_verb = false;
        if SPECIAL_VERBS.contains(&rest[0].as_str()) {
            if rest.len() < 2 {
                return Err(RequestInfoError::Incomplete(info.path));
            }
            info.verb = rest[0].clone();
            rest = &rest[1..];
            via_special_verb = true;
        } else {
            info.verb = match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_owned();
        }

        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].clone();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2].as_str()) {
                rest = &rest[2..];
                info.under_namespace = true;
            }
        }
        info.parts = rest.to_vec();

        if info.parts.len() >= 3 && info.verb != "proxy" {
            info.subresource = info.parts[2].clone();
        }
        if info.parts.len() >= 2 {
            info.name = info.parts[1].clone();
        }
        if !info.parts.is_empty() {
            info.resource = info.parts[0].clone();
        }

        if info.name.is_empty() && info.verb == "get" {
            let params = QueryParams::parse(query.unwrap_or(""));
            info.verb = if params.watch() { "watch" } else { "list" }.to_owned();
            if let Some(name) = params.field_selector_name() {
                if is_valid_path_segment_name(&name) {
                    info.name = name;
                }
            }
        }
        // `/watch/` with a name watches one object; without, a collection.
        if via_special_verb && info.verb == "watch" && info.name.is_empty() {
            if let Some(name) = QueryParams::parse(query.unwrap_or("")).field_selector_name() {
                if is_valid_path_segment_name(&name) {
                    info.name = name;
                }
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_owned();
        }
        Ok(info)
    }
}

/// Splits a raw path into decoded segments, refusing anything non-canonical.
fn canonical_segments(raw: &str) -> Result<Vec<String>, RequestInfoError> {
    if !raw.starts_with('/') {
        return Err(RequestInfoError::NonCanonicalPath(
            "the path must start with /",
        ));
    }
    if raw.contains('\\') || raw.contains('\0') {
        return Err(RequestInfoError::NonCanonicalPath(
            "the path contains a backslash or NUL",
        ));
    }
    let trimmed = &raw[1..];
    // A single trailing slash is tolerated (`/api/`), as Go's path handling does.
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for raw_segment in trimmed.split('/') {
        if raw_segment.is_empty() {
            return Err(RequestInfoError::NonCanonicalPath(
                "the path has an empty segment (//)",
            ));
        }
        let decoded = percent_decode_str(raw_segment)
            .decode_utf8()
            .map_err(|_| RequestInfoError::NonCanonicalPath("the path is not UTF-8"))?;
        if decoded.contains('/') || decoded.contains('\\') || decoded.contains('\0') {
            return Err(RequestInfoError::NonCanonicalPath(
                "the path has an encoded separator (%2F, %5C) or NUL",
            ));
        }
        if decoded == "." || decoded == ".." {
            return Err(RequestInfoError::NonCanonicalPath(
                "the path has a . or .. segment",
            ));
        }
        segments.push(decoded.into_owned());
    }
    Ok(segments)
}

/// Names that may stand as one path segment, as `k8s.io/apimachinery/pkg/api/validation/path`.
pub fn is_valid_path_segment_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

/// The few list options the request-info stage reads.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Parses `a=b&c=d`, percent-decoding keys and values (`+` is a space).
    pub fn parse(query: &str) -> Self {
        let pairs = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_form(k), decode_form(v))
            })
            .collect();
        Self { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `watch=true|1|anything but false/0` means watch.
    pub fn watch(&self) -> bool {
        match self.get("watch") {
            None => false,
            Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "false" | "0"),
        }
    }

    /// The name in `fieldSelector=metadata.name=NAME` (or `==`), when that is the only term.
    pub fn field_selector_name(&self) -> Option<String> {
        let selector = self.get("fieldSelector")?;
        if selector.contains(',') {
            return None;
        }
        let (field, value) = selector
            .split_once("==")
            .or_else(|| selector.split_once('='))?;
        (field.trim() == "metadata.name" && !value.starts_with('='))
            .then(|| value.trim().to_owned())
    }
}

fn decode_form(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// method, url, verb, group, version, namespace, resource, subresource, name.
    type Case = [&'static str; 9];

    // Written from k8s.io/apiserver's request-info documentation and the paths kubectl sends.
    #[rustfmt::skip]
    const RESOURCE_CASES: &[Case] = &[
        ["GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""],
        ["GET", "/api/v1/namespaces/other", "get", "", "v1", "other", "namespaces", "", "other"],
        ["GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"],
        ["GET", "/api/v1/namespaces/other/pods", "list", "", "v1", "other", "pods", "", ""],
        ["HEAD", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"],
        ["GET", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""],
        ["HEAD", "/api/v1/pods", "list", "", "v1", "", "pods", "", ""],
        ["GET", "/api/v1/namespaces/other/pods/foo", "get", "", "v1", "other", "pods", "", "foo"],
        ["GET", "/api/v1/namespaces/other/pods?watch=true", "watch", "", "v1", "other", "pods", "", ""],
        ["GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "", "v1", "other", "pods", "", ""],
        ["GET", "/api/v1/namespaces/other/pods?watch=false", "list", "", "v1", "other", "pods", "", ""],
        ["GET", "/api/v1/namespaces/other/pods?watch=0", "list", "", "v1", "other", "pods", "", ""],
        ["GET", "/api/v1/watch/pods", "watch", "", "v1", "", "pods", "", ""],
        ["GET", "/api/v1/watch/namespaces/other/pods", "watch", "", "v1", "other", "pods", "", ""],
        ["GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo", "list", "", "v1", "other", "pods", "", "foo"],
        ["GET", "/api/v1/namespaces/other/pods?watch=true&fieldSelector=metadata.name%3Dfoo", "watch", "", "v1", "other", "pods", "", "foo"],
        ["GET", "/api/v1/namespaces/other/pods?fieldSelector=metadata.name%3Dfoo%2Cspec.nodeName%3Dn", "list", "", "v1", "other", "pods", "", ""],
        ["POST", "/api/v1/namespaces/other/pods", "create", "", "v1", "other", "pods", "", ""],
        ["PUT", "/api/v1/namespaces/other/pods/foo", "update", "", "v1", "other", "pods", "", "foo"],
        ["PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "", "v1", "other", "pods", "", "foo"],
        ["DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "", "v1", "other", "pods", "", "foo"],
        ["DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "", "v1", "other", "pods", "", ""],
        ["PUT", "/api/v1/namespaces/other/pods/foo/status", "update", "", "v1", "other", "pods", "status", "foo"],
        ["POST", "/api/v1/namespaces/other/pods/foo/binding", "create", "", "v1", "other", "pods", "binding", "foo"],
        ["GET", "/api/v1/namespaces/other/pods/foo/log", "get", "", "v1", "other", "pods", "log", "foo"],
        ["POST", "/api/v1/namespaces/other/pods/foo/exec", "create", "", "v1", "other", "pods", "exec", "foo"],
        ["GET", "/api/v1/namespaces/other/pods/foo/exec", "get", "", "v1", "other", "pods", "exec", "foo"],
        ["GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "", "v1", "other", "pods", "", "foo"],
        ["GET", "/api/v1/namespaces/other/pods/foo/proxy/a/b", "get", "", "v1", "other", "pods", "proxy", "foo"],
        ["PUT", "/api/v1/namespaces/other/finalize", "update", "", "v1", "other", "namespaces", "finalize", "other"],
        ["PUT", "/api/v1/namespaces/other/status", "update", "", "v1", "other", "namespaces", "status", "other"],
        ["DELETE", "/api/v1/namespaces/other", "delete", "", "v1", "other", "namespaces", "", "other"],
        ["GET", "/api/v1/nodes/n1", "get", "", "v1", "", "nodes", "", "n1"],
        ["PATCH", "/api/v1/nodes/n1/status", "patch", "", "v1", "", "nodes", "status", "n1"],
        ["POST", "/api/v1/namespaces/ci/serviceaccounts/jenkins/token", "create", "", "v1", "ci", "serviceaccounts", "token", "jenkins"],
        ["GET", "/apis/apps/v1/namespaces/default/deployments", "list", "apps", "v1", "default", "deployments", "", ""],
        ["GET", "/apis/apps/v1/deployments", "list", "apps", "v1", "", "deployments", "", ""],
        ["PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", "update", "apps", "v1", "default", "deployments", "scale", "web"],
        ["GET", "/apis/apps/v1/watch/namespaces/default/replicasets", "watch", "apps", "v1", "default", "replicasets", "", ""],
        ["POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "create", "rbac.authorization.k8s.io", "v1", "", "clusterrolebindings", "", ""],
        ["GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/alice", "get", "rbac.authorization.k8s.io", "v1", "team", "rolebindings", "", "alice"],
        ["POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "create", "authorization.k8s.io", "v1", "", "selfsubjectaccessreviews", "", ""],
        ["GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", "get", "coordination.k8s.io", "v1", "kube-node-lease", "leases", "", "n1"],
        ["DELETE", "/apis/apps/v1/namespaces/default/deployments", "deletecollection", "apps", "v1", "default", "deployments", "", ""],
        ["GET", "/api/v1/namespaces/team/configmaps/a%20b", "get", "", "v1", "team", "configmaps", "", "a b"],
        ["GET", "/api/v1/namespaces", "list", "", "v1", "", "namespaces", "", ""],
        ["GET", "/api/v1/namespaces/", "list", "", "v1", "", "namespaces", "", ""],
    ];

    #[test]
    fn resource_requests_are_parsed_like_kube_apiserver() {
        for [method, url, verb, group, version, namespace, resource, subresource, name] in
            RESOURCE_CASES
        {
            let (path, query) = url
                .split_once('?')
                .map_or((*url, None), |(p, q)| (p, Some(q)));
            let info = RequestInfo::parse(method, path, query)
                .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            assert!(info.is_resource_request, "{method} {url}");
            assert_eq!(
                [
                    info.verb.as_str(),
                    info.api_group.as_str(),
                    info.api_version.as_str(),
                    info.namespace.as_str(),
                    info.resource.as_str(),
                    info.subresource.as_str(),
                    info.name.as_str()
                ],
                [
                    *verb,
                    *group,
                    *version,
                    *namespace,
                    *resource,
                    *subresource,
                    *name
                ],
                "{method} {url}"
            );
        }
    }

    #[test]
    fn under_namespace_tells_a_namespace_from_a_resource_in_it() {
        for (path, under) in [
            ("/api/v1/namespaces", false),
            ("/api/v1/namespaces/a", false),
            ("/api/v1/namespaces/a/status", false),
            ("/api/v1/namespaces/a/finalize", false),
            ("/api/v1/namespaces/a/namespaces", true),
            ("/api/v1/namespaces/a/namespaces/a", true),
            ("/api/v1/namespaces/a/pods", true),
            ("/api/v1/watch/namespaces/a/pods", true),
            ("/api/v1/pods", false),
            ("/api/v1/nodes/n1", false),
            ("/apis/apps/v1/namespaces/a/deployments/web/scale", true),
        ] {
            let info = RequestInfo::parse("GET", path, None).expect(path);
            assert_eq!(info.under_namespace, under, "{path}");
        }
    }

    #[test]
    fn non_resource_requests_keep_the_method_as_verb() {
        for (method, path, verb) in [
            ("GET", "/", "get"),
            ("GET", "/api", "get"),
            ("GET", "/api/v1", "get"),
            ("GET", "/apis", "get"),
            ("GET", "/apis/apps", "get"),
            ("GET", "/apis/apps/v1", "get"),
            ("GET", "/version", "get"),
            ("GET", "/healthz", "get"),
            ("GET", "/readyz", "get"),
            ("GET", "/openapi/v3", "get"),
            ("GET", "/openapi/v3/apis/apps/v1", "get"),
            ("POST", "/logs", "post"),
            ("PUT", "/foo/bar", "put"),
            ("GET", "/.well-known/openid-configuration", "get"),
        ] {
            let info = RequestInfo::parse(method, path, None).expect(path);
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, verb, "{path}");
            assert_eq!(info.path, path, "{path}");
        }
    }

    #[test]
    fn non_canonical_paths_are_refused() {
        for path in [
            "/api/v1/namespaces/a/../b/pods",
            "/api/v1/namespaces/./pods",
            "/api//v1/pods",
            "//api/v1/pods",
            "/api/v1/namespaces/a%2Fb/pods",
            "/api/v1/namespaces/a%2fb/pods",
            "/api/v1/namespaces/%2e%2e/pods",
            "/api/v1/namespaces/a%5Cb/pods",
            "/api/v1/namespaces/a\\b/pods",
            "/api/v1/pods/%00",
            "/api/v1/pods/%ff",
            "api/v1/pods",
            "/..",
        ] {
            assert!(
                matches!(
                    RequestInfo::parse("GET", path, None),
                    Err(RequestInfoError::NonCanonicalPath(_))
                ),
                "{path} was accepted"
            );
        }
    }

    #[test]
    fn special_verb_without_resource_is_an_error() {
        assert!(matches!(
            RequestInfo::parse("GET", "/api/v1/watch", None),
            Err(RequestInfoError::Incomplete(_))
        ));
    }

    #[test]
    fn query_params_decode_and_repeat() {
        let q = QueryParams::parse("labelSelector=app%3Dweb%2Ctier+in+(a)&limit=5&x=1&x=2");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.get("limit"), Some("5"));
        assert_eq!(q.get_all("x").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(q.get("missing"), None);
    }
}
