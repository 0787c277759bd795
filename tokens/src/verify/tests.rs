//! The verification rules, one test per rule, with attack tokens crafted by hand.

use super::*;
use crate::issuer::{BoundKind, BoundObject};
use crate::keys::{Algorithm, KeySet};
use crate::testutil::*;
use serde_json::json;

fn verify(f: &Fixture, token: &str) -> Result<Option<UserInfo>, VerifyError> {
    f.authn.verify_token_at(token, NOW)
}

fn refused(f: &Fixture, token: &str) -> VerifyError {
    let err = verify(f, token).expect_err("token should be refused");
    // No error text carries the token or any part of it.
    let text = err.to_string();
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(!text.contains(part), "{text}");
    }
    err
}

/// A token with this header and payload, signed by nothing.
fn unsigned(header: &serde_json::Value, payload: &serde_json::Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    )
}

#[test]
fn a_bound_token_authenticates_as_kubernetes_does() {
    let f = Fixture::new(Algorithm::Rs256);
    let user = verify(&f, &f.pod_token()).unwrap().unwrap();
    assert_eq!(user.name, "system:serviceaccount:ci:jenkins");
    assert_eq!(user.uid, "sa-uid");
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:ci",
            "system:authenticated"
        ]
    );
    let extra = |k: &str| user.extra.get(k).cloned().unwrap_or_default();
    assert_eq!(extra("authentication.kubernetes.io/pod-name"), ["agent-1"]);
    assert_eq!(extra("authentication.kubernetes.io/pod-uid"), ["pod-uid"]);
    assert_eq!(extra("authentication.kubernetes.io/node-name"), ["node-a"]);
    assert_eq!(extra("authentication.kubernetes.io/node-uid"), ["node-uid"]);
    let credential = extra("authentication.kubernetes.io/credential-id");
    assert_eq!(credential.len(), 1);
    let jti = credential[0].strip_prefix("JTI=").unwrap();
    assert_eq!(uuid::Uuid::parse_str(jti).unwrap().get_version_num(), 4);
    assert_eq!(user.extra.len(), 5);
}

#[test]
fn es256_tokens_verify_too() {
    let f = Fixture::new(Algorithm::Es256);
    assert!(verify(&f, &f.pod_token()).unwrap().is_some());
}

#[test]
fn what_is_not_ours_is_not_mine() {
    let f = Fixture::new(Algorithm::Es256);
    let mut other = claims();
    other["iss"] = json!("https://accounts.example.com");
    for token in [
        "garbage".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        "!!!.???.***".to_owned(),
        String::new(),
        // A JWT of another issuer, even one signed with our key.
        f.sign(&other),
        // No issuer at all.
        unsigned(&json!({"alg": "RS256"}), &json!({"sub": "x"}), "sig"),
        // A payload that is not JSON.
        format!("{}.{}.sig", b64(b"{}"), b64(b"not json")),
    ] {
        assert_eq!(verify(&f, &token), Ok(None), "{token}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let f = Fixture::new(Algorithm::Es256);
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    assert_eq!(refused(&f, &huge), VerifyError::TooLarge);
    let mut big = claims();
    big["padding"] = json!("x".repeat(MAX_TOKEN_BYTES));
    assert_eq!(refused(&f, &f.sign(&big)), VerifyError::TooLarge);
}

#[test]
fn alg_none_is_refused() {
    let f = Fixture::new(Algorithm::Rs256);
    let kid = f.keys.current().signing_kid().to_owned();
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": kid}),
        json!({"alg": "None", "kid": kid}),
    ] {
        for signature in ["", "AAAA"] {
            let token = unsigned(&header, &claims(), signature);
            assert_eq!(refused(&f, &token), VerifyError::MalformedHeader);
        }
    }
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    // The classic algorithm confusion: an HMAC keyed with the RSA public key, which anyone can
    // fetch from the JWKS.
    let f = Fixture::new(Algorithm::Rs256);
    let keys = f.keys.current();
    let kid = keys.signing_kid().to_owned();
    for secret in crate::keys::test_public_key_forms(&keys) {
        for header in [json!({"alg": "HS256", "kid": kid}), json!({"alg": "HS256"})] {
            let signing_input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims().to_string().as_bytes())
            );
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
            let tag = ring::hmac::sign(&key, signing_input.as_bytes());
            let token = format!("{signing_input}.{}", b64(tag.as_ref()));
            assert_eq!(
                refused(&f, &token),
                VerifyError::UnsupportedAlgorithm("HS256".into())
            );
        }
    }
}

#[test]
fn the_algorithm_comes_from_the_key_not_the_header() {
    let f = Fixture::new(Algorithm::Rs256);
    let kid = f.keys.current().signing_kid().to_owned();
    let token = f.sign(&claims());
    let (_, payload, signature) = parts(&token);
    // The RSA key's kid under an ES256 header.
    let header = b64(json!({"alg": "ES256", "kid": kid}).to_string().as_bytes());
    assert_eq!(
        refused(&f, &format!("{header}.{payload}.{signature}")),
        VerifyError::AlgorithmMismatch
    );
    // Other RSA algorithms are not ours either.
    let header = b64(json!({"alg": "PS256", "kid": kid}).to_string().as_bytes());
    assert_eq!(
        refused(&f, &format!("{header}.{payload}.{signature}")),
        VerifyError::UnsupportedAlgorithm("PS256".into())
    );
}

#[test]
fn unknown_kid_is_refused_and_no_kid_tries_every_key() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.sign(&claims());
    let (_, payload, signature) = parts(&token);
    let unknown = b64(json!({"alg": "ES256", "kid": "not-a-key"})
        .to_string()
        .as_bytes());
    assert_eq!(
        refused(&f, &format!("{unknown}.{payload}.{signature}")),
        VerifyError::UnknownKey
    );
    // Without a kid, the signature still finds its key...
    let no_kid = f.sign_with_kid(&claims(), false);
    assert!(decode_part(&parts(&no_kid).0).get("kid").is_none());
    assert!(verify(&f, &no_kid).unwrap().is_some());
    // ... only among keys of the header's algorithm (here: none)...
    let (_, payload, signature) = parts(&no_kid);
    let rs = b64(json!({"alg": "RS256"}).to_string().as_bytes());
    assert_eq!(
        refused(&f, &format!("{rs}.{payload}.{signature}")),
        VerifyError::UnknownKey
    );
    // ... and also once it is one of several.
    KeySet::rotate(&f.key_dir(), Algorithm::Es256).unwrap();
    KeySet::rotate(&f.key_dir(), Algorithm::Rs256).unwrap();
    assert!(f.keys.reload_if_changed(&f.key_dir()).unwrap());
    let fresh = crate::ServiceAccountAuthenticator::new(
        f.keys.clone(),
        f.config.clone(),
        f.cluster.clone(),
    );
    assert!(fresh.verify_token_at(&no_kid, NOW).unwrap().is_some());
}

#[test]
fn bad_signatures_and_tampered_payloads_are_refused() {
    let f = Fixture::new(Algorithm::Rs256);
    let token = f.pod_token();
    let (header, payload, signature) = parts(&token);

    // Another namespace in the payload, the old signature.
    let mut claims = decode_part(&payload);
    claims["kubernetes.io"]["namespace"] = json!("kube-system");
    claims["sub"] = json!("system:serviceaccount:kube-system:jenkins");
    let tampered = format!(
        "{header}.{}.{signature}",
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(refused(&f, &tampered), VerifyError::BadSignature);

    // A flipped signature byte, a truncated signature, an empty one, one that is not base64.
    let mut raw = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &signature,
    )
    .unwrap();
    raw[10] ^= 1;
    for bad in [
        b64(&raw),
        signature[..100].to_owned(),
        String::new(),
        "%%%".to_owned(),
    ] {
        assert_eq!(
            refused(&f, &format!("{header}.{payload}.{bad}")),
            VerifyError::BadSignature
        );
    }
    // A signature from another key with our kid.
    let other = Fixture::new(Algorithm::Rs256);
    let (_, _, foreign) = parts(&other.sign(&crate::testutil::claims()));
    let (h, p, _) = parts(&f.sign(&crate::testutil::claims()));
    assert_eq!(
        refused(&f, &format!("{h}.{p}.{foreign}")),
        VerifyError::BadSignature
    );
}

#[test]
fn expiry_and_not_before_with_a_minute_of_leeway() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.pod_token(); // iat = nbf = NOW, exp = NOW + 3600
    let at = |now| f.authn.verify_token_at(&token, now);
    assert!(at(NOW + 3600 + LEEWAY_SECONDS).unwrap().is_some());
    assert_eq!(
        at(NOW + 3600 + LEEWAY_SECONDS + 1),
        Err(VerifyError::Expired)
    );
    assert!(at(NOW - LEEWAY_SECONDS).unwrap().is_some());
    assert_eq!(at(NOW - LEEWAY_SECONDS - 1), Err(VerifyError::NotYetValid));

    let mut c = claims();
    c["iat"] = json!(NOW + 3000);
    assert_eq!(refused(&f, &f.sign(&c)), VerifyError::IssuedInFuture);
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        refused(&f, &f.sign(&c)),
        VerifyError::MalformedClaims(_)
    ));
    let mut c = claims();
    c["exp"] = json!("tomorrow");
    assert!(matches!(
        refused(&f, &f.sign(&c)),
        VerifyError::MalformedClaims(_)
    ));
}

#[test]
fn the_audience_must_be_an_api_audience() {
    let f = Fixture::new(Algorithm::Es256);
    let mut c = claims();
    c["aud"] = json!(["vault"]);
    assert_eq!(refused(&f, &f.sign(&c)), VerifyError::WrongAudience);
    c["aud"] = json!("vault");
    assert_eq!(refused(&f, &f.sign(&c)), VerifyError::WrongAudience);
    c["aud"] = json!([]);
    assert_eq!(refused(&f, &f.sign(&c)), VerifyError::WrongAudience);
    // One match among several is enough; a single string is an audience too.
    c["aud"] = json!(["vault", "kgate"]);
    assert!(verify(&f, &f.sign(&c)).unwrap().is_some());
    c["aud"] = json!(ISSUER);
    assert!(verify(&f, &f.sign(&c)).unwrap().is_some());
    c.as_object_mut().unwrap().remove("aud");
    assert!(matches!(
        refused(&f, &f.sign(&c)),
        VerifyError::MalformedClaims(_)
    ));

    // A token requested for another audience is issued, but not accepted by the API.
    let mut spec = pod_spec();
    spec.audiences = vec!["vault".into()];
    let token = f.issuer.issue(&spec, now()).unwrap().token;
    assert_eq!(refused(&f, &token), VerifyError::WrongAudience);
}

#[test]
fn a_forged_subject_is_refused() {
    let f = Fixture::new(Algorithm::Es256);
    f.cluster.put(
        ObjectKind::ServiceAccount,
        "kube-system",
        "jenkins",
        "sa-uid",
    );
    let mut c = claims();
    // The claims say ci/jenkins, the subject another namespace's account.
    c["sub"] = json!("system:serviceaccount:kube-system:jenkins");
    assert_eq!(refused(&f, &f.sign(&c)), VerifyError::SubjectMismatch);
    c.as_object_mut().unwrap().remove("sub");
    assert_eq!(refused(&f, &f.sign(&c)), VerifyError::SubjectMismatch);
    let mut c = claims();
    c["kubernetes.io"]["serviceaccount"]["uid"] = json!("");
    assert!(matches!(
        refused(&f, &f.sign(&c)),
        VerifyError::MalformedClaims(_)
    ));
    let mut c = claims();
    c.as_object_mut().unwrap().remove("kubernetes.io");
    assert!(matches!(
        refused(&f, &f.sign(&c)),
        VerifyError::MalformedClaims(_)
    ));
}

#[test]
fn the_service_account_must_exist_with_its_uid() {
    let f = Fixture::new(Algorithm::Es256);
    let token = f.pod_token();
    f.cluster
        .put(ObjectKind::ServiceAccount, "ci", "jenkins", "recreated");
    let err = refused(&f, &token);
    assert!(matches!(
        err,
        VerifyError::UidMismatch {
            kind: ObjectKind::ServiceAccount,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "service account ci/jenkins has another UID than the token was issued for"
    );
    f.cluster
        .delete(ObjectKind::ServiceAccount, "ci", "jenkins");
    assert_eq!(
        refused(&f, &token).to_string(),
        "service account ci/jenkins has been deleted"
    );
}

#[test]
fn the_bound_object_must_exist_with_its_uid() {
    let f = Fixture::new(Algorithm::Es256);
    let pod = f.pod_token();
    let issue = |kind, name: &str, uid: &str| {
        let mut spec = pod_spec();
        spec.bound = Some(BoundObject {
            kind,
            name: name.into(),
            uid: uid.into(),
        });
        spec.pod_node = None;
        f.issuer.issue(&spec, now()).unwrap().token
    };
    let secret = issue(BoundKind::Secret, "jenkins-token", "secret-uid");
    let node = issue(BoundKind::Node, "node-a", "node-uid");
    for token in [&pod, &secret, &node] {
        assert!(verify(&f, token).unwrap().is_some());
    }
    // A node-bound token carries node extras; a secret-bound one none.
    let user = verify(&f, &node).unwrap().unwrap();
    assert_eq!(
        user.extra["authentication.kubernetes.io/node-name"],
        ["node-a"]
    );
    assert!(!user
        .extra
        .contains_key("authentication.kubernetes.io/pod-name"));

    f.cluster
        .put(ObjectKind::Pod, "ci", "agent-1", "another-pod");
    assert!(matches!(
        refused(&f, &pod),
        VerifyError::UidMismatch {
            kind: ObjectKind::Pod,
            ..
        }
    ));
    f.cluster.delete(ObjectKind::Pod, "ci", "agent-1");
    assert_eq!(
        refused(&f, &pod).to_string(),
        "pod ci/agent-1 has been deleted"
    );
    f.cluster.delete(ObjectKind::Secret, "ci", "jenkins-token");
    assert_eq!(
        refused(&f, &secret).to_string(),
        "secret ci/jenkins-token has been deleted"
    );
    f.cluster.put(ObjectKind::Node, "", "node-a", "replaced");
    assert_eq!(
        refused(&f, &node).to_string(),
        "node node-a has another UID than the token was issued for"
    );
    // A pod-bound token does not depend on its node (as in Kubernetes).
    f.cluster.put(ObjectKind::Pod, "ci", "agent-1", "pod-uid");
    assert!(verify(&f, &pod).unwrap().is_some());
}

#[test]
fn legacy_tokens_live_as_long_as_their_secret_holds_them() {
    let f = Fixture::new(Algorithm::Rs256);
    let token = f
        .issuer
        .issue_legacy("ci", "jenkins", "sa-uid", "jenkins-token")
        .unwrap();
    f.cluster
        .put_token_secret("ci", "jenkins-token", "secret-uid", &token);
    let user = f
        .authn
        .verify_token_at(&token, NOW + 10 * 365 * 86400)
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "system:serviceaccount:ci:jenkins");
    assert_eq!(user.uid, "sa-uid");
    assert!(user.extra.is_empty());

    f.cluster
        .put(ObjectKind::ServiceAccount, "ci", "jenkins", "recreated");
    assert!(matches!(
        refused(&f, &token),
        VerifyError::UidMismatch { .. }
    ));
    f.cluster
        .put(ObjectKind::ServiceAccount, "ci", "jenkins", "sa-uid");
    f.cluster.delete(ObjectKind::Secret, "ci", "jenkins-token");
    assert_eq!(
        refused(&f, &token).to_string(),
        "secret ci/jenkins-token has been deleted"
    );
    // Legacy claims must be complete and agree with the subject.
    let legacy = json!({
        "iss": "kubernetes/serviceaccount",
        "kubernetes.io/serviceaccount/namespace": "ci",
        "kubernetes.io/serviceaccount/secret.name": "jenkins-token",
        "kubernetes.io/serviceaccount/service-account.name": "jenkins",
        "kubernetes.io/serviceaccount/service-account.uid": "sa-uid",
        "sub": "system:serviceaccount:ci:jenkins"
    });
    let signed = f.sign(&legacy);
    f.cluster
        .put_token_secret("ci", "jenkins-token", "secret-uid", &signed);
    assert!(verify(&f, &signed).unwrap().is_some());
    let mut forged = legacy.clone();
    forged["sub"] = json!("system:serviceaccount:kube-system:admin");
    assert_eq!(refused(&f, &f.sign(&forged)), VerifyError::SubjectMismatch);
    let mut partial = legacy.clone();
    partial
        .as_object_mut()
        .unwrap()
        .remove("kubernetes.io/serviceaccount/secret.name");
    assert!(matches!(
        refused(&f, &f.sign(&partial)),
        VerifyError::MalformedClaims(_)
    ));
    let mut expired = legacy;
    expired["exp"] = json!(NOW - 3600);
    assert_eq!(refused(&f, &f.sign(&expired)), VerifyError::Expired);
}

#[test]
fn a_legacy_token_dies_when_its_secret_no_longer_holds_it_cached_or_not() {
    // Each change is made after a verification that cached the token: a hit re-checks.
    let f = Fixture::new(Algorithm::Es256);
    let token = f
        .issuer
        .issue_legacy("ci", "jenkins", "sa-uid", "jenkins-token")
        .unwrap();
    let reset = || {
        f.cluster
            .put(ObjectKind::ServiceAccount, "ci", "jenkins", "sa-uid");
        f.cluster
            .put_token_secret("ci", "jenkins-token", "secret-uid", &token);
        assert!(verify(&f, &token).unwrap().is_some());
        assert!(verify(&f, &token).unwrap().is_some(), "a cache hit");
    };
    let refusal = |want: &str| {
        assert_eq!(refused(&f, &token).to_string(), want);
    };

    // Deleted, then an Opaque Secret of the same name made (same UID even): not a token Secret.
    reset();
    f.cluster.delete(ObjectKind::Secret, "ci", "jenkins-token");
    f.cluster
        .put(ObjectKind::Secret, "ci", "jenkins-token", "secret-uid");
    refusal("secret ci/jenkins-token is not of type kubernetes.io/service-account-token");

    // Re-created as a token Secret: the controller writes a new token into it.
    reset();
    f.cluster
        .put_token_secret("ci", "jenkins-token", "secret-2", "another.token.value");
    // The cached entry no longer holds (another UID); verified again, another token is found.
    refusal("secret ci/jenkins-token no longer holds this token");

    // The same Secret, its token rewritten or emptied.
    reset();
    f.cluster.edit_token_secret("ci", "jenkins-token", |s| {
        s.token = Some(f.cluster.digest("rewritten"));
    });
    refusal("secret ci/jenkins-token no longer holds this token");
    reset();
    f.cluster
        .edit_token_secret("ci", "jenkins-token", |s| s.token = None);
    refusal("secret ci/jenkins-token no longer holds this token");

    // Being deleted (finalizers): refused at once, no leeway (legacy.go).
    reset();
    f.cluster
        .mark_deleting(ObjectKind::Secret, "ci", "jenkins-token", NOW + 30);
    refusal("secret ci/jenkins-token is being deleted");

    // Marked invalid by kube's legacy token cleaner.
    reset();
    f.cluster
        .edit_token_secret("ci", "jenkins-token", |s| s.invalidated = true);
    refusal(
        "the token in secret ci/jenkins-token has been marked invalid (label \
         kubernetes.io/legacy-token-invalid-since)",
    );

    // Its ServiceAccount being deleted: refused at once too.
    reset();
    f.cluster
        .mark_deleting(ObjectKind::ServiceAccount, "ci", "jenkins", NOW + 30);
    refusal("service account ci/jenkins is being deleted");

    reset();
    assert_eq!(f.authn.cached(), 1);
}

#[test]
fn bound_tokens_end_a_leeway_after_their_objects_deletion_timestamp() {
    let f = Fixture::new(Algorithm::Rs256);
    let pod = f.pod_token();
    let mut spec = pod_spec();
    spec.bound = Some(BoundObject {
        kind: BoundKind::Node,
        name: "node-a".into(),
        uid: "node-uid".into(),
    });
    spec.pod_node = None;
    let node = f.issuer.issue(&spec, now()).unwrap().token;
    spec.bound = Some(BoundObject {
        kind: BoundKind::Secret,
        name: "jenkins-token".into(),
        uid: "secret-uid".into(),
    });
    let secret = f.issuer.issue(&spec, now()).unwrap().token;
    let at = |token: &str, t: i64| f.authn.verify_token_at(token, t);

    for (token, kind, namespace, name) in [
        (&pod, ObjectKind::Pod, "ci", "agent-1"),
        (&node, ObjectKind::Node, "", "node-a"),
        (&secret, ObjectKind::Secret, "ci", "jenkins-token"),
        (&pod, ObjectKind::ServiceAccount, "ci", "jenkins"),
    ] {
        assert!(at(token, NOW).unwrap().is_some(), "cached at first");
        // The pod is terminating (held by a finalizer): valid through the leeway, as in
        // kube-apiserver, then refused, from the cache as without it.
        f.cluster.mark_deleting(kind, namespace, name, NOW);
        assert!(at(token, NOW + LEEWAY_SECONDS).unwrap().is_some(), "{kind}");
        let err = at(token, NOW + LEEWAY_SECONDS + 1).unwrap_err();
        assert!(
            matches!(&err, VerifyError::ObjectDeleting { kind: k, .. } if *k == kind),
            "{err}"
        );
        assert!(err.to_string().ends_with("is being deleted"), "{err}");
        assert!(at(token, NOW + LEEWAY_SECONDS + 1).is_err(), "uncached too");
        // A deletion timestamp in the future (a grace period) keeps it valid until then.
        f.cluster
            .mark_deleting(kind, namespace, name, NOW + 3 * LEEWAY_SECONDS);
        assert!(at(token, NOW + 3 * LEEWAY_SECONDS).unwrap().is_some());
        f.cluster.mark_deleting(kind, namespace, name, i64::MIN);
        assert!(at(token, NOW).is_err());
        // Restore.
        let uid = match kind {
            ObjectKind::Pod => "pod-uid",
            ObjectKind::Node => "node-uid",
            ObjectKind::Secret => "secret-uid",
            ObjectKind::ServiceAccount => "sa-uid",
        };
        f.cluster.put(kind, namespace, name, uid);
        assert!(at(token, NOW).unwrap().is_some());
    }
}

#[test]
fn a_token_signed_before_rotation_verifies_after_until_pruned() {
    let f = Fixture::new(Algorithm::Rs256);
    let old = f.pod_token();
    let old_kid = f.keys.current().signing_kid().to_owned();
    let new_kid = KeySet::rotate(&f.key_dir(), Algorithm::Es256).unwrap();
    assert!(f.keys.reload_if_changed(&f.key_dir()).unwrap());

    let new = f.pod_token();
    let kid_of = |t: &str| decode_part(&parts(t).0)["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&old), old_kid);
    assert_eq!(kid_of(&new), new_kid);
    assert_eq!(decode_part(&parts(&new).0)["alg"], "ES256");
    let jwks = f.keys.current().jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(verify(&f, &old).unwrap().is_some());
    assert!(verify(&f, &new).unwrap().is_some());

    // Pruning the old key revokes its tokens, cached or not.
    KeySet::prune(&f.key_dir(), 1).unwrap();
    assert!(f.keys.reload_if_changed(&f.key_dir()).unwrap());
    assert_eq!(refused(&f, &old), VerifyError::UnknownKey);
    assert!(verify(&f, &new).unwrap().is_some());
}

#[test]
fn cached_verifications_are_rechecked_and_forgotten() {
    let f = Fixture::new(Algorithm::Rs256);
    let token = f.pod_token();
    assert!(verify(&f, &token).unwrap().is_some());
    assert_eq!(f.authn.cached(), 1);
    // A hit gives the same user.
    let first = verify(&f, &token).unwrap();
    assert_eq!(first, verify(&f, &token).unwrap());
    assert_eq!(f.authn.cached(), 1);

    // A deleted pod is noticed on a hit even without forget().
    f.cluster.delete(ObjectKind::Pod, "ci", "agent-1");
    assert!(matches!(
        refused(&f, &token),
        VerifyError::ObjectMissing { .. }
    ));
    assert_eq!(f.authn.cached(), 0);
    f.cluster.put(ObjectKind::Pod, "ci", "agent-1", "pod-uid");

    // Expiry is checked on a hit.
    assert!(verify(&f, &token).unwrap().is_some());
    assert_eq!(
        f.authn
            .verify_token_at(&token, NOW + 3600 + LEEWAY_SECONDS + 1),
        Err(VerifyError::Expired)
    );

    // forget() drops what depends on an object, and only that.
    let legacy = f
        .issuer
        .issue_legacy("ci", "jenkins", "sa-uid", "jenkins-token")
        .unwrap();
    f.cluster
        .put_token_secret("ci", "jenkins-token", "secret-uid", &legacy);
    assert!(verify(&f, &token).unwrap().is_some());
    assert!(verify(&f, &legacy).unwrap().is_some());
    assert_eq!(f.authn.cached(), 2);
    f.authn.forget(ObjectKind::Pod, "other", "agent-1");
    f.authn.forget(ObjectKind::Secret, "ci", "agent-1");
    assert_eq!(f.authn.cached(), 2);
    f.authn.forget(ObjectKind::Pod, "ci", "agent-1");
    assert_eq!(f.authn.cached(), 1);
    f.authn.forget(ObjectKind::ServiceAccount, "ci", "jenkins");
    assert_eq!(f.authn.cached(), 0);

    // Failures are not cached.
    let _ = verify(&f, "a.b.c");
    let _ = verify(&f, &f.sign(&json!({"iss": ISSUER})));
    assert_eq!(f.authn.cached(), 0);
}

#[test]
fn the_cache_is_bounded() {
    let f = Fixture::new(Algorithm::Es256);
    let authn = crate::ServiceAccountAuthenticator::new(
        f.keys.clone(),
        f.config.clone(),
        f.cluster.clone(),
    )
    .with_cache_capacity(32);
    for i in 0..100 {
        let mut c = claims();
        c["jti"] = json!(format!("token-{i}"));
        assert!(authn.verify_token_at(&f.sign(&c), NOW).unwrap().is_some());
    }
    assert!(authn.cached() <= 32, "{}", authn.cached());
    assert!(authn.cached() >= 16, "{}", authn.cached());
    let off = crate::ServiceAccountAuthenticator::new(
        f.keys.clone(),
        f.config.clone(),
        f.cluster.clone(),
    )
    .with_cache_capacity(0);
    assert!(off.verify_token_at(&f.pod_token(), NOW).unwrap().is_some());
    assert_eq!(off.cached(), 0);
}
