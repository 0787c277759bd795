//! What happens to an object between the request body and the store: the checks of its type,
//! namespace and name against the URL, unknown-field handling (`fieldValidation`), and the
//! system metadata kube-apiserver sets on create (`rest.BeforeCreate`) and carries over on update
//! (`rest.BeforeUpdate`): generated names, uid, creationTimestamp, generation, immutable fields.

use kgate_core::Status;
use rand::Rng;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::request::FieldValidation;
use super::{defaults, validation};
use crate::resources::ResourceDef;
use crate::schema;

/// The characters of a generated name suffix, as apimachinery's `rand.String` (no vowels, no
/// look-alikes).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// A generated name's random suffix length.
const NAME_SUFFIX_LEN: usize = 5;
/// A generateName prefix is cut to this, so prefix + suffix fits a DNS label (63).
const MAX_PREFIX_LEN: usize = 63 - NAME_SUFFIX_LEN;
/// Kinds whose metadata.generation tracks spec changes.
const GENERATION_KINDS: &[&str] = &["Deployment", "ReplicaSet", "Pod"];

/// `metadata.<field>` as a string.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata`, created when missing or not an object.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let Value::Object(map) = obj else {
        unreachable!("just made an object")
    };
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    match meta {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The object's metadata.finalizers (empty when absent).
pub(crate) fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

/// True when `next` ends the deletion of `current`: it was being deleted and no finalizer is
/// left (for a namespace, neither metadata nor spec finalizers).
pub(crate) fn finalizers_done(def: &ResourceDef, current: &Value, next: &Value) -> bool {
    if !is_deleting(current) || !finalizers(next).is_empty() {
        return false;
    }
    if def.kind == "Namespace" {
        let spec_empty = next
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        return spec_empty;
    }
    true
}

/// Now, as kube's metav1.Time serializes it: RFC 3339, UTC, whole seconds.
pub(crate) fn now_timestamp() -> String {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `prefix` + 5 random characters, as the apiserver's `SimpleNameGenerator`.
pub(crate) fn generate_name(prefix: &str) -> String {
    let cut: String = prefix.chars().take(MAX_PREFIX_LEN).collect();
    let mut rng = rand::rng();
    let suffix: String = (0..NAME_SUFFIX_LEN)
        .map(|_| char::from(NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())]))
        .collect();
    format!("{cut}{suffix}")
}

/// Checks the body's apiVersion and kind against the URL's, filling them in when absent (the
/// decoder defaults them from the endpoint, as kube-apiserver's does).
pub(crate) fn check_type(def: &ResourceDef, obj: &mut Value) -> Result<(), Status> {
    let want_version = def.api_version();
    let Value::Object(map) = obj else {
        return Err(Status::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
    let version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != def.kind {
        let (_, v) = version.rsplit_once('/').unwrap_or(("", version));
        let v = if v.is_empty() { def.version } else { v };
        return Err(Status::bad_request(format!(
            "{kind} in version {v:?} cannot be handled as a {want}: converting ({v}.{kind}) to ({want_group}.{want}): unknown conversion",
            want = def.kind,
            want_group = if def.group.is_empty() { "core" } else { def.group.split('.').next().unwrap_or(def.group) },
        )));
    }
    if !version.is_empty() && version != want_version {
        return Err(Status::bad_request(format!(
            "the API version in the data ({version}) does not match the expected API version ({want_version})"
        )));
    }
    map.insert("kind".into(), Value::String(def.kind.to_owned()));
    map.insert("apiVersion".into(), Value::String(want_version));
    Ok(())
}

/// Checks the body's namespace against the URL's; fills it when empty. Cluster-scoped objects
/// lose any namespace they carry, as kube clears it.
pub(crate) fn check_namespace(
    def: &ResourceDef,
    url_namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), Status> {
    let meta = meta_mut(obj);
    if !def.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    let url_ns = url_namespace.unwrap_or("");
    match meta.get("namespace").and_then(Value::as_str).unwrap_or("") {
        "" => {
            meta.insert("namespace".into(), Value::String(url_ns.to_owned()));
            Ok(())
        }
        ns if ns == url_ns => Ok(()),
        _ => Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
    }
}

/// On update: the body's name must be the URL's (filled when empty).
pub(crate) fn check_name(url_name: &str, obj: &mut Value) -> Result<(), Status> {
    let meta = meta_mut(obj);
    match meta.get("name").and_then(Value::as_str).unwrap_or("") {
        "" => {
            meta.insert("name".into(), Value::String(url_name.to_owned()));
            Ok(())
        }
        n if n == url_name => Ok(()),
        n => Err(Status::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({url_name})"
        ))),
    }
}

/// Applies `fieldValidation` to a decoded body: Strict refuses unknown fields (400, kube's
/// `strict decoding error`); Warn and Ignore drop them, Warn returning one warning each, as the
/// Go decoder drops what its structs lack. Fields of the wrong JSON type are always 400.
/// `handled_as` prefixes errors as create and update do (`Pod in version "v1" cannot be handled
/// as a Pod: `); patch errors have no prefix.
pub(crate) fn check_fields(
    def: &ResourceDef,
    obj: &mut Value,
    mode: FieldValidation,
    handled_as: bool,
) -> Result<Vec<String>, Status> {
    let prefix = if handled_as {
        format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: ",
            kind = def.kind,
            v = def.version
        )
    } else {
        String::new()
    };
    let type_errors = schema::type_errors(def.group, def.version, def.kind, obj);
    if let Some(first) = type_errors.first() {
        return Err(Status::bad_request(format!("{prefix}{first}")));
    }
    let unknown = schema::unknown_fields(def.group, def.version, def.kind, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    if mode == FieldValidation::Strict {
        return Err(Status::bad_request(format!(
            "{prefix}{}",
            schema::strict_decoding_error(&unknown)
        )));
    }
    for path in &unknown {
        remove_path(obj, path);
    }
    Ok(match mode {
        FieldValidation::Warn => unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect(),
        _ => Vec::new(),
    })
}

/// Removes the field at a kube field path (`spec.containers[0].foo`). A path that does not
/// resolve (a key holding a dot) is left alone.
fn remove_path(obj: &mut Value, path: &str) {
    let mut steps: Vec<Result<&str, usize>> = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        let name_end = rest.find('[').unwrap_or(rest.len());
        if name_end > 0 {
            steps.push(Ok(&rest[..name_end]));
        }
        rest = &rest[name_end..];
        while let Some(close) = rest.find(']') {
            match rest[1..close].parse::<usize>() {
                Ok(i) => steps.push(Err(i)),
                Err(_) => return,
            }
            rest = &rest[close + 1..];
        }
    }
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut cur = obj;
    for step in parents {
        let next = match step {
            Ok(k) => cur.get_mut(*k),
            Err(i) => cur.get_mut(*i),
        };
        match next {
            Some(v) => cur = v,
            None => return,
        }
    }
    if let (Ok(k), Value::Object(m)) = (last, cur) {
        m.remove(*k);
    }
}

/// System metadata, defaults and validation for a new object (its type and namespace already
/// checked). Fills a generated name when asked.
pub(crate) fn prepare_create(def: &ResourceDef, obj: &mut Value) -> Result<(), Status> {
    let meta = meta_mut(obj);
    if meta
        .get("resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(Status::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    meta.remove("resourceVersion");
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    let generate = meta
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() && !generate.is_empty() {
        let generated = generate_name(generate);
        meta.insert("name".into(), Value::String(generated));
    }
    meta.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    meta.insert("creationTimestamp".into(), Value::String(now_timestamp()));
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    if GENERATION_KINDS.contains(&def.kind) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    // Status is the controllers' to write: a new object starts with none (then its defaults).
    if def.has_subresource("status") {
        if let Value::Object(map) = obj {
            map.remove("status");
        }
    }
    defaults::apply(def, obj);
    validation::validate_create(def, obj)
}

/// Which status an update keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusFrom {
    /// A write of the main resource: status is the old one (kinds with a status subresource).
    Old,
    /// A write through a subresource: the caller built the whole object.
    New,
}

/// The successor of `old` from a client's `new`: system metadata carried over, immutable fields
/// checked, status kept as `status_from` says, generation bumped on spec changes, defaults and
/// validation applied.
pub(crate) fn prepare_update(
    def: &ResourceDef,
    old: &Value,
    mut new: Value,
    status_from: StatusFrom,
) -> Result<Value, Status> {
    let name = meta_str(old, "name").unwrap_or("").to_owned();
    let old_uid = meta_str(old, "uid").unwrap_or("").to_owned();
    let new_uid = meta_str(&new, "uid").unwrap_or("").to_owned();
    if !new_uid.is_empty() && new_uid != old_uid {
        return Err(validation::invalid(
            def,
            &name,
            "metadata.uid",
            format!("Invalid value: {new_uid:?}: field is immutable"),
        ));
    }
    if is_deleting(old) {
        let before = finalizers(old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !before.contains(f))
            .map(str::to_owned)
            .collect();
        if !added.is_empty() {
            return Err(validation::forbidden_field(
                def,
                &name,
                "metadata.finalizers",
                format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    added.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>().join(", ")),
            ));
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let meta = meta_mut(&mut new);
    for field in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    if let (StatusFrom::Old, true) = (status_from, def.has_subresource("status")) {
        if let Value::Object(map) = &mut new {
            match old.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
    }
    defaults::carry_allocated(def, old, &mut new);
    defaults::apply(def, &mut new);
    if GENERATION_KINDS.contains(&def.kind) && old.get("spec") != new.get("spec") {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
    }
    validation::validate_update(def, old, &new)?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;

    fn pods() -> &'static ResourceDef {
        lookup("", "v1", "pods").expect("pods")
    }

    #[test]
    fn generated_names_use_kubes_alphabet() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        assert_eq!(generate_name(&"x".repeat(80)).len(), 63);
    }

    #[test]
    fn type_mismatches_use_kubes_words() {
        let mut o = json!({"apiVersion": "apps/v1", "kind": "Pod"});
        let s = check_type(pods(), &mut o).expect_err("version mismatch");
        assert_eq!(
            s.message,
            "the API version in the data (apps/v1) does not match the expected API version (v1)"
        );
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert_eq!(check_type(pods(), &mut o).map_err(|s| s.code), Err(400));
        let mut o = json!({"metadata": {"name": "p"}});
        check_type(pods(), &mut o).expect("defaults the type");
        assert_eq!(o["kind"], "Pod");
        assert_eq!(o["apiVersion"], "v1");
    }

    #[test]
    fn unknown_fields_are_dropped_with_warnings_or_refused() {
        let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"foo": 1, "containers": [{"name": "c", "image": "i", "bar": true}]}});
        let mut o = body.clone();
        let w = check_fields(pods(), &mut o, FieldValidation::Warn, true).expect("warn");
        assert_eq!(
            w,
            vec![
                "unknown field \"spec.foo\"".to_owned(),
                "unknown field \"spec.containers[0].bar\"".to_owned()
            ]
        );
        assert!(o["spec"].get("foo").is_none());
        assert!(o["spec"]["containers"][0].get("bar").is_none());
        let mut o = body;
        let s = check_fields(pods(), &mut o, FieldValidation::Strict, true).expect_err("strict");
        assert!(
            s.message.starts_with(
                "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.foo\""
            ),
            "{}",
            s.message
        );
    }

    #[test]
    fn updates_keep_system_metadata_and_bump_generation() {
        let deploy = lookup("apps", "v1", "deployments").expect("deployments");
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "n", "uid": "u1", "generation": 1,
                "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "5"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": 1}});
        let mut old = old;
        defaults::apply(deploy, &mut old);
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        new["status"] = json!({"replicas": 7});
        new["metadata"]["creationTimestamp"] = json!("2030-01-01T00:00:00Z");
        let next = prepare_update(deploy, &old, new, StatusFrom::Old).expect("valid");
        assert_eq!(next["metadata"]["generation"], 2);
        assert_eq!(next["status"]["replicas"], 1);
        assert_eq!(
            next["metadata"]["creationTimestamp"],
            "2024-01-01T00:00:00Z"
        );
        let mut bad = old.clone();
        bad["metadata"]["uid"] = json!("other");
        let s = prepare_update(deploy, &old, bad, StatusFrom::Old).expect_err("uid");
        assert_eq!(s.code, 422);
    }

    #[test]
    fn remove_path_handles_indices() {
        let mut o = json!({"a": [{"b": 1, "c": 2}]});
        remove_path(&mut o, "a[0].b");
        assert_eq!(o, json!({"a": [{"c": 2}]}));
        remove_path(&mut o, "x.y");
        assert_eq!(o, json!({"a": [{"c": 2}]}));
    }
}
