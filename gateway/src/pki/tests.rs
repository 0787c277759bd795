use super::*;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

fn verifier(ca: &CertificateAuthority) -> Arc<dyn ClientCertVerifier> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.cert_der().to_vec()))
        .expect("CA is a valid trust anchor");
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .expect("verifier")
}

#[test]
fn first_start_creates_everything_and_later_starts_reuse_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Pki::load_or_create(dir.path()).expect("create");
    for name in ["ca", "serving", "admin", "front-proxy-client"] {
        assert_eq!(
            mode(&first.dir.join(format!("{name}.key"))),
            0o600,
            "{name}.key"
        );
        assert!(first.dir.join(format!("{name}.crt")).exists());
    }
    assert_eq!(mode(&first.dir), 0o700);
    let second = Pki::load_or_create(dir.path()).expect("reload");
    assert_eq!(first.ca.cert_der(), second.ca.cert_der());
    assert_eq!(first.admin.cert_der, second.admin.cert_der);
    assert_eq!(first.serving.cert_der, second.serving.cert_der);
}

#[test]
fn a_half_present_ca_is_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    fs::remove_file(pki.dir.join("ca.key")).expect("remove key");
    assert!(matches!(
        Pki::load_or_create(dir.path()),
        Err(PkiError::IncompleteCa { .. })
    ));
}

#[test]
fn client_certificates_carry_user_and_every_group_and_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    let groups = vec![
        "dev".to_owned(),
        "ops".to_owned(),
        "system:masters".to_owned(),
    ];
    let issued = pki
        .ca
        .issue_client_cert("alice", &groups, Validity::from_now(Duration::days(1)))
        .expect("issue");
    let (_, cert) = x509_parser::parse_x509_certificate(&issued.cert_der).expect("parses");
    let subject = cert.subject();
    let cn: Vec<_> = subject
        .iter_common_name()
        .filter_map(|a| a.as_str().ok())
        .collect();
    let orgs: Vec<_> = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok())
        .collect();
    assert_eq!(cn, ["alice"]);
    assert_eq!(orgs, ["dev", "ops", "system:masters"]);
    let eku = cert.extended_key_usage().expect("eku").expect("present");
    assert!(eku.value.client_auth && !eku.value.server_auth);

    verifier(&pki.ca)
        .verify_client_cert(
            &CertificateDer::from(issued.cert_der.clone()),
            &[],
            UnixTime::now(),
        )
        .expect("the CA vouches for it");
    assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
}

#[test]
fn an_expired_client_certificate_does_not_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    let now = OffsetDateTime::now_utc();
    let validity = Validity {
        not_before: now - Duration::days(2),
        not_after: now - Duration::days(1),
    };
    let issued = pki
        .ca
        .issue_client_cert("bob", &[], validity)
        .expect("issue");
    let result = verifier(&pki.ca).verify_client_cert(
        &CertificateDer::from(issued.cert_der),
        &[],
        UnixTime::now(),
    );
    assert!(result.is_err());
}

#[test]
fn empty_user_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    assert!(matches!(
        pki.ca
            .issue_client_cert("", &[], Validity::from_now(Duration::days(1))),
        Err(PkiError::InvalidRequest(_))
    ));
}
