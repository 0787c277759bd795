//! rustls configurations: the gateway's listener, the separate control plane's listener, and the
//! gateway's client towards that control plane. All use the ring provider, TLS 1.2 and 1.3, and
//! ALPN `h2` then `http/1.1`.
//!
//! Threat model: the gateway's listener asks for a client certificate but leaves judging its chain
//! to the X.509 authenticator, so that an expired or foreign certificate is answered with a 401
//! `Status` kubectl can print instead of a handshake alert it reports as a TLS error. It still
//! checks the handshake signature, so a peer cannot present someone else's certificate without
//! its key: [`DangerousDeferredClientCertVerifier`]. The separate control plane's listener
//! verifies the chain at the TLS level (users' CA or requestheader CA) and requires a
//! certificate.

use crate::pki::IssuedCert;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::sync::Arc;
use thiserror::Error;

/// The ALPN protocols offered, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a TLS configuration could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The private key is not PEM PKCS#8/SEC1/PKCS#1.
    #[error("the private key cannot be parsed")]
    Key(#[source] rustls::pki_types::pem::Error),
    /// rustls refused the certificate, key or settings.
    #[error("invalid TLS settings")]
    Rustls(#[from] rustls::Error),
    /// The CA cannot be used as a trust anchor.
    #[error("the CA cannot be used to verify peers")]
    Verifier(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The crypto provider every config here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The gateway's listener: the serving certificate; client certificates requested, signatures
/// checked, chains left to the X.509 authenticator.
pub fn gateway_server_config(serving: &IssuedCert) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(DangerousDeferredClientCertVerifier::new(&provider));
    let (chain, key) = identity(serving)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The separate control plane's listener: a client certificate from one of `client_ca_ders` is
/// required (the users' CA and the requestheader CA: which of them may send identity headers is
/// the [`crate::front_proxy_guard`]'s question).
pub fn controlplane_server_config(
    serving: &IssuedCert,
    client_ca_ders: &[Vec<u8>],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for der in client_ca_ders {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(Box::new(e)))?;
    let (chain, key) = identity(serving)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client that trusts only `ca_der` and presents `client` (the gateway towards its upstream).
pub fn client_config(ca_der: &[u8], client: &IssuedCert) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_der)?, provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(Box::new(e)))?;
    let (chain, key) = identity(client)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

fn roots(ca_der: &[u8]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec()))?;
    Ok(Arc::new(roots))
}

fn identity(
    issued: &IssuedCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.expose_secret().as_bytes())
        .map_err(TlsError::Key)?;
    Ok((vec![CertificateDer::from(issued.cert_der.clone())], key))
}

/// Requests a client certificate, does not require one, and does not judge its chain (expiry,
/// issuer, key usage): the X.509 authenticator does, and answers failures with a 401 `Status`.
/// It does verify the handshake signature with the provider's algorithms, so a client that
/// presents a certificate has proven it holds the certificate's private key.
///
/// Dangerous on its own: a listener using it must put every request through the X.509
/// authenticator before trusting the [`crate::peer::PeerCertificates`] it records.
#[derive(Debug)]
pub struct DangerousDeferredClientCertVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl DangerousDeferredClientCertVerifier {
    pub fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for DangerousDeferredClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: clients such as Go's (kubectl) then send whatever certificate they have, and a
    /// certificate from another CA gets a clear 401 from the authenticator instead of being
    /// silently withheld by the client.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Deliberately deferred: see the type's documentation.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
