//! Decoding checks: what kube-apiserver's decoder and handler check of a request body before
//! admission sees it: its type and namespace and name against the URL (filled in when absent),
//! and unknown-field handling (`fieldValidation`). A leaf above [`super::meta`].

use kgate_core::Status;
use serde_json::Value;

use super::meta::meta_mut;
use crate::resources::ResourceDef;
use crate::schema;

/// `fieldValidation`: what to do with fields the schema does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and say so in `Warning` headers (kube's default since 1.27).
    Warn,
    /// Refuse the request (kubectl sends this for create, apply, edit, replace).
    Strict,
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

/// Applies `fieldValidation` to a decoded body (and puts its quantities in canonical form, 400
/// for one that is not a quantity): Strict refuses unknown fields (400, kube's
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
    // kube's decoder parses quantities: text that is not one is refused, the object is stored
    // and served with their canonical text.
    if let Some(e) = schema::quantity::quantity_error(def.group, def.version, def.kind, obj) {
        return Err(Status::bad_request(format!("{prefix}{e}")));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::lookup;
    use serde_json::json;

    fn pods() -> &'static ResourceDef {
        lookup("", "v1", "pods").expect("pods")
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
    fn quantities_are_canonical_or_refused() {
        let pod = |memory: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "i",
                    "resources": {"requests": {"memory": memory}}}]}})
        };
        let mut o = pod(json!("1.5Gi"));
        check_fields(pods(), &mut o, FieldValidation::Strict, true).expect("a quantity");
        assert_eq!(
            o["spec"]["containers"][0]["resources"]["requests"]["memory"],
            "1536Mi"
        );
        let mut o = pod(json!("1Ki5"));
        let s = check_fields(pods(), &mut o, FieldValidation::Strict, true).expect_err("suffix");
        assert_eq!(
            (s.code, s.message.as_str()),
            (
                400,
                "Pod in version \"v1\" cannot be handled as a Pod: unable to parse quantity's suffix"
            )
        );
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
