//! The validation kube-apiserver runs before storing an object, as far as this server goes:
//! object names (DNS-1123 subdomain, DNS-1123 label, DNS-1035 label or path segment, by kind)
//! and a few per-kind rules that keep the stored objects usable (a Pod has containers with
//! names and images; a Deployment's selector selects its template), and, in [`kinds`], those of
//! the storage, DRA and older workload kinds served for kube-scheduler. Failures are 422 Invalid
//! with kube's field paths and wording (`k8s.io/apimachinery/pkg/util/validation`).

use kgate_core::status::StatusCause;
use kgate_core::Status;
use serde_json::{json, Map, Value};

use super::meta::meta_str;
use super::selectors::LabelSelector;
use crate::resources::ResourceDef;
use crate::schema::printers::label_selector;

/// The rules of the kinds served for kube-scheduler (storage, DRA, RC, PDB).
#[path = "validation_kinds.rs"]
mod kinds;

/// The rules of admissionregistration.k8s.io (webhook configurations, policies, bindings).
#[path = "validation_admission.rs"]
mod admission;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, the name part of a qualified name.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    let ext = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() && b.iter().all(ext)
        }
        _ => false,
    }
}

/// kube's `validation.IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name
/// part of at most 63 characters.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                if prefix.len() > 253 {
                    errs.push("prefix part must be no more than 253 characters".to_owned());
                }
                if !is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {DNS1123_SUBDOMAIN_MSG}"));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )]
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

/// kube's `metav1validation.ValidateLabels`: each key a qualified name, each value empty or a
/// qualified name part of at most 63 characters.
fn label_causes(obj: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
    for (key, value) in labels.into_iter().flatten() {
        for e in qualified_name_errors(key) {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.labels",
                format!("Invalid value: {key:?}: {e}"),
            ));
        }
        let value = value.as_str().unwrap_or_default();
        let mut errs = Vec::new();
        if value.len() > 63 {
            errs.push("must be no more than 63 characters");
        }
        if !value.is_empty() && !is_qualified_name_part(value) {
            errs.push(LABEL_VALUE_MSG);
        }
        for e in errs {
            out.push(cause(
                "FieldValueInvalid",
                "metadata.labels",
                format!("Invalid value: {value:?}: {e}"),
            ));
        }
    }
    out
}

/// One field problem.
fn cause(reason: &str, field: &str, message: String) -> StatusCause {
    StatusCause {
        reason: reason.to_owned(),
        message,
        field: field.to_owned(),
    }
}

// kube's `field.*` errors, shared by this module's children (`kinds`, `admission`).

fn required(field: &str) -> StatusCause {
    cause("FieldValueRequired", field, "Required value".to_owned())
}

/// A value as kube's field errors print it: JSON (a string quoted).
fn go_value(v: Option<&Value>) -> String {
    v.map_or_else(|| "null".to_owned(), Value::to_string)
}

fn required_because(field: &str, detail: &str) -> StatusCause {
    cause(
        "FieldValueRequired",
        field,
        format!("Required value: {detail}"),
    )
}

fn forbidden(field: &str, detail: &str) -> StatusCause {
    cause("FieldValueForbidden", field, format!("Forbidden: {detail}"))
}

fn invalid_value(field: &str, value: Option<&Value>, detail: &str) -> StatusCause {
    cause(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {}: {detail}", go_value(value)),
    )
}

/// `field.NotSupported`; `value` as the caller prints it (see [`go_value`]).
fn not_supported(field: &str, value: &str, supported: &[&str]) -> StatusCause {
    let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    cause(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: {value}: supported values: {}",
            supported.join(", ")
        ),
    )
}

/// A 422 with one cause.
pub(crate) fn invalid(def: &ResourceDef, name: &str, field: &str, message: String) -> Status {
    Status::invalid(
        def.group,
        def.kind,
        name,
        vec![cause("FieldValueInvalid", field, message)],
    )
}

/// A 422 for a forbidden change.
pub(crate) fn forbidden_field(
    def: &ResourceDef,
    name: &str,
    field: &str,
    message: String,
) -> Status {
    Status::invalid(def.group, def.kind, name, vec![forbidden(field, &message)])
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.iter().all(|c| is_label_char(*c)) && b[0] != b'-' && b[b.len() - 1] != b'-'
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_dns1123_label)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// The name problems of `name` for `kind`, as kube's per-kind `ValidateNameFunc`s report them.
pub(crate) fn name_errors(kind: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    match kind {
        // RBAC names only need to be one path segment (`rbac/validation.ValidateRBACName`).
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => {
            if name == "." || name == ".." {
                out.push(format!("may not be '{name}'"));
            }
            for bad in ['/', '%'] {
                if name.contains(bad) {
                    out.push(format!("may not contain '{bad}'"));
                }
            }
        }
        "Namespace" => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_owned());
            }
            if !is_dns1123_label(name) {
                out.push(DNS1123_LABEL_MSG.to_owned());
            }
        }
        "Service" => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_owned());
            }
            if !is_dns1035_label(name) {
                out.push(DNS1035_LABEL_MSG.to_owned());
            }
        }
        _ => {
            if name.len() > 253 {
                out.push("must be no more than 253 characters".to_owned());
            }
            if !is_dns1123_subdomain(name) {
                out.push(DNS1123_SUBDOMAIN_MSG.to_owned());
            }
        }
    }
    out
}

/// Validation of a new object (names included).
pub(crate) fn validate_create(def: &ResourceDef, obj: &Value) -> Result<(), Status> {
    let name = meta_str(obj, "name").unwrap_or("");
    let mut causes = Vec::new();
    // A generateName is checked as a name prefix: a trailing '-' is allowed (kube's
    // ValidateObjectMeta with `prefix` true, which masks that dash).
    let generate = meta_str(obj, "generateName").unwrap_or("");
    if !generate.is_empty() {
        let masked = match generate.strip_suffix('-') {
            Some(rest) if !rest.is_empty() => format!("{rest}a"),
            _ => generate.to_owned(),
        };
        for e in name_errors(def.kind, &masked) {
            causes.push(cause(
                "FieldValueInvalid",
                "metadata.generateName",
                format!("Invalid value: {generate:?}: {e}"),
            ));
        }
    }
    if name.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "metadata.name",
            "Required value: name or generateName is required".to_owned(),
        ));
    } else {
        for e in name_errors(def.kind, name) {
            causes.push(cause(
                "FieldValueInvalid",
                "metadata.name",
                format!("Invalid value: {name:?}: {e}"),
            ));
        }
    }
    causes.extend(label_causes(obj));
    causes.extend(kind_causes(def, obj));
    if (def.group, def.kind) == ("apps", "StatefulSet") {
        // New StatefulSets only: serviceName is immutable, and kube tolerates an old invalid
        // one on update (AllowInvalidServiceName).
        causes.extend(kinds::service_name(obj));
    }
    finish(def, name, causes)
}

/// The warnings of kube's strategy about `obj` (see [`kinds::warnings`]).
pub(crate) fn warnings(def: &ResourceDef, obj: &Value) -> Vec<String> {
    kinds::warnings(def, obj)
}

/// Validation of an update (the name cannot change, so it is not checked again).
pub(crate) fn validate_update(def: &ResourceDef, old: &Value, new: &Value) -> Result<(), Status> {
    let name = meta_str(new, "name").unwrap_or("");
    let mut causes = label_causes(new);
    causes.extend(kind_causes(def, new));
    if matches!(def.kind, "ConfigMap" | "Secret") {
        causes.extend(immutable_data_changes(def.kind, old, new));
    }
    if def.kind == "Pod" {
        causes.extend(pod_spec_change(old, new));
    }
    if matches!(def.kind, "Deployment" | "ReplicaSet")
        && old.pointer("/spec/selector") != new.pointer("/spec/selector")
    {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.selector",
            format!(
                "Invalid value: {}: field is immutable",
                go_selector(new.pointer("/spec/selector"))
            ),
        ));
    }
    if matches!(def.kind, "RoleBinding" | "ClusterRoleBinding") {
        causes.extend(role_ref_change(old, new));
    }
    kinds::update_causes(def, old, new, &mut causes);
    finish(def, name, causes)
}

/// What of a pod's spec may change (kube's `updatablePodSpecFields`).
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// kube's `ValidatePodUpdate` on the spec: the new spec with what may change set back to the
/// old values ("munged") must be the old spec. kube's message ends with a Go diff of the two
/// specs, which is left out here. `nodeName` is set by the binding (kube writes it without
/// this validation), so it is set back too.
/// kube's `validateOnlyAddedTolerations`: every old toleration is still there, equal but for
/// its `tolerationSeconds`.
fn only_added_tolerations(old_spec: &Value, new_spec: &Value) -> Option<StatusCause> {
    // Without tolerationSeconds, and with "" as absent (Go compares structs, not JSON).
    let normal = |t: &Value| -> Map<String, Value> {
        t.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| *k != "tolerationSeconds" && v.as_str() != Some(""))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = |spec: &Value| -> Vec<Map<String, Value>> {
        spec.get("tolerations")
            .and_then(Value::as_array)
            .map(|ts| ts.iter().map(normal).collect())
            .unwrap_or_default()
    };
    let new_list = list(new_spec);
    list(old_spec)
        .iter()
        .any(|old| !new_list.contains(old))
        .then(|| {
            forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )
        })
}

/// kube's `validateOnlyDeletedSchedulingGates`: no gate that was not there before.
fn only_deleted_scheduling_gates(old_spec: &Value, new_spec: &Value) -> Option<StatusCause> {
    let names = |spec: &Value| -> Vec<String> {
        spec.get("schedulingGates")
            .and_then(Value::as_array)
            .map(|gs| {
                gs.iter()
                    .map(|g| {
                        g.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let old = names(old_spec);
    names(new_spec)
        .iter()
        .enumerate()
        .find(|(_, gate)| !old.contains(gate))
        .map(|(i, gate)| {
            forbidden(
                &format!("spec.schedulingGates[{i}].name"),
                &format!("only deletion is allowed, but found new scheduling gate '{gate}'"),
            )
        })
}

fn pod_spec_change(old: &Value, new: &Value) -> Option<StatusCause> {
    let (Some(old_spec), Some(new_spec)) = (old.get("spec"), new.get("spec")) else {
        return None;
    };
    let count =
        |spec: &Value, list: &str| spec.get(list).and_then(Value::as_array).map_or(0, Vec::len);
    for list in ["containers", "initContainers"] {
        if count(old_spec, list) != count(new_spec, list) {
            return Some(cause(
                "FieldValueForbidden",
                &format!("spec.{list}"),
                "Forbidden: pod updates may not add or remove containers".to_owned(),
            ));
        }
    }
    if let Some(cause) = only_added_tolerations(old_spec, new_spec) {
        return Some(cause);
    }
    if let Some(cause) = only_deleted_scheduling_gates(old_spec, new_spec) {
        return Some(cause);
    }
    let mut munged = new_spec.clone();
    for list in ["containers", "initContainers"] {
        let old_images: Vec<Option<Value>> = old_spec
            .get(list)
            .and_then(Value::as_array)
            .map(|cs| cs.iter().map(|c| c.get("image").cloned()).collect())
            .unwrap_or_default();
        if let Some(containers) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (c, image) in containers.iter_mut().zip(old_images) {
                if let (Some(map), Some(image)) = (c.as_object_mut(), image) {
                    map.insert("image".into(), image);
                }
            }
        }
    }
    if let Some(map) = munged.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "schedulingGates",
            "tolerations",
            "nodeName",
        ] {
            match old_spec.get(field) {
                Some(v) => map.insert(field.into(), v.clone()),
                None => map.remove(field),
            };
        }
        let old_grace = old_spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_grace = map
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
            map.insert("terminationGracePeriodSeconds".into(), json!(old_grace));
        }
    }
    (munged != *old_spec).then(|| {
        forbidden(
            "spec",
            &format!("pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}"),
        )
    })
}

/// An immutable ConfigMap or Secret keeps its data and stays immutable (kube's
/// `ValidateConfigMapUpdate` and `ValidateSecretUpdate`).
fn immutable_data_changes(kind: &str, old: &Value, new: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    if old.get("immutable") != Some(&json!(true)) {
        return out;
    }
    let forbidden = |field: &str| forbidden(field, "field is immutable when `immutable` is set");
    if new.get("immutable") != Some(&json!(true)) {
        out.push(forbidden("immutable"));
    }
    let fields: &[&str] = if kind == "Secret" {
        // stringData was folded into data already; type has its own rule.
        &["data"]
    } else {
        &["data", "binaryData"]
    };
    for field in fields {
        let empty =
            |v: Option<&Value>| v.is_none_or(|v| v.as_object().is_some_and(|m| m.is_empty()));
        let (a, b) = (old.get(*field), new.get(*field));
        if a != b && !(empty(a) && empty(b)) {
            out.push(forbidden(field));
        }
    }
    out
}

/// A binding's roleRef is immutable (`rbac/validation.ValidateRoleBindingUpdate`): granting
/// another role means a new binding. An empty apiGroup is the RBAC group kube defaults it to.
fn role_ref_change(old: &Value, new: &Value) -> Option<StatusCause> {
    let role_ref = |obj: &Value| -> [String; 3] {
        let field = |f: &str| {
            obj.pointer(&format!("/roleRef/{f}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let group = Some(field("apiGroup"))
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| "rbac.authorization.k8s.io".to_owned());
        [group, field("kind"), field("name")]
    };
    let after = role_ref(new);
    if role_ref(old) == after {
        return None;
    }
    let [group, kind, name] = after;
    // Go's `%#v` of the internal rbac.RoleRef, as kube-apiserver prints it.
    Some(cause(
        "FieldValueInvalid",
        "roleRef",
        format!(
            "Invalid value: rbac.RoleRef{{APIGroup:{group:?}, Kind:{kind:?}, Name:{name:?}}}: cannot change roleRef"
        ),
    ))
}

fn finish(def: &ResourceDef, name: &str, causes: Vec<StatusCause>) -> Result<(), Status> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(Status::invalid(def.group, def.kind, name, causes))
    }
}

fn kind_causes(def: &ResourceDef, obj: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    match def.kind {
        "Pod" => pod_spec_causes(obj.get("spec"), "spec", &mut out),
        "Deployment" | "ReplicaSet" | "StatefulSet" => workload_causes(def.kind, obj, &mut out),
        "ReplicationController" if def.group.is_empty() => {
            kinds::replication_controller(obj, &mut out);
        }
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
            if def.group == "admissionregistration.k8s.io" =>
        {
            let mutating = def.kind == "MutatingWebhookConfiguration";
            admission::webhook_configuration(obj, mutating, &mut out);
        }
        "ValidatingAdmissionPolicy" if def.group == "admissionregistration.k8s.io" => {
            admission::policy(obj, &mut out);
        }
        "ValidatingAdmissionPolicyBinding" if def.group == "admissionregistration.k8s.io" => {
            admission::binding(obj, &mut out);
        }
        _ => kinds::kind_causes(def, obj, &mut out),
    }
    out
}

fn pod_spec_causes(spec: Option<&Value>, path: &str, out: &mut Vec<StatusCause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        out.push(required(&format!("{path}.containers")));
        return;
    };
    for (i, c) in containers.iter().enumerate() {
        for field in ["name", "image"] {
            if c.get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                out.push(required(&format!("{path}.containers[{i}].{field}")));
            }
        }
    }
}

/// A bad value as kube prints it in a field error: JSON (`field.Error` marshals the value).
fn go_labels(labels: Option<&Value>) -> String {
    labels.map_or_else(|| "null".to_owned(), Value::to_string)
}

/// A selector as kube prints it in a field error: the JSON of the `metav1.LabelSelector`, its
/// fields in Go's order.
fn go_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return "null".to_owned();
    };
    let mut parts = Vec::new();
    for field in ["matchLabels", "matchExpressions"] {
        if let Some(v) = sel.get(field) {
            parts.push(format!("{}:{v}", Value::String(field.to_owned())));
        }
    }
    format!("{{{}}}", parts.join(","))
}

fn workload_causes(kind: &str, obj: &Value, out: &mut Vec<StatusCause>) {
    let selector = obj.pointer("/spec/selector");
    let template_labels = obj.pointer("/spec/template/metadata/labels");
    let empty = selector.is_none_or(|s| {
        s.get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.is_empty())
            && s.get("matchExpressions")
                .and_then(Value::as_array)
                .is_none_or(|m| m.is_empty())
    });
    if selector.is_none() {
        out.push(required("spec.selector"));
    } else if empty {
        out.push(cause(
            "FieldValueInvalid",
            "spec.selector",
            format!(
                "Invalid value: {}: empty selector is invalid for {}",
                go_selector(selector),
                kind.to_ascii_lowercase()
            ),
        ));
    } else {
        let text = label_selector(selector);
        let matches = LabelSelector::parse(&text)
            .map(|s| s.matches(&json!({"metadata": {"labels": template_labels}})))
            .unwrap_or(false);
        if !matches {
            out.push(cause(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                format!(
                    "Invalid value: {}: `selector` does not match template `labels`",
                    go_labels(template_labels)
                ),
            ));
        }
    }
    if let Some(r) = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r < 0)
    {
        out.push(cause(
            "FieldValueInvalid",
            "spec.replicas",
            format!("Invalid value: {r}: must be greater than or equal to 0"),
        ));
    }
    pod_spec_causes(
        obj.pointer("/spec/template/spec"),
        "spec.template.spec",
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    #[test]
    fn names_follow_kubes_rules_per_kind() {
        assert!(name_errors("Pod", "web-1.x").is_empty());
        assert_eq!(name_errors("Pod", "Web"), vec![DNS1123_SUBDOMAIN_MSG]);
        assert!(!name_errors("Namespace", "a.b").is_empty());
        assert!(!name_errors("Service", "1abc").is_empty());
        assert!(name_errors("ClusterRole", "system:basic-user").is_empty());
        assert!(!name_errors("ClusterRole", "a/b").is_empty());
    }

    #[test]
    fn missing_names_are_required() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let s = validate_create(
            pods,
            &json!({"metadata": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
        )
        .expect_err("no name");
        assert_eq!(s.code, 422);
        assert_eq!(
            s.message,
            r#"Pod "" is invalid: metadata.name: Required value: name or generateName is required"#
        );
    }

    #[test]
    fn deployments_need_a_matching_selector() {
        let deploy = lookup("apps", "v1", "deployments").expect("deployments");
        let obj = json!({"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let s = validate_create(deploy, &obj).expect_err("mismatch");
        assert_eq!(
            s.message,
            "Deployment.apps \"d\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"api\"}: `selector` does not match template `labels`"
        );
        let mut ok = obj;
        ok["spec"]["template"]["metadata"]["labels"]["app"] = json!("web");
        assert!(validate_create(deploy, &ok).is_ok());
    }

    #[test]
    fn role_refs_cannot_change() {
        let crb = lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings").expect("crb");
        let binding = |name: &str, group: &str| {
            json!({"metadata": {"name": "b"},
                   "roleRef": {"apiGroup": group, "kind": "ClusterRole", "name": name}})
        };
        let old = binding("view", "rbac.authorization.k8s.io");
        let s = validate_update(crb, &old, &binding("edit", "rbac.authorization.k8s.io"))
            .expect_err("changed roleRef");
        assert_eq!(s.code, 422);
        assert_eq!(
            s.message,
            r#"ClusterRoleBinding.rbac.authorization.k8s.io "b" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef"#
        );
        // The same roleRef, the group left to its default, is no change.
        assert!(validate_update(crb, &old, &binding("view", "")).is_ok());
    }

    #[test]
    fn pods_need_named_containers_with_images() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let s = validate_create(
            pods,
            &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}),
        )
        .expect_err("no image");
        assert_eq!(
            s.message,
            r#"Pod "p" is invalid: spec.containers[0].image: Required value"#
        );
    }

    /// A pod's spec takes new images, deadlines, tolerations and a binding's node, nothing else.
    #[test]
    fn pod_updates_change_only_what_kube_lets_change() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let old = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "a:1"}],
            "volumes": [{"name": "v", "emptyDir": {}}]}});
        let mut ok = old.clone();
        ok["spec"]["containers"][0]["image"] = json!("a:2");
        ok["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
        ok["spec"]["activeDeadlineSeconds"] = json!(60);
        ok["spec"]["nodeName"] = json!("n1");
        ok["metadata"]["labels"] = json!({"x": "y"});
        assert!(validate_update(pods, &old, &ok).is_ok());
        let mut bad = old.clone();
        bad["spec"]["volumes"] = json!([]);
        let s = validate_update(pods, &old, &bad).expect_err("a volume removed");
        assert_eq!(s.code, 422);
        assert!(
            s.message
                .starts_with(r#"Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"#),
            "{}",
            s.message
        );
        let mut more = old.clone();
        more["spec"]["containers"] =
            json!([{"name": "c", "image": "a:1"}, {"name": "d", "image": "b"}]);
        let s = validate_update(pods, &old, &more).expect_err("a container added");
        assert!(
            s.message.contains(
                "spec.containers: Forbidden: pod updates may not add or remove containers"
            ),
            "{}",
            s.message
        );
    }

    /// Tolerations may only be added (an old one may change its tolerationSeconds alone), and
    /// scheduling gates only removed, as kube's ValidatePodUpdate says.
    #[test]
    fn pod_tolerations_only_grow_and_scheduling_gates_only_shrink() {
        let pods = lookup("", "v1", "pods").expect("pods");
        let old = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c", "image": "a:1"}],
            "tolerations": [{"key": "k", "operator": "Equal", "value": "v",
                "effect": "NoExecute", "tolerationSeconds": 30}],
            "schedulingGates": [{"name": "a"}, {"name": "b"}]}});
        let mut added = old.clone();
        added["spec"]["tolerations"] = json!([
            {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
             "tolerationSeconds": 10},
            {"key": "other", "operator": "Exists"}]);
        added["spec"]["schedulingGates"] = json!([{"name": "b"}]);
        assert!(validate_update(pods, &old, &added).is_ok());
        for changed in [
            json!([{"key": "k", "operator": "Equal", "value": "w", "effect": "NoExecute"}]),
            json!([]),
        ] {
            let mut bad = old.clone();
            bad["spec"]["tolerations"] = changed;
            let s = validate_update(pods, &old, &bad).expect_err("a toleration changed");
            assert!(
                s.message.contains("spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"),
                "{}",
                s.message
            );
        }
        let mut gated = old.clone();
        gated["spec"]["schedulingGates"] = json!([{"name": "a"}, {"name": "c"}]);
        let s = validate_update(pods, &old, &gated).expect_err("a gate added");
        assert!(
            s.message.contains("spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'c'"),
            "{}",
            s.message
        );
    }

    /// An immutable ConfigMap keeps its data and its immutability; its metadata may change.
    #[test]
    fn immutable_configmaps_keep_their_data() {
        let cms = lookup("", "v1", "configmaps").expect("configmaps");
        let old = json!({"metadata": {"name": "c"}, "data": {"k": "v"}, "immutable": true});
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"a": "b"});
        assert!(validate_update(cms, &old, &labelled).is_ok());
        let mut changed = old.clone();
        changed["data"]["k"] = json!("w");
        changed["immutable"] = json!(false);
        let s = validate_update(cms, &old, &changed).expect_err("data changed");
        assert_eq!(
            s.message,
            "ConfigMap \"c\" is invalid: [immutable: Forbidden: field is immutable when `immutable` is set, data: Forbidden: field is immutable when `immutable` is set]"
        );
    }

    /// Label keys are qualified names, values at most 63 characters of the label alphabet.
    #[test]
    fn labels_are_validated_as_kube_does() {
        assert!(qualified_name_errors("example.com/app").is_empty());
        assert_eq!(
            qualified_name_errors("bad key!"),
            vec![format!("name part {QUALIFIED_NAME_MSG}")]
        );
        assert_eq!(
            qualified_name_errors("/x"),
            vec!["prefix part must be non-empty"]
        );
        let cms = lookup("", "v1", "configmaps").expect("configmaps");
        let s = validate_create(
            cms,
            &json!({"metadata": {"name": "c", "labels": {"ok": "not ok!"}}}),
        )
        .expect_err("a bad value");
        assert!(
            s.message.contains(r#"metadata.labels: Invalid value: "not ok!": a valid label must be an empty string"#),
            "{}",
            s.message
        );
    }
}
