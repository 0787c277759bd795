//! The TokenRequest pieces that need no server: timestamps, the error wording, and that the
//! TokenRequest schema is known (its protobuf body decodes; the whole flow is in
//! `tests/service_accounts.rs`).

use super::*;

#[test]
fn timestamps_are_rfc3339_utc_seconds() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(
        unix_seconds(UNIX_EPOCH + std::time::Duration::from_secs(42)),
        42
    );
}

#[test]
fn errors_use_kubes_words() {
    let s = invalid(
        "",
        "spec.expirationSeconds",
        "Invalid value: 599: may not specify a duration less than 10 minutes".to_owned(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"#
    );
    let off = not_enabled();
    assert_eq!((off.code, off.reason.as_str()), (404, "NotFound"));
}

#[test]
fn the_token_request_schema_is_served() {
    assert!(
        crate::schema::definition_name_for_kind(GROUP, "v1", KIND).is_some(),
        "definitions.json holds TokenRequest (gen_definitions.py EXTRA)"
    );
    let mut body = json!({"kind": "TokenRequest", "spec": {"expirationSeconds": "soon"}});
    check_type(&TOKEN_REQUEST, &mut body).unwrap();
    assert_eq!(body["apiVersion"], "authentication.k8s.io/v1");
    let err = check_fields(
        &TOKEN_REQUEST,
        &mut body,
        super::super::decode::FieldValidation::Strict,
        true,
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
}
