//! From verified claims to a user: claim validation rules, claim mappings (username, uid,
//! groups, extra), user validation rules, in kube-apiserver's terms and order.
//!
//! One rule is kgate's own: a user name or a group in the `system:` namespace is refused
//! ([`ClaimsError::ReservedUsername`], [`ClaimsError::ReservedGroup`]) unless the issuer is
//! allowed them ([`JwtIssuer::allow_system_identities`], set by the operator outside the
//! `AuthenticationConfiguration` file). Such names belong to Kubernetes: `system:masters` is
//! cluster-admin whatever RBAC says, `system:nodes`, `system:serviceaccount:*` and the
//! components' users are what the cluster trusts its own parts by; an OpenID provider that lets
//! people name their groups (or set their email) could otherwise mint them. Kubernetes 1.34
//! checks none of this for JWT issuers (`k8s.io/apiserver/pkg/apis/apiserver/validation` and
//! `plugin/pkg/authenticator/token/oidc` have no `system:` rule): it leaves it to a user
//! validation rule such as `!user.username.startsWith('system:')`, and its legacy
//! `--oidc-username-prefix` default (`ISSUER#` unless the claim is `email`) keeps most user
//! names out of it; kgate refuses by default even without a rule. `system:authenticated` is not
//! added here (the caller does).

use crate::oidc::cel::{self, Expr};
use crate::oidc::config::JwtIssuer;
use kgate_core::UserInfo;
use thiserror::Error;

/// The namespace of user and group names an OIDC token may not map to, unless its issuer is
/// allowed them.
pub const RESERVED_PREFIX: &str = "system:";

/// The compiled rules of one issuer.
#[derive(Debug, Clone)]
pub struct Rules {
    pub(crate) claim_validation: Vec<ClaimRule>,
    pub(crate) username: Mapping,
    pub(crate) uid: Option<Mapping>,
    pub(crate) groups: Option<Mapping>,
    pub(crate) extra: Vec<ExtraMapping>,
    pub(crate) user_validation: Vec<UserRule>,
    /// Whether user and group names in the `system:` namespace are accepted (never from the
    /// file: see [`JwtIssuer::allow_system_identities`]).
    pub(crate) allow_system_identities: bool,
}

impl Default for Rules {
    /// The username from `sub`, unprefixed; nothing else.
    fn default() -> Self {
        Self {
            claim_validation: Vec::new(),
            username: Mapping::Claim {
                claim: "sub".to_owned(),
                prefix: String::new(),
            },
            uid: None,
            groups: None,
            extra: Vec::new(),
            user_validation: Vec::new(),
            allow_system_identities: false,
        }
    }
}

impl Rules {
    /// The claim the username comes from, when it is not an expression.
    pub fn username_claim(&self) -> Option<&str> {
        match &self.username {
            Mapping::Claim { claim, .. } => Some(claim),
            Mapping::Expression(_) => None,
        }
    }

    /// The prefix of claim-based usernames (`None` for an expression).
    pub fn username_prefix(&self) -> Option<&str> {
        match &self.username {
            Mapping::Claim { prefix, .. } => Some(prefix),
            Mapping::Expression(_) => None,
        }
    }

    /// The claim the groups come from, when it is one.
    pub fn groups_claim(&self) -> Option<&str> {
        match &self.groups {
            Some(Mapping::Claim { claim, .. }) => Some(claim),
            _ => None,
        }
    }

    /// The prefix of claim-based groups.
    pub fn groups_prefix(&self) -> Option<&str> {
        match &self.groups {
            Some(Mapping::Claim { prefix, .. }) => Some(prefix),
            _ => None,
        }
    }

    /// The `claim`/`requiredValue` rules, in order.
    pub fn required_claims(&self) -> impl Iterator<Item = (&str, &str)> {
        self.claim_validation.iter().filter_map(|r| match r {
            ClaimRule::Required { claim, value } => Some((claim.as_str(), value.as_str())),
            ClaimRule::Expression { .. } => None,
        })
    }

    /// Which claim or expression a mapping reads, for error texts (`claim "groups"`,
    /// `jwt[0].claimMappings.groups.expression`).
    fn source_of(mapping: &Mapping) -> String {
        match mapping {
            Mapping::Claim { claim, .. } => format!("claim {claim:?}"),
            Mapping::Expression(expr) => expr.field().to_owned(),
        }
    }

    /// Whether any claim-side rule or mapping is a CEL expression (the payload is then
    /// converted to CEL once per token).
    fn needs_claims_context(&self) -> bool {
        self.claim_validation
            .iter()
            .any(|r| matches!(r, ClaimRule::Expression { .. }))
            || matches!(self.username, Mapping::Expression(_))
            || matches!(self.uid, Some(Mapping::Expression(_)))
            || matches!(self.groups, Some(Mapping::Expression(_)))
            || !self.extra.is_empty()
    }
}

/// A claim mapping: a claim (with a prefix; empty for uid) or an expression.
#[derive(Debug, Clone)]
pub(crate) enum Mapping {
    Claim { claim: String, prefix: String },
    Expression(Expr),
}

/// One `claimValidationRules` entry.
#[derive(Debug, Clone)]
pub(crate) enum ClaimRule {
    /// `claim` must be a string equal to `value` (`requiredValue`).
    Required { claim: String, value: String },
    /// `expression` must yield true; else `message`.
    Expression { expr: Expr, message: String },
}

/// One `claimMappings.extra` entry.
#[derive(Debug, Clone)]
pub(crate) struct ExtraMapping {
    pub(crate) key: String,
    pub(crate) value: Expr,
}

/// One `userValidationRules` entry.
#[derive(Debug, Clone)]
pub(crate) struct UserRule {
    pub(crate) expr: Expr,
    pub(crate) message: String,
}

/// Why verified claims do not make an acceptable user. Texts name the rule or the claim, never
/// a claim's value.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClaimsError {
    /// A `claimValidationRules` entry failed; `message` is the rule's (or says which rule).
    #[error("claim validation rule failed: {message}")]
    ClaimValidation { message: String },
    /// A `userValidationRules` entry failed.
    #[error("user validation rule failed: {message}")]
    UserValidation { message: String },
    /// The user name is in the `system:` namespace and the issuer is not allowed such names
    /// (kgate's own rule); `via` names the claim or expression.
    #[error("the user name from {via} starts with the reserved prefix \"system:\", which this issuer may not assert")]
    ReservedUsername { via: String },
    /// A group is in the `system:` namespace and the issuer is not allowed such names (kgate's
    /// own rule); `via` names the claim or expression.
    #[error("a group from {via} starts with the reserved prefix \"system:\", which this issuer may not assert")]
    ReservedGroup { via: String },
    /// The username mapped to the empty string.
    #[error("empty username via {via} is not allowed")]
    EmptyUsername { via: String },
    /// A claim the configuration needs is absent.
    #[error("claim {claim:?} not present")]
    MissingClaim { claim: String },
    /// A claim has the wrong JSON type.
    #[error("claim {claim:?} is not a {want}")]
    BadClaimType { claim: String, want: String },
    /// An expression failed or yielded the wrong type.
    #[error("{field}: {reason}")]
    Expression { field: String, reason: String },
    /// The username is the `email` claim and `email_verified` is false.
    #[error("email not verified")]
    EmailNotVerified,
    /// The payload is not a JSON object.
    #[error("token claims are not a JSON object")]
    NotAnObject,
}

impl JwtIssuer {
    /// Accept (or, the default, refuse) user and group names in the `system:` namespace from
    /// this issuer's tokens. Dangerous: such a token may be `system:masters`, cluster-admin.
    /// Never read from the `AuthenticationConfiguration` file, which stays Kubernetes' format.
    pub fn allow_system_identities(&mut self, allow: bool) {
        self.rules.allow_system_identities = allow;
    }

    /// Whether user and group names in the `system:` namespace are accepted.
    pub fn allows_system_identities(&self) -> bool {
        self.rules.allow_system_identities
    }

    /// The user these verified claims (the token's payload, a JSON object) stand for.
    pub fn user_from_claims(&self, claims: &serde_json::Value) -> Result<UserInfo, ClaimsError> {
        let rules = &self.rules;
        let object = claims.as_object().ok_or(ClaimsError::NotAnObject)?;
        let ctx = rules
            .needs_claims_context()
            .then(|| cel::claims_context(claims));
        let ctx = ctx.as_ref();

        for rule in &rules.claim_validation {
            match rule {
                ClaimRule::Required { claim, value } => {
                    let got = string_claim(object, claim)?;
                    if got != value {
                        return Err(ClaimsError::ClaimValidation {
                            message: format!("required claim {claim:?} does not have the required value {value:?}"),
                        });
                    }
                }
                ClaimRule::Expression { expr, message } => {
                    if !expr.eval_bool(need(ctx, expr)?)? {
                        return Err(ClaimsError::ClaimValidation {
                            message: rule_message(message, expr),
                        });
                    }
                }
            }
        }

        let name = match &rules.username {
            Mapping::Claim { claim, prefix } => {
                let name = string_claim(object, claim)?;
                if name.is_empty() {
                    return Err(ClaimsError::EmptyUsername {
                        via: format!("claim {claim:?}"),
                    });
                }
                if claim == "email" {
                    match object.get("email_verified") {
                        None | Some(serde_json::Value::Bool(true)) => {}
                        Some(serde_json::Value::Bool(false)) => {
                            return Err(ClaimsError::EmailNotVerified)
                        }
                        Some(_) => {
                            return Err(ClaimsError::BadClaimType {
                                claim: "email_verified".into(),
                                want: "bool".into(),
                            })
                        }
                    }
                }
                format!("{prefix}{name}")
            }
            Mapping::Expression(expr) => {
                let name = expr.eval_string(need(ctx, expr)?)?;
                if name.is_empty() {
                    return Err(ClaimsError::EmptyUsername {
                        via: expr.field().to_owned(),
                    });
                }
                name
            }
        };
        let mut user = UserInfo::new(name);

        user.uid = match &rules.uid {
            None => String::new(),
            Some(Mapping::Claim { claim, .. }) => string_claim(object, claim)?.to_owned(),
            Some(Mapping::Expression(expr)) => expr.eval_string(need(ctx, expr)?)?,
        };

        user.groups = match &rules.groups {
            None => Vec::new(),
            Some(Mapping::Claim { claim, prefix }) => match object.get(claim.as_str()) {
                // kube: an absent groups claim means no groups.
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(serde_json::Value::String(g)) => vec![format!("{prefix}{g}")],
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|g| match g {
                        serde_json::Value::String(g) => Ok(format!("{prefix}{g}")),
                        _ => Err(bad_type(claim, "string or list of strings")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(bad_type(claim, "string or list of strings")),
            },
            Some(Mapping::Expression(expr)) => expr.eval_string_list(need(ctx, expr)?)?,
        };

        for extra in &rules.extra {
            let values: Vec<String> = extra
                .value
                .eval_string_list(need(ctx, &extra.value)?)?
                .into_iter()
                .filter(|v| !v.is_empty())
                .collect();
            if !values.is_empty() {
                user.extra.insert(extra.key.clone(), values);
            }
        }

        if !rules.user_validation.is_empty() {
            let user_ctx = cel::user_context(&user);
            for rule in &rules.user_validation {
                if !rule.expr.eval_bool(&user_ctx)? {
                    return Err(ClaimsError::UserValidation {
                        message: rule_message(&rule.message, &rule.expr),
                    });
                }
            }
        }

        // kgate's own rule, after Kubernetes' (so an operator's user validation rule speaks first).
        if !rules.allow_system_identities {
            if user.name.starts_with(RESERVED_PREFIX) {
                return Err(ClaimsError::ReservedUsername {
                    via: Rules::source_of(&rules.username),
                });
            }
            if let Some(groups) = &rules.groups {
                if user.groups.iter().any(|g| g.starts_with(RESERVED_PREFIX)) {
                    return Err(ClaimsError::ReservedGroup {
                        via: Rules::source_of(groups),
                    });
                }
            }
        }

        Ok(user)
    }
}

/// The claims context, built whenever a rule needs it (an internal invariant).
fn need<'a>(
    ctx: Option<&'a ::cel::Context<'static, 'static>>,
    expr: &Expr,
) -> Result<&'a ::cel::Context<'static, 'static>, ClaimsError> {
    ctx.ok_or_else(|| ClaimsError::Expression {
        field: expr.field().to_owned(),
        reason: "internal error: no claims bound".into(),
    })
}

fn string_claim<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    claim: &str,
) -> Result<&'a str, ClaimsError> {
    match object.get(claim) {
        None => Err(ClaimsError::MissingClaim {
            claim: claim.to_owned(),
        }),
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(bad_type(claim, "string")),
    }
}

fn bad_type(claim: &str, want: &str) -> ClaimsError {
    ClaimsError::BadClaimType {
        claim: claim.to_owned(),
        want: want.to_owned(),
    }
}

/// The rule's message, else which expression failed (configuration text, not token data).
fn rule_message(message: &str, expr: &Expr) -> String {
    if message.is_empty() {
        format!(
            "{}: expression {:?} yielded false",
            expr.field(),
            expr.source()
        )
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
