//! Header names that carry identity. The gateway strips every one a client sends and sets the
//! front-proxy ones itself; the control plane trusts the front-proxy ones only from the gateway.

/// Front-proxy (requestheader) user name, as kube-apiserver's `--requestheader-username-headers`.
pub const REMOTE_USER: &str = "x-remote-user";
/// Front-proxy uid.
pub const REMOTE_UID: &str = "x-remote-uid";
/// Front-proxy group; repeated once per group.
pub const REMOTE_GROUP: &str = "x-remote-group";
/// Prefix of front-proxy extra attributes: `X-Remote-Extra-<percent-encoded key>`.
pub const REMOTE_EXTRA_PREFIX: &str = "x-remote-extra-";

pub const IMPERSONATE_USER: &str = "impersonate-user";
pub const IMPERSONATE_UID: &str = "impersonate-uid";
pub const IMPERSONATE_GROUP: &str = "impersonate-group";
pub const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

/// True for any header a client could use to claim an identity upstream (front-proxy,
/// forwarding and impersonation headers). `Authorization` is handled separately.
pub fn is_identity_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("x-remote-")
        || name.starts_with("x-forwarded-")
        || name.starts_with("impersonate-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_recognised_in_any_case() {
        assert!(is_identity_header("X-Remote-User"));
        assert!(is_identity_header("x-remote-extra-scopes"));
        assert!(is_identity_header("X-Forwarded-For"));
        assert!(is_identity_header("Impersonate-Group"));
        assert!(!is_identity_header("Accept"));
        assert!(!is_identity_header("Authorization"));
    }
}
