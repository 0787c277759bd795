//! Bytes in and out of the API server: stored values to API objects and back, request bodies to
//! JSON, and the `Accept` negotiation that picks plain JSON or a server-side `meta.k8s.io` Table.
//!
//! Stored values are JSON without `metadata.resourceVersion`: the resourceVersion is the store's
//! mod revision, set here on the way out and removed on the way in, as kube-apiserver's etcd3
//! storage does. Every failure is a [`Status`] with kube-apiserver's reason and wording.

// `Status` is the error type of the HTTP edge by contract (the handlers send it as the body);
// boxing it here would only move the allocation into every caller.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use http::{header, HeaderValue, Response, StatusCode};
use kgate_core::request_info::QueryParams;
use kgate_core::Status;
use serde_json::{Map, Value};

use crate::schema::IncludeObject;
use crate::store::KeyValue;

/// The media type of every response body this server writes.
pub const JSON: &str = "application/json";

/// The API object stored at `kv`, with `metadata.resourceVersion` set to its mod revision.
///
/// A value that is not a JSON object is damage in the store, not the caller's fault: it is a 500
/// whose message names neither the key nor the data (both go to the log, the key only).
pub fn decode_object(kv: &KeyValue) -> Result<Value, Status> {
    let mut obj: Value = match serde_json::from_slice(&kv.value) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            tracing::error!(key = %kv.key, revision = kv.mod_revision, "stored object is not a JSON object");
            return Err(Status::internal("the stored object could not be decoded"));
        }
    };
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// The API object stored at `kv` as a list item: [`decode_object`] without `apiVersion` and
/// `kind`, which kube's lists of built-in kinds leave out of their items.
pub fn decode_list_item(kv: &KeyValue) -> Result<Value, Status> {
    let mut obj = decode_object(kv)?;
    strip_type_meta(&mut obj);
    Ok(obj)
}

/// Removes `apiVersion` and `kind` from an object (a list item).
pub fn strip_type_meta(obj: &mut Value) {
    if let Value::Object(map) = obj {
        map.shift_remove("apiVersion");
        map.shift_remove("kind");
    }
}

/// Appends the object stored at `kv` to `out` as a list item: the bytes serde_json would write
/// for [`decode_list_item`], without building the object. A stored value is the compact JSON
/// [`encode_object`] wrote (objects keep their keys' order); [`decode_object`] appends
/// `resourceVersion` as the last key of `metadata`. So the stored object's members are copied
/// as they are, but for `apiVersion` and `kind`, which are left out, and `metadata`, copied with
/// `,"resourceVersion":"N"` put before its closing brace. A value of any other shape (no
/// `metadata` object, a `resourceVersion` already there, not JSON, not compact) takes the slow
/// way, which also reports damage as [`decode_object`] does. (Escapes and numbers serde_json
/// would write differently are copied as they are: the same object, other bytes; stored values
/// are serde_json's own, so this does not arise.)
pub fn write_list_item(kv: &KeyValue, out: &mut Vec<u8>) -> Result<(), Status> {
    let value = kv.value.as_slice();
    if let Some(members) = stored_members(value) {
        // Valid JSON is checked without building anything: a damaged value must not reach a
        // client half-copied.
        if serde_json::from_slice::<ReadsAsValue>(value).is_ok() {
            out.push(b'{');
            for (i, member) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match member {
                    Member::Copied(range) => out.extend_from_slice(&value[range]),
                    Member::Metadata { start, close } => {
                        out.extend_from_slice(&value[start..close]);
                        if value[..close].last() != Some(&b'{') {
                            out.push(b',');
                        }
                        out.extend_from_slice(b"\"resourceVersion\":\"");
                        out.extend_from_slice(kv.mod_revision.to_string().as_bytes());
                        out.extend_from_slice(b"\"}");
                    }
                }
            }
            out.push(b'}');
            return Ok(());
        }
    }
    let obj = decode_list_item(kv)?;
    serde_json::to_writer(&mut *out, &obj)
        .map_err(|_| Status::internal("the object could not be encoded"))
}

/// JSON that serde_json reads as a [`Value`], checked without building one. Not
/// `serde::de::IgnoredAny`: serde_json skips what it ignores without reading it, so it takes
/// strings that are not UTF-8 and numbers out of a float's range, which a `Value` refuses (the
/// fuzz target `stored_object` found both). Everything here is read through `deserialize_any`,
/// as a `Value` is, and dropped.
struct ReadsAsValue;

impl<'de> serde::Deserialize<'de> for ReadsAsValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ReadsAsValue)
    }
}

impl<'de> serde::de::Visitor<'de> for ReadsAsValue {
    type Value = ReadsAsValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<ReadsAsValue>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<ReadsAsValue, ReadsAsValue>()?.is_some() {}
        Ok(self)
    }
}

/// One top-level member of a stored object that [`write_list_item`] writes (`apiVersion` and
/// `kind` are left out).
enum Member {
    /// `"metadata":{...`: from the key to the object's closing brace (not included).
    Metadata { start: usize, close: usize },
    /// Any other member, key to value end.
    Copied(std::ops::Range<usize>),
}

/// The top-level members of a stored object's JSON but `apiVersion` and `kind`, if it is an
/// object with one `metadata` object that holds no `resourceVersion`. Only compact JSON (no
/// whitespace outside strings, as serde_json writes it) is read: whitespace is a surprise, and
/// any surprise is `None`; validity is not assumed.
fn stored_members(json: &[u8]) -> Option<Vec<Member>> {
    let mut scan = JsonScan { json, at: 0 };
    let mut members = Vec::with_capacity(8);
    let mut metadata = false;
    scan.object_entries(|scan, start, key| {
        match key {
            b"apiVersion" | b"kind" => scan.skip_value()?,
            b"metadata" => {
                if metadata || scan.peek() != Some(b'{') {
                    return None;
                }
                metadata = true;
                let mut has_rv = false;
                scan.object_entries(|scan, _, key| {
                    has_rv |= key == b"resourceVersion";
                    scan.skip_value()
                })?;
                if has_rv {
                    return None;
                }
                members.push(Member::Metadata {
                    start,
                    close: scan.at - 1,
                });
            }
            _ => {
                scan.skip_value()?;
                members.push(Member::Copied(start..scan.at));
            }
        }
        Some(())
    })?;
    if scan.at != json.len() || !metadata {
        return None;
    }
    Some(members)
}

/// A forward scanner over compact JSON bytes that knows only where values begin and end.
struct JsonScan<'a> {
    json: &'a [u8],
    at: usize,
}

impl<'a> JsonScan<'a> {
    fn peek(&self) -> Option<u8> {
        self.json.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// A string's raw bytes between its quotes (escapes left as they are).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        let end = self.at;
        self.at += 1;
        self.json.get(start..end)
    }

    /// Walks an object at the cursor, calling `entry` with each member's offset, its key, and
    /// the cursor on its value (which `entry` must consume); leaves the cursor after the
    /// closing brace.
    fn object_entries(
        &mut self,
        mut entry: impl FnMut(&mut Self, usize, &[u8]) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let start = self.at;
            let key = self.string()?;
            self.expect(b':')?;
            entry(self, start, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Moves past one value of any kind.
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek()?,
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                ) {
                    self.at += 1;
                }
                Some(())
            }
        }
    }
}

/// Sets `metadata.resourceVersion` of an object (creating `metadata` if needed) to `revision`.
pub fn set_resource_version(obj: &mut Value, revision: i64) {
    if let Value::Object(map) = obj {
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Value::Object(meta) = meta {
            meta.insert(
                "resourceVersion".to_owned(),
                Value::String(revision.to_string()),
            );
        }
    }
}

/// The bytes to store for `obj`: its JSON without `metadata.resourceVersion`, which the store
/// keeps as the mod revision instead (a stored copy would go stale on the next write). Written
/// straight from `obj`, without copying it: every write of the API server goes through here.
///
/// An object nested deeper than [`MAX_OBJECT_DEPTH`] is refused (422): stored, it could not be
/// read back, and every list of its resource would fail with it.
pub fn encode_object(obj: &Value) -> Result<Vec<u8>, Status> {
    if depth(obj) > MAX_OBJECT_DEPTH {
        return Err(too_deep());
    }
    serde_json::to_vec(&WithoutResourceVersion(obj)).map_err(|e| {
        tracing::error!(error = %e, "object could not be encoded");
        Status::internal("the object could not be encoded")
    })
}

/// How deep an object may nest (objects and arrays in one another). Request bodies are parsed
/// with serde_json's limit of 128 levels, and so are stored objects when read back, inside lists
/// and watch events that add levels of their own; no built-in kind comes near 100. Only a JSON
/// patch can build a deeper object from shallow inputs (an `add` at a deep path), and it is
/// held to this bound as it applies ([`super::write`]).
pub const MAX_OBJECT_DEPTH: usize = 100;

/// The 422 for an object over [`MAX_OBJECT_DEPTH`].
pub fn too_deep() -> Status {
    Status::failure(
        422,
        "Invalid",
        format!("the object is nested more than {MAX_OBJECT_DEPTH} levels deep"),
    )
}

/// The nesting depth of `value`: 0 for a scalar, one more than its deepest member for an object
/// or array. Without recursion, so that no value can exhaust the stack here.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, above)) = pending.pop() {
        let members: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(map) => Box::new(map.values()),
            Value::Array(items) => Box::new(items.iter()),
            _ => continue,
        };
        deepest = deepest.max(above + 1);
        pending.extend(members.map(|member| (member, above + 1)));
    }
    deepest
}

/// Serializes an object as is but for `metadata.resourceVersion`.
struct WithoutResourceVersion<'a>(&'a Value);

impl serde::Serialize for WithoutResourceVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let Value::Object(map) = self.0 else {
            return self.0.serialize(serializer);
        };
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, value) in map {
            match value {
                Value::Object(meta) if key == "metadata" => {
                    out.serialize_entry(key, &MetadataWithoutResourceVersion(meta))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.end()
    }
}

struct MetadataWithoutResourceVersion<'a>(&'a Map<String, Value>);

impl serde::Serialize for MetadataWithoutResourceVersion<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut out = serializer.serialize_map(None)?;
        for (key, value) in self.0.iter().filter(|(k, _)| *k != "resourceVersion") {
            out.serialize_entry(key, value)?;
        }
        out.end()
    }
}

/// The media type without parameters, lower-cased: `application/json; charset=utf-8` ->
/// `application/json`.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A request body as JSON, by its `Content-Type`.
///
/// Objects come as `application/json`, `application/yaml` or kube's protobuf (no Content-Type means JSON, as
/// kube-apiserver takes the first supported type). The patch types are parsed too, so a patch
/// handler gets a `Value`; which patch semantics to apply is the caller's concern. JSON and YAML
/// objects must be objects; a JSON patch is an array.
pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, Status> {
    let media = content_type.map(essence).unwrap_or_default();
    let yaml = match media.as_str() {
        ""
        | "application/json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => false,
        "application/yaml" | "application/apply-patch+yaml" => true,
        super::protobuf::MEDIA_TYPE => return super::protobuf::decode(body),
        _ => return Err(Status::unsupported_media_type()),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        // kube's decoder finds no kind in an empty document and says so in these words.
        return Err(Status::bad_request("Object 'Kind' is missing in ''"));
    }
    let value: Value = if yaml {
        serde_yaml::from_slice(body).map_err(|e| {
            Status::bad_request(format!(
                "couldn't get version/kind; yaml parse error: {}",
                first_line(&e.to_string())
            ))
        })?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Status::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    let want_array = media == "application/json-patch+json";
    match (&value, want_array) {
        (Value::Object(_), false) | (Value::Array(_), true) => Ok(value),
        (_, false) => Err(Status::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            go_type_name(&value)
        ))),
        (_, true) => Err(Status::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            go_type_name(&value)
        ))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// How Go's encoding/json names a JSON value's type in its errors.
fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What a read answers with, from the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// The object or list itself.
    Json,
    /// A `meta.k8s.io/v1` Table, each row carrying the object as asked by `includeObject`.
    Table(IncludeObject),
    /// `meta.k8s.io/v1` PartialObjectMetadata (a list: PartialObjectMetadataList): metadata only,
    /// what metadata informers (the garbage collector's) ask for.
    Metadata,
}

/// One media range of an `Accept` header.
struct MediaRange<'a> {
    essence: String,
    params: Vec<(String, &'a str)>,
}

impl<'a> MediaRange<'a> {
    fn parse(clause: &'a str) -> Self {
        let mut parts = clause.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')))
            .collect();
        Self { essence, params }
    }

    fn param(&self, name: &str) -> Option<&'a str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    fn json_compatible(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }
}

/// Picks the response form as kube-apiserver does: the first acceptable media range in the
/// header's order wins (kube ignores `q`). `as=Table;g=meta.k8s.io;v=v1|v1beta1` asks for a
/// Table; `as=PartialObjectMetadata` or `as=PartialObjectMetadataList` (same group and versions)
/// for metadata only, whether the request is for one object or a list (kube insists on the
/// matching name); a plain JSON range, `*/*` or no header asks for the object; any other `as=`
/// is skipped so that the next range can match. Nothing acceptable (say protobuf alone) is 406.
pub fn negotiate(accept: Option<&str>, query: &QueryParams) -> Result<Negotiated, Status> {
    let accept = accept.map(str::trim).unwrap_or("");
    if accept.is_empty() {
        return Ok(Negotiated::Json);
    }
    for clause in accept.split(',') {
        let range = MediaRange::parse(clause);
        if !range.json_compatible() {
            continue;
        }
        match range.param("as") {
            None => return Ok(Negotiated::Json),
            Some(kind)
                if range.param("g") == Some("meta.k8s.io")
                    && matches!(range.param("v"), Some("v1" | "v1beta1")) =>
            {
                match kind {
                    "Table" => return Ok(Negotiated::Table(include_object(query)?)),
                    "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                        return Ok(Negotiated::Metadata)
                    }
                    _ => continue,
                }
            }
            Some(_) => continue,
        }
    }
    Err(Status::failure(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    ))
}

/// The `includeObject` query parameter of a Table request; kube's default is `Metadata`.
fn include_object(query: &QueryParams) -> Result<IncludeObject, Status> {
    match query.get("includeObject") {
        None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
        Some("None") => Ok(IncludeObject::None),
        Some("Object") => Ok(IncludeObject::Object),
        Some(other) => Err(Status::bad_request(format!(
            "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
        ))),
    }
}

/// A JSON response.
pub fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    // Serializing a Value cannot fail (its map keys are strings).
    let bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    bytes_response(code, bytes)
}

/// A `metav1.Status` response, with the HTTP status taken from its `code`.
pub fn status_response(s: &Status) -> Response<Body> {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    bytes_response(code, s.to_json())
}

/// A response of JSON the caller encoded.
pub fn json_bytes_response(code: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    bytes_response(code, bytes)
}

fn bytes_response(code: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kv(value: &[u8], rev: i64) -> KeyValue {
        KeyValue {
            key: "/registry/pods/default/p".into(),
            value: value.to_vec(),
            create_revision: 1,
            mod_revision: rev,
        }
    }

    #[test]
    fn decode_sets_resource_version_and_encode_removes_it() {
        let obj =
            decode_object(&kv(br#"{"kind":"Pod","metadata":{"name":"p"}}"#, 42)).expect("decodes");
        assert_eq!(obj["metadata"]["resourceVersion"], "42");
        let stored = encode_object(&obj).expect("encodes");
        let back: Value = serde_json::from_slice(&stored).expect("json");
        assert_eq!(back, json!({"kind":"Pod","metadata":{"name":"p"}}));
        let bare = decode_object(&kv(br#"{"kind":"Pod"}"#, 7)).expect("decodes");
        assert_eq!(bare["metadata"]["resourceVersion"], "7");

        // Byte for byte what serializing a copy without the field gives, key order kept;
        // a resourceVersion elsewhere than metadata stays.
        let full = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "resourceVersion": "9", "labels": {"resourceVersion": "x"}},
            "spec": {"resourceVersion": 1, "containers": [{"name": "a", "image": "i"}]},
            "status": {"phase": "Running", "x": 1.5},
        });
        let mut copy = full.clone();
        copy["metadata"]
            .as_object_mut()
            .map(|m| m.remove("resourceVersion"));
        assert_eq!(
            encode_object(&full).expect("encodes"),
            serde_json::to_vec(&copy).expect("json")
        );
        // Not an object, or a metadata that is not one: written as is.
        for odd in [json!([1, 2]), json!({"metadata": "m"})] {
            assert_eq!(
                encode_object(&odd).expect("encodes"),
                serde_json::to_vec(&odd).expect("json")
            );
        }
    }

    #[test]
    fn corrupt_values_are_500_without_the_data() {
        for bad in [&b"{secret-data"[..], b"[1,2]", b"\"s3cr3t\""] {
            let err = decode_object(&kv(bad, 3)).expect_err("corrupt");
            assert_eq!(err.code, 500);
            assert_eq!(err.reason, "InternalError");
            assert!(!err.message.contains("secret") && !err.message.contains("s3cr3t"));
        }
    }

    #[test]
    fn bodies_by_content_type() {
        let obj = json!({"kind": "ConfigMap", "data": {"a": "1"}});
        let body = serde_json::to_vec(&obj).expect("json");
        assert_eq!(parse_body(None, &body).expect("json"), obj);
        assert_eq!(
            parse_body(Some("application/json; charset=utf-8"), &body).expect("json"),
            obj
        );
        let yaml = b"kind: ConfigMap\ndata:\n  a: \"1\"\n";
        assert_eq!(
            parse_body(Some("application/yaml"), yaml).expect("yaml"),
            obj
        );
        let patch = br#"[{"op":"add","path":"/a","value":1}]"#;
        assert!(parse_body(Some("application/json-patch+json"), patch)
            .expect("patch")
            .is_array());
        assert!(parse_body(Some("application/merge-patch+json"), &body).is_ok());
    }

    #[test]
    fn bad_bodies_are_400_and_unknown_types_415() {
        let cases: &[(Option<&str>, &[u8], u16, &str)] = &[
            (None, b"", 400, "Object 'Kind' is missing in ''"),
            (None, b"  \n", 400, "Object 'Kind' is missing"),
            (
                None,
                b"{not json",
                400,
                "couldn't get version/kind; json parse error",
            ),
            (None, b"[1]", 400, "cannot unmarshal array"),
            (Some("application/yaml"), b"a: [", 400, "yaml parse error"),
            (
                Some("application/json-patch+json"),
                b"{}",
                400,
                "jsonpatch.Patch",
            ),
            (Some("text/plain"), b"{}", 415, "unknown format"),
            (
                Some("application/vnd.kubernetes.protobuf"),
                b"k8s",
                400,
                "kube protobuf prefix",
            ),
            (Some("application/cbor"), b"{}", 415, "unknown format"),
        ];
        for (ct, body, code, text) in cases {
            let err = parse_body(*ct, body).expect_err("rejected");
            assert_eq!(err.code, *code, "{ct:?} {body:?}");
            assert!(err.message.contains(text), "{}", err.message);
        }
    }

    #[test]
    fn negotiation_follows_kube() {
        let q = QueryParams::parse("");
        let kubectl_get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let cases: &[(Option<&str>, Result<Negotiated, u16>)] = &[
            (None, Ok(Negotiated::Json)),
            (Some(""), Ok(Negotiated::Json)),
            (Some("*/*"), Ok(Negotiated::Json)),
            (Some("application/json"), Ok(Negotiated::Json)),
            (Some("application/json, */*"), Ok(Negotiated::Json)),
            (Some("application/vnd.kubernetes.protobuf, */*"), Ok(Negotiated::Json)),
            (Some(kubectl_get), Ok(Negotiated::Table(IncludeObject::Metadata))),
            (
                Some("application/json;as=Table;v=v1beta1;g=meta.k8s.io"),
                Ok(Negotiated::Table(IncludeObject::Metadata)),
            ),
            (
                Some("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"),
                Ok(Negotiated::Metadata),
            ),
            // kube-rs's metadata watcher, and client-go's metadata client.
            (
                Some("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
                Ok(Negotiated::Metadata),
            ),
            (
                Some("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"),
                Ok(Negotiated::Metadata),
            ),
            (
                Some("application/json;as=PartialObjectMetadata;v=v2;g=meta.k8s.io,application/json"),
                Ok(Negotiated::Json),
            ),
            (
                Some("application/json;as=Status;v=v1;g=meta.k8s.io"),
                Err(406),
            ),
            (Some("application/json;as=Table;v=v2;g=meta.k8s.io"), Err(406)),
            (Some("application/vnd.kubernetes.protobuf"), Err(406)),
            (Some("application/yaml"), Err(406)),
        ];
        for (accept, want) in cases {
            let got = negotiate(*accept, &q).map_err(|s| s.code);
            assert_eq!(&got, want, "{accept:?}");
        }
        let err = negotiate(Some("application/vnd.kubernetes.protobuf"), &q).expect_err("406");
        assert_eq!(err.reason, "NotAcceptable");
    }

    #[test]
    fn include_object_param() {
        let table = Some("application/json;as=Table;v=v1;g=meta.k8s.io");
        for (q, want) in [
            ("includeObject=None", IncludeObject::None),
            ("includeObject=Object", IncludeObject::Object),
            ("includeObject=Metadata", IncludeObject::Metadata),
        ] {
            assert_eq!(
                negotiate(table, &QueryParams::parse(q)).expect("ok"),
                Negotiated::Table(want)
            );
        }
        let err = negotiate(table, &QueryParams::parse("includeObject=All")).expect_err("bad");
        assert_eq!(err.code, 400);
        // Plain JSON ignores the parameter, as kube does.
        assert_eq!(
            negotiate(None, &QueryParams::parse("includeObject=All")).expect("ok"),
            Negotiated::Json
        );
    }

    #[test]
    fn responses_are_json() {
        let r = status_response(&Status::gone("too old"));
        assert_eq!(r.status(), StatusCode::GONE);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON);
        let r = json_response(StatusCode::CREATED, &json!({"a": 1}));
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON);
    }

    /// The bytes a list writes for a stored value: the fast copy must equal decoding and
    /// encoding (as a list item: no apiVersion, no kind), whatever the value holds.
    fn both_ways(value: &[u8]) -> (Result<Vec<u8>, u16>, Result<Vec<u8>, u16>) {
        let stored = kv(value, 42);
        let mut fast = Vec::new();
        let fast = write_list_item(&stored, &mut fast)
            .map(|()| fast)
            .map_err(|s| s.code);
        let slow = decode_list_item(&stored)
            .map(|obj| serde_json::to_vec(&obj).unwrap_or_default())
            .map_err(|s| s.code);
        (fast, slow)
    }

    #[test]
    fn stored_objects_are_written_as_decoding_and_encoding_would() {
        // What encode_object stores: the same bytes either way.
        let stored = [
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "a", "namespace": "ns", "uid": "u",
                    "annotations": {"x": "}{\"]", "y": "\\\"}", "z": "\u{1}\n"},
                    "labels": {"k": "v"}, "resourceVersion": "7"},
                "data": {"metadata": "{not this one}", "n": "1"}
            }),
            json!({"kind": "X", "metadata": {}, "spec": [1, -2.5e-7, true, null, {"a": []}]}),
            json!({"metadata": {"name": "only"}}),
            json!({"kind": "K", "apiVersion": "v1", "metadata": {"name": "m"}}),
            json!({"spec": 1, "kind": "K", "metadata": {"name": "m"}, "apiVersion": "v1", "z": [1]}),
            json!({"kind": "X"}),
            json!({"metadata": "text"}),
        ];
        for obj in &stored {
            let value = encode_object(obj).unwrap_or_default();
            let (fast, slow) = both_ways(&value);
            assert!(slow.is_ok(), "{obj}");
            assert_eq!(fast, slow, "{obj}");
        }
        // JSON that serde_json would not have written (whitespace, escapes it does not use, a
        // resourceVersion kept): the same object, if not the same bytes.
        for value in [
            &br#"{"metadata":{"name":"a","resourceVersion":"1"},"z":1}"#[..],
            br#" { "metadata" : { "name" : "a" } , "b" : [ 1 , 2 ] } "#,
            br#"{"metadata":{"name":"a\u0022}\/"},"b":"\\","c":1E2}"#,
        ] {
            let (fast, slow) = both_ways(value);
            let parse = |bytes: Result<Vec<u8>, u16>| {
                bytes.map(|b| serde_json::from_slice::<Value>(&b).unwrap_or_default())
            };
            assert!(slow.is_ok(), "{}", String::from_utf8_lossy(value));
            assert_eq!(
                parse(fast),
                parse(slow),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn damaged_stored_values_are_500s_in_lists_too() {
        for value in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"metadata\":{\"name\":\"a\"}",
            b"{\"metadata\":{\"name\":\"a\"}}}",
            b"{\"metadata\":{\"name\":\"a\"},\"b\":tru}",
            b"{\"metadata\":{\"name\":\"a\\",
            b"{\"metadata\":{\"name\":\"\xff\xfe\"}}",
            b"{\"metadata\":{\"name\":\"a\"},\"n\":1E999}",
            b"",
        ] {
            let (fast, slow) = both_ways(value);
            assert_eq!(fast, Err(500), "{}", String::from_utf8_lossy(value));
            assert_eq!(slow, Err(500));
        }
    }
}
