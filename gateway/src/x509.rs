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

use kgate_core::authn::{Authenticator, AuthnError, AuthnFuture, AuthnResponse, Credentials};
use kgate_core::UserInfo;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use thiserror::Error;
use webpki::{EndEntityCert, KeyUsage, ALL_VERIFICATION_ALGS};

const NAME: &str = "x509";

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
        Ok(Self { anchors })
    }

    /// Verifies `chain` (leaf first) at `now` and returns the user it names.
    pub fn verify(&self, chain: &[Vec<u8>], now: UnixTime) -> Result<UserInfo, AuthnError> {
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
        webpki::Error::UnknownIssuer => "certificate signed by unknown authority".to_owned(),
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
