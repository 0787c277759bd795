//! The Kubernetes schemas of the served kinds, and what the API server derives from them.
//!
//! The data is `schema-data/definitions.json`, made by `schema-data/gen_definitions.py` from the
//! Kubernetes 1.33 OpenAPI definitions, and 1.34's for the kinds 1.33 lacks at the served version
//! (resource.k8s.io/v1, VolumeAttributesClass; only what the kinds in [`crate::resources`] reach), already
//! in the OpenAPI v3 form kube-apiserver publishes (`$ref: "#/components/schemas/<name>"`). It is
//! embedded in the binary and parsed once.
//!
//! Everything here is a pure function over `serde_json::Value`; no I/O:
//! - [`openapi`]: the `/openapi/v3` index and one document per group version;
//! - [`validate`]: unknown fields for `fieldValidation=Strict|Warn`;
//! - [`quantity`]: the canonical form of `resource.Quantity` fields;
//! - [`smp`]: strategic merge patch, driven by `x-kubernetes-patch-strategy` / `-merge-key`;
//! - [`table`] (with [`printers`]): server-side `meta.k8s.io/v1` Table responses.

pub mod openapi;
pub mod printers;
mod printers_pod;
mod printers_storage;
pub mod quantity;
pub mod smp;
pub mod table;
pub mod validate;

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

pub use openapi::{openapi_v3_group_version, openapi_v3_group_version_bytes, openapi_v3_index};
pub use smp::{strategic_merge, PatchError};
pub use table::{partial_object_metadata, table, table_row, IncludeObject};
pub use validate::{strict_decoding_error, type_errors, unknown_fields};

/// The prefix of every schema reference.
pub const REF_PREFIX: &str = "#/components/schemas/";

static DEFINITIONS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    // The file is generated and checked by this crate's tests, so a parse failure is a build
    // defect, never something a request can cause; an empty map keeps the server up regardless.
    serde_json::from_str(include_str!("../../schema-data/definitions.json")).unwrap_or_default()
});

/// All embedded definitions, by name (`io.k8s.api.core.v1.Pod`).
pub fn definitions() -> &'static Map<String, Value> {
    &DEFINITIONS
}

/// The definition named `name`.
pub fn definition(name: &str) -> Option<&'static Value> {
    DEFINITIONS.get(name)
}

/// The definition name of every `x-kubernetes-group-version-kind` entry, by (group, version,
/// kind). Built once: a definition may list several (DeleteOptions and WatchEvent list one per
/// group version), and where two definitions claim the same one the first in file order wins.
static DEFINITION_NAMES_BY_KIND: LazyLock<
    HashMap<(&'static str, &'static str, &'static str), &'static str>,
> = LazyLock::new(|| {
    let mut by_kind = HashMap::new();
    for (name, schema) in DEFINITIONS.iter() {
        let Some(gvks) = schema
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for g in gvks {
            let field = |f: &str| g.get(f).and_then(Value::as_str);
            if let (Some(group), Some(version), Some(kind)) =
                (field("group"), field("version"), field("kind"))
            {
                by_kind
                    .entry((group, version, kind))
                    .or_insert(name.as_str());
            }
        }
    }
    by_kind
});

/// The name of the definition of a kind, found by its `x-kubernetes-group-version-kind`.
pub fn definition_name_for_kind(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    DEFINITION_NAMES_BY_KIND
        .get(&(group, version, kind))
        .copied()
}

/// The schema of a kind.
pub fn schema_for_kind(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    definition_name_for_kind(group, version, kind).and_then(definition)
}

/// `schema` with references followed: a `$ref`, or an `allOf` holding a single schema (the form
/// OpenAPI 3.0 uses to put a description beside a reference). Unknown references resolve to the
/// schema itself, which then has no properties and constrains nothing.
pub fn resolve(schema: &Value) -> &Value {
    let mut cur = schema;
    // Bounded: a reference cycle in bad data must not hang a request.
    for _ in 0..16 {
        if let Some(target) = cur
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX))
            .and_then(definition)
        {
            cur = target;
            continue;
        }
        match cur.get("allOf").and_then(Value::as_array) {
            Some(all) if all.len() == 1 && cur.get("properties").is_none() => cur = &all[0],
            _ => return cur,
        }
    }
    cur
}

/// The schema of `name` under an object schema, references followed.
pub fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    resolve(schema).get("properties")?.get(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn every_served_kind_and_its_list_has_a_definition() {
        assert!(definitions().len() > 100);
        for r in RESOURCES {
            assert!(
                schema_for_kind(r.group, r.version, r.kind).is_some(),
                "{}",
                r.kind
            );
            let list = format!("{}List", r.kind);
            assert_eq!(
                schema_for_kind(r.group, r.version, &list).is_some(),
                r.verbs.contains(&"list"),
                "{list}"
            );
        }
    }

    /// The lookup as it was before [`DEFINITION_NAMES_BY_KIND`]: a scan of every definition.
    fn definition_name_for_kind_by_scan(
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<&'static str> {
        DEFINITIONS.iter().find_map(|(name, schema)| {
            let gvks = schema.get("x-kubernetes-group-version-kind")?.as_array()?;
            gvks.iter()
                .any(|g| {
                    g.get("group").and_then(Value::as_str) == Some(group)
                        && g.get("version").and_then(Value::as_str) == Some(version)
                        && g.get("kind").and_then(Value::as_str) == Some(kind)
                })
                .then_some(name.as_str())
        })
    }

    #[test]
    fn definition_name_for_kind_matches_a_scan_of_the_definitions() {
        let meta = |kind: &str| format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}");
        let cases: &[(&str, &str, &str, Option<String>)] = &[
            ("", "v1", "Pod", Some("io.k8s.api.core.v1.Pod".into())),
            (
                "",
                "v1",
                "PodList",
                Some("io.k8s.api.core.v1.PodList".into()),
            ),
            (
                "apps",
                "v1",
                "Deployment",
                Some("io.k8s.api.apps.v1.Deployment".into()),
            ),
            (
                "apps",
                "v1",
                "DeploymentList",
                Some("io.k8s.api.apps.v1.DeploymentList".into()),
            ),
            // One definition under many group versions.
            ("", "v1", "DeleteOptions", Some(meta("DeleteOptions"))),
            ("apps", "v1", "DeleteOptions", Some(meta("DeleteOptions"))),
            ("apps", "v1", "WatchEvent", Some(meta("WatchEvent"))),
            // Unknown kinds, a kind under another group or version, another case.
            ("", "v1", "NoSuchKind", None),
            ("apps", "v1", "Pod", None),
            ("", "v2", "Pod", None),
            ("", "v1", "pod", None),
            ("core", "v1", "Pod", None),
            ("", "", "", None),
        ];
        for (group, version, kind, want) in cases {
            let got = definition_name_for_kind(group, version, kind);
            assert_eq!(got, want.as_deref(), "{group}/{version} {kind}");
            assert_eq!(
                got,
                definition_name_for_kind_by_scan(group, version, kind),
                "{group}/{version} {kind}"
            );
        }
        // Every group-version-kind in the data, and every served kind and its list.
        let mut checked = 0;
        for schema in definitions().values() {
            let gvks = schema
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array);
            for g in gvks.into_iter().flatten() {
                let field = |f: &str| g[f].as_str().unwrap();
                let (group, version, kind) = (field("group"), field("version"), field("kind"));
                let got = definition_name_for_kind(group, version, kind);
                assert!(got.is_some(), "{group}/{version} {kind}");
                assert_eq!(got, definition_name_for_kind_by_scan(group, version, kind));
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
        for r in RESOURCES {
            for kind in [r.kind.to_owned(), format!("{}List", r.kind)] {
                assert_eq!(
                    definition_name_for_kind(r.group, r.version, &kind),
                    definition_name_for_kind_by_scan(r.group, r.version, &kind),
                    "{kind}"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, missing: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                        let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                        if definition(name).is_none() {
                            missing.push(r.to_owned());
                        }
                    }
                    m.values().for_each(|x| walk(x, missing));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        definitions().values().for_each(|d| walk(d, &mut missing));
        assert!(missing.is_empty(), "{missing:?}");
    }

    #[test]
    fn resolve_follows_refs_to_properties() {
        let deploy = schema_for_kind("apps", "v1", "Deployment").unwrap();
        let spec = property(deploy, "spec").unwrap();
        let replicas = property(spec, "replicas").unwrap();
        assert_eq!(replicas["type"], "integer");
        let name = property(property(deploy, "metadata").unwrap(), "name").unwrap();
        assert_eq!(name["type"], "string");
    }
}
