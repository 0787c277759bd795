//! One resource request as the handlers see it ([`Req`]), its common options (`dryRun`,
//! `fieldValidation`), the bounded body read, and the handlers' answer ([`Reply`]).

use axum::body::Body;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use kgate_core::request_info::QueryParams;
use kgate_core::Status;
use serde_json::Value;

use super::codec::{json_bytes_response, json_response, parse_body};
use super::decode::FieldValidation;
use super::keys::Target;
use crate::resources::ResourceDef;

/// The largest request body accepted, as kube-apiserver's `MaxRequestBodyBytes` (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// A resource request, routed.
pub(crate) struct Req {
    pub def: &'static ResourceDef,
    /// The namespace of a namespaced resource; `None` for cluster-scoped ones and for lists
    /// across all namespaces.
    pub namespace: Option<String>,
    /// The object's name; empty for a collection.
    pub name: String,
    /// Empty for the main resource.
    pub subresource: String,
    pub query: QueryParams,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The options kind of the verb (`CreateOptions`, `UpdateOptions`, `PatchOptions`,
    /// `DeleteOptions`; empty for reads), which kube names when an option is invalid.
    pub options_kind: &'static str,
}

impl Req {
    /// The object this request addresses.
    pub fn target(&self) -> Target<'_> {
        Target {
            def: self.def,
            namespace: self.namespace.as_deref(),
            name: &self.name,
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    pub fn accept(&self) -> Option<&str> {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
    }

    /// The body as a JSON value (JSON or YAML by Content-Type).
    pub fn body_value(&self) -> Result<Value, Status> {
        parse_body(self.content_type(), &self.body)
    }

    /// `dryRun=All` (the only value kube accepts).
    pub fn dry_run(&self) -> Result<bool, Status> {
        dry_run_values(self.query.get_all("dryRun"), self.options_kind)
    }

    pub fn field_validation(&self) -> Result<FieldValidation, Status> {
        match self.query.get("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(FieldValidation::Warn),
            "Ignore" => Ok(FieldValidation::Ignore),
            "Strict" => Ok(FieldValidation::Strict),
            other => Err(invalid_option(
                self.options_kind,
                "fieldValidation",
                format!(
                    "Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                ),
            )),
        }
    }
}

/// kube's 422 for an invalid option of `options_kind` (`CreateOptions.meta.k8s.io "" is
/// invalid: ...`).
fn invalid_option(options_kind: &str, field: &str, message: String) -> Status {
    Status::invalid(
        "meta.k8s.io",
        options_kind,
        "",
        vec![kgate_core::status::StatusCause {
            reason: "FieldValueNotSupported".into(),
            message,
            field: field.into(),
        }],
    )
}

/// Whether a list of `dryRun` values asks for a dry run; anything but `All` is 422, as kube
/// (which shows the whole list).
pub(crate) fn dry_run_values<'a>(
    values: impl Iterator<Item = &'a str>,
    options_kind: &str,
) -> Result<bool, Status> {
    let values: Vec<&str> = values.collect();
    let mut dry = false;
    for v in &values {
        match *v {
            "All" => dry = true,
            "" => {}
            _ => {
                return Err(invalid_option(
                    options_kind,
                    "dryRun",
                    format!(
                        "Unsupported value: {}: supported values: \"All\"",
                        serde_json::to_string(&values).unwrap_or_default()
                    ),
                ))
            }
        }
    }
    Ok(dry)
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]; more is 413 and nothing is processed.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Status> {
    let too_large = || Status::request_entity_too_large(format!("limit is {MAX_BODY_BYTES} bytes"));
    // Refuse an announced oversized body before reading any of it.
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| too_large())
}

/// A handler's answer: a JSON body with its code, plus `Warning` headers.
#[derive(Debug)]
pub(crate) struct Reply {
    pub code: StatusCode,
    pub body: Value,
    /// The body already encoded as JSON, written instead of `body` (which is then `Null`):
    /// lists of stored objects ([`super::read`]).
    pub encoded: Option<Vec<u8>>,
    pub warnings: Vec<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self::new(StatusCode::OK, body)
    }

    pub fn new(code: StatusCode, body: Value) -> Self {
        Self {
            code,
            body,
            encoded: None,
            warnings: Vec::new(),
        }
    }

    /// A body the handler encoded itself (JSON).
    pub fn encoded(code: StatusCode, json: Vec<u8>) -> Self {
        Self {
            code,
            body: Value::Null,
            encoded: Some(json),
            warnings: Vec::new(),
        }
    }

    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let mut response = match self.encoded {
            Some(bytes) => json_bytes_response(self.code, bytes),
            None => json_response(self.code, &self.body),
        };
        for w in &self.warnings {
            if let Ok(v) = HeaderValue::from_str(&warning_header(w)) {
                response.headers_mut().append(header::WARNING, v);
            }
        }
        response
    }
}

/// An RFC 7234 warning as kube-apiserver writes it: `299 - "<text>"`, with `"` and `\` escaped.
fn warning_header(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            // Header values cannot hold control characters.
            c if c.is_control() => quoted.push(' '),
            c => quoted.push(c),
        }
    }
    format!("299 - \"{quoted}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_quoted_as_kube_does() {
        assert_eq!(
            warning_header("unknown field \"spec.foo\""),
            r#"299 - "unknown field \"spec.foo\"""#
        );
    }

    #[test]
    fn dry_run_accepts_only_all() {
        assert!(dry_run_values(["All"].into_iter(), "CreateOptions").unwrap_or(false));
        assert!(!dry_run_values(std::iter::empty(), "CreateOptions").unwrap_or(true));
        assert_eq!(
            dry_run_values(["Some"].into_iter(), "CreateOptions").map_err(|s| s.code),
            Err(422)
        );
    }
}
