//! Verifying a ServiceAccount token, as kube-apiserver's ServiceAccount token authenticator
//! (k8s.io/kubernetes/pkg/serviceaccount: jwt.go, claims.go, legacy.go).
//!
//! Threat model: the token comes from anyone. Before any parsing a token over
//! [`MAX_TOKEN_BYTES`] is refused. The issuer is then read *unverified*, only to decide whether
//! the token is ours ("not mine" lets another authenticator try); nothing else is trusted until
//! the signature checks. The algorithm is the key's, never the header's: a header naming
//! another algorithm than its key's (`none`, HS256 signed with the public key, RS256 vs ES256)
//! is refused. After the signature: time (with [`LEEWAY_SECONDS`] of clock skew, go-jose's
//! default that Kubernetes uses), audience, the subject against the ServiceAccount claims (a
//! token cannot name one account in `sub` and another in its claims), and the objects the token
//! depends on, as kube-apiserver checks them:
//!
//! - a bound token (claims.go): its ServiceAccount and bound Pod, Secret or Node must exist with
//!   the UID of the claims, and one whose `deletionTimestamp` is more than the leeway past ends
//!   it: a pod stuck terminating (finalizers) does not keep its tokens alive;
//! - a legacy token (legacy.go): its ServiceAccount must exist with the claimed UID and not be
//!   being deleted; its Secret (the claims name it, without UID) must be of type
//!   `kubernetes.io/service-account-token`, not be being deleted, not carry the
//!   `kubernetes.io/legacy-token-invalid-since` label, and still hold this very token in
//!   `data.token`, compared by keyed digest (see [`crate::digest`]). So deleting the Secret and
//!   making another of the same name, or writing another token into it, revokes the old token.
//!
//! Error texts name the failed check and public object names, never the token.

use crate::authenticator::{ObjectKind, ObjectLookup};
use crate::claims::{self, IssuerOnly, ReceivedClaims};
use crate::digest::TokenDigest;
use crate::issuer::IssuerConfig;
use crate::keys::{Algorithm, Key, KeySet};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use kgate_core::user::ALL_AUTHENTICATED;
use kgate_core::UserInfo;
use std::collections::BTreeMap;
use thiserror::Error;

/// Tokens longer than this are refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY_SECONDS: i64 = 60;

/// Why a token that is ours was refused. The text names the check, never the token.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// Over [`MAX_TOKEN_BYTES`]; refused before parsing.
    #[error("token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    /// The JOSE header is not JSON or names no known algorithm (`none` included).
    #[error("token header is malformed or names an unsupported algorithm")]
    MalformedHeader,
    /// A known algorithm that no ServiceAccount key uses (HS256, PS256, ...).
    #[error("token algorithm {0} is not accepted")]
    UnsupportedAlgorithm(String),
    /// The header's algorithm is not the one of the key its kid names.
    #[error("token algorithm does not match its signing key's")]
    AlgorithmMismatch,
    /// No verification key has this kid (or this algorithm, for a token without kid).
    #[error("token was signed by an unknown key")]
    UnknownKey,
    /// No candidate key verifies the signature: forged, tampered or truncated.
    #[error("invalid token signature")]
    BadSignature,
    /// The claims are not those of a ServiceAccount token.
    #[error("token claims are malformed: {0}")]
    MalformedClaims(&'static str),
    /// `exp` (plus the leeway) is past.
    #[error("service account token has expired")]
    Expired,
    /// `nbf` is more than the leeway ahead.
    #[error("service account token is not valid yet")]
    NotYetValid,
    /// `iat` is more than the leeway ahead.
    #[error("service account token is issued in the future")]
    IssuedInFuture,
    /// No audience of the token is an API audience.
    #[error("token audiences are not among the API audiences")]
    WrongAudience,
    /// The token's id is on the deny list (machine tokens).
    #[error("token has been revoked")]
    Revoked,
    /// `sub` is not the user name of the ServiceAccount in the claims.
    #[error("token subject does not match its service account claims")]
    SubjectMismatch,
    /// An object the token depends on no longer exists.
    #[error("{kind} {} has been deleted", qualified(namespace, name))]
    ObjectMissing {
        kind: ObjectKind,
        namespace: String,
        name: String,
    },
    /// An object the token depends on was replaced by another of the same name.
    #[error(
        "{kind} {} has another UID than the token was issued for",
        qualified(namespace, name)
    )]
    UidMismatch {
        kind: ObjectKind,
        namespace: String,
        name: String,
    },
    /// An object the token depends on is being deleted: for a bound token, since more than
    /// the leeway; for a legacy token's ServiceAccount or Secret, at all.
    #[error("{kind} {} is being deleted", qualified(namespace, name))]
    ObjectDeleting {
        kind: ObjectKind,
        namespace: String,
        name: String,
    },
    /// A legacy token's Secret is not of type `kubernetes.io/service-account-token`.
    #[error(
        "secret {} is not of type kubernetes.io/service-account-token",
        qualified(namespace, name)
    )]
    NotATokenSecret { namespace: String, name: String },
    /// A legacy token's Secret holds another token (or none) now.
    #[error("secret {} no longer holds this token", qualified(namespace, name))]
    TokenNotInSecret { namespace: String, name: String },
    /// A legacy token's Secret carries the `kubernetes.io/legacy-token-invalid-since` label.
    #[error(
        "the token in secret {} has been marked invalid (label kubernetes.io/legacy-token-invalid-since)",
        qualified(namespace, name)
    )]
    TokenInvalidated { namespace: String, name: String },
}

fn qualified(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    }
}

/// An object a verified token depends on: valid only while it exists with this UID and its
/// [`Rule`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dependency {
    pub kind: ObjectKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rule: Rule,
}

/// What else than existing with its UID a dependency must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Of a bound token (claims.go): a `deletionTimestamp` more than [`LEEWAY_SECONDS`] past
    /// ends the token.
    Bound,
    /// A legacy token's ServiceAccount (legacy.go): any `deletionTimestamp` ends the token.
    LegacyServiceAccount,
    /// A legacy token's Secret (legacy.go): a token Secret, not being deleted, not marked
    /// invalid, still holding the token of this digest.
    LegacySecret(TokenDigest),
}

impl Dependency {
    /// True when the object still satisfies the dependency at `now`.
    pub fn holds(&self, lookup: &dyn ObjectLookup, now: i64) -> bool {
        self.check(lookup, now).is_ok()
    }

    /// Why the object no longer satisfies the dependency at `now`, if it does not.
    pub fn check(&self, lookup: &dyn ObjectLookup, now: i64) -> Result<(), VerifyError> {
        let (kind, namespace, name) = (self.kind, &self.namespace, &self.name);
        let object = || (namespace.clone(), name.clone());
        let missing = || {
            let (namespace, name) = object();
            VerifyError::ObjectMissing {
                kind,
                namespace,
                name,
            }
        };
        let uid_mismatch = || {
            let (namespace, name) = object();
            VerifyError::UidMismatch {
                kind,
                namespace,
                name,
            }
        };
        let deleting = || {
            let (namespace, name) = object();
            VerifyError::ObjectDeleting {
                kind,
                namespace,
                name,
            }
        };
        let digest = match self.rule {
            Rule::LegacySecret(digest) => digest,
            Rule::Bound | Rule::LegacyServiceAccount => {
                let state = lookup.object(kind, namespace, name).ok_or_else(missing)?;
                if state.uid != self.uid {
                    return Err(uid_mismatch());
                }
                let ended = match (self.rule, state.deletion_timestamp) {
                    (_, None) => false,
                    // kube: invalid when deleted before now - leeway.
                    (Rule::Bound, Some(at)) => at < now.saturating_sub(LEEWAY_SECONDS),
                    (_, Some(_)) => true,
                };
                return if ended { Err(deleting()) } else { Ok(()) };
            }
        };
        let Some(secret) = lookup.token_secret(namespace, name) else {
            return Err(match lookup.object(kind, namespace, name) {
                Some(_) => {
                    let (namespace, name) = object();
                    VerifyError::NotATokenSecret { namespace, name }
                }
                None => missing(),
            });
        };
        if secret.uid != self.uid {
            return Err(uid_mismatch());
        }
        if secret.deleting {
            return Err(deleting());
        }
        if secret.invalidated {
            let (namespace, name) = object();
            return Err(VerifyError::TokenInvalidated { namespace, name });
        }
        if secret.token != Some(digest) {
            let (namespace, name) = object();
            return Err(VerifyError::TokenNotInSecret { namespace, name });
        }
        Ok(())
    }
}

/// A verified token: who it is, when it is valid (`nbf`/`iat` and `exp` widened by the leeway;
/// `None` when the token has no such claim, as legacy tokens), which objects it depends on and
/// which key verified it.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub user: UserInfo,
    pub valid_from: Option<i64>,
    pub valid_until: Option<i64>,
    pub deps: Vec<Dependency>,
    pub kid: String,
}

/// What a verification needs.
pub(crate) struct Verifier<'a> {
    pub keys: &'a KeySet,
    pub config: &'a IssuerConfig,
    pub lookup: &'a dyn ObjectLookup,
}

impl Verifier<'_> {
    /// `Ok(None)`: not ours. `now` is in seconds since the Unix epoch.
    pub fn verify(&self, token: &str, now: i64) -> Result<Option<Verified>, VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLarge);
        }
        let Some(unverified_issuer) = unverified_issuer(token) else {
            return Ok(None);
        };
        // UNVERIFIED: the issuer only routes the token (ours or another authenticator's).
        let legacy_issuer = unverified_issuer == claims::LEGACY_ISSUER;
        if unverified_issuer != self.config.issuer && !legacy_issuer {
            return Ok(None);
        }

        let (claims, kid): (ReceivedClaims, _) = signed_claims(self.keys, token)?;

        let iss = claims.iss.as_deref().unwrap_or_default();
        let legacy = iss == claims::LEGACY_ISSUER
            && (self.config.issuer != claims::LEGACY_ISSUER || claims.kubernetes.is_none());
        check_times(&claims, now, legacy)?;
        let verified = if legacy {
            self.legacy(&claims, token, now)?
        } else {
            self.bound(&claims, now)?
        };
        let starts = claims.nbf.into_iter().chain(claims.iat).max();
        Ok(Some(Verified {
            valid_from: starts.map(|t| t.saturating_sub(LEEWAY_SECONDS)),
            valid_until: claims.exp.map(|exp| exp.saturating_add(LEEWAY_SECONDS)),
            kid: kid.to_owned(),
            ..verified
        }))
    }

    /// The API audiences; when none are configured, the issuer (kube-apiserver's default)
    /// rather than accepting tokens minted for any audience.
    fn accepted_audiences(&self) -> &[String] {
        if self.config.api_audiences.is_empty() {
            std::slice::from_ref(&self.config.issuer)
        } else {
            &self.config.api_audiences
        }
    }

    fn bound(&self, claims: &ReceivedClaims, now: i64) -> Result<Verified, VerifyError> {
        match &claims.aud {
            Some(aud) if aud.contains_any(self.accepted_audiences()) => {}
            Some(_) => return Err(VerifyError::WrongAudience),
            None => {
                return Err(VerifyError::MalformedClaims(
                    "a bound token has no audience",
                ))
            }
        }
        let k = claims
            .kubernetes
            .as_ref()
            .ok_or(VerifyError::MalformedClaims("no kubernetes.io claim"))?;
        let (namespace, sa) = (&k.namespace, &k.serviceaccount);
        if namespace.is_empty() || sa.name.is_empty() || sa.uid.is_empty() {
            return Err(VerifyError::MalformedClaims(
                "namespace and service account name and uid are required",
            ));
        }
        check_subject(claims, namespace, &sa.name)?;

        let dependency = |kind, namespace: &str, name: &str, uid: &str| Dependency {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            rule: Rule::Bound,
        };
        let mut deps = vec![dependency(
            ObjectKind::ServiceAccount,
            namespace,
            &sa.name,
            &sa.uid,
        )];
        let mut extra = BTreeMap::new();
        if let Some(pod) = &k.pod {
            deps.push(dependency(ObjectKind::Pod, namespace, &pod.name, &pod.uid));
            extra.insert(claims::POD_NAME_KEY.to_owned(), vec![pod.name.clone()]);
            extra.insert(claims::POD_UID_KEY.to_owned(), vec![pod.uid.clone()]);
        }
        if let Some(secret) = &k.secret {
            deps.push(dependency(
                ObjectKind::Secret,
                namespace,
                &secret.name,
                &secret.uid,
            ));
        }
        if let Some(node) = &k.node {
            // A pod's node is information (as in Kubernetes); a node-bound token depends on it.
            if k.pod.is_none() {
                deps.push(dependency(ObjectKind::Node, "", &node.name, &node.uid));
            }
            extra.insert(claims::NODE_NAME_KEY.to_owned(), vec![node.name.clone()]);
            extra.insert(claims::NODE_UID_KEY.to_owned(), vec![node.uid.clone()]);
        }
        if let Some(jti) = claims.jti.as_deref().filter(|j| !j.is_empty()) {
            extra.insert(
                claims::CREDENTIAL_ID_KEY.to_owned(),
                vec![format!("JTI={jti}")],
            );
        }
        for dep in &deps {
            dep.check(self.lookup, now)?;
        }
        Ok(Verified {
            user: user(namespace, &sa.name, &sa.uid, extra),
            valid_from: None,
            valid_until: None,
            deps,
            kid: String::new(),
        })
    }

    fn legacy(
        &self,
        claims: &ReceivedClaims,
        token: &str,
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let field = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let (Some(namespace), Some(sa_name), Some(sa_uid), Some(secret_name)) = (
            field(&claims.legacy_namespace),
            field(&claims.legacy_service_account_name),
            field(&claims.legacy_service_account_uid),
            field(&claims.legacy_secret_name),
        ) else {
            return Err(VerifyError::MalformedClaims(
                "a legacy token needs namespace, secret and service account claims",
            ));
        };
        check_subject(claims, &namespace, &sa_name)?;
        // A legacy token has no audience; one that names audiences must name ours.
        if let Some(aud) = &claims.aud {
            if !aud.contains_any(self.accepted_audiences()) {
                return Err(VerifyError::WrongAudience);
            }
        }
        // The token lives as long as its Secret holds it. The claims do not carry the Secret's
        // UID, so the one it has now is recorded (with the token's digest) for cached checks.
        let secret_uid = match self.lookup.token_secret(&namespace, &secret_name) {
            Some(secret) => secret.uid,
            None if self
                .lookup
                .object(ObjectKind::Secret, &namespace, &secret_name)
                .is_some() =>
            {
                return Err(VerifyError::NotATokenSecret {
                    namespace,
                    name: secret_name,
                })
            }
            None => {
                return Err(VerifyError::ObjectMissing {
                    kind: ObjectKind::Secret,
                    namespace,
                    name: secret_name,
                })
            }
        };
        let secret = Dependency {
            kind: ObjectKind::Secret,
            namespace: namespace.clone(),
            name: secret_name,
            uid: secret_uid,
            rule: Rule::LegacySecret(self.lookup.token_digest(token.as_bytes())),
        };
        secret.check(self.lookup, now)?;
        let sa = Dependency {
            kind: ObjectKind::ServiceAccount,
            namespace: namespace.clone(),
            name: sa_name.clone(),
            uid: sa_uid.clone(),
            rule: Rule::LegacyServiceAccount,
        };
        sa.check(self.lookup, now)?;
        Ok(Verified {
            user: user(&namespace, &sa_name, &sa_uid, BTreeMap::new()),
            valid_from: None,
            valid_until: None,
            deps: vec![sa, secret],
            kid: String::new(),
        })
    }
}

/// The issuer of something shaped like a JWT (three dot-separated parts, the middle one
/// base64url JSON), unverified; `None` when it is not.
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<IssuerOnly>(&payload).ok()?.iss
}

/// The claims of `token` once one of `keys` verified its signature (the key its header's kid
/// names, of the header's algorithm; without a kid, any key of that algorithm), and that kid.
pub(crate) fn signed_claims<'k, T: serde::de::DeserializeOwned>(
    keys: &'k KeySet,
    token: &str,
) -> Result<(T, &'k str), VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::MalformedHeader)?;
    let algorithm = match header.alg {
        jsonwebtoken::Algorithm::RS256 => Algorithm::Rs256,
        jsonwebtoken::Algorithm::ES256 => Algorithm::Es256,
        other => return Err(VerifyError::UnsupportedAlgorithm(format!("{other:?}"))),
    };
    let candidates: Vec<&Key> = match &header.kid {
        Some(kid) => {
            let key = keys.by_kid(kid).ok_or(VerifyError::UnknownKey)?;
            if key.algorithm != algorithm {
                return Err(VerifyError::AlgorithmMismatch);
            }
            vec![key]
        }
        // No kid: any key of the header's algorithm may have signed it.
        None => keys.with_algorithm(algorithm).collect(),
    };
    if candidates.is_empty() {
        return Err(VerifyError::UnknownKey);
    }
    verify_signature(token, &candidates)
}

/// Checks the signature with each candidate key; returns the claims and the kid that verified.
fn verify_signature<'k, T: serde::de::DeserializeOwned>(
    token: &str,
    candidates: &[&'k Key],
) -> Result<(T, &'k str), VerifyError> {
    for key in candidates {
        // Only the key's algorithm; exp, nbf, aud and iss are checked by the caller with its
        // own clock and rules.
        let mut validation = jsonwebtoken::Validation::new(key.algorithm.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        match jsonwebtoken::decode::<T>(token, &key.decoding, &validation) {
            Ok(data) => return Ok((data.claims, &key.kid)),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            // jsonwebtoken's own text may quote claim values: never pass it on.
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                        VerifyError::AlgorithmMismatch
                    }
                    ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                        VerifyError::MalformedClaims("not the JSON claims of a kgate token")
                    }
                    _ => VerifyError::BadSignature,
                })
            }
        }
    }
    Err(VerifyError::BadSignature)
}

pub(crate) fn check_times(
    claims: &ReceivedClaims,
    now: i64,
    legacy: bool,
) -> Result<(), VerifyError> {
    match claims.exp {
        Some(exp) if now > exp.saturating_add(LEEWAY_SECONDS) => return Err(VerifyError::Expired),
        Some(_) => {}
        None if legacy => {}
        None => {
            return Err(VerifyError::MalformedClaims(
                "a bound token has no expiration",
            ))
        }
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECONDS))
    {
        return Err(VerifyError::NotYetValid);
    }
    if claims
        .iat
        .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECONDS))
    {
        return Err(VerifyError::IssuedInFuture);
    }
    Ok(())
}

/// `sub` must be the user name the claims make, so a token cannot say one account in `sub` and
/// act as another.
fn check_subject(claims: &ReceivedClaims, namespace: &str, name: &str) -> Result<(), VerifyError> {
    let expected = claims::service_account_user(namespace, name);
    if claims.sub.as_deref() != Some(expected.as_str()) {
        return Err(VerifyError::SubjectMismatch);
    }
    Ok(())
}

/// The user of a ServiceAccount, as kube-apiserver makes it.
fn user(namespace: &str, name: &str, uid: &str, extra: BTreeMap<String, Vec<String>>) -> UserInfo {
    UserInfo {
        name: claims::service_account_user(namespace, name),
        uid: uid.to_owned(),
        groups: vec![
            claims::ALL_SERVICE_ACCOUNTS_GROUP.to_owned(),
            claims::namespace_group(namespace),
            ALL_AUTHENTICATED.to_owned(),
        ],
        extra,
    }
}

#[cfg(test)]
mod tests;
