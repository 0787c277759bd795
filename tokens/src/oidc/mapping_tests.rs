use super::*;
use crate::oidc::config::{AuthenticationConfig, LegacyOidcFlags};
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.example.com";

/// One issuer whose `jwt` entry is `issuer` plus `rest` (claimMappings and rules).
fn issuer(rest: Value) -> JwtIssuer {
    let mut jwt = json!({"issuer": {"url": ISSUER, "audiences": ["kgate"]}});
    if let (Some(jwt), Some(rest)) = (jwt.as_object_mut(), rest.as_object()) {
        jwt.extend(rest.clone());
    }
    let file = json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [jwt],
    });
    let mut config = AuthenticationConfig::parse(file.to_string().as_bytes()).unwrap();
    config.jwt.remove(0)
}

fn sub_username() -> Value {
    json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}}})
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo::new(name).with_groups(groups.iter().copied())
}

/// Table: (case, jwt rules, claims, expected user or a predicate on the error).
#[test]
fn mapping_table() {
    type Check = fn(&ClaimsError) -> bool;
    enum Want {
        User(UserInfo),
        Err(Check),
    }
    let with_extra = |mut u: UserInfo, k: &str, v: &[&str]| {
        u.extra
            .insert(k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect());
        u
    };
    let cases: Vec<(&str, Value, Value, Want)> = vec![
        (
            "username claim sub, empty prefix",
            sub_username(),
            json!({"sub": "u1"}),
            Want::User(user("u1", &[])),
        ),
        (
            "username claim with prefix",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": "oidc:"}}}),
            json!({"sub": "u1"}),
            Want::User(user("oidc:u1", &[])),
        ),
        (
            "username claim missing",
            sub_username(),
            json!({"email": "x"}),
            Want::Err(|e| matches!(e, ClaimsError::MissingClaim { claim } if claim == "sub")),
        ),
        (
            "username claim not a string",
            sub_username(),
            json!({"sub": 42}),
            Want::Err(|e| matches!(e, ClaimsError::BadClaimType { claim, .. } if claim == "sub")),
        ),
        (
            "username claim empty",
            sub_username(),
            json!({"sub": ""}),
            Want::Err(|e| matches!(e, ClaimsError::EmptyUsername { .. })),
        ),
        (
            "email username, email_verified true",
            json!({"claimMappings": {"username": {"claim": "email", "prefix": ""}}}),
            json!({"email": "jane@example.com", "email_verified": true}),
            Want::User(user("jane@example.com", &[])),
        ),
        (
            "email username, email_verified absent",
            json!({"claimMappings": {"username": {"claim": "email", "prefix": ""}}}),
            json!({"email": "jane@example.com"}),
            Want::User(user("jane@example.com", &[])),
        ),
        (
            "email username, email_verified false",
            json!({"claimMappings": {"username": {"claim": "email", "prefix": ""}}}),
            json!({"email": "jane@example.com", "email_verified": false}),
            Want::Err(|e| *e == ClaimsError::EmailNotVerified),
        ),
        (
            "email username, email_verified a string",
            json!({"claimMappings": {"username": {"claim": "email", "prefix": ""}}}),
            json!({"email": "jane@example.com", "email_verified": "true"}),
            Want::Err(
                |e| matches!(e, ClaimsError::BadClaimType { claim, .. } if claim == "email_verified"),
            ),
        ),
        (
            "email_verified false ignored for other username claims",
            sub_username(),
            json!({"sub": "u1", "email_verified": false}),
            Want::User(user("u1", &[])),
        ),
        (
            "username expression",
            json!({"claimMappings": {"username": {"expression": "'oidc:' + claims.sub"}}}),
            json!({"sub": "u1"}),
            Want::User(user("oidc:u1", &[])),
        ),
        (
            "username expression not a string",
            json!({"claimMappings": {"username": {"expression": "claims.n"}}}),
            json!({"n": 1}),
            Want::Err(|e| {
                matches!(e, ClaimsError::Expression { field, reason }
                    if field == "jwt[0].claimMappings.username.expression" && reason.contains("string"))
            }),
        ),
        (
            "username expression empty",
            json!({"claimMappings": {"username": {"expression": "''"}}}),
            json!({}),
            Want::Err(|e| matches!(e, ClaimsError::EmptyUsername { .. })),
        ),
        (
            "username expression missing key",
            json!({"claimMappings": {"username": {"expression": "claims.nope"}}}),
            json!({}),
            Want::Err(|e| {
                matches!(e, ClaimsError::Expression { field, reason }
                    if field.ends_with("username.expression") && reason.contains("nope"))
            }),
        ),
        (
            "username with email expression and email_verified",
            json!({"claimMappings": {"username": {
                "expression": "claims.email_verified ? claims.email : claims.sub"}}}),
            json!({"sub": "u1", "email": "j@x.io", "email_verified": true}),
            Want::User(user("j@x.io", &[])),
        ),
        (
            "system: username refused",
            sub_username(),
            json!({"sub": "system:admin"}),
            Want::Err(|e| {
                *e == ClaimsError::ReservedUsername {
                    via: "claim \"sub\"".into(),
                }
            }),
        ),
        (
            "system: username from an expression refused",
            json!({"claimMappings": {"username": {"expression": "'system:' + claims.sub"}}}),
            json!({"sub": "kube-proxy"}),
            Want::Err(|e| {
                matches!(e, ClaimsError::ReservedUsername { via }
                    if via == "jwt[0].claimMappings.username.expression")
            }),
        ),
        (
            "system: group from an unprefixed claim refused",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}}),
            json!({"sub": "eve", "groups": ["dev", "system:masters"]}),
            Want::Err(|e| {
                *e == ClaimsError::ReservedGroup {
                    via: "claim \"groups\"".into(),
                }
            }),
        ),
        (
            "system: group as a single string refused",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}}),
            json!({"sub": "eve", "groups": "system:nodes"}),
            Want::Err(|e| matches!(e, ClaimsError::ReservedGroup { .. })),
        ),
        (
            "system: group from an expression refused",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"expression": "claims.roles"}}}),
            json!({"sub": "eve", "roles": ["system:masters"]}),
            Want::Err(|e| {
                matches!(e, ClaimsError::ReservedGroup { via }
                    if via == "jwt[0].claimMappings.groups.expression")
            }),
        ),
        (
            "a group prefix keeps system: groups out of the namespace",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": "oidc:"}}}),
            json!({"sub": "eve", "groups": ["system:masters"]}),
            Want::User(user("eve", &["oidc:system:masters"])),
        ),
        (
            "system: in the claim but prefixed is fine",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": "oidc:"}}}),
            json!({"sub": "system:admin"}),
            Want::User(user("oidc:system:admin", &[])),
        ),
        (
            "groups claim list with prefix",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": "oidc:"}}}),
            json!({"sub": "u1", "groups": ["a", "b"]}),
            Want::User(user("u1", &["oidc:a", "oidc:b"])),
        ),
        (
            "groups claim single string",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}}),
            json!({"sub": "u1", "groups": "a"}),
            Want::User(user("u1", &["a"])),
        ),
        (
            "groups claim absent means no groups",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}}),
            json!({"sub": "u1"}),
            Want::User(user("u1", &[])),
        ),
        (
            "groups claim a number",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}}),
            json!({"sub": "u1", "groups": 3}),
            Want::Err(
                |e| matches!(e, ClaimsError::BadClaimType { claim, .. } if claim == "groups"),
            ),
        ),
        (
            "groups claim list with a number",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}}),
            json!({"sub": "u1", "groups": ["a", 3]}),
            Want::Err(
                |e| matches!(e, ClaimsError::BadClaimType { claim, .. } if claim == "groups"),
            ),
        ),
        (
            "groups expression map",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"expression": "claims.groups.map(g, 'g:' + g)"}}}),
            json!({"sub": "u1", "groups": ["a", "b"]}),
            Want::User(user("u1", &["g:a", "g:b"])),
        ),
        (
            "groups expression has() default",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"expression": "has(claims.groups) ? claims.groups : []"}}}),
            json!({"sub": "u1"}),
            Want::User(user("u1", &[])),
        ),
        (
            "groups expression optional orValue",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"expression": "claims.?groups.orValue([])"}}}),
            json!({"sub": "u1", "groups": ["x"]}),
            Want::User(user("u1", &["x"])),
        ),
        (
            "groups expression single string",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"expression": "claims.role"}}}),
            json!({"sub": "u1", "role": "admin"}),
            Want::User(user("u1", &["admin"])),
        ),
        (
            "groups expression of ints",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"expression": "[1, 2]"}}}),
            json!({"sub": "u1"}),
            Want::Err(
                |e| matches!(e, ClaimsError::Expression { field, .. } if field.ends_with("groups.expression")),
            ),
        ),
        (
            "uid claim",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}, "uid": {"claim": "oid"}}}),
            json!({"sub": "u1", "oid": "1234"}),
            Want::User(UserInfo {
                uid: "1234".into(),
                ..user("u1", &[])
            }),
        ),
        (
            "uid claim missing",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}, "uid": {"claim": "oid"}}}),
            json!({"sub": "u1"}),
            Want::Err(|e| matches!(e, ClaimsError::MissingClaim { claim } if claim == "oid")),
        ),
        (
            "uid expression",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "uid": {"expression": "'uid-' + claims.sub"}}}),
            json!({"sub": "u1"}),
            Want::User(UserInfo {
                uid: "uid-u1".into(),
                ..user("u1", &[])
            }),
        ),
        (
            "extra string and list; empty values omitted",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}, "extra": [
                {"key": "example.com/tenant", "valueExpression": "claims.tid"},
                {"key": "example.com/roles", "valueExpression": "claims.roles"},
                {"key": "example.com/empty", "valueExpression": "''"},
                {"key": "example.com/none", "valueExpression": "[]"},
                {"key": "example.com/domain", "valueExpression": "claims.email.split('@')[1]"},
            ]}}),
            json!({"sub": "u1", "tid": "t1", "roles": ["r1", "", "r2"], "email": "j@x.io"}),
            Want::User(with_extra(
                with_extra(
                    with_extra(user("u1", &[]), "example.com/tenant", &["t1"]),
                    "example.com/roles",
                    &["r1", "r2"],
                ),
                "example.com/domain",
                &["x.io"],
            )),
        ),
        (
            "extra expression of a bool",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}, "extra": [
                {"key": "example.com/b", "valueExpression": "true"}]}}),
            json!({"sub": "u1"}),
            Want::Err(
                |e| matches!(e, ClaimsError::Expression { field, .. } if field == "jwt[0].claimMappings.extra[0].valueExpression"),
            ),
        ),
        (
            "required claim matches",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"claim": "hd", "requiredValue": "example.com"}]}),
            json!({"sub": "u1", "hd": "example.com"}),
            Want::User(user("u1", &[])),
        ),
        (
            "required claim differs",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"claim": "hd", "requiredValue": "example.com"}]}),
            json!({"sub": "u1", "hd": "evil.com"}),
            Want::Err(|e| {
                matches!(e, ClaimsError::ClaimValidation { message }
                    if message.contains("hd") && !message.contains("evil"))
            }),
        ),
        (
            "required claim missing",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"claim": "hd", "requiredValue": "example.com"}]}),
            json!({"sub": "u1"}),
            Want::Err(|e| matches!(e, ClaimsError::MissingClaim { claim } if claim == "hd")),
        ),
        (
            "required claim not a string",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"claim": "hd", "requiredValue": "1"}]}),
            json!({"sub": "u1", "hd": 1}),
            Want::Err(|e| matches!(e, ClaimsError::BadClaimType { claim, .. } if claim == "hd")),
        ),
        (
            "claim validation expression true",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"expression": "claims.exp - claims.nbf <= 86400"}]}),
            json!({"sub": "u1", "exp": 1_700_003_600, "nbf": 1_700_000_000}),
            Want::User(user("u1", &[])),
        ),
        (
            "claim validation expression false, with message",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"expression": "claims.email_verified == true",
                    "message": "email must be verified"}]}),
            json!({"sub": "u1", "email_verified": false}),
            Want::Err(|e| {
                *e == ClaimsError::ClaimValidation {
                    message: "email must be verified".into(),
                }
            }),
        ),
        (
            "claim validation expression false, no message names the rule",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"expression": "claims.hd == 'example.com'"}]}),
            json!({"sub": "u1", "hd": "other.com"}),
            Want::Err(|e| {
                matches!(e, ClaimsError::ClaimValidation { message }
                    if message.contains("claimValidationRules[0].expression") && !message.contains("other.com"))
            }),
        ),
        (
            "claim validation expression not a bool",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"expression": "claims.sub"}]}),
            json!({"sub": "u1"}),
            Want::Err(
                |e| matches!(e, ClaimsError::Expression { reason, .. } if reason.contains("bool")),
            ),
        ),
        (
            "claim validation runs before the username",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
                "claimValidationRules": [{"expression": "false", "message": "first"}]}),
            json!({}),
            Want::Err(|e| {
                *e == ClaimsError::ClaimValidation {
                    message: "first".into(),
                }
            }),
        ),
        (
            "user validation passes",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                    "groups": {"claim": "groups", "prefix": ""}},
                "userValidationRules": [
                    {"expression": "!user.username.startsWith('system:')", "message": "no system"},
                    {"expression": "user.groups.all(g, !g.startsWith('system:'))", "message": "no system groups"}]}),
            json!({"sub": "u1", "groups": ["dev"]}),
            Want::User(user("u1", &["dev"])),
        ),
        (
            "user validation fails with its message",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""},
                    "groups": {"claim": "groups", "prefix": ""}},
                "userValidationRules": [
                    {"expression": "user.groups.all(g, !g.startsWith('system:'))", "message": "no system groups"}]}),
            json!({"sub": "u1", "groups": ["system:masters"]}),
            Want::Err(|e| {
                *e == ClaimsError::UserValidation {
                    message: "no system groups".into(),
                }
            }),
        ),
        (
            "user validation sees the prefixed username",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": "oidc:"}},
                "userValidationRules": [{"expression": "user.username == 'oidc:u1'"}]}),
            json!({"sub": "u1"}),
            Want::User(user("oidc:u1", &[])),
        ),
        (
            "user validation sees uid and extra",
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}, "uid": {"claim": "sub"},
                    "extra": [{"key": "example.com/t", "valueExpression": "'t1'"}]},
                "userValidationRules": [{"expression": "user.uid == 'u1' && user.extra['example.com/t'] == ['t1']"}]}),
            json!({"sub": "u1"}),
            Want::User(with_extra(
                UserInfo {
                    uid: "u1".into(),
                    ..user("u1", &[])
                },
                "example.com/t",
                &["t1"],
            )),
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for (name, rules, claims, want) in cases {
        let got = issuer(rules).user_from_claims(&claims);
        match (want, got) {
            (Want::User(want), Ok(got)) => assert_eq!(got, want, "{name}"),
            (Want::Err(check), Err(e)) => assert!(check(&e), "{name}: unexpected error {e:?}"),
            (Want::User(_), Err(e)) => panic!("{name}: unexpected error {e:?}"),
            (Want::Err(_), Ok(u)) => panic!("{name}: unexpected user {u:?}"),
        }
    }
}

#[test]
fn payload_must_be_an_object() {
    let issuer = issuer(sub_username());
    assert_eq!(
        issuer.user_from_claims(&json!(["sub"])),
        Err(ClaimsError::NotAnObject)
    );
}

#[test]
fn system_authenticated_is_not_added() {
    let u = issuer(sub_username())
        .user_from_claims(&json!({"sub": "u1"}))
        .unwrap();
    assert!(u.groups.is_empty());
}

#[test]
fn errors_never_carry_claim_values() {
    let secret = "very-secret-claim-value";
    let cases = [
        json!({"claimMappings": {"username": {"claim": "sub", "prefix": ""}},
            "claimValidationRules": [{"claim": "hd", "requiredValue": "example.com"}]}),
        json!({"claimMappings": {"username": {"expression": "claims.sub + 1"}}}),
        json!({"claimMappings": {"username": {"expression": "claims.sub < 1"}}}),
        json!({"claimMappings": {"username": {"expression": "claims.sub.nope()"}}}),
        json!({"claimMappings": {"username": {"expression": "claims.sub[0]"}}}),
    ];
    for rules in cases {
        let e = issuer(rules)
            .user_from_claims(&json!({"sub": secret, "hd": secret}))
            .unwrap_err();
        assert!(!e.to_string().contains(secret), "{e}");
        assert!(!format!("{e:?}").contains(secret), "{e:?}");
    }
}

#[test]
fn legacy_flags_map_like_kube() {
    let flags = LegacyOidcFlags {
        issuer_url: ISSUER.into(),
        client_id: "kgate".into(),
        groups_claim: Some("groups".into()),
        groups_prefix: Some("oidc:".into()),
        required_claims: vec![("hd".into(), "example.com".into())],
        ..Default::default()
    };
    let config = AuthenticationConfig::from_legacy_flags(&flags).unwrap();
    let u = config.jwt[0]
        .user_from_claims(&json!({"sub": "u1", "groups": ["a"], "hd": "example.com"}))
        .unwrap();
    assert_eq!(u, user(&format!("{ISSUER}#u1"), &["oidc:a"]));
    let e = config.jwt[0]
        .user_from_claims(&json!({"sub": "u1", "groups": ["a"], "hd": "x.com"}))
        .unwrap_err();
    assert!(matches!(e, ClaimsError::ClaimValidation { .. }), "{e:?}");

    let email = LegacyOidcFlags {
        username_claim: Some("email".into()),
        ..flags
    };
    let config = AuthenticationConfig::from_legacy_flags(&email).unwrap();
    let claims = json!({"email": "j@x.io", "email_verified": false, "hd": "example.com"});
    assert_eq!(
        config.jwt[0].user_from_claims(&claims),
        Err(ClaimsError::EmailNotVerified)
    );
}

#[test]
fn an_issuer_allowed_system_identities_maps_them_and_others_still_refuse() {
    let file = |url: &str| {
        json!({"issuer": {"url": url, "audiences": ["kgate"]},
            "claimMappings": {"username": {"claim": "sub", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""}}})
    };
    let text = json!({
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "AuthenticationConfiguration",
        "jwt": [file(ISSUER), file("https://other.example.com")],
    })
    .to_string();
    let mut config = AuthenticationConfig::parse(text.as_bytes()).unwrap();
    assert!(config.jwt.iter().all(|i| !i.allows_system_identities()));
    let allowed: [String; 2] = [ISSUER.into(), "https://typo.example".into()];
    let unknown = config.allow_system_identities(&allowed);
    assert_eq!(unknown, ["https://typo.example"]);
    let claims = json!({"sub": "system:node:n1", "groups": ["system:nodes"]});
    assert_eq!(
        config.jwt[0].user_from_claims(&claims).unwrap(),
        user("system:node:n1", &["system:nodes"])
    );
    assert!(matches!(
        config.jwt[1].user_from_claims(&claims),
        Err(ClaimsError::ReservedUsername { .. })
    ));
    // Asked again without it: refused again (a reload drops an opt-in no longer given).
    assert!(config.allow_system_identities(&[]).is_empty());
    assert!(config.jwt[0].user_from_claims(&claims).is_err());
}

#[test]
fn default_rules_use_sub() {
    let issuer = JwtIssuer {
        issuer_url: ISSUER.into(),
        discovery_url: None,
        certificate_authority: None,
        audiences: vec!["a".into()],
        signing_algs: Vec::new(),
        rules: Rules::default(),
    };
    assert_eq!(issuer.rules.username_claim(), Some("sub"));
    assert_eq!(
        issuer.user_from_claims(&json!({"sub": "u1"})).unwrap(),
        user("u1", &[])
    );
}
