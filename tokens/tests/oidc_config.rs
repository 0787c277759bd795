//! The example authentication configurations under deploy/examples parse, and map claims to the
//! users their comments promise, through the crate's public API only.

#![allow(clippy::unwrap_used)]

use kgate_core::UserInfo;
use kgate_tokens::oidc::{AuthenticationConfig, ClaimsError, ConfigError, LegacyOidcFlags};
use serde_json::json;

fn example(name: &str) -> AuthenticationConfig {
    let path = format!("{}/../deploy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    AuthenticationConfig::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn oidc_two_issuer_example_maps_sso_and_ci_users() {
    let config = example("authentication-config.yaml");
    assert_eq!(config.jwt.len(), 2);
    let sso = &config.jwt[0];
    assert_eq!(sso.issuer_url, "https://sso.example.com/realms/corp");
    assert_eq!(sso.audiences, ["kgate", "kubectl"]);
    assert!(sso.discovery_url.is_some());

    let claims = json!({
        "iss": "https://sso.example.com/realms/corp", "aud": "kgate",
        "sub": "f0c1d2e3", "email": "jane@example.com", "email_verified": true,
        "hd": "example.com", "groups": ["dev", "oncall"], "department": "platform",
        "iat": 1_700_000_000, "exp": 1_700_003_600,
    });
    let mut want = UserInfo::new("corp:jane@example.com").with_groups(["corp:dev", "corp:oncall"]);
    want.uid = "f0c1d2e3".into();
    want.extra
        .insert("example.com/department".into(), vec!["platform".into()]);
    want.extra.insert(
        "example.com/email-domain".into(),
        vec!["example.com".into()],
    );
    assert_eq!(sso.user_from_claims(&claims).unwrap(), want);

    // No department: the key is left out.
    let mut no_department = claims.clone();
    no_department.as_object_mut().unwrap().remove("department");
    let user = sso.user_from_claims(&no_department).unwrap();
    assert!(!user.extra.contains_key("example.com/department"));

    let mut unverified = claims.clone();
    unverified["email_verified"] = json!(false);
    assert_eq!(
        sso.user_from_claims(&unverified),
        Err(ClaimsError::ClaimValidation {
            message: "the email address must be verified".into()
        })
    );
    let mut other_domain = claims.clone();
    other_domain["hd"] = json!("evil.example");
    assert!(matches!(
        sso.user_from_claims(&other_domain),
        Err(ClaimsError::ClaimValidation { .. })
    ));
    let mut system_group = claims;
    system_group["groups"] = json!(["system:masters"]);
    // The prefix makes it `corp:system:masters`: allowed.
    assert!(sso.user_from_claims(&system_group).is_ok());

    let ci = &config.jwt[1];
    let claims = json!({
        "iss": "https://token.actions.githubusercontent.com", "aud": "https://kgate.example.com",
        "sub": "repo:example-org/app:ref:refs/heads/main", "repository": "example-org/app",
        "repository_owner": "example-org", "repository_id": "123456", "ref": "refs/heads/main",
        "workflow": "deploy",
    });
    let mut want = UserInfo::new("ci:example-org/app").with_groups(["ci", "ci:example-org"]);
    want.uid = "123456".into();
    want.extra
        .insert("example.com/workflow".into(), vec!["deploy".into()]);
    assert_eq!(ci.user_from_claims(&claims).unwrap(), want);

    let mut branch = claims.clone();
    branch["ref"] = json!("refs/heads/feature");
    assert_eq!(
        ci.user_from_claims(&branch),
        Err(ClaimsError::ClaimValidation {
            message: "only workflows on the main branch may deploy".into()
        })
    );
    let mut fork = claims;
    fork["repository_owner"] = json!("someone-else");
    assert!(matches!(
        ci.user_from_claims(&fork),
        Err(ClaimsError::ClaimValidation { .. })
    ));
}

#[test]
fn oidc_legacy_equivalent_example_matches_the_flags() {
    let file = example("authentication-config-legacy-equivalent.yaml");
    let flags = AuthenticationConfig::from_legacy_flags(&LegacyOidcFlags {
        issuer_url: "https://sso.example.com".into(),
        client_id: "kgate".into(),
        username_claim: Some("email".into()),
        groups_claim: Some("groups".into()),
        groups_prefix: Some("oidc:".into()),
        required_claims: vec![("hd".into(), "example.com".into())],
        ..Default::default()
    })
    .unwrap();
    let claims = json!({"sub": "1", "email": "jane@example.com", "email_verified": true,
        "hd": "example.com", "groups": ["dev"]});
    let want = UserInfo::new("jane@example.com").with_groups(["oidc:dev"]);
    assert_eq!(file.jwt[0].user_from_claims(&claims).unwrap(), want);
    assert_eq!(flags.jwt[0].user_from_claims(&claims).unwrap(), want);
    let mut unverified = claims;
    unverified["email_verified"] = json!(false);
    assert_eq!(
        file.jwt[0].user_from_claims(&unverified),
        Err(ClaimsError::EmailNotVerified)
    );
    assert_eq!(
        flags.jwt[0].user_from_claims(&unverified),
        Err(ClaimsError::EmailNotVerified)
    );
}

#[test]
fn oidc_config_errors_display_the_field() {
    let text = b"apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: https://a.example.com\n    audiences: [a]\n  claimMappings:\n    username:\n      expression: \"claims.sub +\"\n";
    let e = AuthenticationConfig::parse(text).unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { .. }));
    assert!(
        e.to_string()
            .starts_with("jwt[0].claimMappings.username.expression: compilation failed"),
        "{e}"
    );
}
