use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;

fn testdata(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name),
    )
    .unwrap()
}

fn expected_kid(which: &str) -> String {
    let kids = String::from_utf8(testdata("kids.txt")).unwrap();
    kids.lines()
        .find_map(|l| l.strip_prefix(which)?.strip_prefix(' ').map(str::to_owned))
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A key directory holding one fixture as its first key.
fn dir_with(fixture: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("sa-000001.key"), testdata(fixture)).unwrap();
    dir
}

#[test]
fn load_or_create_makes_a_private_directory_and_key_once() {
    for algorithm in [Algorithm::Rs256, Algorithm::Es256] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data/keys");
        let set = KeySet::load_or_create(&dir, algorithm).unwrap();
        assert_eq!(set.signing_algorithm(), algorithm);
        assert_eq!(mode(&dir), 0o700);
        let key_file = dir.join("sa-000001.key");
        assert_eq!(mode(&key_file), 0o600);
        assert!(fs::read_to_string(&key_file)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n"));
        // Loading again keeps the key, whatever algorithm is asked for.
        let again = KeySet::load_or_create(&dir, Algorithm::Es256).unwrap();
        assert_eq!(again.signing_kid(), set.signing_kid());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }
}

#[test]
fn kid_is_the_kubernetes_key_id() {
    // Computed by openssl in testdata/make.sh, independently of this crate.
    let rsa = dir_with("rsa-pkcs1.pem");
    assert_eq!(
        KeySet::load(rsa.path()).unwrap().signing_kid(),
        expected_kid("rsa")
    );
    let rsa8 = dir_with("rsa-pkcs8.pem");
    assert_eq!(
        KeySet::load(rsa8.path()).unwrap().signing_kid(),
        expected_kid("rsa")
    );
    let ec = dir_with("ec-p256-pkcs8.pem");
    let set = KeySet::load(ec.path()).unwrap();
    assert_eq!(set.signing_kid(), expected_kid("ec"));
    assert_eq!(set.signing_algorithm(), Algorithm::Es256);
}

#[test]
fn jwks_lists_public_parameters_only() {
    let rsa = KeySet::load(dir_with("rsa-pkcs1.pem").path()).unwrap();
    let jwks = rsa.jwks();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], rsa.signing_kid());
    assert_eq!(key["e"], "AQAB");
    // 2048 bits: 256 bytes, 342 base64url characters.
    assert_eq!(key["n"].as_str().unwrap().len(), 342);
    assert!(key.get("d").is_none() && key.get("p").is_none());

    let ec = KeySet::load(dir_with("ec-p256-pkcs8.pem").path()).unwrap();
    let key = &ec.jwks()["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert_eq!(key["x"].as_str().unwrap().len(), 43);
    assert_eq!(key["y"].as_str().unwrap().len(), 43);
    assert!(key.get("d").is_none());
}

#[test]
fn rotation_adds_a_signing_key_and_retires_the_old_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = KeySet::load_or_create(dir, Algorithm::Es256).unwrap();
    let new_kid = KeySet::rotate(dir, Algorithm::Rs256).unwrap();
    assert_ne!(new_kid, first.signing_kid());

    let set = KeySet::load(dir).unwrap();
    assert_eq!(set.signing_kid(), new_kid);
    assert_eq!(set.signing_algorithm(), Algorithm::Rs256);
    assert_eq!(set.kids(), [new_kid.as_str(), first.signing_kid()]);
    assert_eq!(set.algorithms(), ["ES256", "RS256"]);
    let jwks_kids: Vec<_> = set.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(jwks_kids, [new_kid.clone(), first.signing_kid().to_owned()]);

    // The old key is now public only; the new one private.
    assert!(!dir.join("sa-000001.key").exists());
    assert!(fs::read_to_string(dir.join("sa-000001.pub"))
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(mode(&dir.join("sa-000002.key")), 0o600);
    assert!(set.by_kid(first.signing_kid()).unwrap().encoding.is_none());
}

#[test]
fn prune_keeps_the_newest_and_always_the_signing_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let k1 = KeySet::load_or_create(dir, Algorithm::Es256)
        .unwrap()
        .signing_kid()
        .to_owned();
    let k2 = KeySet::rotate(dir, Algorithm::Es256).unwrap();
    let k3 = KeySet::rotate(dir, Algorithm::Es256).unwrap();
    let k4 = KeySet::rotate(dir, Algorithm::Es256).unwrap();

    assert_eq!(KeySet::prune(dir, 2).unwrap(), [k2.clone(), k1]);
    assert_eq!(
        KeySet::load(dir).unwrap().kids(),
        [k4.as_str(), k3.as_str()]
    );
    assert!(KeySet::prune(dir, 2).unwrap().is_empty());
    // keep = 0 still keeps the signing key.
    assert_eq!(KeySet::prune(dir, 0).unwrap(), [k3]);
    let set = KeySet::load(dir).unwrap();
    assert_eq!(set.kids(), [k4.as_str()]);
    assert_eq!(set.signing_kid(), k4);
}

#[test]
fn a_corrupt_key_file_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    KeySet::load_or_create(dir, Algorithm::Es256).unwrap();
    fs::write(
        dir.join("sa-000002.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = KeySet::load(dir).unwrap_err();
    assert!(matches!(err, KeyError::BadKey { .. }), "{err:?}");
    assert!(err.to_string().contains("sa-000002.key"), "{err}");
    // Rotation and pruning refuse too, and change nothing.
    assert!(KeySet::rotate(dir, Algorithm::Es256).is_err());
    assert!(KeySet::prune(dir, 1).is_err());
    assert!(dir.join("sa-000001.key").exists());

    fs::write(dir.join("sa-000002.key"), "not a key").unwrap();
    assert!(KeySet::load(dir)
        .unwrap_err()
        .to_string()
        .contains("sa-000002.key"));
}

#[test]
fn unsupported_keys_are_refused_with_a_reason() {
    let sec1 = KeySet::load(dir_with("ec-p256-sec1.pem").path()).unwrap_err();
    assert!(sec1.to_string().contains("PKCS#8"), "{sec1}");
    let small = KeySet::load(dir_with("rsa-1024.pem").path()).unwrap_err();
    assert!(small.to_string().contains("2048"), "{small}");
}

#[test]
fn public_keys_alone_cannot_sign() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    KeySet::load_or_create(dir, Algorithm::Es256).unwrap();
    KeySet::rotate(dir, Algorithm::Es256).unwrap();
    fs::remove_file(dir.join("sa-000002.key")).unwrap();
    assert!(matches!(
        KeySet::load(dir),
        Err(KeyError::NoSigningKey { .. })
    ));
    // load_or_create does not paper over it with a new key.
    assert!(KeySet::load_or_create(dir, Algorithm::Es256).is_err());
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        KeySet::load(empty.path()),
        Err(KeyError::NoKeys { .. })
    ));
}

#[test]
fn debug_shows_no_key_material() {
    let dir = dir_with("rsa-pkcs1.pem");
    let set = KeySet::load(dir.path()).unwrap();
    let pem = String::from_utf8(testdata("rsa-pkcs1.pem")).unwrap();
    assert_eq!(
        format!("{:?}", set.signing().signer),
        "Some(Ok(KeySigner { algorithm: RS256, .. }))"
    );
    for shown in [
        format!("{set:?}"),
        format!("{set:#?}"),
        format!("{:?}", SharedKeys::new(set)),
    ] {
        assert!(shown.contains(&expected_kid("rsa")));
        // No line of the key's PEM body, nor even the public modulus.
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line), "{shown}");
        }
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }
    let n = KeySet::load(dir.path()).unwrap().jwks()["keys"][0]["n"].clone();
    assert!(!format!("{:?}", KeySet::load(dir.path()).unwrap()).contains(n.as_str().unwrap()));
}

#[test]
fn shared_keys_pick_up_a_rotation_from_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let shared = SharedKeys::new(KeySet::load_or_create(dir, Algorithm::Es256).unwrap());
    let before = shared.current().signing_kid().to_owned();
    assert!(!shared.reload_if_changed(dir).unwrap());
    assert!(!shared.reload_if_changed(dir).unwrap());

    let rotated = KeySet::rotate(dir, Algorithm::Es256).unwrap();
    assert!(shared.reload_if_changed(dir).unwrap());
    assert_eq!(shared.current().signing_kid(), rotated);
    assert_eq!(shared.current().kids(), [rotated.as_str(), before.as_str()]);
    assert!(!shared.reload_if_changed(dir).unwrap());

    // A broken file leaves the current keys in place and is retried.
    fs::write(dir.join("sa-000009.key"), "junk").unwrap();
    assert!(shared.reload_if_changed(dir).is_err());
    assert_eq!(shared.current().signing_kid(), rotated);
    fs::remove_file(dir.join("sa-000009.key")).unwrap();
    assert!(!shared.reload_if_changed(dir).unwrap());

    KeySet::prune(dir, 1).unwrap();
    assert!(shared.reload_if_changed(dir).unwrap());
    assert_eq!(shared.current().kids(), [rotated.as_str()]);
}

#[test]
fn algorithm_names() {
    assert_eq!(Algorithm::default(), Algorithm::Rs256);
    assert_eq!("es256".parse::<Algorithm>().unwrap(), Algorithm::Es256);
    assert_eq!(Algorithm::Rs256.to_string(), "RS256");
    assert!("HS256".parse::<Algorithm>().is_err());
}
