//! Hop-by-hop headers (RFC 9110 7.6.1): the ones that describe one connection, not the message,
//! and so must not be forwarded by a proxy. Owned here because both the last hop
//! ([`crate::proxy`], requests) and the upstream client ([`crate::upstream`], both ways) strip
//! them.
//!
//! Threat model: `Connection` lets the sender name *any* header as hop-by-hop, identity headers
//! included. A proxy that strips after setting `X-Remote-*` lets a client delete the identity the
//! gateway set; so the proxy strips first and sets identity last, and the upstream client checks
//! that its own strip took no identity header away ([`identity_headers`]).

use http::header::{HeaderName, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue};
use kgate_core::headers::is_identity_header;

/// Removes the headers named in `Connection`, then `Connection` itself and the other headers
/// that are always hop-by-hop.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
}

/// Every identity header (`X-Remote-*`, `X-Forwarded-*`, `Impersonate-*`) with its values, in
/// order: what a header rewrite must leave as it was.
pub fn identity_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| is_identity_header(name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_names_any_header_and_all_hop_headers_go() {
        let mut headers = HeaderMap::new();
        headers.append(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Remote-User"),
        );
        headers.append(CONNECTION, HeaderValue::from_static("x-custom"));
        headers.insert("x-remote-user", HeaderValue::from_static("alice"));
        headers.insert("x-custom", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert("accept", HeaderValue::from_static("application/json"));
        remove_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn identity_headers_are_listed_in_order() {
        let mut headers = HeaderMap::new();
        headers.insert("x-remote-user", HeaderValue::from_static("alice"));
        headers.append("x-remote-group", HeaderValue::from_static("a"));
        headers.append("x-remote-group", HeaderValue::from_static("b"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        let listed = identity_headers(&headers);
        let values: Vec<_> = listed.iter().map(|(_, v)| v.as_bytes()).collect();
        assert_eq!(values, [&b"alice"[..], b"a", b"b"]);
    }
}
