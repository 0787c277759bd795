//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`), with the grammar, validation,
//! matching and error wording of `k8s.io/apimachinery/pkg/labels` and `.../fields`, and the
//! per-kind field labels that kube-apiserver registers (`pkg/apis/*/v1/conversion.go`).
//!
//! Selectors are parsed once per request and matched against JSON objects; a selector a client
//! gets wrong is a 400 BadRequest whose message is kube's, so kubectl users see familiar text.

// `Status` is the error type of the HTTP edge by contract (the handlers send it as the body);
// boxing it here would only move the allocation into every caller.
#![allow(clippy::result_large_err)]

use std::borrow::Cow;
use std::fmt;

use kgate_core::Status;
use serde_json::Value;

use crate::resources::ResourceDef;

/// A label selector requirement's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.op {
            Op::Equals | Op::In => value.is_some_and(has),
            Op::NotEquals | Op::NotIn => !value.is_some_and(has),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// A lexer token, as kube's `labels` lexer has them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    /// The literal kube prints in "found '...'" errors.
    fn literal(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::Bang => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }
}

fn lex(s: &str) -> Vec<Token> {
    let special = |c: char| "!=,()<>".contains(c) || c.is_whitespace();
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_eq = chars.peek().is_some_and(|(_, n)| *n == '=');
        let tok = match c {
            c if c.is_whitespace() => continue,
            '!' | '=' if next_is_eq => {
                chars.next();
                if c == '!' {
                    Token::NotEquals
                } else {
                    Token::DoubleEquals
                }
            }
            '!' => Token::Bang,
            '=' => Token::Equals,
            '>' => Token::Gt,
            '<' => Token::Lt,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            _ => {
                let mut end = s.len();
                while let Some((j, n)) = chars.peek() {
                    if special(*n) {
                        end = *j;
                        break;
                    }
                    chars.next();
                }
                Token::Ident(s[i..end].to_owned())
            }
        };
        out.push(tok);
    }
    out.push(Token::End);
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.pos += 1;
        t
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = *self.peek() == Token::Bang;
        if negated {
            self.next();
        }
        let key = match self.next() {
            Token::Ident(k) => k,
            other => return Err(format!("found '{}', expected: identifier", other.literal())),
        };
        if let Some(msg) = qualified_name_error(&key) {
            return Err(format!("key: Invalid value: {key:?}: {msg}"));
        }
        if negated {
            return Ok(Requirement {
                key,
                op: Op::DoesNotExist,
                values: vec![],
            });
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Ok(Requirement {
                key,
                op: Op::Exists,
                values: vec![],
            });
        }
        let op = match self.next() {
            Token::Ident(w) if w == "in" => Op::In,
            Token::Ident(w) if w == "notin" => Op::NotIn,
            Token::Equals | Token::DoubleEquals => Op::Equals,
            Token::NotEquals => Op::NotEquals,
            Token::Gt => Op::GreaterThan,
            Token::Lt => Op::LessThan,
            other => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                ))
            }
        };
        let values = if matches!(op, Op::In | Op::NotIn) {
            self.value_set()?
        } else {
            self.exact_value()?
        };
        for (i, v) in values.iter().enumerate() {
            if let Some(msg) = label_value_error(v) {
                return Err(format!("values[{i}][{key}]: Invalid value: {v:?}: {msg}"));
            }
        }
        if matches!(op, Op::GreaterThan | Op::LessThan) && values[0].parse::<i64>().is_err() {
            return Err("for 'Gt', 'Lt' operators, the value must be an integer".to_owned());
        }
        Ok(Requirement { key, op, values })
    }

    /// `= value`, where a missing value means the empty string (`a=` selects `a: ""`).
    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        match self.peek() {
            Token::End | Token::Comma => Ok(vec![String::new()]),
            _ => match self.next() {
                Token::Ident(v) => Ok(vec![v]),
                other => Err(format!("found '{}', expected: identifier", other.literal())),
            },
        }
    }

    /// `(a, b)`; empty members (`()`, `(a,)`) are the empty string, as in kube.
    fn value_set(&mut self) -> Result<Vec<String>, String> {
        let open = self.next();
        if open != Token::Open {
            return Err(format!("found '{}' expected: '('", open.literal()));
        }
        let mut values: Vec<String> = Vec::new();
        let push = |values: &mut Vec<String>, v: String| {
            if !values.contains(&v) {
                values.push(v);
            }
        };
        let mut expect_value = true;
        loop {
            match self.next() {
                Token::Ident(v) if expect_value => {
                    push(&mut values, v);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        push(&mut values, String::new());
                    }
                    expect_value = true;
                }
                Token::Close => {
                    if expect_value {
                        push(&mut values, String::new());
                    }
                    return Ok(values);
                }
                other if expect_value => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        other.literal()
                    ))
                }
                other => return Err(format!("found '{}', expected: ',' or ')'", other.literal())),
            }
        }
    }
}

impl LabelSelector {
    /// Parses kube's label selector syntax: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`,
    /// `a`, `!a`, `a>1`, `a<1`, joined by commas. Errors are 400 with kube's text.
    pub fn parse(s: &str) -> Result<LabelSelector, Status> {
        let mut p = Parser {
            tokens: lex(s),
            pos: 0,
        };
        let mut requirements = Vec::new();
        loop {
            match p.peek() {
                Token::End => break,
                Token::Ident(_) | Token::Bang => {}
                other => {
                    return Err(Status::bad_request(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    )))
                }
            }
            let r = p
                .requirement()
                .map_err(|e| Status::bad_request(format!("unable to parse requirement: {e}")))?;
            requirements.push(r);
            match p.next() {
                Token::End => break,
                Token::Comma if matches!(p.peek(), Token::Ident(_) | Token::Bang) => {}
                Token::Comma => {
                    return Err(Status::bad_request(format!(
                        "found '{}', expected: identifier after ','",
                        p.peek().literal()
                    )))
                }
                other => {
                    return Err(Status::bad_request(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        other.literal()
                    )))
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Selects everything.
    pub fn everything() -> LabelSelector {
        LabelSelector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `object`'s `metadata.labels` satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

/// kube's `labels.Selector.String()` form, which [`LabelSelector::parse`] reads back as the same
/// selector (values in their order, without kube's sorting).
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let first = r.values.first().map_or("", String::as_str);
            match r.op {
                Op::Equals => write!(f, "{}={first}", r.key)?,
                Op::NotEquals => write!(f, "{}!={first}", r.key)?,
                Op::GreaterThan => write!(f, "{}>{first}", r.key)?,
                Op::LessThan => write!(f, "{}<{first}", r.key)?,
                Op::Exists => f.write_str(&r.key)?,
                Op::DoesNotExist => write!(f, "!{}", r.key)?,
                Op::In | Op::NotIn => {
                    let op = if r.op == Op::In { "in" } else { "notin" };
                    write!(f, "{} {op} ({})", r.key, r.values.join(","))?
                }
            }
        }
        Ok(())
    }
}

const NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

/// `[A-Za-z0-9]` at both ends, `[-A-Za-z0-9_.]` between.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        }
        _ => false,
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || *c == b'-')
    })
}

/// kube's `validation.IsQualifiedName`, as one message (parts joined by "; ").
fn qualified_name_error(key: &str) -> Option<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else if prefix.len() > 253 {
                errs.push("prefix part must be no more than 253 characters".to_owned());
            } else if !is_dns1123_subdomain(prefix) {
                errs.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_owned());
            }
            name
        }
        _ => {
            return Some(format!("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{NAME_FMT}') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_owned());
    }
    if !name.is_empty() && !is_label_name(name) {
        errs.push(format!("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{NAME_FMT}')"));
    }
    (!errs.is_empty()).then(|| errs.join("; "))
}

/// kube's `validation.IsValidLabelValue`.
fn label_value_error(v: &str) -> Option<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !v.is_empty() && !is_label_name(v) {
        errs.push(format!("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '({NAME_FMT})?')"));
    }
    (!errs.is_empty()).then(|| errs.join("; "))
}

/// One `field op value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    negated: bool,
    value: String,
}

/// A parsed field selector: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// The field labels kube-apiserver registers per kind, beyond `metadata.name` and
/// `metadata.namespace`; `None` for kinds with kube's default conversion only.
fn kind_fields(def: &ResourceDef) -> Option<&'static [&'static str]> {
    Some(match (def.group, def.kind) {
        ("", "Pod") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("apps", "ReplicaSet") => &["status.replicas"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("", "ReplicationController") => &["status.replicas"],
        // resource.k8s.io/v1's conversion: metadata.name and these, not metadata.namespace.
        ("resource.k8s.io", "ResourceSlice") => &["spec.nodeName", "spec.driver"],
        _ => return None,
    })
}

/// The value of a field label on an object, as kube's `GetAttrs` functions compute it: missing
/// strings are "", booleans and numbers print as Go's `fmt.Sprint` does. Borrowed when the
/// object holds the string, as matching runs for every watcher on every event.
pub(crate) fn field_value<'a>(object: &'a Value, field: &str) -> Cow<'a, str> {
    let at = |path: &str| {
        path.split('.')
            .try_fold(object, |v, k| v.get(k))
            .filter(|v| !v.is_null())
    };
    let text = |v: Option<&'a Value>| match v {
        Some(Value::String(s)) => Cow::Borrowed(s.as_str()),
        Some(other) => Cow::Owned(other.to_string()),
        None => Cow::Borrowed(""),
    };
    let flag = |b: bool| Cow::Borrowed(if b { "true" } else { "false" });
    match field {
        "spec.unschedulable" | "spec.hostNetwork" => {
            flag(at(field).and_then(Value::as_bool).unwrap_or(false))
        }
        "status.replicas" => Cow::Owned(at(field).and_then(Value::as_i64).unwrap_or(0).to_string()),
        // kube reads the first of status.podIPs, which mirrors status.podIP.
        "status.podIP" => text(at("status.podIPs.0.ip").or_else(|| at("status.podIP"))),
        "source" => text(at("source.component")),
        _ => text(at(field)),
    }
}

/// Splits on commas that are not escaped with `\`.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `(field, negated, raw value)` at the first unescaped `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        let rest = &term[i..];
        for (op, negated) in [("!=", true), ("==", false), ("=", false)] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], negated, value));
            }
        }
    }
    None
}

/// kube's `fields.UnescapeValue`.
fn unescape(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ))
                }
                None => {
                    return Err("invalid field selector: invalid escape sequence: \\".to_owned())
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ))
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// kube's `fields.Selector.String()` form (a `\`, `,` or `=` in a value escaped with `\`), which
/// [`FieldSelector::parse`] reads back as the same selector.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&t.field)?;
            f.write_str(if t.negated { "!=" } else { "=" })?;
            for c in t.value.chars() {
                if matches!(c, '\\' | ',' | '=') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl FieldSelector {
    /// Parses `f=v`, `f==v`, `f!=v` terms joined by commas (`\` escapes `,` `=` `\` in values),
    /// accepting only the fields kube serves for `def`'s kind. Field names are not trimmed, as
    /// in kube.
    pub fn parse(def: &ResourceDef, s: &str) -> Result<FieldSelector, Status> {
        let mut terms = Vec::new();
        for part in split_terms(s) {
            if part.is_empty() {
                continue;
            }
            let Some((field, negated, raw)) = split_term(part) else {
                return Err(Status::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape(raw).map_err(Status::bad_request)?;
            let slice = (def.group, def.kind) == ("resource.k8s.io", "ResourceSlice");
            let common = field == "metadata.name" || (field == "metadata.namespace" && !slice);
            match kind_fields(def) {
                _ if common => {}
                Some(fields) if fields.contains(&field) => {}
                Some(_) if slice => {
                    return Err(Status::bad_request(format!(
                        "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: {field}"
                    )))
                }
                Some(_) => {
                    return Err(Status::bad_request(format!(
                        "field label not supported: {field}"
                    )))
                }
                None => {
                    return Err(Status::bad_request(format!(
                        "{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                    )))
                }
            }
            terms.push(FieldTerm {
                field: field.to_owned(),
                negated,
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Selects everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// The name when the selector requires `metadata.name` to equal one value (a lookup by key
    /// can then replace a scan).
    pub fn required_name(&self) -> Option<&str> {
        self.required_value("metadata.name")
    }

    /// The value `field` must equal for the selector to hold, if a term requires one (the watch
    /// cache then routes only the events with that value to the watch).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// Whether every term holds for `object`.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (field_value(object, &t.field) == t.value) != t.negated)
    }
}

#[cfg(test)]
#[path = "selectors_tests.rs"]
mod tests;
