//! OpenAPI v3 as kube-apiserver serves it: the `/openapi/v3` index and one document per group
//! version (`/openapi/v3/apis/apps/v1`).
//!
//! kubectl reads these for `kubectl explain` (it finds the kind through the
//! `x-kubernetes-group-version-kind` of an operation on the resource's path, then the component
//! schema carrying the same GVK) and for `kubectl apply|create|replace`, which sends
//! `?fieldValidation=Strict` only after finding that parameter among the PATCH operation's
//! parameters for the kind (cli-runtime `query_param_verifier_v3.go`). Parameters are therefore
//! inline, never `$ref`s, as kube publishes them.
//!
//! Documents are built once, serialized once and hashed (SHA-512, upper-case hex, like kube) for
//! the `?hash=` cache key: responses to a URL with the hash may be served with
//! `Cache-Control: public, immutable`, since a new content gets a new URL.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::{json, Map, Value};

use super::{definition, definition_name_for_kind, REF_PREFIX};
use crate::resources::{group_versions, ResourceDef, RESOURCES};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// One group version's document, serialized and hashed.
struct GvDoc {
    group: &'static str,
    version: &'static str,
    doc: Value,
    bytes: Vec<u8>,
    hash: String,
}

static DOCS: LazyLock<Vec<GvDoc>> = LazyLock::new(|| {
    group_versions()
        .into_iter()
        .map(|(group, version)| {
            let doc = build_document(group, version);
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            let digest = ring::digest::digest(&ring::digest::SHA512, &bytes);
            let hash = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
            GvDoc {
                group,
                version,
                doc,
                bytes,
                hash,
            }
        })
        .collect()
});

/// The URL path of a group version below `/openapi/v3/`: `api/v1` or `apis/apps/v1`.
pub fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The body of `GET /openapi/v3`: every served group version with its hashed URL.
pub fn openapi_v3_index() -> Value {
    let mut paths = Map::new();
    for d in DOCS.iter() {
        let path = gv_path(d.group, d.version);
        let url = format!("/openapi/v3/{path}?hash={}", d.hash);
        paths.insert(path, json!({ "serverRelativeURL": url }));
    }
    json!({ "paths": paths })
}

/// The document of one group version and its hash (the ETag and `?hash=` value), or `None` when
/// the group version is not served.
pub fn openapi_v3_group_version(group: &str, version: &str) -> Option<(Value, String)> {
    find(group, version).map(|d| (d.doc.clone(), d.hash.clone()))
}

/// The same document already serialized, to serve without re-encoding about 100 KB per request.
pub fn openapi_v3_group_version_bytes(
    group: &str,
    version: &str,
) -> Option<(&'static [u8], &'static str)> {
    find(group, version).map(|d| (d.bytes.as_slice(), d.hash.as_str()))
}

fn find(group: &str, version: &str) -> Option<&'static GvDoc> {
    DOCS.iter()
        .find(|d| d.group == group && d.version == version)
}

fn build_document(group: &str, version: &str) -> Value {
    let prefix = format!("/{}", gv_path(group, version));
    let tag = tag(group, version);
    let mut paths = Map::new();
    paths.insert(
        format!("{prefix}/"),
        json!({ "get": {
            "description": "get available resources",
            "operationId": format!("get{}APIResources", op_gv(group, version)),
            "responses": ok(&format!("{META}APIResourceList"), false),
            "tags": [tag],
        }}),
    );
    let mut roots: BTreeSet<String> = [STATUS, DELETE_OPTIONS, PATCH].map(str::to_owned).into();
    roots.insert(format!("{META}APIResourceList"));
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let Some(kind) = definition_name_for_kind(r.group, r.version, r.kind) else {
            continue;
        };
        // Reviews are only created: they have no list kind.
        let list = definition_name_for_kind(r.group, r.version, &format!("{}List", r.kind));
        if list.is_none() && r.verbs.contains(&"list") {
            continue;
        }
        roots.insert(kind.to_owned());
        roots.extend(list.map(str::to_owned));
        let list = list.unwrap_or_default();
        resource_paths(r, &prefix, &tag, kind, list, &mut paths, &mut roots);
    }
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": closure(roots) },
    })
}

/// The path items of one resource: collection, item, subresources and, for namespaced
/// resources, the list across all namespaces.
fn resource_paths(
    r: &ResourceDef,
    prefix: &str,
    tag: &str,
    kind_def: &str,
    list_def: &str,
    paths: &mut Map<String, Value>,
    roots: &mut BTreeSet<String>,
) {
    let has = |v: &str| r.verbs.contains(&v);
    let kind_gvk = gvk(r.group, r.version, r.kind);
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let base = op_gv(r.group, r.version);
    let name = format!("{scope}{}", r.kind);
    let op = |verb: &str, action: &str, desc: String, params: Vec<Value>| {
        json!({
            "description": desc,
            "operationId": format!("{verb}{base}{name}"),
            "parameters": params,
            "tags": [tag],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": kind_gvk,
        })
    };
    let coll_path = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let scope_params = || {
        let mut p = Vec::new();
        if r.namespaced {
            p.push(path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        p.push(query_param(
            "pretty",
            "string",
            "If 'true', then the output is pretty printed.",
        ));
        p
    };

    let mut coll = Map::new();
    coll.insert("parameters".into(), json!(scope_params()));
    if has("list") {
        let mut o = op(
            "list",
            "list",
            format!("list or watch objects of kind {}", r.kind),
            list_params(),
        );
        o["responses"] = ok(list_def, true);
        coll.insert("get".into(), o);
    }
    if has("create") {
        let mut o = op(
            "create",
            "post",
            format!("create a {}", r.kind),
            write_params(),
        );
        o["requestBody"] = body(kind_def, false);
        o["responses"] = created(kind_def);
        coll.insert("post".into(), o);
    }
    if has("deletecollection") {
        let mut o = op(
            "deleteCollection",
            "deletecollection",
            format!("delete collection of {}", r.kind),
            delete_params(true),
        );
        o["operationId"] = json!(format!("delete{base}Collection{name}"));
        o["requestBody"] = body(DELETE_OPTIONS, false);
        o["responses"] = ok(STATUS, false);
        coll.insert("delete".into(), o);
    }
    paths.insert(coll_path.clone(), Value::Object(coll));

    let mut item = Map::new();
    let mut item_params = vec![path_param("name", &format!("name of the {}", r.kind))];
    item_params.extend(scope_params());
    item.insert("parameters".into(), json!(item_params));
    if has("get") {
        let mut o = op(
            "read",
            "get",
            format!("read the specified {}", r.kind),
            vec![],
        );
        o["responses"] = ok(kind_def, false);
        item.insert("get".into(), o);
    }
    if has("update") {
        let mut o = op(
            "replace",
            "put",
            format!("replace the specified {}", r.kind),
            write_params(),
        );
        o["requestBody"] = body(kind_def, false);
        o["responses"] = created(kind_def);
        item.insert("put".into(), o);
    }
    if has("patch") {
        let mut o = op(
            "patch",
            "patch",
            format!("partially update the specified {}", r.kind),
            patch_params(),
        );
        o["requestBody"] = body(PATCH, true);
        o["responses"] = created(kind_def);
        item.insert("patch".into(), o);
    }
    if has("delete") {
        let mut o = op(
            "delete",
            "delete",
            format!("delete a {}", r.kind),
            delete_params(false),
        );
        o["requestBody"] = body(DELETE_OPTIONS, false);
        o["responses"] = ok(STATUS, false);
        item.insert("delete".into(), o);
    }
    paths.insert(format!("{coll_path}/{{name}}"), Value::Object(item));

    for sub in r.subresources {
        // The kind exchanged through a subresource: Scale for scale, Binding for binding,
        // the resource's own kind for status and finalize.
        let (sg, sv, sk) = match *sub {
            "scale" => ("autoscaling", "v1", "Scale"),
            "binding" => ("", "v1", "Binding"),
            _ => (r.group, r.version, r.kind),
        };
        let Some(sub_def) = definition_name_for_kind(sg, sv, sk) else {
            continue;
        };
        roots.insert(sub_def.to_owned());
        let suffix = camel(sub);
        let sub_op = |verb: &str, action: &str, desc: &str, params: Vec<Value>| {
            json!({
                "description": format!("{desc} {sub} of the specified {}", r.kind),
                "operationId": format!("{verb}{base}{name}{suffix}"),
                "parameters": params,
                "tags": [tag],
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk(sg, sv, sk),
            })
        };
        let mut p = Map::new();
        let mut params = vec![path_param("name", &format!("name of the {sk}"))];
        params.extend(scope_params());
        p.insert("parameters".into(), json!(params));
        match *sub {
            "binding" => {
                let mut o = sub_op("create", "post", "create", write_params());
                o["requestBody"] = body(sub_def, false);
                o["responses"] = created(sub_def);
                p.insert("post".into(), o);
            }
            "finalize" => {
                let mut o = sub_op("replace", "put", "replace", write_params());
                o["requestBody"] = body(sub_def, false);
                o["responses"] = created(sub_def);
                p.insert("put".into(), o);
            }
            _ => {
                let mut get = sub_op("read", "get", "read", vec![]);
                get["responses"] = ok(sub_def, false);
                let mut put = sub_op("replace", "put", "replace", write_params());
                put["requestBody"] = body(sub_def, false);
                put["responses"] = created(sub_def);
                let mut patch = sub_op("patch", "patch", "partially update", patch_params());
                patch["requestBody"] = body(PATCH, true);
                patch["responses"] = created(sub_def);
                p.insert("get".into(), get);
                p.insert("put".into(), put);
                p.insert("patch".into(), patch);
            }
        }
        paths.insert(format!("{coll_path}/{{name}}/{sub}"), Value::Object(p));
    }

    if r.namespaced && has("list") {
        let mut o = op(
            "list",
            "list",
            format!("list or watch objects of kind {}", r.kind),
            list_params(),
        );
        o["operationId"] = json!(format!("list{base}{}ForAllNamespaces", r.kind));
        o["responses"] = ok(list_def, true);
        let pretty = query_param(
            "pretty",
            "string",
            "If 'true', then the output is pretty printed.",
        );
        paths.insert(
            format!("{prefix}/{}", r.plural),
            json!({ "get": o, "parameters": [pretty] }),
        );
    }
}

/// The named definitions and every definition they reference, for `components.schemas`.
fn closure(roots: BTreeSet<String>) -> Map<String, Value> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    if let Some(name) = r.strip_prefix(REF_PREFIX) {
                        out.push(name.to_owned());
                    }
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if let Some(def) = definition(&name) {
            if seen.insert(name) {
                refs(def, &mut todo);
            }
        }
    }
    seen.into_iter()
        .filter_map(|n| definition(&n).map(|d| (n, d.clone())))
        .collect()
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// `apps_v1`, `core_v1`, `rbacAuthorization_v1`: kube's tag for a group version.
fn tag(group: &str, version: &str) -> String {
    let g = op_gv(group, "");
    let mut chars = g.chars();
    let lower: String = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower}_{version}")
}

/// `AppsV1`, `CoreV1`, `RbacAuthorizationV1`, `CoordinationV1`: the group version as it appears
/// in kube's operation ids.
fn op_gv(group: &str, version: &str) -> String {
    let g = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    let mut out: String = g.split('.').map(camel).collect();
    out.push_str(&camel(version));
    out
}

fn camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn schema_ref(def: &str) -> Value {
    json!({ "schema": { "$ref": format!("{REF_PREFIX}{def}") } })
}

fn ok(def: &str, watch: bool) -> Value {
    let mut content = Map::new();
    for t in ["application/json", "application/yaml"] {
        content.insert(t.into(), schema_ref(def));
    }
    if watch {
        content.insert("application/json;stream=watch".into(), schema_ref(def));
    }
    json!({ "200": { "content": content, "description": "OK" } })
}

fn created(def: &str) -> Value {
    let mut r = ok(def, false);
    let content = r["200"]["content"].clone();
    r["201"] = json!({ "content": content, "description": "Created" });
    r
}

fn body(def: &str, patch: bool) -> Value {
    let types: &[&str] = if patch {
        &[
            "application/apply-patch+yaml",
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ]
    } else {
        &["application/json"]
    };
    let content: Map<String, Value> = types
        .iter()
        .map(|t| ((*t).to_owned(), schema_ref(def)))
        .collect();
    json!({ "content": content, "required": patch })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "description": description,
        "in": "path",
        "name": name,
        "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

fn query_param(name: &str, ty: &str, description: &str) -> Value {
    json!({
        "description": description,
        "in": "query",
        "name": name,
        "schema": { "type": ty, "uniqueItems": true },
    })
}

const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

/// Parameters of create and replace.
fn write_params() -> Vec<Value> {
    vec![
        query_param("dryRun", "string", DRY_RUN),
        query_param("fieldManager", "string", FIELD_MANAGER),
        query_param("fieldValidation", "string", FIELD_VALIDATION),
    ]
}

fn patch_params() -> Vec<Value> {
    let mut p = write_params();
    p.push(query_param("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
    p
}

fn list_params() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        ("continue", "string", "The continue option should be set when retrieving more results from the server."),
        ("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        ("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        ("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        ("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
        ("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        ("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`."),
        ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        ("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion."),
    ]
    .iter()
    .map(|(n, t, d)| query_param(n, t, d))
    .collect()
}

fn delete_params(collection: bool) -> Vec<Value> {
    let mut p = vec![
        query_param("dryRun", "string", DRY_RUN),
        query_param("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
        query_param("propagationPolicy", "string", "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
    ];
    if collection {
        p.extend(
            list_params()
                .into_iter()
                .filter(|q| q["name"] != "watch" && q["name"] != "allowWatchBookmarks"),
        );
    }
    p
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "openapi_tests.rs"]
mod tests;
