//! Request bodies in `application/vnd.kubernetes.protobuf`, decoded into the JSON the client
//! would have sent.
//!
//! client-go's typed clients (`kubectl create namespace|rolebinding|deployment|secret...`) send
//! protobuf whatever the server prefers, so a Kubernetes-compatible server must read it. The
//! envelope is kube's: the magic `k8s\0`, then a `runtime.Unknown` holding the object's
//! apiVersion/kind and its encoded bytes. The object's fields are read with the table in
//! `schema-data/protobuf.json` (see `gen_protobuf.py`): tag → JSON name and type, per message.
//!
//! Go's protobuf encoder writes every non-pointer field, zero or not, where its JSON encoder
//! would omit it; zeros are dropped unless the table marks the field's zero as meaningful
//! (required, or a pointer such as `replicas`). Fields the table does not know are skipped, as
//! Go's decoder skips them. Responses stay JSON: clients that send protobuf accept JSON too.

use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine;
use kgate_core::Status;
use serde::Deserialize;
use serde_json::{Map, Number, Value};
use time::OffsetDateTime;

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every kube protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Nested messages deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 64;

/// Go's zero `time.Time` as Unix seconds: what an unset non-pointer `metav1.Time` encodes to.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// One field of a message: `[tag, json_name, kind, type, repeated, keep_zero]`.
#[derive(Debug, Deserialize)]
struct FieldRow(u32, String, Kind, String, bool, bool);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    String,
    Int32,
    Int64,
    Bool,
    Bytes,
    Double,
    Message,
    Map,
}

struct Field {
    json_name: String,
    kind: Kind,
    type_name: String,
    repeated: bool,
    keep_zero: bool,
}

type Table = HashMap<String, HashMap<u32, Field>>;

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // Generated and checked by this module's tests; a parse failure is a build defect, and an
    // empty table only makes protobuf bodies 415 again.
    let rows: HashMap<String, Vec<FieldRow>> =
        serde_json::from_str(include_str!("../../schema-data/protobuf.json")).unwrap_or_default();
    rows.into_iter()
        .map(|(message, fields)| {
            let fields = fields
                .into_iter()
                .map(
                    |FieldRow(tag, json_name, kind, type_name, repeated, keep_zero)| {
                        let field = Field {
                            json_name,
                            kind,
                            type_name,
                            repeated,
                            keep_zero,
                        };
                        (tag, field)
                    },
                )
                .collect();
            (message, fields)
        })
        .collect()
});

/// Decodes a protobuf request body into the object as JSON, with `apiVersion` and `kind` set.
pub fn decode(body: &[u8]) -> Result<Value, Status> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("the body does not start with the kube protobuf prefix"))?;
    let unknown = Unknown::read(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(Status::unsupported_media_type());
    }
    if unknown.kind.is_empty() {
        return Err(bad("Object 'Kind' is missing in the protobuf envelope"));
    }
    let (group, version) = match unknown.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", unknown.api_version.as_str()),
    };
    let message = crate::schema::definition_name_for_kind(group, version, &unknown.kind)
        .filter(|name| TABLE.contains_key(*name))
        .ok_or_else(|| {
            bad(format!(
                "no kind {:?} is registered for version {:?}",
                unknown.kind, unknown.api_version
            ))
        })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(unknown.api_version));
    object.insert("kind".into(), Value::String(unknown.kind));
    decode_message_into(message, unknown.raw, 0, &mut object)?;
    Ok(Value::Object(object))
}

fn bad(message: impl Into<String>) -> Status {
    Status::bad_request(format!(
        "unable to decode the protobuf body: {}",
        message.into()
    ))
}

/// `runtime.Unknown`: typeMeta (1: apiVersion, kind), raw (2), contentEncoding (3),
/// contentType (4).
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Unknown<'a> {
    fn read(bytes: &'a [u8]) -> Result<Self, Status> {
        let mut unknown = Unknown {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
        };
        let mut reader = Reader::new(bytes);
        while let Some((tag, value)) = reader.next_field()? {
            match (tag, value) {
                (1, Wire::Bytes(type_meta)) => {
                    let mut inner = Reader::new(type_meta);
                    while let Some((tag, value)) = inner.next_field()? {
                        match (tag, value) {
                            (1, Wire::Bytes(b)) => unknown.api_version = utf8(b)?.to_owned(),
                            (2, Wire::Bytes(b)) => unknown.kind = utf8(b)?.to_owned(),
                            _ => {}
                        }
                    }
                }
                (2, Wire::Bytes(b)) => unknown.raw = b,
                (3, Wire::Bytes(b)) => unknown.content_encoding = utf8(b)?.to_owned(),
                _ => {}
            }
        }
        Ok(unknown)
    }
}

/// A field's value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    fn varint(&mut self) -> Result<u64, Status> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self
                .bytes
                .split_first()
                .ok_or_else(|| bad("a varint runs past the end of the body"))?;
            self.bytes = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(bad("a varint is longer than ten bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Status> {
        if n > self.bytes.len() {
            return Err(bad("a field runs past the end of the body"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, Status> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| bad("a field number is out of range"))?;
        if tag == 0 {
            return Err(bad("field number 0"));
        }
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| bad("short fixed64"))?,
                ))
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| bad("a length is out of range"))?;
                Wire::Bytes(self.take(len)?)
            }
            5 => {
                // No served field is fixed32; skipped like any unknown field.
                self.take(4)?;
                Wire::Fixed32
            }
            other => return Err(bad(format!("unsupported wire type {other}"))),
        };
        Ok(Some((tag, value)))
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Status> {
    std::str::from_utf8(bytes).map_err(|_| bad("a string field is not UTF-8"))
}

/// Decodes the message `name` from `bytes` into `out` (the parent's map when it is embedded).
fn decode_message_into(
    name: &str,
    bytes: &[u8],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), Status> {
    if depth > MAX_DEPTH {
        return Err(bad("messages are nested too deeply"));
    }
    let fields = TABLE
        .get(name)
        .ok_or_else(|| bad(format!("no protobuf layout for {name}")))?;
    let mut reader = Reader::new(bytes);
    while let Some((tag, wire)) = reader.next_field()? {
        // Go's decoder skips fields it does not know; so does this one.
        let Some(field) = fields.get(&tag) else {
            continue;
        };
        if field.json_name.is_empty() {
            let Wire::Bytes(inner) = wire else {
                return Err(wrong_wire(name, tag));
            };
            decode_message_into(&field.type_name, inner, depth + 1, out)?;
            continue;
        }
        match field.kind {
            Kind::Map => {
                let Wire::Bytes(entry) = wire else {
                    return Err(wrong_wire(name, tag));
                };
                let (key, value) = map_entry(field, entry, depth)?;
                let map = out
                    .entry(field.json_name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            }
            _ if field.repeated => {
                let values =
                    repeated_values(field, wire, depth).ok_or_else(|| wrong_wire(name, tag))??;
                let list = out
                    .entry(field.json_name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.extend(values);
                }
            }
            _ => {
                let value = single_value(field.kind, &field.type_name, wire, depth)
                    .ok_or_else(|| wrong_wire(name, tag))??;
                if is_go_zero(&value) && !field.keep_zero {
                    out.remove(&field.json_name);
                } else {
                    out.insert(field.json_name.clone(), value);
                }
            }
        }
    }
    Ok(())
}

fn wrong_wire(message: &str, tag: u32) -> Status {
    bad(format!("field {tag} of {message} has the wrong wire type"))
}

/// The values of one occurrence of a repeated field: one value, or several when packed.
fn repeated_values(
    field: &Field,
    wire: Wire<'_>,
    depth: usize,
) -> Option<Result<Vec<Value>, Status>> {
    let packable = matches!(
        field.kind,
        Kind::Int32 | Kind::Int64 | Kind::Bool | Kind::Double
    );
    match (packable, wire) {
        (true, Wire::Bytes(packed)) => {
            let mut reader = Reader::new(packed);
            let mut values = Vec::new();
            while !reader.bytes.is_empty() {
                let element = if field.kind == Kind::Double {
                    match reader.take(8) {
                        Ok(b) => Wire::Fixed64(u64::from_le_bytes(b.try_into().ok()?)),
                        Err(e) => return Some(Err(e)),
                    }
                } else {
                    match reader.varint() {
                        Ok(v) => Wire::Varint(v),
                        Err(e) => return Some(Err(e)),
                    }
                };
                match single_value(field.kind, &field.type_name, element, depth)? {
                    Ok(v) => values.push(v),
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(values))
        }
        _ => Some(single_value(field.kind, &field.type_name, wire, depth)?.map(|v| vec![v])),
    }
}

/// A map entry: key (1) is a string, value (2) of the field's value type.
fn map_entry(field: &Field, entry: &[u8], depth: usize) -> Result<(String, Value), Status> {
    let value_kind = match field.type_name.as_str() {
        "string" => Kind::String,
        "bytes" => Kind::Bytes,
        _ => Kind::Message,
    };
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(entry);
    while let Some((tag, wire)) = reader.next_field()? {
        match (tag, wire) {
            (1, Wire::Bytes(b)) => key = utf8(b)?.to_owned(),
            (2, wire) => {
                value = Some(
                    single_value(value_kind, &field.type_name, wire, depth)
                        .ok_or_else(|| bad("a map value has the wrong wire type"))??,
                )
            }
            _ => {}
        }
    }
    // An absent value is the value type's zero.
    let value = value.unwrap_or_else(|| match value_kind {
        Kind::Message => Value::Object(Map::new()),
        _ => Value::String(String::new()),
    });
    Ok((key, value))
}

/// One scalar or message value; `None` when the wire type does not fit the kind.
fn single_value(
    kind: Kind,
    type_name: &str,
    wire: Wire<'_>,
    depth: usize,
) -> Option<Result<Value, Status>> {
    Some(match (kind, wire) {
        (Kind::String, Wire::Bytes(b)) => utf8(b).map(|s| Value::String(s.to_owned())),
        (Kind::Bytes, Wire::Bytes(b)) => Ok(Value::String(
            base64::engine::general_purpose::STANDARD.encode(b),
        )),
        // int32 is sign-extended to 64 bits on the wire: truncation restores it.
        (Kind::Int32, Wire::Varint(v)) => Ok(Value::from(v as i32)),
        (Kind::Int64, Wire::Varint(v)) => Ok(Value::from(v as i64)),
        (Kind::Bool, Wire::Varint(v)) => Ok(Value::Bool(v != 0)),
        (Kind::Double, Wire::Fixed64(v)) => Ok(Number::from_f64(f64::from_bits(v))
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        (Kind::Message, Wire::Bytes(b)) => special_message(type_name, b, depth),
        _ => return None,
    })
}

/// Messages whose JSON form is not an object of their fields.
fn special_message(name: &str, bytes: &[u8], depth: usize) -> Result<Value, Status> {
    let short = name.rsplit('.').next().unwrap_or(name);
    match (name, short) {
        ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", _) => timestamp(bytes, false),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime", _) => timestamp(bytes, true),
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", _) => {
            let mut quantity = String::new();
            for_each_field(bytes, |tag, wire| {
                if let (1, Wire::Bytes(b)) = (tag, wire) {
                    quantity = utf8(b)?.to_owned();
                }
                Ok(())
            })?;
            Ok(Value::String(quantity))
        }
        ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", _) => {
            let (mut is_string, mut int, mut string) = (false, 0i32, String::new());
            for_each_field(bytes, |tag, wire| {
                match (tag, wire) {
                    (1, Wire::Varint(t)) => is_string = t == 1,
                    (2, Wire::Varint(v)) => int = v as i32,
                    (3, Wire::Bytes(b)) => string = utf8(b)?.to_owned(),
                    _ => {}
                }
                Ok(())
            })?;
            Ok(if is_string {
                Value::String(string)
            } else {
                Value::from(int)
            })
        }
        (
            "io.k8s.apimachinery.pkg.runtime.RawExtension"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
            _,
        ) => {
            let mut raw = Value::Null;
            for_each_field(bytes, |tag, wire| {
                if let (1, Wire::Bytes(b)) = (tag, wire) {
                    raw = serde_json::from_slice(b)
                        .map_err(|_| bad(format!("the raw JSON of a {name} is not JSON")))?;
                }
                Ok(())
            })?;
            Ok(raw)
        }
        // Lists wrapped in a message for protobuf (`Verbs`, `ExtraValue`): JSON has the list.
        (_, "Verbs" | "ExtraValue") => {
            let mut items = Vec::new();
            for_each_field(bytes, |tag, wire| {
                if let (1, Wire::Bytes(b)) = (tag, wire) {
                    items.push(Value::String(utf8(b)?.to_owned()));
                }
                Ok(())
            })?;
            Ok(Value::Array(items))
        }
        _ => {
            let mut object = Map::new();
            decode_message_into(name, bytes, depth + 1, &mut object)?;
            Ok(Value::Object(object))
        }
    }
}

fn for_each_field<'a>(
    bytes: &'a [u8],
    mut f: impl FnMut(u32, Wire<'a>) -> Result<(), Status>,
) -> Result<(), Status> {
    let mut reader = Reader::new(bytes);
    while let Some((tag, wire)) = reader.next_field()? {
        f(tag, wire)?;
    }
    Ok(())
}

/// `metav1.Time` (RFC 3339, seconds) or `MicroTime` (microseconds). Go's zero time is null:
/// kube encodes it as an empty message (or, from older encoders, as year 1 in seconds).
fn timestamp(bytes: &[u8], micro: bool) -> Result<Value, Status> {
    let (mut seconds, mut nanos) = (None, 0i32);
    for_each_field(bytes, |tag, wire| {
        match (tag, wire) {
            (1, Wire::Varint(v)) => seconds = Some(v as i64),
            (2, Wire::Varint(v)) => nanos = v as i32,
            _ => {}
        }
        Ok(())
    })?;
    let seconds = match seconds {
        None if nanos == 0 => return Ok(Value::Null),
        Some(GO_ZERO_TIME_SECONDS) if nanos == 0 => return Ok(Value::Null),
        other => other.unwrap_or(0),
    };
    let at = OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| bad("a timestamp is out of range"))?;
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    Ok(Value::String(if micro {
        format!("{base}.{:06}Z", nanos.clamp(0, 999_999_999) / 1000)
    } else {
        format!("{base}Z")
    }))
}

/// What Go's JSON encoder would omit from a non-pointer `omitempty` field.
fn is_go_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(_) | Value::Object(_) => false,
    }
}

#[cfg(test)]
#[path = "protobuf_tests.rs"]
mod tests;
