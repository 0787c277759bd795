//! The differential suites' machinery: a table of requests ([`Case`]) sent in order to kgate and
//! to the real kube-apiserver, and the comparison of the two answers.
//!
//! What it owns: sending each case to both servers at once (curl, as the case's identity),
//! per-server variables a case may save from its answer and later cases use (`{name}` in a path,
//! header or body: a `continue` token, a resourceVersion), and what "the same answer" means:
//! the HTTP status, the `Content-Type`, the `Warning` headers, and the body — a `Status` whole
//! (status, message, reason, details, code), an object or list after [`mask`], a Table with its
//! time cells masked, a watch stream event by event, a protobuf body by its envelope and bytes
//! (see [`Compare::Protobuf`]).

use crate::reference::{mask_volatile, Differences};
use crate::{ApiServer, Identity, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// Who sends a case.
#[derive(Debug, Clone)]
pub enum Who {
    /// A `system:masters` client certificate.
    Admin,
    /// A client certificate for this user in these groups (RBAC grants them nothing).
    User(&'static str, &'static [&'static str]),
    /// No credentials at all.
    Anonymous,
    /// `Authorization: Bearer` with this (invalid) token.
    Token(&'static str),
}

/// How the two bodies are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// JSON: a `Status` whole, anything else after [`mask`]; a body that is not JSON as text.
    Json,
    /// A `meta.k8s.io/v1` Table: as JSON, with the cells of `Age` and `date` columns masked.
    Table,
    /// A watch stream: one JSON event per line, each after [`mask`].
    Watch,
    /// A protobuf body (`k8s\0` + `runtime.Unknown`): the envelope's TypeMeta, content type and
    /// encoding are compared exactly, and the object's raw bytes field by field: every top-level
    /// field but `metadata` byte for byte, and in `metadata` every field but uid, resourceVersion,
    /// creationTimestamp, deletionTimestamp and managedFields (their times differ by nature;
    /// the JSON cases compare managedFields masked). A body with no volatile field (a `Status`)
    /// is compared byte for byte.
    Protobuf,
}

/// One row of a differential table.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<String>,
    pub body: Option<(String, Vec<u8>)>,
    pub who: Who,
    pub compare: Compare,
    /// `(variable, JSON pointer)`: saved from each server's own answer after the case.
    pub save: Vec<(String, String)>,
    /// JSON pointers masked in both answers: values made at random by design (a token).
    pub masks: Vec<String>,
    /// A `generateName` whose random suffix is masked wherever the answers quote it (the
    /// name in an error's message and details).
    pub generated: Option<String>,
}

impl Case {
    pub fn new(id: &str, method: &'static str, path: &str) -> Case {
        Case {
            id: id.to_owned(),
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
            who: Who::Admin,
            compare: Compare::Json,
            save: Vec::new(),
            masks: Vec::new(),
            generated: None,
        }
    }

    /// Masks the five random characters after `prefix` in every text of both answers.
    pub fn generated(mut self, prefix: &str) -> Case {
        self.generated = Some(prefix.to_owned());
        self
    }

    /// Masks the value at `pointer` in both answers (a value random by design, such as a token).
    pub fn mask(mut self, pointer: &str) -> Case {
        self.masks.push(pointer.to_owned());
        self
    }

    pub fn header(mut self, header: &str) -> Case {
        self.headers.push(header.to_owned());
        self
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    pub fn json(self, body: &Value) -> Case {
        self.body("application/json", body.to_string())
    }

    pub fn who(mut self, who: Who) -> Case {
        self.who = who;
        self
    }

    pub fn compare(mut self, compare: Compare) -> Case {
        self.compare = compare;
        self
    }

    /// Saves the value at `pointer` of each server's answer as `{var}` for later cases.
    pub fn save(mut self, var: &str, pointer: &str) -> Case {
        self.save.push((var.to_owned(), pointer.to_owned()));
        self
    }
}

pub fn get(id: &str, path: &str) -> Case {
    Case::new(id, "GET", path)
}

pub fn post(id: &str, path: &str, body: Value) -> Case {
    Case::new(id, "POST", path).json(&body)
}

pub fn put(id: &str, path: &str, body: Value) -> Case {
    Case::new(id, "PUT", path).json(&body)
}

pub fn patch(id: &str, path: &str, content_type: &str, body: Value) -> Case {
    Case::new(id, "PATCH", path).body(content_type, body.to_string())
}

pub fn delete(id: &str, path: &str) -> Case {
    Case::new(id, "DELETE", path)
}

/// One server's side of the comparison: its variables and its users' kubeconfigs.
struct Side<'a> {
    server: &'a dyn ApiServer,
    vars: HashMap<String, String>,
    users: HashMap<String, PathBuf>,
}

impl Side<'_> {
    fn substitute(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (name, value) in &self.vars {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }

    fn identity(&mut self, who: &Who) -> Identity {
        match who {
            Who::Admin => Identity::Kubeconfig(self.server.admin_kubeconfig()),
            Who::Anonymous => Identity::None,
            Who::Token(token) => Identity::Bearer((*token).to_owned()),
            Who::User(user, groups) => {
                let server = self.server;
                let path = self
                    .users
                    .entry(format!("{user}:{}", groups.join(",")))
                    .or_insert_with(|| server.kubeconfig_for(user, groups, "2h"));
                Identity::Kubeconfig(path.clone())
            }
        }
    }

    fn send(&self, case: &Case, identity: Identity) -> Response {
        let mut request = crate::request(self.server, case.method, &self.substitute(&case.path))
            .identity(identity);
        for header in &case.headers {
            request = request.header(&self.substitute(header));
        }
        if let Some((content_type, body)) = &case.body {
            let body = match std::str::from_utf8(body) {
                Ok(text) => self.substitute(text).into_bytes(),
                Err(_) => body.clone(),
            };
            request = request.body(content_type, body);
        }
        request.send()
    }

    fn save(&mut self, case: &Case, response: &Response) {
        let Ok(body) = serde_json::from_str::<Value>(&response.body) else {
            return;
        };
        for (var, pointer) in &case.save {
            let value = match body.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            self.vars.insert(var.clone(), value);
        }
    }
}

/// A differential run: kgate and the reference, and the tally of one suite.
pub struct Differential<'a> {
    kgate: Side<'a>,
    reference: Side<'a>,
    suite: String,
    /// Cases whose answers differed in `metadata.managedFields` (and nothing else there).
    managed_fields: Vec<String>,
    pub differences: Differences,
}

impl<'a> Differential<'a> {
    pub fn new(suite: &str, kgate: &'a dyn ApiServer, reference: &'a dyn ApiServer) -> Self {
        let side = |server| Side {
            server,
            vars: HashMap::new(),
            users: HashMap::new(),
        };
        Differential {
            kgate: side(kgate),
            reference: side(reference),
            suite: suite.to_owned(),
            managed_fields: Vec::new(),
            differences: Differences::new(suite),
        }
    }

    /// Sends one request to both (not a compared case): setup, such as a namespace.
    pub fn both(&mut self, case: &Case) -> (Response, Response) {
        let ki = self.kgate.identity(&case.who);
        let ri = self.reference.identity(&case.who);
        let (kgate, reference) = (&self.kgate, &self.reference);
        let (k, r) = std::thread::scope(|s| {
            let k = s.spawn(|| kgate.send(case, ki));
            let r = reference.send(case, ri);
            (k.join().expect("the kgate request thread panicked"), r)
        });
        self.kgate.save(case, &k);
        self.reference.save(case, &r);
        (k, r)
    }

    /// Sends each case to both servers in order and records whether they agreed.
    pub fn run(&mut self, cases: &[Case]) {
        for case in cases {
            self.run_one(case);
        }
    }

    /// One case: sent, compared and recorded; returns both answers (kgate's first).
    pub fn run_one(&mut self, case: &Case) -> (Response, Response) {
        let (k, r) = self.both(case);
        let (difference, managed_fields) = compare(case, &k, &r);
        if managed_fields {
            self.managed_fields.push(case.id.clone());
        }
        if let Some(what) = &difference {
            crate::note(&format!(
                "differs {}:{}: {} {}\n{what}",
                self.suite, case.id, case.method, case.path
            ));
        }
        self.differences.case(&case.id, difference);
        (k, r)
    }

    /// Records a case compared by the caller.
    pub fn record(&mut self, id: &str, difference: Option<String>) {
        if let Some(what) = &difference {
            crate::note(&format!("differs {}:{id}: {what}", self.suite));
        }
        self.differences.case(id, difference);
    }

    /// Records the case `managed-fields` (the cases whose `metadata.managedFields` differed),
    /// prints `agreed / total` and fails on a difference not listed (or listed and gone).
    #[track_caller]
    pub fn finish(mut self) {
        let managed = std::mem::take(&mut self.managed_fields);
        let difference = (!managed.is_empty()).then(|| {
            format!(
                "managedFields differ in {} cases: {}",
                managed.len(),
                managed.join(", ")
            )
        });
        self.record("managed-fields", difference);
        self.differences.assert_only_known();
    }
}

/// What differs between kgate's answer `k` and the reference's `r` to `case`, if anything, and
/// whether their `metadata.managedFields` differed. managedFields are compared apart (and
/// tallied as one case of their own by [`Differential::finish`]) so that a server that does
/// not track field managers still has the rest of each object compared.
pub fn compare(case: &Case, k: &Response, r: &Response) -> (Option<String>, bool) {
    let mut out = Vec::new();
    let mut managed_fields = false;
    if k.status != r.status {
        out.push(format!("status: kgate {} vs kube {}", k.status, r.status));
    }
    let ct = |resp: &Response| {
        resp.header_values("content-type")
            .first()
            .map(|v| v.replace(' ', "").to_ascii_lowercase())
            .unwrap_or_default()
    };
    if ct(k) != ct(r) {
        out.push(format!(
            "content-type: kgate {:?} vs kube {:?}",
            ct(k),
            ct(r)
        ));
    }
    let warnings = |resp: &Response| {
        let mut w: Vec<String> = resp
            .header_values("warning")
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        w.sort();
        w
    };
    if warnings(k) != warnings(r) {
        out.push(format!(
            "warnings: kgate {:?} vs kube {:?}",
            warnings(k),
            warnings(r)
        ));
    }
    match case.compare {
        Compare::Json | Compare::Table => {
            managed_fields = compare_json(case, k, r, &mut out);
        }
        Compare::Watch => managed_fields = compare_watch(k, r, &mut out),
        Compare::Protobuf => compare_protobuf(k, r, &mut out),
    }
    let difference = if out.is_empty() {
        None
    } else {
        Some(out.join("\n"))
    };
    (difference, managed_fields)
}

/// Takes `metadata.managedFields` out of every object in `value` (at any depth), masked, in
/// the order met.
fn take_managed_fields(value: &mut Value, out: &mut Vec<Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(meta)) = map.get_mut("metadata") {
                if let Some(mut fields) = meta.remove("managedFields") {
                    mask_volatile(&mut fields);
                    out.push(fields);
                }
            }
            map.values_mut().for_each(|v| take_managed_fields(v, out));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| take_managed_fields(v, out)),
        _ => {}
    }
}

/// Whether the managedFields of `k` and `r` differ; takes them out of both.
fn managed_fields_differ(k: &mut Value, r: &mut Value) -> bool {
    let (mut km, mut rm) = (Vec::new(), Vec::new());
    take_managed_fields(k, &mut km);
    take_managed_fields(r, &mut rm);
    km != rm
}

fn compare_json(case: &Case, k: &Response, r: &Response, out: &mut Vec<String>) -> bool {
    let mut managed = false;
    match (
        serde_json::from_str::<Value>(&k.body),
        serde_json::from_str::<Value>(&r.body),
    ) {
        (Ok(mut kv), Ok(mut rv)) => {
            managed = managed_fields_differ(&mut kv, &mut rv);
            mask(&mut kv);
            mask(&mut rv);
            if let Some(prefix) = &case.generated {
                mask_generated(&mut kv, prefix);
                mask_generated(&mut rv, prefix);
            }
            for pointer in &case.masks {
                for v in [&mut kv, &mut rv] {
                    if let Some(field) = v.pointer_mut(pointer) {
                        *field = Value::String("<masked>".into());
                    }
                }
            }
            if case.compare == Compare::Table {
                mask_age_cells(&mut kv);
                mask_age_cells(&mut rv);
            }
            json_diff("", &kv, &rv, out);
        }
        _ => {
            if k.body.trim() != r.body.trim() {
                out.push(format!(
                    "body (not both JSON): kgate {:?} vs kube {:?}",
                    clip(&k.body),
                    clip(&r.body)
                ));
            }
        }
    }
    managed
}

fn compare_watch(k: &Response, r: &Response, out: &mut Vec<String>) -> bool {
    let events = |resp: &Response| -> Vec<Value> {
        resp.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut v = serde_json::from_str(l).unwrap_or(Value::String(l.to_owned()));
                mask(&mut v);
                v
            })
            .collect()
    };
    let (mut ke, mut re) = (events(k), events(r));
    let mut managed = false;
    for (a, b) in ke.iter_mut().zip(re.iter_mut()) {
        managed |= managed_fields_differ(a, b);
    }
    if ke.len() != re.len() {
        out.push(format!(
            "watch events: kgate {} vs kube {}",
            ke.len(),
            re.len()
        ));
    }
    for (i, (a, b)) in ke.iter().zip(re.iter()).enumerate() {
        json_diff(&format!("[event {i}]"), a, b, out);
    }
    managed
}

/// Masks what differs between two servers by nature: [`mask_volatile`], plus the random suffix
/// of a ServiceAccount token volume (`kube-api-access-xxxxx`), the addresses a Service is
/// allocated at random from its range, and uids quoted inside text (a precondition's message).
pub fn mask(value: &mut Value) {
    mask_volatile(value);
    mask_allocated(value);
}

fn mask_allocated(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match (key.as_str(), &field) {
                    ("clusterIP", Value::String(ip)) if ip != "None" && !ip.is_empty() => {
                        *field = Value::String("<clusterIP>".into());
                    }
                    ("clusterIPs", Value::Array(ips))
                        if ips
                            .iter()
                            .all(|ip| ip.as_str().is_some_and(|s| s != "None")) =>
                    {
                        *field = Value::String("<clusterIPs>".into());
                    }
                    ("nodePort", Value::Number(_)) => {
                        *field = Value::String("<nodePort>".into());
                    }
                    _ => mask_allocated(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_allocated),
        Value::String(s) => {
            if let Some(suffix) = s.strip_prefix("kube-api-access-") {
                if suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
                    *s = "kube-api-access-<suffix>".into();
                }
            }
            *s = mask_uuids(s);
        }
        _ => {}
    }
}

/// Replaces `prefix` and the five characters a name generator appended to it, in every string
/// of `value`, with `prefix<suffix>`.
fn mask_generated(value: &mut Value, prefix: &str) {
    match value {
        Value::String(s) => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(at) = rest.find(prefix) {
                out.push_str(&rest[..at + prefix.len()]);
                rest = &rest[at + prefix.len()..];
                let suffix: String = rest.chars().take(5).collect();
                if suffix.len() == 5 && suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
                    out.push_str("<suffix>");
                    rest = &rest[5..];
                }
            }
            out.push_str(rest);
            *s = out;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask_generated(v, prefix)),
        Value::Object(map) => map.values_mut().for_each(|v| mask_generated(v, prefix)),
        _ => {}
    }
}

/// `text` with each UUID (8-4-4-4-12 hex digits) in it replaced by `<uuid>`.
fn mask_uuids(text: &str) -> String {
    let is_uuid = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= 36 && is_uuid(&bytes[i..i + 36]) {
            out.push_str("<uuid>");
            i += 36;
        } else {
            let ch = text[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

/// Masks the cells of a Table's time columns: those named `Age` (how long ago, read from the
/// clock) and those of type `date` (a creation time).
fn mask_age_cells(table: &mut Value) {
    let ages: Vec<usize> = table["columnDefinitions"]
        .as_array()
        .map(|cols| {
            cols.iter()
                .enumerate()
                .filter(|(_, c)| c["name"] == "Age" || c["type"] == "date")
                .map(|(i, _)| i)
                .collect()
        })
        .unwrap_or_default();
    if let Some(rows) = table["rows"].as_array_mut() {
        for row in rows {
            if let Some(cells) = row["cells"].as_array_mut() {
                for &i in &ages {
                    if let Some(cell) = cells.get_mut(i) {
                        *cell = Value::String("<age>".into());
                    }
                }
            }
        }
    }
}

/// Appends where `k` (kgate) and `r` (kube) differ, by JSON path (at most 12 entries).
pub fn json_diff(path: &str, k: &Value, r: &Value, out: &mut Vec<String>) {
    const MAX: usize = 12;
    if out.len() >= MAX || k == r {
        return;
    }
    match (k, r) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let p = format!("{path}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => json_diff(&p, x, y, out),
                    (Some(x), None) => {
                        out.push(format!("{p}: only kgate has {}", clip(&x.to_string())))
                    }
                    (None, Some(y)) => {
                        out.push(format!("{p}: only kube has {}", clip(&y.to_string())))
                    }
                    (None, None) => {}
                }
                if out.len() >= MAX {
                    return;
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                json_diff(&format!("{path}/{i}"), x, y, out);
            }
        }
        _ => out.push(format!(
            "{path}: kgate {} vs kube {}",
            clip(&k.to_string()),
            clip(&r.to_string())
        )),
    }
}

fn clip(text: &str) -> String {
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text.to_owned()
    }
}

fn compare_protobuf(k: &Response, r: &Response, out: &mut Vec<String>) {
    const MAGIC: &[u8] = b"k8s\0";
    let (Some(kb), Some(rb)) = (k.bytes.strip_prefix(MAGIC), r.bytes.strip_prefix(MAGIC)) else {
        if k.bytes.starts_with(MAGIC) != r.bytes.starts_with(MAGIC) {
            out.push(format!(
                "protobuf envelope: kgate {} vs kube {}",
                k.bytes.starts_with(MAGIC),
                r.bytes.starts_with(MAGIC)
            ));
        } else if k.bytes != r.bytes {
            out.push("body (neither protobuf) differs".into());
        }
        return;
    };
    let (Some(ku), Some(ru)) = (fields(kb), fields(rb)) else {
        out.push("protobuf: runtime.Unknown does not decode".into());
        return;
    };
    // runtime.Unknown: 1 typeMeta, 2 raw, 3 contentEncoding, 4 contentType.
    for n in [1, 3, 4] {
        if field(&ku, n) != field(&ru, n) {
            out.push(format!(
                "protobuf Unknown field {n}: kgate {:?} vs kube {:?}",
                field(&ku, n).map(String::from_utf8_lossy),
                field(&ru, n).map(String::from_utf8_lossy)
            ));
        }
    }
    let (kraw, rraw) = (
        field(&ku, 2).unwrap_or_default(),
        field(&ru, 2).unwrap_or_default(),
    );
    let type_meta = field(&ru, 1).and_then(fields).unwrap_or_default();
    if field(&type_meta, 2) == Some(b"Status") {
        if kraw != rraw {
            out.push("protobuf Status bytes differ".into());
        }
        return;
    }
    let (Some(ko), Some(ro)) = (fields(kraw), fields(rraw)) else {
        out.push("protobuf: the object does not decode".into());
        return;
    };
    let numbers = |fs: &[(u64, &[u8])]| {
        let mut n: Vec<u64> = fs.iter().map(|(n, _)| *n).collect();
        n.dedup();
        n
    };
    if numbers(&ko) != numbers(&ro) {
        out.push(format!(
            "protobuf object fields: kgate {:?} vs kube {:?}",
            numbers(&ko),
            numbers(&ro)
        ));
    }
    for ((kn, kv), (_, rv)) in ko.iter().zip(ro.iter()) {
        if *kn != 1 {
            if kv != rv {
                out.push(format!("protobuf object field {kn} differs"));
            }
            continue;
        }
        // ObjectMeta: 5 uid, 6 resourceVersion, 8 creationTimestamp, 9 deletionTimestamp,
        // 17 managedFields differ by nature.
        let keep = |bytes: &[u8]| -> Option<Vec<(u64, Vec<u8>)>> {
            Some(
                fields(bytes)?
                    .into_iter()
                    .filter(|(n, _)| ![5, 6, 8, 9, 17].contains(n))
                    .map(|(n, v)| (n, v.to_vec()))
                    .collect(),
            )
        };
        if keep(kv) != keep(rv) {
            out.push(
                "protobuf metadata differs (uid, resourceVersion, times, managedFields aside)"
                    .into(),
            );
        }
    }
}

fn field<'b>(fs: &[(u64, &'b [u8])], n: u64) -> Option<&'b [u8]> {
    fs.iter().find(|(m, _)| *m == n).map(|(_, v)| *v)
}

/// A message's fields as `(number, bytes)`; varints are given as their encoded bytes.
fn fields(mut bytes: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
        let mut value = 0u64;
        for (i, b) in bytes.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some((value, i + 1));
            }
        }
        None
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (key, n) = varint(bytes)?;
        bytes = &bytes[n..];
        let value = match key & 7 {
            0 => {
                let (_, n) = varint(bytes)?;
                let v = &bytes[..n];
                bytes = &bytes[n..];
                v
            }
            2 => {
                let (len, n) = varint(bytes)?;
                let len = usize::try_from(len).ok()?;
                let v = bytes.get(n..n + len)?;
                bytes = &bytes[n + len..];
                v
            }
            1 => {
                let v = bytes.get(..8)?;
                bytes = &bytes[8..];
                v
            }
            5 => {
                let v = bytes.get(..4)?;
                bytes = &bytes[4..];
                v
            }
            _ => return None,
        };
        out.push((key >> 3, value));
    }
    Some(out)
}
