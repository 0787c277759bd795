//! A minimal DER writer for X.509 client certificates.
//!
//! rcgen keeps a certificate subject as a map, so it cannot write one subject with several
//! `O` attributes, and Kubernetes reads every `O` of a client certificate as a group. Client
//! certificates are therefore assembled here: a fixed-shape TBSCertificate (ECDSA P-256 with
//! SHA-256, the CA's subject as issuer, `O`s then `CN` as subject, clientAuth only), signed with
//! the CA's rcgen key. Everything else (the CA, the serving certificate) stays with rcgen.

use rcgen::{KeyPair, PublicKeyData, SigningKey};
use time::OffsetDateTime;

/// `ecdsa-with-SHA256` AlgorithmIdentifier (1.2.840.10045.4.3.2, parameters absent).
const ECDSA_WITH_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
const OID_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
const OID_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_UTC_TIME: u8 = 0x17;
const TAG_GENERALIZED_TIME: u8 = 0x18;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;

/// What goes into one client certificate.
pub(crate) struct ClientCertSpec<'a> {
    pub common_name: &'a str,
    pub organizations: &'a [String],
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The issuing CA's subject, raw DER, copied as the issuer name.
    pub issuer_subject_der: &'a [u8],
    /// The CA's subject key identifier, if it has one, for the authority key identifier.
    pub issuer_key_id: Option<&'a [u8]>,
}

/// Builds and signs the certificate; returns its DER.
pub(crate) fn client_certificate(
    spec: &ClientCertSpec<'_>,
    subject_key: &KeyPair,
    ca_key: &KeyPair,
) -> Result<Vec<u8>, rcgen::Error> {
    let mut tbs = Vec::new();
    // version: [0] EXPLICIT INTEGER 2 (v3)
    tbs.extend_from_slice(&[0xa0, 0x03, 0x02, 0x01, 0x02]);
    tbs.extend(tlv(TAG_INTEGER, &serial_from_key(subject_key)));
    tbs.extend_from_slice(ECDSA_WITH_SHA256);
    tbs.extend_from_slice(spec.issuer_subject_der);
    tbs.extend(tlv(
        TAG_SEQUENCE,
        &[der_time(spec.not_before), der_time(spec.not_after)].concat(),
    ));
    tbs.extend(subject(spec.common_name, spec.organizations));
    tbs.extend(subject_key.subject_public_key_info());
    tbs.extend(tlv(
        0xa3,
        &tlv(TAG_SEQUENCE, &extensions(spec.issuer_key_id)),
    ));
    let tbs = tlv(TAG_SEQUENCE, &tbs);

    let signature = ca_key.sign(&tbs)?;
    let mut bits = vec![0u8]; // no unused bits
    bits.extend(signature);
    Ok(tlv(
        TAG_SEQUENCE,
        &[tbs, ECDSA_WITH_SHA256.to_vec(), tlv(TAG_BIT_STRING, &bits)].concat(),
    ))
}

/// `O=...` for each organization, then `CN=...`, as kubeadm orders them.
fn subject(common_name: &str, organizations: &[String]) -> Vec<u8> {
    let attribute = |oid: &[u8], value: &str| {
        let pair = [tlv(TAG_OID, oid), tlv(TAG_UTF8_STRING, value.as_bytes())].concat();
        tlv(TAG_SET, &tlv(TAG_SEQUENCE, &pair))
    };
    let mut rdns = Vec::new();
    for organization in organizations {
        rdns.extend(attribute(OID_ORGANIZATION, organization));
    }
    rdns.extend(attribute(OID_COMMON_NAME, common_name));
    tlv(TAG_SEQUENCE, &rdns)
}

fn extensions(issuer_key_id: Option<&[u8]>) -> Vec<u8> {
    let extension = |oid: &[u8], critical: bool, value: Vec<u8>| {
        let mut body = tlv(TAG_OID, oid);
        if critical {
            body.extend(tlv(TAG_BOOLEAN, &[0xff]));
        }
        body.extend(tlv(TAG_OCTET_STRING, &value));
        tlv(TAG_SEQUENCE, &body)
    };
    // keyUsage: digitalSignature only (bit 0; 7 unused bits), as fits an ECDSA key.
    let mut out = extension(OID_KEY_USAGE, true, tlv(TAG_BIT_STRING, &[0x07, 0x80]));
    out.extend(extension(
        OID_EXT_KEY_USAGE,
        false,
        tlv(TAG_SEQUENCE, &tlv(TAG_OID, OID_CLIENT_AUTH)),
    ));
    // basicConstraints: an empty SEQUENCE means cA = FALSE.
    out.extend(extension(
        OID_BASIC_CONSTRAINTS,
        true,
        tlv(TAG_SEQUENCE, &[]),
    ));
    if let Some(key_id) = issuer_key_id {
        // AuthorityKeyIdentifier { keyIdentifier [0] IMPLICIT OCTET STRING }
        out.extend(extension(
            OID_AUTHORITY_KEY_ID,
            false,
            tlv(TAG_SEQUENCE, &tlv(0x80, key_id)),
        ));
    }
    out
}

/// A positive 128-bit serial taken from the fresh key's random public point, so two
/// certificates never share one without needing another random source.
fn serial_from_key(key: &KeyPair) -> Vec<u8> {
    let raw = key.public_key_raw();
    // Skip the uncompressed-point marker (0x04); the x coordinate is uniformly random.
    let mut serial: Vec<u8> = raw.iter().skip(1).take(16).copied().collect();
    if serial.is_empty() {
        serial.push(1);
    }
    // Positive, and with a non-zero first byte so the INTEGER is minimally encoded.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// RFC 5280: UTCTime through 2049, GeneralizedTime from 2050.
fn der_time(t: OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
    let (hour, minute, second) = (t.hour(), t.minute(), t.second());
    if (1950..2050).contains(&year) {
        let s = format!(
            "{:02}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z",
            year % 100
        );
        tlv(TAG_UTC_TIME, s.as_bytes())
    } else {
        let s = format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}Z");
        tlv(TAG_GENERALIZED_TIME, s.as_bytes())
    }
}

/// One DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len() - 1);
        let significant = &bytes[first..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        assert_eq!(tlv(0x04, &[0; 3])[..2], [0x04, 3]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn times_switch_encoding_in_2050() {
        let t = time::macros::datetime!(2049-12-31 23:59:59 UTC);
        assert_eq!(der_time(t), tlv(TAG_UTC_TIME, b"491231235959Z"));
        let t = time::macros::datetime!(2050-01-01 00:00:00 UTC);
        assert_eq!(der_time(t), tlv(TAG_GENERALIZED_TIME, b"20500101000000Z"));
    }
}
