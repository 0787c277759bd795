//! `x509_chain`: the X.509 authenticator's verification of a presented chain
//! ([`X509Authenticator::verify`]): webpki's parsing and path building before any signature,
//! and the reading of the verified leaf (validity window, subject CN and O) after.
//!
//! Input: a mode byte, then
//! - mode bit 0 clear: the chain as the client sends it, DER certificates one after the other
//!   (split by their DER lengths, leaf first).
//! - mode bit 0 set: a `TBSCertificate` (DER), signed here by the fuzz CA (mode bit 1 clear) or
//!   by its intermediate (bit 1 set, the chain then ends with the intermediate), so the leaf's
//!   contents after the signature check are fuzzed too. A CA's signature on a subject the
//!   client chose is what a CSR signer gives.
//!
//! Whatever is accepted must be what the module promises: a leaf that is not a CA, valid now,
//! with no extended key usage or one that allows client authentication, and the user its
//! subject CN with its Os as groups.
//!
//! The fuzz PKI is made of Ed25519 keys from fixed seeds ([`pki`]): EdDSA signatures are
//! deterministic, so the CA, the seeds' chains and every run are the same.

use kgate_gateway::x509::X509Authenticator;
use ring::signature::Ed25519KeyPair;
use rustls_pki_types::UnixTime;
use std::sync::OnceLock;
use std::time::Duration;
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// The verifier's clock (2027-01-15); the fuzz PKI is valid from 2020 to 2100.
pub const NOW: u64 = 1_800_000_000;

/// The fuzz PKI: a root CA and an intermediate, from fixed Ed25519 seeds.
pub mod pki {
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };

    /// The root CA's key seed.
    pub const CA_SEED: [u8; 32] = [0x11; 32];
    /// The intermediate CA's key seed.
    pub const INTERMEDIATE_SEED: [u8; 32] = [0x22; 32];
    /// Seeds for leaf keys.
    pub const LEAF_SEED: [u8; 32] = [0x33; 32];

    /// The Ed25519 key of a seed (through its PKCS#8 v1 document, which rcgen reads).
    pub fn key(seed: [u8; 32]) -> KeyPair {
        let mut pkcs8 = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        pkcs8.extend_from_slice(&seed);
        KeyPair::try_from(pkcs8.as_slice()).unwrap_or_else(|e| panic!("Ed25519 key: {e}"))
    }

    /// A CA's parameters, valid 2020 to 2100.
    pub fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2100, 1, 1);
        params
    }

    /// The root CA: its certificate (DER) and an issuer for what it signs.
    pub fn ca() -> (Vec<u8>, Issuer<'static, KeyPair>) {
        let params = ca_params("kgate fuzz CA");
        let key = key(CA_SEED);
        let cert = params
            .self_signed(&key)
            .unwrap_or_else(|e| panic!("CA: {e}"));
        (cert.der().to_vec(), Issuer::new(params, key))
    }

    /// The intermediate CA, signed by the root: its certificate and an issuer.
    pub fn intermediate() -> (Vec<u8>, Issuer<'static, KeyPair>) {
        let (_, root) = ca();
        let params = ca_params("kgate fuzz intermediate");
        let key = key(INTERMEDIATE_SEED);
        let cert = params
            .signed_by(&key, &root)
            .unwrap_or_else(|e| panic!("intermediate: {e}"));
        (cert.der().to_vec(), Issuer::new(params, key))
    }
}

struct Setup {
    ca: Vec<u8>,
    intermediate: Vec<u8>,
    ca_key: Ed25519KeyPair,
    intermediate_key: Ed25519KeyPair,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let ed25519 = |seed: [u8; 32]| {
            Ed25519KeyPair::from_seed_unchecked(&seed).unwrap_or_else(|e| panic!("{e}"))
        };
        Setup {
            ca: pki::ca().0,
            intermediate: pki::intermediate().0,
            ca_key: ed25519(pki::CA_SEED),
            intermediate_key: ed25519(pki::INTERMEDIATE_SEED),
        }
    })
}

/// Runs one input; true when the chain authenticated.
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let setup = setup();
    let chain = if mode & 1 == 0 {
        split_der(rest)
    } else if mode & 2 == 0 {
        vec![signed(rest, &setup.ca_key)]
    } else {
        vec![
            signed(rest, &setup.intermediate_key),
            setup.intermediate.clone(),
        ]
    };
    // A new authenticator each time: its cache of verified chains would make runs differ.
    let authenticator = X509Authenticator::new(vec![setup.ca.clone()])
        .unwrap_or_else(|e| panic!("the fuzz CA: {e}"));
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW));
    let Ok(user) = authenticator.verify(&chain, now) else {
        return false;
    };

    let (_, leaf) = X509Certificate::from_der(&chain[0])
        .unwrap_or_else(|e| panic!("a verified leaf x509-parser cannot read: {e}"));
    assert!(!leaf.is_ca(), "a CA certificate authenticated as a client");
    if let Ok(Some(eku)) = leaf.extended_key_usage() {
        assert!(
            eku.value.client_auth || eku.value.any,
            "a certificate without clientAuth authenticated"
        );
    }
    let validity = leaf.validity();
    let now = NOW as i64;
    assert!(validity.not_before.timestamp() <= now && now <= validity.not_after.timestamp());
    let subject = leaf.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok());
    assert_eq!(cn, Some(user.name.as_str()));
    let organizations: Vec<&str> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    assert_eq!(user.groups, organizations);
    true
}

/// Splits concatenated DER elements by their lengths; what does not parse is the last one.
pub fn split_der(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let end = der_element_len(data).unwrap_or(data.len());
        out.push(data[..end].to_vec());
        data = &data[end..];
    }
    out
}

/// The length of the DER element at the start of `data`, header included, if it fits.
fn der_element_len(data: &[u8]) -> Option<usize> {
    let first = *data.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = data.get(2..2 + n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    };
    let total = header.checked_add(len)?;
    (total <= data.len()).then_some(total)
}

/// `Certificate ::= SEQUENCE { tbs, Ed25519 AlgorithmIdentifier, BIT STRING signature }`.
pub fn signed(tbs: &[u8], key: &Ed25519KeyPair) -> Vec<u8> {
    const ED25519: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    let signature = key.sign(tbs);
    let mut bits = vec![0];
    bits.extend_from_slice(signature.as_ref());
    let mut body = tbs.to_vec();
    body.extend_from_slice(&ED25519);
    body.extend(der(0x03, &bits));
    der(0x30, &body)
}

/// One DER element.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The `TBSCertificate` of a certificate (its first element).
pub fn tbs_of(certificate: &[u8]) -> Option<&[u8]> {
    let content_start = if *certificate.get(1)? < 0x80 {
        2
    } else {
        2 + usize::from(certificate[1] & 0x7f)
    };
    let inner = certificate.get(content_start..)?;
    Some(&inner[..der_element_len(inner)?])
}
