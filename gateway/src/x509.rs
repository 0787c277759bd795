//! X.509 client-certificate authentication, as kube-apiserver's `x509` request authenticator
//! with `CommonNameUserConversion`: the chain the client presented is verified against the
//! client CA, and the user is the leaf's subject CN, the groups every subject O.
//!
//! Threat model:
//! - The TLS listener accepts any client certificate (it checks only that the client holds the
//!   leaf's key) so that a bad certificate gets a 401 Status kubectl can print rather than a
//!   failed handshake. Everything about trust is decided here: the chain must lead to one of the
//!   configured CAs, be valid now, and allow client authentication.
//! - A certificate issued for servers (an extended key usage without `clientAuth`) is refused,
//!   so the gateway's own serving certificate, or any other server's from the same CA, cannot
//!   log in as a user. One with no extended key usage at all is accepted for any purpose, as
//!   RFC 5280 and kube (Go's `x509.Verify`) accept it.
//! - A CA certificate presented as the leaf is refused (webpki: `CaUsedAsEndEntity`).
//! - Revocation is not checked: kube-apiserver does not check it either; short-lived client
//!   certificates are the remedy.
//! - Refusals carry kube's wording, never certificate contents.
//! - A chain that verified is remembered, byte for byte, with the window in which every
//!   certificate of it is valid: the same connection (or client) presents the same chain on
//!   every request, and a signature check costs more than the rest of the pipeline together.
//!   A remembered chain is still refused outside its window; a changed CA means a new
//!   authenticator and an empty cache.

use kgate_core::authn::{Authenticator, AuthnError, AuthnFuture, AuthnResponse, Credentials};
use kgate_core::UserInfo;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use webpki::{EndEntityCert, KeyUsage, ALL_VERIFICATION_ALGS};

const NAME: &str = "x509";

/// How many verified chains are remembered; past this the cache starts afresh.
const VERIFIED_CHAINS: usize = 4096;

/// Why the client CA could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum X509Error {
    /// No CA certificate was given: nobody could ever log in with a certificate.
    #[error("no client CA certificate was given")]
    NoCa,
    /// A CA certificate is not a certificate webpki can use as a trust anchor.
    #[error("client CA certificate #{index} cannot be used as a trust anchor")]
    InvalidCa {
        /// Its position in the list given to [`X509Authenticator::new`].
        index: usize,
        #[source]
        source: webpki::Error,
    },
}

/// Verifies client certificates against the client CA; see the module docs.
#[derive(Debug, Clone)]
pub struct X509Authenticator {
    anchors: Vec<TrustAnchor<'static>>,
    verified: Arc<Mutex<HashMap<Vec<Vec<u8>>, Verified>>>,
}

/// A chain that verified: its user, and when all of its certificates are valid (Unix seconds,
/// inclusive, as webpki checks them).
#[derive(Debug, Clone)]
struct Verified {
    user: UserInfo,
    not_before: u64,
    not_after: u64,
}

impl X509Authenticator {
    /// Trusts the given CA certificates (DER) to sign client certificates.
    pub fn new(client_ca_certs_der: Vec<Vec<u8>>) -> Result<Self, X509Error> {
        if client_ca_certs_der.is_empty() {
            return Err(X509Error::NoCa);
        }
        let anchors = client_ca_certs_der
            .iter()
            .enumerate()
            .map(|(index, der)| {
                webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                    .map(|anchor| anchor.to_owned())
                    .map_err(|source| X509Error::InvalidCa { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            anchors,
            verified: Arc::default(),
        })
    }

    /// Verifies `chain` (leaf first) at `now` and returns the user it names.
    pub fn verify(&self, chain: &[Vec<u8>], now: UnixTime) -> Result<UserInfo, AuthnError> {
        let seconds = now.as_secs();
        if let Some(known) = self.lock().get(chain) {
            if (known.not_before..=known.not_after).contains(&seconds) {
                return Ok(known.user.clone());
            }
        }
        let user = self.verify_uncached(chain, now)?;
        if let Some((not_before, not_after)) = validity_window(chain) {
            let mut verified = self.lock();
            if verified.len() >= VERIFIED_CHAINS {
                verified.clear();
            }
            let entry = Verified {
                user: user.clone(),
                not_before,
                not_after,
            };
            verified.insert(chain.to_vec(), entry);
        }
        Ok(user)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<Vec<u8>>, Verified>> {
        // The map holds only finished entries; one left by a panicking thread is still sound.
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn verify_uncached(&self, chain: &[Vec<u8>], now: UnixTime) -> Result<UserInfo, AuthnError> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err(invalid("no certificate was presented"));
        };
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let end_entity =
            EndEntityCert::try_from(&leaf_der).map_err(|_| invalid("malformed certificate"))?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        end_entity
            .verify_for_usage(
                ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                now,
                KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(|e| invalid(reason(&e)))?;
        user_of(leaf)
    }
}

/// kube's words (Go's `x509` errors, whose `x509: ` prefix [`AuthnError`] adds) for a webpki
/// refusal.
fn reason(error: &webpki::Error) -> String {
    match error {
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            "certificate has expired or is not yet valid".to_owned()
        }
        // A forged signature under a trusted CA's name is, to Go, an unknown authority too.
        webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
            "certificate signed by unknown authority".to_owned()
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "certificate specifies an incompatible key usage".to_owned()
        }
        webpki::Error::CaUsedAsEndEntity => {
            "a CA certificate cannot be used as a client certificate".to_owned()
        }
        // webpki's own text names the failed check and no certificate contents.
        other => format!("certificate verification failed: {other}"),
    }
}

fn invalid(reason: impl Into<String>) -> AuthnError {
    AuthnError::Invalid {
        authenticator: NAME,
        reason: reason.into(),
    }
}

/// The window (Unix seconds, inclusive) in which every certificate of `chain` is valid.
fn validity_window(chain: &[Vec<u8>]) -> Option<(u64, u64)> {
    let mut window = (0u64, u64::MAX);
    for der in chain {
        let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
        let validity = certificate.validity();
        let not_before = u64::try_from(validity.not_before.timestamp()).unwrap_or(0);
        let not_after = u64::try_from(validity.not_after.timestamp()).ok()?;
        window = (window.0.max(not_before), window.1.min(not_after));
    }
    Some(window)
}

/// The user of a verified leaf: CN the name, every O a group, in order.
fn user_of(leaf: &[u8]) -> Result<UserInfo, AuthnError> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(leaf).map_err(|_| invalid("malformed certificate"))?;
    let subject = certificate.subject();
    let name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default();
    if name.is_empty() {
        // kube's CommonNameUserConversion does not authenticate a certificate without a CN.
        return Err(invalid("the certificate has no subject common name"));
    }
    let groups = subject
        .iter_organization()
        .map(|o| {
            o.as_str()
                .map(str::to_owned)
                .map_err(|_| invalid("a subject organization is not a string"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(UserInfo::new(name).with_groups(groups))
}

impl Authenticator for X509Authenticator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a> {
        // Verification is a few signature checks: cheap enough to do before returning.
        let answer = if credentials.client_certificates.is_empty() {
            // No certificate: not mine; a token authenticator may answer.
            Ok(None)
        } else {
            self.verify(&credentials.client_certificates, UnixTime::now())
                .map(|user| Some(AuthnResponse { user }))
        };
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
#[path = "x509_tests.rs"]
mod tests;
