use super::*;
use crate::keys::{Algorithm, KeySet};
use crate::testutil::{now, Fixture, NOW};
use serde_json::json;

struct Machines {
    fixture: Fixture,
    files: MachineTokenFiles,
    issuer: MachineTokenIssuer,
    verifier: MachineTokenVerifier,
}

fn machines() -> Machines {
    let fixture = Fixture::new(Algorithm::Rs256);
    let files = MachineTokenFiles::new(fixture.dir.path().join("machine-tokens"));
    let issuer = MachineTokenIssuer::new(fixture.keys.clone());
    let verifier = MachineTokenVerifier::new(fixture.keys.clone(), &files);
    Machines {
        fixture,
        files,
        issuer,
        verifier,
    }
}

fn spec(audiences: &[&str]) -> MachineTokenSpec {
    MachineTokenSpec {
        user: "jenkins".into(),
        groups: vec!["ci".into()],
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
        lifetime: Duration::from_secs(3600),
    }
}

fn aud(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

#[test]
fn an_issued_token_verifies_as_its_user_with_its_id() {
    let m = machines();
    let issued = m.issuer.issue(&spec(&[]), now()).unwrap();
    let identity = m
        .verifier
        .verify(&issued.token, &aud(&["https://kube"]), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(identity.user.name, "jenkins");
    assert_eq!(identity.user.groups, vec!["ci".to_owned()]);
    assert_eq!(
        identity.user.extra[CREDENTIAL_ID_EXTRA],
        vec![format!("JTI={}", issued.record.id)]
    );
    // Audience-agnostic: no audience is claimed.
    assert!(identity.audiences.is_empty());
    assert_eq!(issued.record.user, "jenkins");
    assert_eq!(issued.record.expires, NOW + 3600);
}

#[test]
fn audiences_are_the_intersection_and_a_token_for_others_is_refused() {
    let m = machines();
    let token = m
        .issuer
        .issue(&spec(&["https://kube", "other"]), now())
        .unwrap()
        .token;
    let identity = m
        .verifier
        .verify(&token, &aud(&["x", "https://kube"]), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(identity.audiences, aud(&["https://kube"]));
    assert_eq!(
        m.verifier.verify(&token, &aud(&["x"]), NOW).unwrap_err(),
        VerifyError::WrongAudience
    );
    // A caller that names no audience cannot accept a token meant for some.
    assert_eq!(
        m.verifier.verify(&token, &[], NOW).unwrap_err(),
        VerifyError::WrongAudience
    );
}

#[test]
fn a_revoked_token_is_refused_at_the_next_verification() {
    let m = machines();
    let first = m.issuer.issue(&spec(&[]), now()).unwrap();
    let second = m.issuer.issue(&spec(&[]), now()).unwrap();
    assert!(m.verifier.verify(&first.token, &[], NOW).unwrap().is_some());
    m.files.revoke(&first.record.id).unwrap();
    assert_eq!(
        m.verifier.verify(&first.token, &[], NOW).unwrap_err(),
        VerifyError::Revoked
    );
    assert!(m
        .verifier
        .verify(&second.token, &[], NOW)
        .unwrap()
        .is_some());
    // The list cannot be bent by an id of several words.
    assert!(m.files.revoke("a b").is_err());
    assert!(m.files.revoke("").is_err());
}

#[test]
fn an_unreadable_deny_list_refuses_every_token() {
    let m = machines();
    let token = m.issuer.issue(&spec(&[]), now()).unwrap().token;
    std::fs::create_dir_all(m.files.revoked()).unwrap();
    assert_eq!(
        m.verifier.verify(&token, &[], NOW).unwrap_err(),
        VerifyError::Revoked
    );
}

#[test]
fn expired_forged_and_foreign_tokens() {
    let m = machines();
    let token = m.issuer.issue(&spec(&[]), now()).unwrap().token;
    assert_eq!(
        m.verifier.verify(&token, &[], NOW + 3600 + 61).unwrap_err(),
        VerifyError::Expired
    );
    // Another key set signed it.
    let other = Fixture::new(Algorithm::Rs256);
    let forged = MachineTokenIssuer::new(other.keys.clone())
        .issue(&spec(&[]), now())
        .unwrap()
        .token;
    assert!(m.verifier.verify(&forged, &[], NOW).is_err());
    // A tampered payload.
    let (h, _, s) = crate::testutil::parts(&token);
    let payload = crate::testutil::b64(
        json!({"iss": MACHINE_ISSUER, "sub": "admin", "jti": "x", "exp": NOW + 10})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(
        m.verifier
            .verify(&format!("{h}.{payload}.{s}"), &[], NOW)
            .unwrap_err(),
        VerifyError::BadSignature
    );
    // Not a machine token: another verifier's business.
    assert!(m
        .verifier
        .verify(&m.fixture.pod_token(), &[], NOW)
        .unwrap()
        .is_none());
    assert!(m.verifier.verify("not-a-jwt", &[], NOW).unwrap().is_none());
    assert_eq!(
        m.verifier
            .verify(&"a".repeat(MAX_TOKEN_BYTES + 1), &[], NOW)
            .unwrap_err(),
        VerifyError::TooLarge
    );
}

#[test]
fn system_names_are_refused_when_issued_and_when_verified() {
    let m = machines();
    for (user, group) in [
        ("system:kube-scheduler", "ci"),
        ("jenkins", "system:masters"),
    ] {
        let mut s = spec(&[]);
        s.user = user.into();
        s.groups = vec![group.into()];
        assert!(m.issuer.issue(&s, now()).is_err(), "{user} {group}");
        // Signed with the right key all the same (someone holding the keys): still refused.
        let token = m.fixture.sign(&json!({"iss": MACHINE_ISSUER, "sub": user,
            "groups": [group], "jti": "x", "exp": NOW + 60, "iat": NOW, "nbf": NOW}));
        assert!(matches!(
            m.verifier.verify(&token, &[], NOW).unwrap_err(),
            VerifyError::MalformedClaims(_)
        ));
    }
}

#[test]
fn a_token_without_expiry_or_id_is_refused() {
    let m = machines();
    for claims in [
        json!({"iss": MACHINE_ISSUER, "sub": "jenkins", "jti": "x"}),
        json!({"iss": MACHINE_ISSUER, "sub": "jenkins", "exp": NOW + 60}),
    ] {
        let token = m.fixture.sign(&claims);
        assert!(matches!(
            m.verifier.verify(&token, &[], NOW).unwrap_err(),
            VerifyError::MalformedClaims(_)
        ));
    }
}

#[test]
fn the_files_list_what_was_issued_and_revoked() {
    let m = machines();
    let issued = m.issuer.issue(&spec(&["a"]), now()).unwrap();
    m.files.record(&issued.record).unwrap();
    m.files.revoke(&issued.record.id).unwrap();
    let (records, revoked) = m.files.list().unwrap();
    assert_eq!(records, vec![issued.record.clone()]);
    assert!(revoked.contains(&issued.record.id));
    // The log never holds the token.
    let text = std::fs::read_to_string(m.files.issued()).unwrap();
    assert!(!text.contains(&issued.token));
}

#[test]
fn a_cached_token_is_refused_once_its_key_is_pruned() {
    let m = machines();
    let token = m.issuer.issue(&spec(&[]), now()).unwrap().token;
    // Verified, hence cached.
    assert!(m.verifier.verify(&token, &[], NOW).unwrap().is_some());
    let dir = m.fixture.key_dir();
    KeySet::rotate(&dir, Algorithm::Rs256).unwrap();
    KeySet::prune(&dir, 1).unwrap();
    assert!(m.fixture.keys.reload_if_changed(&dir).unwrap());
    assert_eq!(
        m.verifier.verify(&token, &[], NOW).unwrap_err(),
        VerifyError::UnknownKey
    );
    // A hit past its expiry is refused too.
    let fresh = m.issuer.issue(&spec(&[]), now()).unwrap().token;
    assert!(m.verifier.verify(&fresh, &[], NOW).unwrap().is_some());
    assert_eq!(
        m.verifier.verify(&fresh, &[], NOW + 3600 + 61).unwrap_err(),
        VerifyError::Expired
    );
}
