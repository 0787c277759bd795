//! The OIDC configuration: Kubernetes' `AuthenticationConfiguration` file
//! (`apiserver.config.k8s.io/v1`, `v1beta1`, `v1alpha1`) and the legacy `--oidc-*` flags, both
//! validated into one [`AuthenticationConfig`].
//!
//! Validation follows kube-apiserver's (`k8s.io/apiserver/pkg/apis/apiserver/validation`):
//! every error names the field (`jwt[1].issuer.audiences`, `--oidc-issuer-url`), and every CEL
//! expression is compiled here, once. The first error found is returned. Not supported: the
//! `anonymous` block is accepted and ignored (kgate configures anonymous access elsewhere), and
//! `issuer.egressSelectorType` is refused unless empty.

use crate::oidc::cel::{Expr, Scope};
use crate::oidc::mapping::{ClaimRule, ExtraMapping, Mapping, Rules, UserRule};
use base64::Engine as _;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;

/// The `apiVersion`s accepted for the file.
pub const API_VERSIONS: [&str; 3] = [
    "apiserver.config.k8s.io/v1",
    "apiserver.config.k8s.io/v1beta1",
    "apiserver.config.k8s.io/v1alpha1",
];
/// The file's `kind`.
pub const KIND: &str = "AuthenticationConfiguration";
/// `issuer.audienceMatchPolicy`'s one value.
pub const AUDIENCE_MATCH_ANY: &str = "MatchAny";
/// The algorithms `--oidc-signing-algs` may name (kube-apiserver's list: asymmetric only).
pub const LEGACY_SIGNING_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
];

/// A validated configuration: the JWT issuers, in file order.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationConfig {
    pub jwt: Vec<JwtIssuer>,
}

/// One `jwt` entry, validated; its CEL expressions are compiled.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    /// `issuer.url`: must equal a token's `iss` exactly.
    pub issuer_url: String,
    /// `issuer.discoveryURL`: where to fetch the discovery document when not at
    /// `{issuer_url}/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// `issuer.certificateAuthority`: PEM roots for the provider's TLS (else the system's).
    pub certificate_authority: Option<String>,
    /// `issuer.audiences`: a token must carry at least one (MatchAny).
    pub audiences: Vec<String>,
    /// Accepted JWS algorithms (legacy `--oidc-signing-algs`); empty means every asymmetric
    /// algorithm kgate verifies.
    pub signing_algs: Vec<String>,
    /// Claim validation, mappings and user validation.
    pub rules: Rules,
}

/// The legacy single-issuer flags of kube-apiserver.
#[derive(Debug, Clone, Default)]
pub struct LegacyOidcFlags {
    pub issuer_url: String,
    pub client_id: String,
    pub username_claim: Option<String>,
    pub username_prefix: Option<String>,
    pub groups_claim: Option<String>,
    pub groups_prefix: Option<String>,
    /// `--oidc-required-claim key=value`, repeated.
    pub required_claims: Vec<(String, String)>,
    /// The content of `--oidc-ca-file`.
    pub ca_pem: Option<String>,
    pub signing_algs: Vec<String>,
}

/// Why a configuration is refused; the text names the field (`jwt[0].claimMappings...`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field's value is refused.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The text is not a well-formed configuration (YAML/JSON syntax, an unknown field, a wrong
    /// type); `message` starts with the field's path when the parser knows it.
    #[error("{message}")]
    Syntax { message: String },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl AuthenticationConfig {
    /// Parses and validates an `AuthenticationConfiguration` (YAML or JSON).
    pub fn parse(text: &[u8]) -> Result<Self, ConfigError> {
        // JSON is YAML: one parser for both.
        let raw: RawConfig = serde_yaml::from_slice(text).map_err(|e| ConfigError::Syntax {
            message: e.to_string(),
        })?;
        match raw.api_version.as_deref() {
            None | Some("") => return Err(ConfigError::invalid("apiVersion", "required value")),
            Some(v) if !API_VERSIONS.contains(&v) => {
                return Err(ConfigError::invalid(
                    "apiVersion",
                    format!(
                        "unsupported value {v:?}: supported values: {}",
                        API_VERSIONS.join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
        match raw.kind.as_deref() {
            Some(KIND) => {}
            None | Some("") => return Err(ConfigError::invalid("kind", "required value")),
            Some(k) => {
                return Err(ConfigError::invalid(
                    "kind",
                    format!("unsupported value {k:?}: must be {KIND}"),
                ))
            }
        }
        let mut seen_issuers: BTreeMap<&str, usize> = BTreeMap::new();
        let mut jwt = Vec::with_capacity(raw.jwt.len());
        for (i, raw_jwt) in raw.jwt.iter().enumerate() {
            let issuer = validate_jwt(&format!("jwt[{i}]"), raw_jwt)?;
            if let Some(url) = raw_jwt.issuer.url.as_deref() {
                if let Some(first) = seen_issuers.insert(url, i) {
                    return Err(ConfigError::invalid(
                        format!("jwt[{i}].issuer.url"),
                        format!("duplicate value: the same as jwt[{first}].issuer.url"),
                    ));
                }
            }
            jwt.push(issuer);
        }
        Ok(Self { jwt })
    }

    /// Lets the issuers whose URL is in `issuer_urls` map user and group names in the `system:`
    /// namespace (see [`JwtIssuer::allow_system_identities`]); every other issuer is refused
    /// them. Returns the URLs that name no configured issuer.
    pub fn allow_system_identities<'u>(&mut self, issuer_urls: &'u [String]) -> Vec<&'u str> {
        for issuer in &mut self.jwt {
            let allowed = issuer_urls.contains(&issuer.issuer_url);
            issuer.allow_system_identities(allowed);
        }
        issuer_urls
            .iter()
            .filter(|url| !self.jwt.iter().any(|i| &&i.issuer_url == url))
            .map(String::as_str)
            .collect()
    }

    /// The configuration the legacy flags describe, with kube-apiserver's defaults: username
    /// from `sub`, prefixed with `{issuer}#` unless the claim is `email` (the prefix `-` means
    /// none), algorithm RS256.
    pub fn from_legacy_flags(flags: &LegacyOidcFlags) -> Result<Self, ConfigError> {
        const ISSUER: &str = "--oidc-issuer-url";
        if flags.issuer_url.is_empty() {
            return Err(ConfigError::invalid(ISSUER, "required value"));
        }
        validate_https_url(ISSUER, &flags.issuer_url)?;
        if flags.client_id.is_empty() {
            return Err(ConfigError::invalid(
                "--oidc-client-id",
                "required value: --oidc-issuer-url and --oidc-client-id must be set together",
            ));
        }
        let username_claim = match flags.username_claim.as_deref() {
            None | Some("") => "sub",
            Some(c) => c,
        };
        let username_prefix = match flags.username_prefix.as_deref() {
            Some("-") => String::new(),
            None | Some("") if username_claim != "email" => format!("{}#", flags.issuer_url),
            None | Some("") => String::new(),
            Some(p) => p.to_owned(),
        };
        let groups = match flags.groups_claim.as_deref() {
            None | Some("") => None,
            Some(claim) => Some(Mapping::Claim {
                claim: claim.to_owned(),
                prefix: flags.groups_prefix.clone().unwrap_or_default(),
            }),
        };
        let mut claim_validation = Vec::with_capacity(flags.required_claims.len());
        let mut seen = BTreeSet::new();
        for (claim, value) in &flags.required_claims {
            if claim.is_empty() {
                return Err(ConfigError::invalid(
                    "--oidc-required-claim",
                    "must be key=value with a non-empty key",
                ));
            }
            if !seen.insert(claim.as_str()) {
                return Err(ConfigError::invalid(
                    "--oidc-required-claim",
                    format!("duplicate key {claim:?}"),
                ));
            }
            claim_validation.push(ClaimRule::Required {
                claim: claim.clone(),
                value: value.clone(),
            });
        }
        if let Some(ca) = &flags.ca_pem {
            validate_ca("--oidc-ca-file", ca)?;
        }
        let signing_algs = if flags.signing_algs.is_empty() {
            vec!["RS256".to_owned()]
        } else {
            for alg in &flags.signing_algs {
                if !LEGACY_SIGNING_ALGS.contains(&alg.as_str()) {
                    return Err(ConfigError::invalid(
                        "--oidc-signing-algs",
                        format!(
                            "unsupported algorithm {alg:?}: supported: {}",
                            LEGACY_SIGNING_ALGS.join(", ")
                        ),
                    ));
                }
            }
            flags.signing_algs.clone()
        };
        Ok(Self {
            jwt: vec![JwtIssuer {
                issuer_url: flags.issuer_url.clone(),
                discovery_url: None,
                certificate_authority: flags.ca_pem.clone(),
                audiences: vec![flags.client_id.clone()],
                signing_algs,
                rules: Rules {
                    claim_validation,
                    username: Mapping::Claim {
                        claim: username_claim.to_owned(),
                        prefix: username_prefix,
                    },
                    uid: None,
                    groups,
                    extra: Vec::new(),
                    user_validation: Vec::new(),
                    allow_system_identities: false,
                },
            }],
        })
    }
}

// ---- the file, as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    jwt: Vec<RawJwt>,
    /// v1's anonymous authenticator settings: accepted, not used here.
    #[serde(default)]
    #[allow(dead_code)]
    anonymous: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawJwt {
    issuer: RawIssuer,
    #[serde(default)]
    claim_validation_rules: Vec<RawClaimValidationRule>,
    #[serde(default)]
    claim_mappings: RawClaimMappings,
    #[serde(default)]
    user_validation_rules: Vec<RawUserValidationRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawIssuer {
    url: Option<String>,
    #[serde(rename = "discoveryURL")]
    discovery_url: Option<String>,
    certificate_authority: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    audience_match_policy: Option<String>,
    egress_selector_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawClaimValidationRule {
    claim: Option<String>,
    required_value: Option<String>,
    expression: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawClaimMappings {
    #[serde(default)]
    username: RawPrefixedClaimOrExpression,
    groups: Option<RawPrefixedClaimOrExpression>,
    uid: Option<RawClaimOrExpression>,
    #[serde(default)]
    extra: Vec<RawExtraMapping>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefixedClaimOrExpression {
    claim: Option<String>,
    prefix: Option<String>,
    expression: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimOrExpression {
    claim: Option<String>,
    expression: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExtraMapping {
    key: Option<String>,
    value_expression: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserValidationRule {
    expression: Option<String>,
    message: Option<String>,
}

// ---- validation ----

/// `Some(s)` when set and not empty (kube's `len(x) > 0`).
fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

fn validate_jwt(path: &str, raw: &RawJwt) -> Result<JwtIssuer, ConfigError> {
    let issuer = &raw.issuer;
    let ipath = format!("{path}.issuer");

    let url_field = format!("{ipath}.url");
    let issuer_url =
        set(&issuer.url).ok_or_else(|| ConfigError::invalid(&url_field, "required value"))?;
    validate_https_url(&url_field, issuer_url)?;

    let discovery_url = match set(&issuer.discovery_url) {
        None => None,
        Some(d) => {
            let field = format!("{ipath}.discoveryURL");
            validate_https_url(&field, d)?;
            if d == issuer_url {
                return Err(ConfigError::invalid(
                    field,
                    "discoveryURL must be different from URL",
                ));
            }
            Some(d.to_owned())
        }
    };

    let certificate_authority = match set(&issuer.certificate_authority) {
        None => None,
        Some(ca) => {
            validate_ca(&format!("{ipath}.certificateAuthority"), ca)?;
            Some(ca.to_owned())
        }
    };

    validate_audiences(
        &ipath,
        &issuer.audiences,
        issuer.audience_match_policy.as_deref(),
    )?;

    if let Some(egress) = set(&issuer.egress_selector_type) {
        return Err(ConfigError::invalid(
            format!("{ipath}.egressSelectorType"),
            format!("unsupported value {egress:?}: kgate has no egress selector"),
        ));
    }

    let claim_validation = validate_claim_rules(
        &format!("{path}.claimValidationRules"),
        &raw.claim_validation_rules,
    )?;

    let mpath = format!("{path}.claimMappings");
    let mappings = &raw.claim_mappings;
    let username =
        prefixed_mapping(&format!("{mpath}.username"), &mappings.username)?.ok_or_else(|| {
            ConfigError::invalid(
                format!("{mpath}.username"),
                "required value: claim or expression is required",
            )
        })?;
    let groups = match &mappings.groups {
        None => None,
        Some(g) => prefixed_mapping(&format!("{mpath}.groups"), g)?,
    };
    let uid = match &mappings.uid {
        None => None,
        Some(u) => claim_or_expression(&format!("{mpath}.uid"), u)?,
    };
    let extra = validate_extra(&format!("{mpath}.extra"), &mappings.extra)?;

    // kube: an email username from an expression must look at email_verified somewhere.
    if let Mapping::Expression(expr) = &username {
        if expr.mentions_claim("email") {
            let verified = expr.mentions_claim("email_verified")
                || extra
                    .iter()
                    .any(|e| e.value.mentions_claim("email_verified"))
                || claim_validation.iter().any(|r| match r {
                    ClaimRule::Expression { expr, .. } => expr.mentions_claim("email_verified"),
                    ClaimRule::Required { .. } => false,
                });
            if !verified {
                return Err(ConfigError::invalid(
                    expr.field(),
                    "claims.email_verified must be used in claimMappings.username.expression or \
                     claimMappings.extra[*].valueExpression or claimValidationRules[*].expression \
                     when claims.email is used in claimMappings.username.expression",
                ));
            }
        }
    }

    let user_validation = validate_user_rules(
        &format!("{path}.userValidationRules"),
        &raw.user_validation_rules,
    )?;

    Ok(JwtIssuer {
        issuer_url: issuer_url.to_owned(),
        discovery_url,
        certificate_authority,
        audiences: issuer.audiences.clone(),
        signing_algs: Vec::new(),
        rules: Rules {
            claim_validation,
            username,
            uid,
            groups,
            extra,
            user_validation,
            allow_system_identities: false,
        },
    })
}

/// An `https` URL without user info, query or fragment.
fn validate_https_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| Err(ConfigError::invalid(field, reason));
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("invalid URL: contains whitespace or control characters");
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return bad("URL scheme must be https");
    };
    if !scheme.eq_ignore_ascii_case("https") {
        return bad("URL scheme must be https");
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return bad("URL must not contain a username or password");
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(authority, |(host, _)| host);
    if host.is_empty() {
        return bad("URL must have a host");
    }
    let after = &rest[authority_end..];
    if after.contains('?') {
        return bad("URL must not contain a query");
    }
    if after.contains('#') {
        return bad("URL must not contain a fragment");
    }
    Ok(())
}

/// At least one well-formed PEM `CERTIFICATE` block.
fn validate_ca(field: &str, pem: &str) -> Result<(), ConfigError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = pem;
    let mut found = 0;
    while let Some(start) = rest.find(BEGIN) {
        let body_and_more = &rest[start + BEGIN.len()..];
        let Some(end) = body_and_more.find(END) else {
            return Err(ConfigError::invalid(
                field,
                "unterminated PEM CERTIFICATE block",
            ));
        };
        let body: String = body_and_more[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| {
                ConfigError::invalid(field, "a PEM CERTIFICATE block is not valid base64")
            })?;
        // A DER certificate is a SEQUENCE.
        if der.first() != Some(&0x30) {
            return Err(ConfigError::invalid(
                field,
                "a PEM CERTIFICATE block is not a DER certificate",
            ));
        }
        found += 1;
        rest = &body_and_more[end + END.len()..];
    }
    if found == 0 {
        return Err(ConfigError::invalid(
            field,
            "no PEM CERTIFICATE block found",
        ));
    }
    Ok(())
}

fn validate_audiences(
    ipath: &str,
    audiences: &[String],
    policy: Option<&str>,
) -> Result<(), ConfigError> {
    let field = format!("{ipath}.audiences");
    if audiences.is_empty() {
        return Err(ConfigError::invalid(
            field,
            "required value: at least one audience is required",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, aud) in audiences.iter().enumerate() {
        if aud.is_empty() {
            return Err(ConfigError::invalid(
                format!("{field}[{i}]"),
                "audience can't be empty",
            ));
        }
        if !seen.insert(aud.as_str()) {
            return Err(ConfigError::invalid(
                format!("{field}[{i}]"),
                format!("duplicate value {aud:?}"),
            ));
        }
    }
    let policy = policy.unwrap_or("");
    let policy_field = format!("{ipath}.audienceMatchPolicy");
    if audiences.len() > 1 && policy != AUDIENCE_MATCH_ANY {
        return Err(ConfigError::invalid(
            policy_field,
            "audienceMatchPolicy must be MatchAny for multiple audiences",
        ));
    }
    if !policy.is_empty() && policy != AUDIENCE_MATCH_ANY {
        return Err(ConfigError::invalid(
            policy_field,
            "audienceMatchPolicy must be empty or MatchAny for single audience",
        ));
    }
    Ok(())
}

fn validate_claim_rules(
    path: &str,
    rules: &[RawClaimValidationRule],
) -> Result<Vec<ClaimRule>, ConfigError> {
    let mut seen_claims = BTreeSet::new();
    let mut seen_expressions = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let rpath = format!("{path}[{i}]");
        match (set(&rule.claim), set(&rule.expression)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid(
                    rpath,
                    "claim and expression can't both be specified",
                ))
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    rpath,
                    "required value: claim or expression is required",
                ))
            }
            (Some(claim), None) => {
                if set(&rule.message).is_some() {
                    return Err(ConfigError::invalid(
                        format!("{rpath}.message"),
                        "message can't be specified when claim is specified",
                    ));
                }
                if !seen_claims.insert(claim) {
                    return Err(ConfigError::invalid(
                        format!("{rpath}.claim"),
                        format!("duplicate value {claim:?}"),
                    ));
                }
                out.push(ClaimRule::Required {
                    claim: claim.to_owned(),
                    value: rule.required_value.clone().unwrap_or_default(),
                });
            }
            (None, Some(expression)) => {
                if set(&rule.required_value).is_some() {
                    return Err(ConfigError::invalid(
                        format!("{rpath}.requiredValue"),
                        "requiredValue can't be specified when expression is specified",
                    ));
                }
                let field = format!("{rpath}.expression");
                if !seen_expressions.insert(expression) {
                    return Err(ConfigError::invalid(field, "duplicate value"));
                }
                out.push(ClaimRule::Expression {
                    expr: Expr::compile(&field, expression, Scope::Claims)?,
                    message: rule.message.clone().unwrap_or_default(),
                });
            }
        }
    }
    Ok(out)
}

/// `username`/`groups`: claim (with a required prefix) xor expression (no prefix); `None` when
/// neither is set.
fn prefixed_mapping(
    path: &str,
    raw: &RawPrefixedClaimOrExpression,
) -> Result<Option<Mapping>, ConfigError> {
    match (set(&raw.claim), set(&raw.expression)) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            path,
            "claim and expression can't both be specified",
        )),
        (None, None) => {
            if raw.prefix.is_some() {
                return Err(ConfigError::invalid(
                    format!("{path}.prefix"),
                    "may not be specified without claim",
                ));
            }
            Ok(None)
        }
        (Some(claim), None) => {
            let prefix = raw.prefix.clone().ok_or_else(|| {
                ConfigError::invalid(
                    format!("{path}.prefix"),
                    "required value: prefix is required when claim is set; it can be set to an \
                     empty string to disable prefixing",
                )
            })?;
            Ok(Some(Mapping::Claim {
                claim: claim.to_owned(),
                prefix,
            }))
        }
        (None, Some(expression)) => {
            if raw.prefix.is_some() {
                return Err(ConfigError::invalid(
                    format!("{path}.prefix"),
                    "may not be specified when expression is set",
                ));
            }
            let field = format!("{path}.expression");
            Ok(Some(Mapping::Expression(Expr::compile(
                &field,
                expression,
                Scope::Claims,
            )?)))
        }
    }
}

/// `uid`: claim xor expression; `None` when neither is set.
fn claim_or_expression(
    path: &str,
    raw: &RawClaimOrExpression,
) -> Result<Option<Mapping>, ConfigError> {
    match (set(&raw.claim), set(&raw.expression)) {
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            path,
            "claim and expression can't both be specified",
        )),
        (None, None) => Ok(None),
        (Some(claim), None) => Ok(Some(Mapping::Claim {
            claim: claim.to_owned(),
            prefix: String::new(),
        })),
        (None, Some(expression)) => Ok(Some(Mapping::Expression(Expr::compile(
            &format!("{path}.expression"),
            expression,
            Scope::Claims,
        )?))),
    }
}

fn validate_extra(path: &str, extra: &[RawExtraMapping]) -> Result<Vec<ExtraMapping>, ConfigError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(extra.len());
    for (i, mapping) in extra.iter().enumerate() {
        let key_field = format!("{path}[{i}].key");
        let key =
            set(&mapping.key).ok_or_else(|| ConfigError::invalid(&key_field, "required value"))?;
        validate_domain_prefixed_path(&key_field, key)?;
        if key != key.to_lowercase() {
            return Err(ConfigError::invalid(key_field, "key must be lowercase"));
        }
        if is_kubernetes_domain(key) {
            return Err(ConfigError::invalid(
                key_field,
                "k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use",
            ));
        }
        if !seen.insert(key) {
            return Err(ConfigError::invalid(
                key_field,
                format!("duplicate value {key:?}"),
            ));
        }
        let value_field = format!("{path}[{i}].valueExpression");
        let source = set(&mapping.value_expression).ok_or_else(|| {
            ConfigError::invalid(&value_field, "required value: valueExpression is required")
        })?;
        out.push(ExtraMapping {
            key: key.to_owned(),
            value: Expr::compile(&value_field, source, Scope::Claims)?,
        });
    }
    Ok(out)
}

/// kube's `IsDomainPrefixedPath`: `<DNS-1123 subdomain>/<path>`.
fn validate_domain_prefixed_path(field: &str, key: &str) -> Result<(), ConfigError> {
    let msg = "must be a domain-prefixed path (such as \"acme.io/foo\")";
    let Some((domain, path)) = key.split_once('/') else {
        return Err(ConfigError::invalid(field, msg));
    };
    if path.is_empty() || domain.is_empty() {
        return Err(ConfigError::invalid(field, msg));
    }
    if !is_dns1123_subdomain(&domain.to_ascii_lowercase()) {
        return Err(ConfigError::invalid(
            field,
            format!("{msg}: the domain is not a valid DNS-1123 subdomain"),
        ));
    }
    let path_ok = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c));
    if !path_ok {
        return Err(ConfigError::invalid(
            field,
            format!("{msg}: the path contains characters not allowed in a URL path"),
        ));
    }
    Ok(())
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_kubernetes_domain(key: &str) -> bool {
    let domain = key
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

fn validate_user_rules(
    path: &str,
    rules: &[RawUserValidationRule],
) -> Result<Vec<UserRule>, ConfigError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("{path}[{i}].expression");
        let expression = set(&rule.expression).ok_or_else(|| {
            ConfigError::invalid(&field, "required value: expression is required")
        })?;
        if !seen.insert(expression) {
            return Err(ConfigError::invalid(field, "duplicate value"));
        }
        out.push(UserRule {
            expr: Expr::compile(&field, expression, Scope::User)?,
            message: rule.message.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
