//! Tests of the X.509 authenticator with certificates made at test time by rcgen.

use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use time::{Duration, OffsetDateTime};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A CA: its certificate (DER) and what signs with it.
struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Result<Ca, rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let der = params.self_signed(&key)?.der().to_vec();
    Ok(Ca {
        der,
        issuer: Issuer::new(params, key),
    })
}

/// What a test leaf looks like.
struct Leaf<'a> {
    cn: &'a str,
    /// At most two: rcgen keeps one value per attribute type, so the second `O` is written
    /// under its OID as a custom type.
    organizations: &'a [&'a str],
    eku: Vec<ExtendedKeyUsagePurpose>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: bool,
}

impl Default for Leaf<'_> {
    fn default() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            cn: "alice",
            organizations: &[],
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            not_before: now - Duration::hours(1),
            not_after: now + Duration::hours(1),
            is_ca: false,
        }
    }
}

fn issue(leaf: Leaf<'_>, by: &Ca) -> Result<(Vec<u8>, CertificateParams, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    if !leaf.cn.is_empty() {
        params.distinguished_name.push(DnType::CommonName, leaf.cn);
    }
    for (i, o) in leaf.organizations.iter().enumerate() {
        let ty = match i {
            0 => DnType::OrganizationName,
            _ => DnType::CustomDnType(vec![2, 5, 4, 10]),
        };
        params.distinguished_name.push(ty, *o);
    }
    params.extended_key_usages = leaf.eku;
    params.not_before = leaf.not_before;
    params.not_after = leaf.not_after;
    if leaf.is_ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    let der = params.signed_by(&key, &by.issuer)?.der().to_vec();
    Ok((der, params, key))
}

fn verify(authenticator: &X509Authenticator, chain: Vec<Vec<u8>>) -> Result<UserInfo, String> {
    authenticator
        .verify(&chain, UnixTime::now())
        .map_err(|e| e.to_string())
}

#[test]
fn a_good_certificate_names_the_user_and_groups() -> TestResult {
    let ca = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![ca.der.clone()])?;
    let (der, _, _) = issue(
        Leaf {
            organizations: &["dev", "system:masters"],
            ..Leaf::default()
        },
        &ca,
    )?;
    let user = verify(&x509, vec![der]);
    assert_eq!(
        user,
        Ok(UserInfo::new("alice").with_groups(["dev", "system:masters"]))
    );
    Ok(())
}

#[test]
fn expired_and_not_yet_valid_are_refused_in_kube_words() -> TestResult {
    let ca = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![ca.der.clone()])?;
    let now = OffsetDateTime::now_utc();
    let expired = Leaf {
        not_before: now - Duration::days(2),
        not_after: now - Duration::days(1),
        ..Leaf::default()
    };
    let future = Leaf {
        not_before: now + Duration::days(1),
        not_after: now + Duration::days(2),
        ..Leaf::default()
    };
    for leaf in [expired, future] {
        let (der, _, _) = issue(leaf, &ca)?;
        assert_eq!(
            verify(&x509, vec![der]),
            Err("x509: certificate has expired or is not yet valid".to_owned())
        );
    }
    Ok(())
}

#[test]
fn another_ca_is_an_unknown_authority() -> TestResult {
    let ours = ca("kgate-ca")?;
    let theirs = ca("other-ca")?;
    let x509 = X509Authenticator::new(vec![ours.der.clone()])?;
    let (der, _, _) = issue(Leaf::default(), &theirs)?;
    assert_eq!(
        verify(&x509, vec![der]),
        Err("x509: certificate signed by unknown authority".to_owned())
    );
    Ok(())
}

#[test]
fn a_server_only_certificate_is_refused_and_one_without_eku_accepted() -> TestResult {
    let ca = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![ca.der.clone()])?;
    let (server, _, _) = issue(
        Leaf {
            eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
            ..Leaf::default()
        },
        &ca,
    )?;
    assert_eq!(
        verify(&x509, vec![server]),
        Err("x509: certificate specifies an incompatible key usage".to_owned())
    );
    let (any, _, _) = issue(
        Leaf {
            eku: vec![],
            ..Leaf::default()
        },
        &ca,
    )?;
    assert!(verify(&x509, vec![any]).is_ok());
    Ok(())
}

#[test]
fn intermediates_from_the_chain_are_used() -> TestResult {
    let root = ca("root")?;
    let x509 = X509Authenticator::new(vec![root.der.clone()])?;
    let (intermediate_der, intermediate_params, intermediate_key) = issue(
        Leaf {
            cn: "intermediate",
            eku: vec![],
            is_ca: true,
            ..Leaf::default()
        },
        &root,
    )?;
    let intermediate = Ca {
        der: intermediate_der.clone(),
        issuer: Issuer::new(intermediate_params, intermediate_key),
    };
    let (leaf, _, _) = issue(Leaf::default(), &intermediate)?;
    assert!(verify(&x509, vec![leaf.clone()]).is_err());
    assert_eq!(
        verify(&x509, vec![leaf, intermediate_der.clone()]).map(|u| u.name),
        Ok("alice".to_owned())
    );
    // A CA certificate is not a client certificate, even one the root signed.
    assert!(verify(&x509, vec![intermediate_der]).is_err());
    Ok(())
}

#[test]
fn a_certificate_without_a_common_name_is_refused() -> TestResult {
    let ca = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![ca.der.clone()])?;
    let (der, _, _) = issue(
        Leaf {
            cn: "",
            organizations: &["dev"],
            ..Leaf::default()
        },
        &ca,
    )?;
    assert!(verify(&x509, vec![der]).is_err_and(|e| e.contains("common name")));
    Ok(())
}

#[tokio::test]
async fn no_certificate_is_not_mine_and_garbage_is_invalid() -> TestResult {
    let ca = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![ca.der.clone()])?;
    assert_eq!(x509.authenticate(&Credentials::default()).await, Ok(None));
    let garbage = Credentials {
        client_certificates: vec![b"not a certificate".to_vec()],
        ..Credentials::default()
    };
    assert!(matches!(
        x509.authenticate(&garbage).await,
        Err(AuthnError::Invalid {
            authenticator: "x509",
            ..
        })
    ));
    Ok(())
}

#[test]
fn the_ca_list_is_checked() {
    assert!(matches!(
        X509Authenticator::new(vec![]),
        Err(X509Error::NoCa)
    ));
    assert!(matches!(
        X509Authenticator::new(vec![b"junk".to_vec()]),
        Err(X509Error::InvalidCa { index: 0, .. })
    ));
}

#[test]
fn a_remembered_chain_is_refused_once_it_expires() -> TestResult {
    let ca = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![ca.der.clone()])?;
    let now = OffsetDateTime::now_utc();
    let (der, _, _) = issue(
        Leaf {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::hours(1),
            ..Leaf::default()
        },
        &ca,
    )?;
    let at = |t: OffsetDateTime| {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            t.unix_timestamp().unsigned_abs(),
        ))
    };
    let chain = vec![der];
    // Verified (and remembered), then asked again inside and outside the window.
    assert!(x509.verify(&chain, at(now)).is_ok());
    assert!(x509.verify(&chain, at(now + Duration::minutes(30))).is_ok());
    for outside in [now + Duration::hours(2), now - Duration::hours(2)] {
        let refused = x509.verify(&chain, at(outside)).map_err(|e| e.to_string());
        assert_eq!(
            refused,
            Err("x509: certificate has expired or is not yet valid".to_owned())
        );
    }
    Ok(())
}

#[test]
fn a_remembered_chain_is_bound_to_its_exact_bytes() -> TestResult {
    let trusted = ca("kgate-ca")?;
    // Another CA with the same name: its certificates claim the trusted issuer.
    let other = ca("kgate-ca")?;
    let x509 = X509Authenticator::new(vec![trusted.der.clone()])?;
    let (good, _, _) = issue(Leaf::default(), &trusted)?;
    assert!(verify(&x509, vec![good.clone()]).is_ok());
    // Same subject, another signer: not the remembered chain, so verified and refused.
    let (forged, _, _) = issue(Leaf::default(), &other)?;
    assert_eq!(
        verify(&x509, vec![forged]),
        Err("x509: certificate signed by unknown authority".to_owned())
    );
    assert!(verify(&x509, vec![good]).is_ok());
    Ok(())
}
