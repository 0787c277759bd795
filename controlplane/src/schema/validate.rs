//! Server-side field validation (`?fieldValidation=Strict|Warn`): the fields of a request body
//! that the kind's schema does not know, and obvious type mismatches.
//!
//! kube-apiserver finds unknown fields while decoding into Go structs; we walk the schema
//! instead. The walk follows `$ref`, array `items`, `additionalProperties` maps and stops, allowing
//! anything, under `x-kubernetes-preserve-unknown-fields` and under object schemas that declare
//! no properties (FieldsV1, RawExtension), as the Go decoder does for those types.

use serde_json::Value;

use super::{resolve, schema_for_kind};

/// Paths of the fields of `object` that the schema of the kind does not declare, in document
/// order, in kube's notation: `spec.template.spec.containers[0].imagePullPolicyy`. Empty for a
/// kind without a schema (nothing is known, so nothing is reported).
pub fn unknown_fields(group: &str, version: &str, kind: &str, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(schema) = schema_for_kind(group, version, kind) {
        walk_unknown(schema, object, "", &mut out);
    }
    out
}

/// kube's error text for unknown fields under `fieldValidation=Strict`:
/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`. kube-apiserver
/// puts it in a 400 BadRequest Status, prefixed on create/update by
/// `<Kind> in version "<version>" cannot be handled as a <Kind>: `. Under `Warn`, each
/// `unknown field "<path>"` is one `Warning` header instead.
pub fn strict_decoding_error(fields: &[String]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    format!("strict decoding error: {}", parts.join(", "))
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn preserves_unknown(s: &Value) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
}

fn walk_unknown(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let s = resolve(schema);
    if preserves_unknown(s) {
        return;
    }
    match value {
        Value::Object(fields) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, v) in fields {
                    match props.get(k) {
                        Some(p) => walk_unknown(p, v, &join(path, k), out),
                        None => out.push(join(path, k)),
                    }
                }
            } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, v) in fields {
                    walk_unknown(ap, v, &join(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk_unknown(item, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// Obvious type mismatches (a number where the schema wants a string, a string where it wants an
/// object...), as `"<path>: expected <type>, got <json type>"`. `null` is always accepted, as the
/// Go decoder takes it as the zero value. Int-or-string and Quantity fields accept both forms.
pub fn type_errors(group: &str, version: &str, kind: &str, object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(schema) = schema_for_kind(group, version, kind) {
        walk_types(schema, object, "", &mut out);
    }
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn walk_types(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        return;
    }
    // Quantity is published as a plain string but decodes from a number too.
    let is_quantity = schema
        .get("$ref")
        .and_then(Value::as_str)
        .is_some_and(|r| r.ends_with(".api.resource.Quantity"));
    let s = resolve(schema);
    if preserves_unknown(s) {
        return;
    }
    let got = json_type(value);
    let int_or_string = s.get("format").and_then(Value::as_str) == Some("int-or-string");
    let Some(want) = s.get("type").and_then(Value::as_str) else {
        return;
    };
    let ok = match want {
        "string" if int_or_string => matches!(got, "string" | "integer"),
        "string" if is_quantity => matches!(got, "string" | "integer" | "number"),
        "number" => matches!(got, "integer" | "number"),
        w => w == got,
    };
    if !ok {
        let at = if path.is_empty() { "<root>" } else { path };
        out.push(format!("{at}: expected {want}, got {got}"));
        return;
    }
    match value {
        Value::Object(fields) => {
            let props = s.get("properties").and_then(Value::as_object);
            let ap = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in fields {
                if let Some(p) = props.and_then(|p| p.get(k)).or(ap) {
                    walk_types(p, v, &join(path, k), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk_types(item, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(container: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [container]},
                },
            },
        })
    }

    #[test]
    fn valid_deployment_has_no_unknown_fields() {
        let d = deployment(json!({
            "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "500m", "memory": 128}},
            "env": [{"name": "A", "value": "1"}],
        }));
        assert_eq!(
            unknown_fields("apps", "v1", "Deployment", &d),
            Vec::<String>::new()
        );
        assert_eq!(
            type_errors("apps", "v1", "Deployment", &d),
            Vec::<String>::new()
        );
    }

    #[test]
    fn typo_in_container_is_found_with_its_path() {
        let mut d =
            deployment(json!({"name": "nginx", "image": "nginx", "imagePullPolicyy": "Always"}));
        d["spec"]["foo"] = json!(1);
        d["metadata"]["bogus"] = json!("x");
        let found = unknown_fields("apps", "v1", "Deployment", &d);
        assert_eq!(
            found,
            vec![
                "metadata.bogus",
                "spec.template.spec.containers[0].imagePullPolicyy",
                "spec.foo",
            ]
        );
        assert_eq!(
            strict_decoding_error(&found[2..]),
            r#"strict decoding error: unknown field "spec.foo""#
        );
        assert_eq!(
            strict_decoding_error(&[found[0].clone(), found[2].clone()]),
            r#"strict decoding error: unknown field "metadata.bogus", unknown field "spec.foo""#
        );
    }

    #[test]
    fn free_form_fields_accept_anything() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {"f:x": {}}}}]},
            "data": {"anything": "goes"}});
        assert!(unknown_fields("", "v1", "ConfigMap", &cm).is_empty());
        assert!(unknown_fields("", "v1", "NoSuchKind", &cm).is_empty());
    }

    #[test]
    fn type_mismatches_are_reported() {
        let mut d = deployment(json!({"name": "nginx", "image": 5}));
        d["spec"]["replicas"] = json!("two");
        assert_eq!(
            type_errors("apps", "v1", "Deployment", &d),
            vec![
                "spec.replicas: expected integer, got string",
                "spec.template.spec.containers[0].image: expected string, got integer",
            ]
        );
    }
}
