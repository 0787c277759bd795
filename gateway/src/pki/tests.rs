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
    for name in [
        "ca",
        "front-proxy-ca",
        "serving",
        "admin",
        "front-proxy-client",
    ] {
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
    assert_eq!(
        first.front_proxy_ca.cert_der(),
        second.front_proxy_ca.cert_der()
    );
    assert_eq!(first.front_proxy.cert_der, second.front_proxy.cert_der);
}

/// What a client certificate verifier trusting only `ca` says of `cert`.
fn verifies(ca: &CertificateAuthority, cert: &IssuedCert) -> bool {
    verifier(ca)
        .verify_client_cert(
            &CertificateDer::from(cert.cert_der.clone()),
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

#[test]
fn the_front_proxy_identity_comes_only_from_the_front_proxy_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    assert_ne!(pki.ca.cert_der(), pki.front_proxy_ca.cert_der());
    assert!(verifies(&pki.front_proxy_ca, &pki.front_proxy));
    assert!(!verifies(&pki.ca, &pki.front_proxy));
    // Users and the admin are not the proxy.
    assert!(!verifies(&pki.front_proxy_ca, &pki.admin));
    let validity = Validity::from_now(Duration::days(1));
    assert!(matches!(
        pki.ca.issue_client_cert(FRONT_PROXY_CN, &[], validity),
        Err(PkiError::ReservedName { .. })
    ));
    let loaded = CertificateAuthority::load(&pki.dir).expect("load");
    assert!(matches!(
        loaded.issue_client_cert(FRONT_PROXY_CN, &["system:masters".to_owned()], validity),
        Err(PkiError::ReservedName { .. })
    ));
}

#[test]
fn a_data_dir_from_before_the_front_proxy_ca_is_migrated_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    // The old layout: no front-proxy CA, and the front-proxy client certificate signed by the
    // users' CA (which the old code did; `issue_with_any_name` stands in for it).
    fs::remove_file(pki.dir.join("front-proxy-ca.crt")).expect("remove");
    fs::remove_file(pki.dir.join("front-proxy-ca.key")).expect("remove");
    let old = pki
        .ca
        .issue_with_any_name(FRONT_PROXY_CN, Validity::from_now(LEAF_VALIDITY))
        .expect("issue");
    write_private(
        &pki.dir.join("front-proxy-client.key"),
        old.key_pem.expose_secret().as_bytes(),
    )
    .expect("write");
    write_public(
        &pki.dir.join("front-proxy-client.crt"),
        old.cert_pem.as_bytes(),
    )
    .expect("write");
    assert!(verifies(&pki.ca, &old));

    let migrated = Pki::load_or_create(dir.path()).expect("migrate");
    assert_eq!(
        migrated.ca.cert_der(),
        pki.ca.cert_der(),
        "the users' CA is kept"
    );
    assert_eq!(migrated.admin.cert_der, pki.admin.cert_der);
    assert!(migrated.dir.join("front-proxy-ca.key").exists());
    assert_eq!(mode(&migrated.dir.join("front-proxy-ca.key")), 0o600);
    assert_ne!(migrated.front_proxy.cert_der, old.cert_der);
    assert!(verifies(&migrated.front_proxy_ca, &migrated.front_proxy));
    assert!(!verifies(&migrated.ca, &migrated.front_proxy));
    let on_disk = fs::read_to_string(migrated.dir.join("front-proxy-client.crt")).expect("read");
    assert_eq!(on_disk, migrated.front_proxy.cert_pem);

    // A front-proxy CA re-created under the same name does not keep the old one's certificate.
    fs::remove_file(pki.dir.join("front-proxy-ca.crt")).expect("remove");
    fs::remove_file(pki.dir.join("front-proxy-ca.key")).expect("remove");
    let recreated = Pki::load_or_create(dir.path()).expect("recreate");
    assert_ne!(
        recreated.front_proxy.cert_der,
        migrated.front_proxy.cert_der
    );
    assert!(verifies(&recreated.front_proxy_ca, &recreated.front_proxy));
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
fn a_half_present_front_proxy_ca_is_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::load_or_create(dir.path()).expect("create");
    fs::remove_file(pki.dir.join("front-proxy-ca.crt")).expect("remove cert");
    assert!(matches!(
        Pki::load_or_create(dir.path()),
        Err(PkiError::IncompleteCa { .. })
    ));
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
