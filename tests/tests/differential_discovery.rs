//! Discovery and OpenAPI, differentially: kgate serves the 1.33 API set (and resource.k8s.io/v1),
//! the reference (kube-apiserver v1.34.2) many more groups, so what is compared is what kgate serves — for
//! each group, version and resource kgate lists, the same entry on the reference (name,
//! singular, kind, namespaced, verbs, short names, categories, storage version hash, and each
//! subresource's own entry), each group's entry, the aggregated discovery documents' entries for
//! those resources, and the OpenAPI v3 (and v2) schema of each kind kgate serves. Every
//! difference must be listed in `tests/kube-reference/known-differences.md` (`discovery:CASE`,
//! `openapi:CASE`).

use kgate_e2e::differential::{get, json_diff, Differential};
use kgate_e2e::reference::Reference;
use kgate_e2e::{Kgate, Response};
use serde_json::{json, Value};

const AGGREGATED: &str =
    "Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn json_of(response: &Response) -> Value {
    serde_json::from_str(&response.body).unwrap_or(Value::Null)
}

fn diff(k: &Value, r: &Value) -> Option<String> {
    let mut out = Vec::new();
    json_diff("", k, r, &mut out);
    (!out.is_empty()).then(|| out.join("\n"))
}

/// `(group, version)` → kgate's APIResourceList, for every group version kgate serves.
fn kgate_group_versions(d: &mut Differential<'_>) -> Vec<(String, String)> {
    let (k, _) = d.both(&get("apis", "/apis"));
    let mut out = vec![(String::new(), "v1".to_owned())];
    for group in json_of(&k)["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for version in group["versions"].as_array().cloned().unwrap_or_default() {
            out.push((
                group["name"].as_str().unwrap_or_default().to_owned(),
                version["version"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

fn gv_id(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}-{version}")
    }
}

#[test]
fn discovery_and_openapi_of_what_kgate_serves_match_kube_apiserver() {
    let (kgate, reference) = std::thread::scope(|s| {
        let reference = s.spawn(Reference::up);
        (
            Kgate::up(),
            reference.join().expect("the reference failed to start"),
        )
    });
    let mut discovery = Differential::new("discovery", &kgate, &reference);
    legacy_discovery(&mut discovery);
    aggregated_discovery(&mut discovery);
    let mut openapi = Differential::new("openapi", &kgate, &reference);
    openapi_schemas(&mut openapi);
    // Both tallies are printed even when the first fails.
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| discovery.finish()));
    openapi.finish();
    if let Err(panic) = first {
        std::panic::resume_unwind(panic);
    }
}

fn legacy_discovery(d: &mut Differential<'_>) {
    // /api: the versions (serverAddressByClientCIDRs names each server's own address).
    let (k, r) = d.both(&get("api", "/api"));
    let versions = |v: &Value| json!({"kind": v["kind"], "versions": v["versions"]});
    let status = (k.status != r.status).then(|| format!("status {} vs {}", k.status, r.status));
    d.record(
        "api-versions",
        status.or_else(|| diff(&versions(&json_of(&k)), &versions(&json_of(&r)))),
    );
    // /apis: each group kgate serves, its entry on the reference.
    let (k, r) = d.both(&get("apis", "/apis"));
    let (kl, rl) = (json_of(&k), json_of(&r));
    let groups = |list: &Value| list["groups"].as_array().cloned().unwrap_or_default();
    for group in groups(&kl) {
        let name = group["name"].as_str().unwrap_or_default().to_owned();
        let theirs = groups(&rl)
            .into_iter()
            .find(|g| g["name"] == group["name"])
            .unwrap_or(Value::Null);
        d.record(&format!("group-list-{name}"), diff(&group, &theirs));
        // /apis/<group>
        let (k, r) = d.both(&get("group", &format!("/apis/{name}")));
        d.record(
            &format!("group-{name}"),
            diff(&json_of(&k), &json_of(&r)).or_else(|| {
                (k.status != r.status).then(|| format!("status {} vs {}", k.status, r.status))
            }),
        );
    }
    // Each group version's resources, entry by entry (subresources are entries of their own).
    for (group, version) in kgate_group_versions(d) {
        let (k, r) = d.both(&get("resources", &gv_path(&group, &version)));
        let (kl, rl) = (json_of(&k), json_of(&r));
        let id = gv_id(&group, &version);
        let head = |v: &Value| json!({"kind": v["kind"], "apiVersion": v["apiVersion"], "groupVersion": v["groupVersion"]});
        d.record(&format!("resources-{id}"), diff(&head(&kl), &head(&rl)));
        let entries = |list: &Value| list["resources"].as_array().cloned().unwrap_or_default();
        for entry in entries(&kl) {
            let name = entry["name"].as_str().unwrap_or_default().to_owned();
            let theirs = entries(&rl)
                .into_iter()
                .find(|e| e["name"] == entry["name"])
                .unwrap_or(Value::Null);
            d.record(
                &format!("resource-{id}-{}", name.replace('/', "-")),
                diff(&entry, &theirs),
            );
        }
    }
}

fn aggregated_discovery(d: &mut Differential<'_>) {
    for (id, path) in [("aggregated-api", "/api"), ("aggregated-apis", "/apis")] {
        let (k, r) = d.both(&get(id, path).header(AGGREGATED));
        let ct = |resp: &Response| resp.header_values("content-type").join(",");
        if ct(&k) != ct(&r) {
            d.record(
                id,
                Some(format!(
                    "content-type: kgate {:?} vs kube {:?} (kgate answers legacy discovery)",
                    ct(&k),
                    ct(&r)
                )),
            );
            continue;
        }
        // Both aggregated: each resource kgate lists, against the reference's entry.
        let (kl, rl) = (json_of(&k), json_of(&r));
        let mut out = Vec::new();
        for group in kl["items"].as_array().cloned().unwrap_or_default() {
            let theirs = rl["items"]
                .as_array()
                .and_then(|items| {
                    items
                        .iter()
                        .find(|g| g["metadata"]["name"] == group["metadata"]["name"])
                })
                .cloned()
                .unwrap_or(Value::Null);
            for version in group["versions"].as_array().cloned().unwrap_or_default() {
                let their_version = theirs["versions"]
                    .as_array()
                    .and_then(|vs| vs.iter().find(|v| v["version"] == version["version"]))
                    .cloned()
                    .unwrap_or(Value::Null);
                for resource in version["resources"].as_array().cloned().unwrap_or_default() {
                    let their_resource = their_version["resources"]
                        .as_array()
                        .and_then(|rs| rs.iter().find(|x| x["resource"] == resource["resource"]))
                        .cloned()
                        .unwrap_or(Value::Null);
                    json_diff(
                        &format!(
                            "/{}/{}/{}",
                            group["metadata"]["name"].as_str().unwrap_or_default(),
                            version["version"].as_str().unwrap_or_default(),
                            resource["resource"].as_str().unwrap_or_default()
                        ),
                        &resource,
                        &their_resource,
                        &mut out,
                    );
                }
            }
        }
        d.record(id, (!out.is_empty()).then(|| out.join("\n")));
    }
}

fn openapi_schemas(d: &mut Differential<'_>) {
    // v3: the index lists each group version kgate serves; each document's schema of each
    // kind kgate serves there (by the kind's `x-kubernetes-group-version-kind`).
    let (k, r) = d.both(&get("v3-index", "/openapi/v3"));
    let (ki, ri) = (json_of(&k), json_of(&r));
    let paths: Vec<String> = ki["paths"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for path in &paths {
        let listed = ri["paths"].get(path).is_some();
        d.record(
            &format!("v3-index-{}", path.replace('/', "-")),
            (!listed).then(|| format!("{path} is not in kube-apiserver's /openapi/v3")),
        );
    }
    for path in &paths {
        let (k, r) = d.both(&get("v3", &format!("/openapi/v3/{path}")));
        let (kd, rd) = (json_of(&k), json_of(&r));
        let schemas = |doc: &Value| {
            doc["components"]["schemas"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        };
        let (ks, rs) = (schemas(&kd), schemas(&rd));
        let id = path.replace('/', "-");
        for (name, schema) in &ks {
            // The kinds served (a schema with this group version's GVK), not every type.
            let Some(gvks) = schema["x-kubernetes-group-version-kind"].as_array() else {
                continue;
            };
            let served_here = gvks.iter().any(|g| {
                let gv = if g["group"] == "" {
                    format!("api/{}", g["version"].as_str().unwrap_or_default())
                } else {
                    format!(
                        "apis/{}/{}",
                        g["group"].as_str().unwrap_or_default(),
                        g["version"].as_str().unwrap_or_default()
                    )
                };
                gv == *path
            });
            if !served_here || name.ends_with("List") {
                continue;
            }
            let theirs = rs.get(name).cloned().unwrap_or(Value::Null);
            d.record(&format!("v3-{id}-{}", short(name)), diff(schema, &theirs));
        }
    }
    // v2: the whole document of each server; the definitions of the kinds kgate serves.
    let (k, r) = d.both(&get("v2", "/openapi/v2"));
    if k.status != r.status {
        d.record(
            "v2",
            Some(format!("status: kgate {} vs kube {}", k.status, r.status)),
        );
        return;
    }
    let (kd, rd) = (json_of(&k), json_of(&r));
    let defs = |doc: &Value| doc["definitions"].as_object().cloned().unwrap_or_default();
    for (name, schema) in &defs(&kd) {
        if schema.get("x-kubernetes-group-version-kind").is_none() || name.ends_with("List") {
            continue;
        }
        let theirs = defs(&rd).get(name).cloned().unwrap_or(Value::Null);
        d.record(&format!("v2-{}", short(name)), diff(schema, &theirs));
    }
}

/// `io.k8s.api.core.v1.Pod` → `core.v1.Pod`.
fn short(name: &str) -> String {
    name.trim_start_matches("io.k8s.api.")
        .trim_start_matches("io.k8s.apimachinery.pkg.apis.")
        .to_owned()
}
