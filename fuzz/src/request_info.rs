//! `request_info`: the request-info stage's parser, [`RequestInfo::parse`], on a request line.
//!
//! Input: `METHOD SP path[?query]` (no space: `GET` and the whole input as the target), UTF-8.
//! Beyond "no panic", an accepted path must hold what the gateway relies on: its decoded form
//! has no empty, `.` or `..` segment and no `\`, NUL or `//`; the names it yields have no `/`;
//! a resource request has the `api`/`apis` prefix, a version and a known verb; and parsing the
//! decoded path again, re-encoded, yields the same `RequestInfo` (one path, one meaning).

use kgate_core::request_info::is_valid_path_segment_name;
use kgate_core::RequestInfo;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

const VERBS: [&str; 10] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    // A resource request with a method kube has no verb for (OPTIONS, ...).
    "",
];

/// Runs one input; true when the path was accepted.
pub fn run(data: &[u8]) -> bool {
    let Ok(line) = std::str::from_utf8(data) else {
        return false;
    };
    let (method, target) = line.split_once(' ').unwrap_or(("GET", line));
    let (path, query) = target
        .split_once('?')
        .map_or((target, None), |(p, q)| (p, Some(q)));
    let Ok(info) = RequestInfo::parse(method, path, query) else {
        return false;
    };
    check(&info);
    let again = RequestInfo::parse(method, &reencode(&info.path), query);
    assert_eq!(again.as_ref(), Ok(&info), "re-encoded path {:?}", info.path);
    true
}

fn check(info: &RequestInfo) {
    let path = &info.path;
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    assert!(!path.contains(['\\', '\0']), "{path:?}");
    if path != "/" {
        for segment in path[1..].split('/') {
            assert!(
                !matches!(segment, "" | "." | ".."),
                "segment {segment:?} in {path:?}"
            );
        }
    }
    for part in [
        &info.namespace,
        &info.resource,
        &info.subresource,
        &info.name,
    ] {
        assert!(!part.contains('/'), "{part:?} of {path:?}");
    }
    if !info.name.is_empty() {
        assert!(
            info.parts.contains(&info.name) || is_valid_path_segment_name(&info.name),
            "name {:?} of {path:?}",
            info.name
        );
    }
    if info.is_resource_request {
        assert!(
            matches!(info.api_prefix.as_str(), "api" | "apis"),
            "{path:?}"
        );
        assert!(!info.api_version.is_empty(), "{path:?}");
        assert_eq!(
            info.api_group.is_empty(),
            info.api_prefix == "api",
            "{path:?}"
        );
        assert!(VERBS.contains(&info.verb.as_str()), "verb {:?}", info.verb);
    } else {
        assert!(info.resource.is_empty() && info.name.is_empty(), "{path:?}");
    }
}

/// The decoded path with every segment percent-encoded again.
fn reencode(path: &str) -> String {
    if path == "/" {
        return path.to_owned();
    }
    path[1..]
        .split('/')
        .map(|segment| format!("/{}", utf8_percent_encode(segment, NON_ALPHANUMERIC)))
        .collect()
}
