//! kgate's fuzz targets: the parsers of untrusted input, each a function `run(&[u8]) -> bool`
//! in its own module (the bool says whether the input was accepted, for the seed tests).
//!
//! | target | what it feeds | module |
//! |---|---|---|
//! | `request_info` | a request line to the request-info parser | [`request_info`] |
//! | `bearer` | request headers to the credential reader and the identity-header stripping | [`bearer`] |
//! | `jwt_serviceaccount` | raw and signed tokens to the ServiceAccount token verifier | [`jwt_serviceaccount`] |
//! | `jwt_oidc` | raw and signed tokens to the OIDC verifier and claim mappings; JWKS documents | [`jwt_oidc`] |
//! | `x509_chain` | client certificate chains, raw and signed, to the X.509 authenticator | [`x509_chain`] |
//! | `selectors` | label and field selectors | [`selectors`] |
//! | `patch` | JSON, merge and strategic merge patches | [`patch`] |
//! | `stored_object` | stored values to the copy that puts them into JSON lists | [`stored_object`] |
//! | `quantity` | `resource.Quantity` text, alone and in an object's Quantity field | [`quantity`] |
//!
//! Each target checks properties that hold for every input, not only that nothing panics; the
//! module docs say which. The binaries in `fuzz_targets/` wrap these functions: built by
//! `cargo fuzz` (`--cfg fuzzing`) they are libFuzzer targets; built any other way they replay
//! the files and folders given as arguments, which reproduces a crash on the stable toolchain.
//! The committed seeds are in `corpus/<target>/` (written by `examples/make_seeds.rs`), and the
//! tests below run every target over them. `scripts/fuzz.sh` runs the targets.
//!
//! Depends on the library crates whose parsers it feeds; reaches the control plane's private
//! patch code through its hidden `apiserver::fuzzing` module.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bearer;
pub mod jose;
pub mod jwt_oidc;
pub mod jwt_serviceaccount;
pub mod patch;
pub mod quantity;
pub mod request_info;
pub mod selectors;
pub mod stored_object;
pub mod x509_chain;

use std::path::Path;

/// A target: its name (the binary's and the corpus folder's) and its function.
pub type Target = (&'static str, fn(&[u8]) -> bool);

/// Every target.
pub const TARGETS: [Target; 9] = [
    ("request_info", request_info::run),
    ("bearer", bearer::run),
    ("jwt_serviceaccount", jwt_serviceaccount::run),
    ("jwt_oidc", jwt_oidc::run),
    ("x509_chain", x509_chain::run),
    ("selectors", selectors::run),
    ("patch", patch::run),
    ("stored_object", stored_object::run),
    ("quantity", quantity::run),
];

/// The body of a PEM document, decoded.
pub fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|e| panic!("PEM body: {e}"))
}

/// The `main` of a target binary built without libFuzzer: runs `target` on every file named on
/// the command line (a folder: every file in it) and says how many it ran and accepted.
pub fn replay_main(target: fn(&[u8]) -> bool) {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: <target> FILE|DIR...  (replays inputs; fuzzing needs `cargo fuzz`)");
        std::process::exit(2);
    }
    let (mut ran, mut accepted) = (0, 0);
    for path in &paths {
        for file in inputs(Path::new(path)) {
            let data = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            println!("{}", file.display());
            ran += 1;
            accepted += usize::from(target(&data));
        }
    }
    println!("{ran} inputs ran, {accepted} accepted");
}

/// `path` itself, or the files of a folder, sorted.
pub fn inputs(path: &Path) -> Vec<std::path::PathBuf> {
    if !path.is_dir() {
        return vec![path.to_owned()];
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", path.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a target over its committed seeds; returns (inputs, accepted).
    fn replay(name: &str) -> (usize, usize) {
        let target = TARGETS.iter().find(|(n, _)| *n == name).unwrap().1;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("corpus")
            .join(name);
        let files = inputs(&dir);
        let accepted = files
            .iter()
            .filter(|file| target(&std::fs::read(file).unwrap()))
            .count();
        (files.len(), accepted)
    }

    /// Every target has seeds, and they reach both the accepting and the refusing paths.
    #[test]
    fn every_target_accepts_and_refuses_some_seeds() {
        for (name, _) in TARGETS {
            let (ran, accepted) = replay(name);
            assert!(ran >= 5, "{name}: {ran} seeds");
            assert!(accepted > 0, "{name}: no seed accepted");
            assert!(accepted < ran, "{name}: every seed accepted");
        }
    }

    #[test]
    fn der_elements_are_split_by_length() {
        let (ca, _) = x509_chain::pki::ca();
        let (intermediate, _) = x509_chain::pki::intermediate();
        let both = [ca.clone(), intermediate.clone()].concat();
        assert_eq!(x509_chain::split_der(&both), [ca.clone(), intermediate]);
        assert_eq!(x509_chain::split_der(&ca[..10]), [ca[..10].to_vec()]);
        assert_eq!(x509_chain::split_der(&[]), Vec::<Vec<u8>>::new());
    }

    /// A certificate re-signed from its own TBS verifies like the original (the signed mode of
    /// the X.509 target makes what rcgen makes).
    #[test]
    fn signed_tbs_makes_the_same_certificate() {
        let (intermediate, _) = x509_chain::pki::intermediate();
        let tbs = x509_chain::tbs_of(&intermediate).unwrap();
        let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&x509_chain::pki::CA_SEED)
            .unwrap();
        assert_eq!(x509_chain::signed(tbs, &key), intermediate);
    }
}
