//! `bearer`: the authentication stage's reading of request headers:
//! [`credentials`] (the `Authorization: Bearer` token) and [`strip_client_identity`].
//!
//! Input: header lines, `name: value` separated by `\n` (a line that is not a valid header is
//! skipped; values may hold any byte HTTP allows). Properties: a token is taken only from a
//! single `Authorization` header of the form `Bearer <token>` (scheme in any case, one space, a
//! non-empty token without whitespace) and is exactly the rest of that header; any other
//! `Authorization` makes the credentials presented but malformed (never anonymous); the token
//! never shows in `Debug`; after stripping, no `Authorization`, `X-Remote-*` or
//! `X-Forwarded-*` header is left, `Impersonate-*` stay for their own stage, and every other
//! header is kept unchanged.

use axum::body::Body;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Request};
use kgate_core::headers::is_identity_header;
use kgate_gateway::layers::authentication::{credentials, strip_client_identity};

/// Runs one input; true when a bearer token was taken.
pub fn run(data: &[u8]) -> bool {
    let mut request = Request::new(Body::empty());
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    let headers = request.headers().clone();
    let authorization: Vec<&HeaderValue> = headers.get_all(AUTHORIZATION).iter().collect();
    let found = credentials(&request);

    assert_eq!(found.presented(), !authorization.is_empty());
    assert!(found.client_certificates.is_empty());
    let taken = match &found.bearer_token {
        Some(token) => {
            assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
            assert!(!found.malformed_authorization);
            let [value] = authorization.as_slice() else {
                panic!("a token from {} Authorization headers", authorization.len());
            };
            let token = token.expose_secret();
            let value = value.as_bytes();
            assert!(!token.is_empty() && !token.contains(|c: char| c.is_ascii_whitespace()));
            assert_eq!(value.len(), "Bearer ".len() + token.len());
            assert!(value[..6].eq_ignore_ascii_case(b"bearer") && value[6] == b' ');
            assert_eq!(&value[7..], token.as_bytes());
            true
        }
        None => {
            assert_eq!(found.malformed_authorization, !authorization.is_empty());
            false
        }
    };

    let mut stripped = headers.clone();
    strip_client_identity(&mut stripped);
    for name in headers.keys() {
        let kept: Vec<&HeaderValue> = stripped.get_all(name).iter().collect();
        let removed = *name == AUTHORIZATION
            || (is_identity_header(name.as_str()) && !name.as_str().starts_with("impersonate-"));
        if removed {
            assert!(kept.is_empty(), "{name} survived");
        } else {
            let sent: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
            assert_eq!(kept, sent, "{name} changed");
        }
    }
    taken
}
