//! The non-resource endpoints a client reads before it touches a resource: API discovery (`/api`,
//! `/apis`, each group and group version), `/version`, OpenAPI v3 and the health checks.
//!
//! Everything is derived from [`crate::resources::RESOURCES`], so discovery, the REST handlers and
//! OpenAPI never disagree. Discovery is served in the legacy (unaggregated) form only: client-go
//! asks for `apidiscovery.k8s.io/v2` first, reads the response's Content-Type, and falls back to
//! legacy discovery when it is plain `application/json` (client-go `discovery_client.go`,
//! `downloadAPIs`), which is what every kubectl from 1.26 on does.

use axum::body::Body;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use kgate_core::request_info::QueryParams;
use kgate_core::Status;
use serde_json::{json, Value};

use super::codec::{json_response, status_response, JSON};
use crate::resources::{group_versions, ResourceDef, RESOURCES};
use crate::schema;

/// The Kubernetes version this server speaks.
pub const KUBE_MAJOR: &str = "1";
pub const KUBE_MINOR: &str = "33";

/// The answer for a discovery, version, OpenAPI or health path; `None` when `path` is none of
/// them (the caller routes it on). Only GET and HEAD are served here.
pub fn handle(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let ok = |v: Value| Some(json_response(StatusCode::OK, &v));
    match path {
        "/api" => return ok(api_versions()),
        "/apis" => return ok(api_group_list()),
        "/version" => return ok(version()),
        "/openapi/v3" => return ok(schema::openapi_v3_index()),
        "/openapi/v2" => return Some(status_response(&Status::path_not_found())),
        "/healthz" | "/livez" | "/readyz" | "/healthz/ping" | "/livez/ping" | "/readyz/ping" => {
            return Some(text_ok());
        }
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/openapi/v3/") {
        let (group, version) = split_group_version(rest)?;
        return Some(openapi_document(group, version, query, headers));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", version] => api_resource_list("", version).and_then(ok),
        ["apis", group] => api_group(group).and_then(ok),
        ["apis", group, version] => api_resource_list(group, version).and_then(ok),
        _ => None,
    }
}

/// `api/v1` -> ("", "v1"); `apis/apps/v1` -> ("apps", "v1").
fn split_group_version(rest: &str) -> Option<(&str, &str)> {
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["api", version] => Some(("", version)),
        ["apis", group, version] => Some((group, version)),
        _ => None,
    }
}

fn text_ok() -> Response<Body> {
    let mut r = Response::new(Body::from("ok"));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// kube's answer to a path no handler serves (an unknown group, or no API path at all): its
/// mux's plain-text 404, not a Status.
pub fn text_not_found() -> Response<Body> {
    let mut r = Response::new(Body::from("404 page not found\n"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// `GET /api`.
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

fn group_json(group: &str) -> Value {
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    // The first served version is the preferred one, as the table lists them in that order.
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

/// `GET /apis`: every named group (the core group is under `/api`).
pub fn api_group_list() -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in group_versions() {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let groups: Vec<Value> = groups.into_iter().map(group_json).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`.
pub fn api_group(group: &str) -> Option<Value> {
    let served = RESOURCES
        .iter()
        .any(|r| r.group == group && !group.is_empty());
    served.then(|| {
        let mut g = group_json(group);
        if let Value::Object(map) = &mut g {
            map.insert("kind".into(), "APIGroup".into());
            map.insert("apiVersion".into(), "v1".into());
        }
        g
    })
}

/// How a subresource appears in discovery, as kube-apiserver lists it.
fn subresource_json(def: &ResourceDef, sub: &str) -> Value {
    let name = format!("{}/{sub}", def.plural);
    let (verbs, kind, gv): (&[&str], &str, Option<(&str, &str)>) = match sub {
        "status" => (&["get", "patch", "update"], def.kind, None),
        "scale" => (
            &["get", "patch", "update"],
            "Scale",
            Some(("autoscaling", "v1")),
        ),
        "binding" => (&["create"], "Binding", None),
        "finalize" => (&["update"], def.kind, None),
        "eviction" => (&["create"], "Eviction", Some(("policy", "v1"))),
        "token" => (
            &["create"],
            "TokenRequest",
            Some(("authentication.k8s.io", "v1")),
        ),
        _ => (&["get"], def.kind, None),
    };
    let mut v = json!({
        "name": name,
        "singularName": "",
        "namespaced": def.namespaced,
        "kind": kind,
        "verbs": verbs,
    });
    if let (Some((group, version)), Value::Object(map)) = (gv, &mut v) {
        map.insert("group".into(), group.into());
        map.insert("version".into(), version.into());
    }
    v
}

fn resource_json(def: &ResourceDef) -> Value {
    let mut v = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs,
    });
    if let Value::Object(map) = &mut v {
        // kube omits empty shortNames and categories.
        if !def.short_names.is_empty() {
            map.insert("shortNames".into(), json!(def.short_names));
        }
        if !def.categories.is_empty() {
            map.insert("categories".into(), json!(def.categories));
        }
        // Stored resources carry the hash of their storage version (the served one here).
        if !def.is_review() {
            map.insert(
                "storageVersionHash".into(),
                json!(storage_version_hash(
                    def.group,
                    def.storage_version.unwrap_or(def.version),
                    def.kind
                )),
            );
        }
    }
    v
}

/// kube's `discovery.StorageVersionHash`: the first 8 bytes of the SHA-256 of
/// `group/version/kind`, in standard base64.
fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{group}/{version}/{kind}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// `GET /api/v1` or `/apis/{group}/{version}`: each resource, then its subresources.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for def in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(resource_json(def));
        for sub in def.subresources {
            resources.push(subresource_json(def, sub));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let mut list = json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    });
    // kube's /api/v1 list has no apiVersion (the legacy group's handler leaves it unset).
    if group.is_empty() {
        if let Value::Object(map) = &mut list {
            map.remove("apiVersion");
        }
    }
    Some(list)
}

/// `GET /version`.
pub fn version() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0-kgate"),
        "gitCommit": option_env!("KGATE_GIT_COMMIT").unwrap_or(""),
        "gitTreeState": "clean",
        "buildDate": option_env!("KGATE_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// Go's name for this architecture, which clients print.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// One group version's OpenAPI v3 document, cached by hash as kube-apiserver's
/// `kube-openapi/pkg/handler3` does: the hash is the ETag; a URL carrying the current `?hash=` is
/// immutable; a stale hash redirects to the current one; `If-None-Match` may answer 304.
fn openapi_document(
    group: &str,
    version: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<Body> {
    let Some((bytes, hash)) = schema::openapi_v3_group_version_bytes(group, version) else {
        return status_response(&Status::path_not_found());
    };
    let etag = format!("\"{hash}\"");
    let etag_value = HeaderValue::from_str(&etag).ok();
    let asked = query.map(QueryParams::parse);
    let asked_hash = asked
        .as_ref()
        .and_then(|q| q.get("hash"))
        .filter(|h| !h.is_empty());
    let mut response = match asked_hash {
        Some(h) if h != hash => {
            let location = format!(
                "/openapi/v3/{}?hash={hash}",
                schema::openapi::gv_path(group, version)
            );
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        Some(_) => {
            let mut r = Response::new(Body::empty());
            let h = r.headers_mut();
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            // The content at a hashed URL never changes: a year is the longest HTTP allows.
            let expires = time::OffsetDateTime::now_utc() + time::Duration::days(365);
            if let Ok(v) = expires.format(&time::format_description::well_known::Rfc2822) {
                if let Ok(v) = HeaderValue::from_str(&v.replace("+0000", "GMT")) {
                    h.insert(header::EXPIRES, v);
                }
            }
            h.insert(header::VARY, HeaderValue::from_static("Accept"));
            r
        }
        None => {
            let mut r = Response::new(Body::empty());
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, private"),
            );
            r
        }
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
    } else {
        *response.body_mut() = Body::from(bytes);
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    }
    if let Some(v) = etag_value {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn get(path: &str, query: Option<&str>, headers: &HeaderMap) -> Option<Response<Body>> {
        handle(&Method::GET, path, query, headers)
    }

    async fn body_json(r: Response<Body>) -> Value {
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn core_and_group_discovery_golden() {
        let h = HeaderMap::new();
        let api = body_json(get("/api", None, &h).expect("served")).await;
        assert_eq!(api, api_versions());
        assert_eq!(api["kind"], "APIVersions");
        assert_eq!(api["versions"], json!(["v1"]));
        assert_eq!(
            api["serverAddressByClientCIDRs"][0]["clientCIDR"],
            "0.0.0.0/0"
        );

        let apis = body_json(get("/apis", None, &h).expect("served")).await;
        assert_eq!(apis["kind"], "APIGroupList");
        let apps = apis["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] == "apps")
            .expect("apps");
        assert_eq!(
            apps,
            &json!({"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}})
        );
        assert!(apis["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .all(|g| g["name"] != ""));

        let rbac =
            body_json(get("/apis/rbac.authorization.k8s.io", None, &h).expect("served")).await;
        assert_eq!(rbac["kind"], "APIGroup");
        assert_eq!(rbac["preferredVersion"]["version"], "v1");
        assert!(get("/apis/nope.example.com", None, &h).is_none());
        assert!(get("/apis/apps/v2", None, &h).is_none());
        assert!(handle(&Method::POST, "/api", None, &h).is_none());
        assert!(get("/api/v1/pods", None, &h).is_none());
    }

    #[tokio::test]
    async fn resource_lists_golden() {
        let h = HeaderMap::new();
        let v1 = body_json(get("/api/v1", None, &h).expect("served")).await;
        assert_eq!(v1["kind"], "APIResourceList");
        assert_eq!(v1["groupVersion"], "v1");
        let find = |list: &Value, name: &str| -> Value {
            list["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .find(|r| r["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(
            find(&v1, "pods"),
            json!({"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                "shortNames": ["po"], "categories": ["all"], "storageVersionHash": "xPOwRZ+Yhw8="})
        );
        assert_eq!(
            find(&v1, "pods/status"),
            json!({"name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
                "verbs": ["get", "patch", "update"]})
        );
        assert_eq!(find(&v1, "pods/binding")["verbs"], json!(["create"]));
        assert_eq!(find(&v1, "pods/binding")["kind"], "Binding");
        assert_eq!(find(&v1, "namespaces/finalize")["verbs"], json!(["update"]));
        assert_eq!(find(&v1, "namespaces")["namespaced"], false);
        assert!(find(&v1, "secrets").get("shortNames").is_none());

        let apps = body_json(get("/apis/apps/v1/", None, &h).expect("served")).await;
        assert_eq!(apps["groupVersion"], "apps/v1");
        assert_eq!(
            find(&apps, "deployments/scale"),
            json!({"name": "deployments/scale", "singularName": "", "namespaced": true,
                "kind": "Scale", "verbs": ["get", "patch", "update"],
                "group": "autoscaling", "version": "v1"})
        );
    }

    #[tokio::test]
    async fn aggregated_discovery_request_gets_legacy_json() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"),
        );
        let r = get("/apis", None, &h).expect("served");
        // Exactly plain JSON: client-go treats anything else as aggregated discovery.
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(body_json(r).await["kind"], "APIGroupList");
    }

    #[tokio::test]
    async fn version_and_health() {
        let h = HeaderMap::new();
        let v = body_json(get("/version", None, &h).expect("served")).await;
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert_eq!(v["gitVersion"], "v1.33.0-kgate");
        assert_eq!(v["compiler"], "rustc");
        for p in ["/healthz", "/livez", "/readyz"] {
            let r = get(p, None, &h).expect("served");
            assert_eq!(r.status(), StatusCode::OK);
            let bytes = r.into_body().collect().await.expect("body").to_bytes();
            assert_eq!(&bytes[..], b"ok");
        }
    }

    #[tokio::test]
    async fn openapi_v3_caching() {
        let h = HeaderMap::new();
        let index = body_json(get("/openapi/v3", None, &h).expect("served")).await;
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .expect("url")
            .to_owned();
        let (path, query) = url.split_once('?').expect("hash");
        let hash = query.trim_start_matches("hash=");

        let r = get(path, Some(query), &h).expect("served");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "public, immutable");
        assert_eq!(r.headers()[header::ETAG], format!("\"{hash}\"").as_str());
        assert!(r.headers().contains_key(header::EXPIRES));
        let doc = body_json(r).await;
        assert!(doc["components"]["schemas"].is_object());

        let r = get(path, None, &h).expect("served");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache, private");

        let r = get(path, Some("hash=STALE"), &h).expect("served");
        assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(r.headers()[header::LOCATION], url.as_str());

        let mut cond = HeaderMap::new();
        cond.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"{hash}\"")).expect("hv"),
        );
        assert_eq!(
            get(path, None, &cond).expect("served").status(),
            StatusCode::NOT_MODIFIED
        );

        assert_eq!(
            get("/openapi/v3/api/v1", None, &h)
                .expect("served")
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            get("/openapi/v3/apis/nope/v1", None, &h)
                .expect("served")
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/openapi/v2", None, &h).expect("served").status(),
            StatusCode::NOT_FOUND
        );
    }
}
