use super::*;
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.example.com";
/// A PEM block whose body is a (tiny) DER SEQUENCE: enough for the well-formedness check.
const FAKE_CA: &str = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";

fn file(jwt: Value) -> String {
    json!({
        "apiVersion": "apiserver.config.k8s.io/v1beta1",
        "kind": "AuthenticationConfiguration",
        "jwt": jwt,
    })
    .to_string()
}

/// A valid jwt entry with `patch` merged into it, one level deep per top-level key
/// (`issuer`, `claimMappings` are merged; the rest replaced).
fn entry(patch: Value) -> Value {
    let mut jwt = json!({
        "issuer": {"url": ISSUER, "audiences": ["kgate"]},
        "claimMappings": {"username": {"claim": "sub", "prefix": ""}},
    });
    for (k, v) in patch.as_object().unwrap() {
        match (jwt.get_mut(k), v) {
            (Some(Value::Object(base)), Value::Object(over)) if k != "claimValidationRules" => {
                for (k2, v2) in over {
                    if v2.is_null() {
                        base.remove(k2);
                    } else {
                        base.insert(k2.clone(), v2.clone());
                    }
                }
            }
            _ => {
                jwt[k] = v.clone();
            }
        }
    }
    jwt
}

fn parse_one(patch: Value) -> Result<AuthenticationConfig, ConfigError> {
    AuthenticationConfig::parse(file(json!([entry(patch)])).as_bytes())
}

#[test]
fn config_is_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<AuthenticationConfig>();
    check::<JwtIssuer>();
}

#[test]
fn validation_errors_name_the_field() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("url missing", json!({"issuer": {"url": null}}), "jwt[0].issuer.url: required value"),
        ("url empty", json!({"issuer": {"url": ""}}), "jwt[0].issuer.url: required value"),
        ("url http", json!({"issuer": {"url": "http://x.io"}}), "jwt[0].issuer.url: URL scheme must be https"),
        ("url no scheme", json!({"issuer": {"url": "x.io"}}), "jwt[0].issuer.url: URL scheme must be https"),
        ("url query", json!({"issuer": {"url": "https://x.io/a?b=c"}}), "jwt[0].issuer.url: URL must not contain a query"),
        ("url fragment", json!({"issuer": {"url": "https://x.io/a#b"}}), "jwt[0].issuer.url: URL must not contain a fragment"),
        ("url user info", json!({"issuer": {"url": "https://u:p@x.io"}}), "jwt[0].issuer.url: URL must not contain a username or password"),
        ("url no host", json!({"issuer": {"url": "https:///path"}}), "jwt[0].issuer.url: URL must have a host"),
        ("discovery http", json!({"issuer": {"discoveryURL": "http://x.io/.well-known/openid-configuration"}}),
            "jwt[0].issuer.discoveryURL: URL scheme must be https"),
        ("discovery same as url", json!({"issuer": {"discoveryURL": ISSUER}}),
            "jwt[0].issuer.discoveryURL: discoveryURL must be different from URL"),
        ("discovery query", json!({"issuer": {"discoveryURL": "https://d.io/x?y"}}),
            "jwt[0].issuer.discoveryURL: URL must not contain a query"),
        ("audiences empty", json!({"issuer": {"audiences": []}}), "jwt[0].issuer.audiences: required value"),
        ("audiences missing", json!({"issuer": {"audiences": null}}), "jwt[0].issuer.audiences: required value"),
        ("audience empty", json!({"issuer": {"audiences": ["a", ""], "audienceMatchPolicy": "MatchAny"}}),
            "jwt[0].issuer.audiences[1]: audience can't be empty"),
        ("audience duplicate", json!({"issuer": {"audiences": ["a", "a"], "audienceMatchPolicy": "MatchAny"}}),
            "jwt[0].issuer.audiences[1]: duplicate value"),
        ("two audiences need MatchAny", json!({"issuer": {"audiences": ["a", "b"]}}),
            "jwt[0].issuer.audienceMatchPolicy: audienceMatchPolicy must be MatchAny for multiple audiences"),
        ("unknown policy", json!({"issuer": {"audienceMatchPolicy": "MatchAll"}}),
            "jwt[0].issuer.audienceMatchPolicy: audienceMatchPolicy must be empty or MatchAny"),
        ("ca garbage", json!({"issuer": {"certificateAuthority": "not a pem"}}),
            "jwt[0].issuer.certificateAuthority: no PEM CERTIFICATE block"),
        ("ca bad base64", json!({"issuer": {"certificateAuthority": "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----"}}),
            "jwt[0].issuer.certificateAuthority: a PEM CERTIFICATE block is not valid base64"),
        ("ca unterminated", json!({"issuer": {"certificateAuthority": "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n"}}),
            "jwt[0].issuer.certificateAuthority: unterminated"),
        ("ca private key only", json!({"issuer": {"certificateAuthority": "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----"}}),
            "jwt[0].issuer.certificateAuthority: no PEM CERTIFICATE block"),
        ("egress selector", json!({"issuer": {"egressSelectorType": "cluster"}}),
            "jwt[0].issuer.egressSelectorType: unsupported value"),
        ("username neither", json!({"claimMappings": {"username": {}}}),
            "jwt[0].claimMappings.username: required value: claim or expression is required"),
        ("username missing", json!({"claimMappings": {"username": null}}),
            "jwt[0].claimMappings.username: required value"),
        ("username both", json!({"claimMappings": {"username": {"claim": "sub", "prefix": "", "expression": "claims.sub"}}}),
            "jwt[0].claimMappings.username: claim and expression can't both be specified"),
        ("username claim without prefix", json!({"claimMappings": {"username": {"claim": "sub"}}}),
            "jwt[0].claimMappings.username.prefix: required value"),
        ("username expression with prefix", json!({"claimMappings": {"username": {"expression": "claims.sub", "prefix": "x:"}}}),
            "jwt[0].claimMappings.username.prefix: may not be specified when expression is set"),
        ("username expression with empty prefix", json!({"claimMappings": {"username": {"expression": "claims.sub", "prefix": ""}}}),
            "jwt[0].claimMappings.username.prefix: may not be specified when expression is set"),
        ("username expression syntax", json!({"claimMappings": {"username": {"expression": "claims.sub +"}}}),
            "jwt[0].claimMappings.username.expression: compilation failed"),
        ("username expression uses user", json!({"claimMappings": {"username": {"expression": "user.username"}}}),
            "jwt[0].claimMappings.username.expression: compilation failed: undeclared reference to 'user'"),
        ("username email without email_verified", json!({"claimMappings": {"username": {"expression": "claims.email"}}}),
            "jwt[0].claimMappings.username.expression: claims.email_verified must be used"),
        ("groups claim without prefix", json!({"claimMappings": {"groups": {"claim": "groups"}}}),
            "jwt[0].claimMappings.groups.prefix: required value"),
        ("groups both", json!({"claimMappings": {"groups": {"claim": "g", "prefix": "", "expression": "claims.g"}}}),
            "jwt[0].claimMappings.groups: claim and expression can't both be specified"),
        ("groups expression with prefix", json!({"claimMappings": {"groups": {"expression": "claims.g", "prefix": "p:"}}}),
            "jwt[0].claimMappings.groups.prefix: may not be specified when expression is set"),
        ("groups prefix alone", json!({"claimMappings": {"groups": {"prefix": "p:"}}}),
            "jwt[0].claimMappings.groups.prefix: may not be specified without claim"),
        ("groups expression syntax", json!({"claimMappings": {"groups": {"expression": "claims.groups.map(g,"}}}),
            "jwt[0].claimMappings.groups.expression: compilation failed"),
        ("uid both", json!({"claimMappings": {"uid": {"claim": "sub", "expression": "claims.sub"}}}),
            "jwt[0].claimMappings.uid: claim and expression can't both be specified"),
        ("uid expression syntax", json!({"claimMappings": {"uid": {"expression": "'a' 'b'"}}}),
            "jwt[0].claimMappings.uid.expression: compilation failed"),
        ("extra key missing", json!({"claimMappings": {"extra": [{"valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: required value"),
        ("extra key not a path", json!({"claimMappings": {"extra": [{"key": "tenant", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: must be a domain-prefixed path"),
        ("extra key empty path", json!({"claimMappings": {"extra": [{"key": "example.com/", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: must be a domain-prefixed path"),
        ("extra key bad domain", json!({"claimMappings": {"extra": [{"key": "-x.com/a", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: must be a domain-prefixed path"),
        ("extra key bad path char", json!({"claimMappings": {"extra": [{"key": "x.com/a b", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: must be a domain-prefixed path"),
        ("extra key uppercase", json!({"claimMappings": {"extra": [{"key": "example.com/Tenant", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: key must be lowercase"),
        ("extra key kubernetes.io", json!({"claimMappings": {"extra": [{"key": "kubernetes.io/x", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: k8s.io, kubernetes.io and their subdomains are reserved"),
        ("extra key sub.k8s.io", json!({"claimMappings": {"extra": [{"key": "a.k8s.io/x", "valueExpression": "'x'"}]}}),
            "jwt[0].claimMappings.extra[0].key: k8s.io, kubernetes.io and their subdomains are reserved"),
        ("extra key duplicate", json!({"claimMappings": {"extra": [
                {"key": "example.com/a", "valueExpression": "'x'"}, {"key": "example.com/a", "valueExpression": "'y'"}]}}),
            "jwt[0].claimMappings.extra[1].key: duplicate value"),
        ("extra value missing", json!({"claimMappings": {"extra": [{"key": "example.com/a"}]}}),
            "jwt[0].claimMappings.extra[0].valueExpression: required value"),
        ("extra value syntax", json!({"claimMappings": {"extra": [{"key": "example.com/a", "valueExpression": "(("}]}}),
            "jwt[0].claimMappings.extra[0].valueExpression: compilation failed"),
        ("claim rule both", json!({"claimValidationRules": [{"claim": "hd", "expression": "true"}]}),
            "jwt[0].claimValidationRules[0]: claim and expression can't both be specified"),
        ("claim rule neither", json!({"claimValidationRules": [{"requiredValue": "x"}]}),
            "jwt[0].claimValidationRules[0]: required value: claim or expression is required"),
        ("claim rule claim with message", json!({"claimValidationRules": [{"claim": "hd", "requiredValue": "x", "message": "m"}]}),
            "jwt[0].claimValidationRules[0].message: message can't be specified when claim is specified"),
        ("claim rule expression with requiredValue", json!({"claimValidationRules": [{"expression": "true", "requiredValue": "x"}]}),
            "jwt[0].claimValidationRules[0].requiredValue: requiredValue can't be specified when expression is specified"),
        ("claim rule duplicate claim", json!({"claimValidationRules": [
                {"claim": "hd", "requiredValue": "x"}, {"claim": "hd", "requiredValue": "y"}]}),
            "jwt[0].claimValidationRules[1].claim: duplicate value"),
        ("claim rule duplicate expression", json!({"claimValidationRules": [{"expression": "true"}, {"expression": "true"}]}),
            "jwt[0].claimValidationRules[1].expression: duplicate value"),
        ("claim rule syntax", json!({"claimValidationRules": [{"expression": "claims.hd =="}]}),
            "jwt[0].claimValidationRules[0].expression: compilation failed"),
        ("claim rule uses user", json!({"claimValidationRules": [{"expression": "user.username == 'a'"}]}),
            "jwt[0].claimValidationRules[0].expression: compilation failed: undeclared reference to 'user'"),
        ("user rule empty", json!({"userValidationRules": [{"message": "m"}]}),
            "jwt[0].userValidationRules[0].expression: required value"),
        ("user rule duplicate", json!({"userValidationRules": [{"expression": "true"}, {"expression": "true"}]}),
            "jwt[0].userValidationRules[1].expression: duplicate value"),
        ("user rule syntax", json!({"userValidationRules": [{"expression": "user.username.startsWith("}]}),
            "jwt[0].userValidationRules[0].expression: compilation failed"),
        ("user rule uses claims", json!({"userValidationRules": [{"expression": "claims.sub == 'x'"}]}),
            "jwt[0].userValidationRules[0].expression: compilation failed: undeclared reference to 'claims'"),
    ];
    assert!(cases.len() >= 40);
    for (name, patch, want) in cases {
        match parse_one(patch) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(
                e.to_string().starts_with(want),
                "{name}: got {e}, want {want}"
            ),
        }
    }
}

#[test]
fn valid_variants_are_accepted() {
    let cases: Vec<(&str, Value)> = vec![
        ("minimal", json!({})),
        (
            "two audiences MatchAny",
            json!({"issuer": {"audiences": ["a", "b"], "audienceMatchPolicy": "MatchAny"}}),
        ),
        (
            "single audience MatchAny",
            json!({"issuer": {"audienceMatchPolicy": "MatchAny"}}),
        ),
        (
            "discovery url",
            json!({"issuer": {"discoveryURL": "https://internal.svc/.well-known/openid-configuration"}}),
        ),
        (
            "port in url",
            json!({"issuer": {"url": "https://issuer.example.com:8443/realms/x"}}),
        ),
        ("ca", json!({"issuer": {"certificateAuthority": FAKE_CA}})),
        (
            "empty egress",
            json!({"issuer": {"egressSelectorType": ""}}),
        ),
        (
            "email expression with email_verified in a rule",
            json!({
            "claimMappings": {"username": {"expression": "claims.email"}},
            "claimValidationRules": [{"expression": "claims.email_verified == true", "message": "verify"}]}),
        ),
        (
            "email expression with email_verified in extra",
            json!({
            "claimMappings": {"username": {"expression": "claims.email"},
                "extra": [{"key": "example.com/v", "valueExpression": "string(claims.email_verified)"}]}}),
        ),
        (
            "email expression checking itself",
            json!({
            "claimMappings": {"username": {"expression": "claims.email_verified ? claims.email : ''"}}}),
        ),
        (
            "groups and uid",
            json!({"claimMappings": {"groups": {"claim": "groups", "prefix": ""}, "uid": {"claim": "sub"}}}),
        ),
        (
            "groups expression",
            json!({"claimMappings": {"groups": {"expression": "claims.groups"}}}),
        ),
        (
            "empty groups mapping",
            json!({"claimMappings": {"groups": {}}}),
        ),
    ];
    for (name, patch) in cases {
        if let Err(e) = parse_one(patch) {
            panic!("{name}: {e}");
        }
    }
}

#[test]
fn parsed_fields_are_kept() {
    let c = parse_one(json!({"issuer": {
        "discoveryURL": "https://d.example.com/.well-known/openid-configuration",
        "certificateAuthority": FAKE_CA,
        "audiences": ["a", "b"], "audienceMatchPolicy": "MatchAny"}}))
    .unwrap();
    let j = &c.jwt[0];
    assert_eq!(j.issuer_url, ISSUER);
    assert_eq!(
        j.discovery_url.as_deref(),
        Some("https://d.example.com/.well-known/openid-configuration")
    );
    assert_eq!(j.certificate_authority.as_deref(), Some(FAKE_CA));
    assert_eq!(j.audiences, ["a", "b"]);
    assert!(j.signing_algs.is_empty());
    assert_eq!(j.rules.username_claim(), Some("sub"));
    assert_eq!(j.rules.username_prefix(), Some(""));
}

#[test]
fn errors_in_later_issuers_name_their_index() {
    let text = file(json!([
        entry(json!({})),
        entry(json!({"issuer": {"url": "https://other.example.com", "audiences": []}}))
    ]));
    let e = AuthenticationConfig::parse(text.as_bytes()).unwrap_err();
    assert!(
        e.to_string().starts_with("jwt[1].issuer.audiences: "),
        "{e}"
    );
}

#[test]
fn duplicate_issuer_urls_are_refused() {
    let text = file(json!([entry(json!({})), entry(json!({}))]));
    let e = AuthenticationConfig::parse(text.as_bytes()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("jwt[1].issuer.url: duplicate value"),
        "{e}"
    );
    let text = file(json!([
        entry(json!({})),
        entry(json!({"issuer": {"url": "https://other.example.com"}}))
    ]));
    assert_eq!(
        AuthenticationConfig::parse(text.as_bytes())
            .unwrap()
            .jwt
            .len(),
        2
    );
}

#[test]
fn api_versions_and_kind() {
    for version in API_VERSIONS {
        let text = format!(
            "apiVersion: {version}\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: {ISSUER}\n    audiences: [a]\n  claimMappings:\n    username:\n      claim: sub\n      prefix: ''\n"
        );
        let c = AuthenticationConfig::parse(text.as_bytes()).unwrap();
        assert_eq!(c.jwt.len(), 1, "{version}");
    }
    let cases = [
        (
            "kind: AuthenticationConfiguration\n",
            "apiVersion: required value",
        ),
        (
            "apiVersion: apiserver.config.k8s.io/v2\nkind: AuthenticationConfiguration\n",
            "apiVersion: unsupported value",
        ),
        (
            "apiVersion: v1\nkind: AuthenticationConfiguration\n",
            "apiVersion: unsupported value",
        ),
        (
            "apiVersion: apiserver.config.k8s.io/v1\n",
            "kind: required value",
        ),
        (
            "apiVersion: apiserver.config.k8s.io/v1\nkind: StructuredAuthorizationConfiguration\n",
            "kind: unsupported value",
        ),
    ];
    for (text, want) in cases {
        let e = AuthenticationConfig::parse(text.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with(want), "{text}: {e}");
    }
}

#[test]
fn json_and_yaml_both_parse() {
    let json_text = file(json!([entry(json!({}))]));
    assert_eq!(
        AuthenticationConfig::parse(json_text.as_bytes())
            .unwrap()
            .jwt
            .len(),
        1
    );
    let yaml = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    url: {ISSUER}\n    audiences:\n    - a\n  claimMappings:\n    username:\n      expression: claims.sub\n"
    );
    assert_eq!(
        AuthenticationConfig::parse(yaml.as_bytes())
            .unwrap()
            .jwt
            .len(),
        1
    );
}

#[test]
fn empty_jwt_list_and_anonymous_block() {
    let text = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nanonymous:\n  enabled: true\n  conditions:\n  - path: /livez\n";
    assert!(AuthenticationConfig::parse(text.as_bytes())
        .unwrap()
        .jwt
        .is_empty());
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let cases = [
        (json!({"issuer": {"urls": "x"}}), "jwt[0].issuer", "urls"),
        (
            json!({"claimMappings": {"username": {"claim": "sub", "prefix": "", "prefixes": ""}}}),
            "jwt[0].claimMappings.username",
            "prefixes",
        ),
        (
            json!({"claimValidationRules": [{"claim": "a", "requiredValue": "b", "value": "c"}]}),
            "jwt[0].claimValidationRules[0]",
            "value",
        ),
        (
            json!({"userValidationRule": []}),
            "jwt[0]",
            "userValidationRule",
        ),
    ];
    for (patch, path, name) in cases {
        let e = parse_one(patch).unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(path) && text.contains("unknown field") && text.contains(name),
            "{text}"
        );
    }
    let top = "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\nauthorizers: []\n";
    let e = AuthenticationConfig::parse(top.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("unknown field `authorizers`"), "{e}");
    let e = AuthenticationConfig::parse(b"{not yaml: [").unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { .. }), "{e:?}");
}

#[test]
fn legacy_flag_defaults() {
    let base = LegacyOidcFlags {
        issuer_url: ISSUER.into(),
        client_id: "kgate".into(),
        ..Default::default()
    };
    let c = AuthenticationConfig::from_legacy_flags(&base).unwrap();
    let j = &c.jwt[0];
    assert_eq!(j.issuer_url, ISSUER);
    assert_eq!(j.audiences, ["kgate"]);
    assert_eq!(j.signing_algs, ["RS256"]);
    assert_eq!(j.rules.username_claim(), Some("sub"));
    assert_eq!(
        j.rules.username_prefix(),
        Some(format!("{ISSUER}#").as_str())
    );
    assert_eq!(j.rules.groups_claim(), None);

    let cases: [(Option<&str>, Option<&str>, &str); 6] = [
        (Some("email"), None, ""),
        (Some("email"), Some(""), ""),
        (Some("email"), Some("oidc:"), "oidc:"),
        (Some("sub"), Some("-"), ""),
        (Some("email"), Some("-"), ""),
        (
            Some("preferred_username"),
            None,
            "https://issuer.example.com#",
        ),
    ];
    for (claim, prefix, want) in cases {
        let flags = LegacyOidcFlags {
            username_claim: claim.map(Into::into),
            username_prefix: prefix.map(Into::into),
            ..base.clone()
        };
        let c = AuthenticationConfig::from_legacy_flags(&flags).unwrap();
        assert_eq!(
            c.jwt[0].rules.username_prefix(),
            Some(want),
            "{claim:?} {prefix:?}"
        );
    }

    let flags = LegacyOidcFlags {
        groups_claim: Some("groups".into()),
        groups_prefix: Some("oidc:".into()),
        required_claims: vec![
            ("hd".into(), "example.com".into()),
            ("tier".into(), "gold".into()),
        ],
        ca_pem: Some(FAKE_CA.into()),
        signing_algs: vec!["ES256".into(), "RS256".into()],
        ..base.clone()
    };
    let c = AuthenticationConfig::from_legacy_flags(&flags).unwrap();
    let j = &c.jwt[0];
    assert_eq!(j.rules.groups_claim(), Some("groups"));
    assert_eq!(j.rules.groups_prefix(), Some("oidc:"));
    assert_eq!(
        j.rules.required_claims().collect::<Vec<_>>(),
        [("hd", "example.com"), ("tier", "gold")]
    );
    assert_eq!(j.certificate_authority.as_deref(), Some(FAKE_CA));
    assert_eq!(j.signing_algs, ["ES256", "RS256"]);
}

#[test]
fn legacy_flag_errors() {
    let base = LegacyOidcFlags {
        issuer_url: ISSUER.into(),
        client_id: "kgate".into(),
        ..Default::default()
    };
    let cases: Vec<(LegacyOidcFlags, &str)> = vec![
        (
            LegacyOidcFlags {
                issuer_url: String::new(),
                ..base.clone()
            },
            "--oidc-issuer-url: required value",
        ),
        (
            LegacyOidcFlags {
                issuer_url: "http://x.io".into(),
                ..base.clone()
            },
            "--oidc-issuer-url: URL scheme must be https",
        ),
        (
            LegacyOidcFlags {
                issuer_url: "https://x.io?a".into(),
                ..base.clone()
            },
            "--oidc-issuer-url: URL must not contain a query",
        ),
        (
            LegacyOidcFlags {
                client_id: String::new(),
                ..base.clone()
            },
            "--oidc-client-id: required value",
        ),
        (
            LegacyOidcFlags {
                signing_algs: vec!["HS256".into()],
                ..base.clone()
            },
            "--oidc-signing-algs: unsupported algorithm \"HS256\"",
        ),
        (
            LegacyOidcFlags {
                signing_algs: vec!["RS256".into(), "none".into()],
                ..base.clone()
            },
            "--oidc-signing-algs: unsupported algorithm \"none\"",
        ),
        (
            LegacyOidcFlags {
                ca_pem: Some("junk".into()),
                ..base.clone()
            },
            "--oidc-ca-file: no PEM CERTIFICATE block",
        ),
        (
            LegacyOidcFlags {
                required_claims: vec![(String::new(), "v".into())],
                ..base.clone()
            },
            "--oidc-required-claim: must be key=value",
        ),
        (
            LegacyOidcFlags {
                required_claims: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                ..base.clone()
            },
            "--oidc-required-claim: duplicate key",
        ),
    ];
    for (flags, want) in cases {
        let e = AuthenticationConfig::from_legacy_flags(&flags).unwrap_err();
        assert!(e.to_string().starts_with(want), "got {e}, want {want}");
    }
}
