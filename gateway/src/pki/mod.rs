//! kgate's own PKI in `DATA_DIR/pki/`: two CAs and the leaf certificates they sign. All keys are
//! ECDSA P-256.
//!
//! | files | signed by | what it is |
//! |---|---|---|
//! | `ca.crt`, `ca.key` | itself | the CA of users (client certificates) and of serving certificates |
//! | `serving.*` | `ca` | the listeners' serving certificate |
//! | `admin.*` | `ca` | `kubernetes-admin` in `system:masters` (`admin.kubeconfig`) |
//! | `front-proxy-ca.crt`, `.key` | itself | the CA of the gateway's front-proxy identity only (kube-apiserver's `--requestheader-client-ca-file`) |
//! | `front-proxy-client.*` | `front-proxy-ca` | the gateway's client certificate towards a separate control plane, CN [`FRONT_PROXY_CN`] |
//!
//! Threat model: the CA key can mint any identity, including `system:masters`, so every key file
//! is written 0600 in a 0700 directory, key material only ever leaves this module as a
//! [`PrivateKeyPem`] (whose `Debug` is redacted), and an existing CA is never replaced: a
//! half-present CA (certificate without key or the reverse) is an error, not a reason to mint a
//! new one. Leaf certificates are re-issued when missing, unreadable, issued by another CA or
//! within [`RENEW_BEFORE`] of expiry.
//!
//! A control plane believes the `X-Remote-*` identity headers of whoever holds a front-proxy
//! certificate, so that certificate comes from a CA of its own, as kube-apiserver's requestheader
//! authentication wants: the users' CA refuses to sign [`FRONT_PROXY_CN`] (nothing it signs is
//! the proxy), and the front-proxy CA signs nothing but the proxy. A data directory from before the
//! front-proxy CA existed gets one at its next start, and its front-proxy client certificate
//! (then signed by the users' CA) is re-issued by it.

mod der;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use thiserror::Error;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;

/// How long the CA is valid.
pub const CA_VALIDITY: Duration = Duration::days(3650);
/// How long the serving, admin and front-proxy certificates are valid.
pub const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaf certificates this close to expiry are re-issued at start.
pub const RENEW_BEFORE: Duration = Duration::days(30);
/// Certificates start this far in the past, so a peer with a slightly slow clock accepts them.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// The admin user of `admin.kubeconfig`.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The admin's group: everything is allowed to it.
pub const ADMIN_GROUP: &str = kgate_core::user::SYSTEM_PRIVILEGED_GROUP;
/// The common name of the gateway's client certificate towards a separate control plane; the
/// control plane honours front-proxy headers only from this name (its default
/// `--requestheader-allowed-names`), signed by the front-proxy CA. The users' CA never signs it.
pub const FRONT_PROXY_CN: &str = "kgate-front-proxy";

/// Which of the two CAs; each has its own files and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaKind {
    /// `ca.crt`: users and serving certificates.
    Users,
    /// `front-proxy-ca.crt`: the gateway's front-proxy identity.
    FrontProxy,
}

impl CaKind {
    fn file_stem(self) -> &'static str {
        match self {
            CaKind::Users => "ca",
            CaKind::FrontProxy => "front-proxy-ca",
        }
    }

    fn common_name(self) -> &'static str {
        match self {
            CaKind::Users => "kgate-ca",
            CaKind::FrontProxy => "kgate-front-proxy-ca",
        }
    }

    /// Client certificate names this CA refuses to sign.
    fn reserved_names(self) -> &'static [&'static str] {
        match self {
            CaKind::Users => &[FRONT_PROXY_CN],
            CaKind::FrontProxy => &[],
        }
    }
}

/// Why the PKI could not be loaded or a certificate issued.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file does not hold a usable PEM certificate.
    #[error("{} does not hold a valid certificate", path.display())]
    BadCertificate { path: PathBuf },
    /// A file does not hold a usable private key.
    #[error("{} does not hold a valid private key", path.display())]
    BadKey {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    /// One half of the CA exists without the other: refuse rather than replace the CA.
    #[error("{} exists but {} does not; refusing to create a new CA over an existing one", present.display(), missing.display())]
    IncompleteCa { present: PathBuf, missing: PathBuf },
    /// There is no CA yet (for `kgate kubeconfig` before the first `kgate up`).
    #[error("no CA in {}; start `kgate up --data-dir` on this directory first", dir.display())]
    NoCa { dir: PathBuf },
    /// Generating or signing a certificate failed.
    #[error("cannot generate a certificate")]
    Generate(#[from] rcgen::Error),
    /// The requested client certificate is not acceptable.
    #[error("invalid certificate request: {0}")]
    InvalidRequest(String),
    /// The name belongs to an identity this CA must never sign (the gateway's front-proxy
    /// identity, which only the front-proxy CA signs).
    #[error("the user name {name:?} is reserved for the kgate gateway's front-proxy certificate")]
    ReservedName { name: String },
}

/// A PEM private key. `Debug` never shows it.
#[derive(Clone)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// The PEM text: for TLS configs and key files only, never for logs.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// A certificate with its private key.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: PrivateKeyPem,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid for `lifetime` from now, starting a few minutes in the past to absorb clock skew.
    pub fn from_now(lifetime: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - CLOCK_SKEW,
            not_after: now + lifetime,
        }
    }
}

/// The CA: its certificate and its signing key.
pub struct CertificateAuthority {
    kind: CaKind,
    cert_pem: String,
    cert_der: Vec<u8>,
    key: KeyPair,
    subject_der: Vec<u8>,
    key_id: Option<Vec<u8>>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("kind", &self.kind)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Loads the users' CA of `DATA_DIR/pki`; it must exist.
    pub fn load(pki_dir: &Path) -> Result<Self, PkiError> {
        Self::load_kind(pki_dir, CaKind::Users)
    }

    /// Loads the front-proxy CA of `DATA_DIR/pki`; it must exist.
    pub fn load_front_proxy(pki_dir: &Path) -> Result<Self, PkiError> {
        Self::load_kind(pki_dir, CaKind::FrontProxy)
    }

    fn load_kind(pki_dir: &Path, kind: CaKind) -> Result<Self, PkiError> {
        let stem = kind.file_stem();
        let cert_path = pki_dir.join(format!("{stem}.crt"));
        let key_path = pki_dir.join(format!("{stem}.key"));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {}
            (false, false) => {
                return Err(PkiError::NoCa {
                    dir: pki_dir.to_owned(),
                })
            }
            (true, false) => {
                return Err(PkiError::IncompleteCa {
                    present: cert_path,
                    missing: key_path,
                })
            }
            (false, true) => {
                return Err(PkiError::IncompleteCa {
                    present: key_path,
                    missing: cert_path,
                })
            }
        }
        let cert_pem = read_string(&cert_path)?;
        let key =
            KeyPair::from_pem(&read_string(&key_path)?).map_err(|source| PkiError::BadKey {
                path: key_path.clone(),
                source,
            })?;
        Self::from_parts(kind, cert_pem, key, &cert_path)
    }

    fn load_or_create(pki_dir: &Path, kind: CaKind) -> Result<Self, PkiError> {
        match Self::load_kind(pki_dir, kind) {
            Err(PkiError::NoCa { .. }) => Self::create(pki_dir, kind),
            other => other,
        }
    }

    fn create(pki_dir: &Path, kind: CaKind) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, kind.common_name());
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let validity = Validity::from_now(CA_VALIDITY);
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let cert = params.self_signed(&key)?;
        // The key first: a crash in between leaves "key without certificate", which load()
        // reports instead of silently minting a second CA.
        let stem = kind.file_stem();
        write_private(
            &pki_dir.join(format!("{stem}.key")),
            key.serialize_pem().as_bytes(),
        )?;
        let cert_path = pki_dir.join(format!("{stem}.crt"));
        write_public(&cert_path, cert.pem().as_bytes())?;
        Self::from_parts(kind, cert.pem(), key, &cert_path)
    }

    fn from_parts(
        kind: CaKind,
        cert_pem: String,
        key: KeyPair,
        path: &Path,
    ) -> Result<Self, PkiError> {
        let bad = || PkiError::BadCertificate {
            path: path.to_owned(),
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|_| bad())?;
        let cert = pem.parse_x509().map_err(|_| bad())?;
        let subject_der = cert.tbs_certificate.subject.as_raw().to_vec();
        let key_id = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        Ok(Self {
            kind,
            cert_der: pem.contents.clone(),
            cert_pem,
            key,
            subject_der,
            key_id,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a client certificate: CN = `user`, one O per group, clientAuth only. The users' CA
    /// refuses [`FRONT_PROXY_CN`].
    pub fn issue_client_cert(
        &self,
        user: &str,
        groups: &[String],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        if user.is_empty() {
            return Err(PkiError::InvalidRequest("the user name is empty".into()));
        }
        if self.kind.reserved_names().contains(&user) {
            return Err(PkiError::ReservedName {
                name: user.to_owned(),
            });
        }
        self.sign_client_cert(user, groups, validity)
    }

    /// Issues a client certificate without the reserved-name check: what the code before the
    /// front-proxy CA did, for the migration test.
    #[cfg(test)]
    fn issue_with_any_name(&self, user: &str, validity: Validity) -> Result<IssuedCert, PkiError> {
        self.sign_client_cert(user, &[], validity)
    }

    fn sign_client_cert(
        &self,
        user: &str,
        groups: &[String],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        if groups.iter().any(String::is_empty) {
            return Err(PkiError::InvalidRequest("a group name is empty".into()));
        }
        if validity.not_after <= validity.not_before {
            return Err(PkiError::InvalidRequest(
                "the certificate would expire before it starts".into(),
            ));
        }
        let key = KeyPair::generate()?;
        let spec = der::ClientCertSpec {
            common_name: user,
            organizations: groups,
            not_before: validity.not_before,
            not_after: validity.not_after,
            issuer_subject_der: &self.subject_der,
            issuer_key_id: self.key_id.as_deref(),
        };
        let cert_der = der::client_certificate(&spec, &key, &self.key)?;
        Ok(IssuedCert {
            cert_pem: pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            key_pem: PrivateKeyPem(key.serialize_pem()),
        })
    }

    /// Issues a serving certificate for `hosts` (DNS names or IP addresses), serverAuth only.
    pub fn issue_serving_cert(
        &self,
        hosts: &[String],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "kgate");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        let issuer = Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &self.key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: PrivateKeyPem(key.serialize_pem()),
        })
    }

    /// True when `cert_der` was issued by this CA (by issuer name and, where both certificates
    /// carry one, by key identifier, so a CA re-created under the same name does not keep the
    /// old one's leaves) and is valid past the renewal window. The signature is not re-checked:
    /// these are our own files.
    fn still_good(&self, cert_der: &[u8]) -> bool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else {
            return false;
        };
        let renew_at = OffsetDateTime::now_utc() + RENEW_BEFORE;
        let authority_key_id = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0)
                }
                _ => None,
            });
        let same_key = match (authority_key_id, self.key_id.as_deref()) {
            (Some(theirs), Some(ours)) => theirs == ours,
            _ => true,
        };
        cert.tbs_certificate.issuer.as_raw() == self.subject_der.as_slice()
            && same_key
            && cert.validity().not_after.to_datetime() > renew_at
    }
}

/// Issues a client certificate from `ca`; see [`CertificateAuthority::issue_client_cert`].
pub fn issue_client_cert(
    ca: &CertificateAuthority,
    user: &str,
    groups: &[String],
    validity: Validity,
) -> Result<IssuedCert, PkiError> {
    ca.issue_client_cert(user, groups, validity)
}

/// Everything in `DATA_DIR/pki`.
#[derive(Debug)]
pub struct Pki {
    pub dir: PathBuf,
    /// The users' CA: client certificates of users, and the serving certificate.
    pub ca: CertificateAuthority,
    /// The front-proxy CA: the gateway's identity towards a separate control plane, nothing else.
    pub front_proxy_ca: CertificateAuthority,
    pub serving: IssuedCert,
    pub admin: IssuedCert,
    /// Signed by [`Pki::front_proxy_ca`].
    pub front_proxy: IssuedCert,
}

impl Pki {
    /// The PKI directory of a data directory.
    pub fn dir_of(data_dir: &Path) -> PathBuf {
        data_dir.join("pki")
    }

    /// Loads `DATA_DIR/pki`, creating what is missing; an existing CA is always kept.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, PkiError> {
        let dir = Self::dir_of(data_dir);
        create_private_dir(&dir)?;
        let ca = CertificateAuthority::load_or_create(&dir, CaKind::Users)?;
        // Created on the first start after an upgrade too; the front-proxy client certificate
        // signed by the users' CA is then no longer "still good" and is re-issued below.
        let front_proxy_ca = CertificateAuthority::load_or_create(&dir, CaKind::FrontProxy)?;
        let serving = leaf(&ca, &dir, "serving", |ca| {
            ca.issue_serving_cert(&serving_hosts(), Validity::from_now(LEAF_VALIDITY))
        })?;
        let admin = leaf(&ca, &dir, "admin", |ca| {
            ca.issue_client_cert(
                ADMIN_USER,
                &[ADMIN_GROUP.to_owned()],
                Validity::from_now(LEAF_VALIDITY),
            )
        })?;
        let front_proxy = leaf(&front_proxy_ca, &dir, "front-proxy-client", |ca| {
            ca.issue_client_cert(FRONT_PROXY_CN, &[], Validity::from_now(LEAF_VALIDITY))
        })?;
        Ok(Self {
            dir,
            ca,
            front_proxy_ca,
            serving,
            admin,
            front_proxy,
        })
    }
}

/// Reuses `NAME.crt`/`NAME.key` when they are good, otherwise issues and writes new ones.
fn leaf(
    ca: &CertificateAuthority,
    dir: &Path,
    name: &str,
    issue: impl FnOnce(&CertificateAuthority) -> Result<IssuedCert, PkiError>,
) -> Result<IssuedCert, PkiError> {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    if let Some(existing) = read_leaf(&cert_path, &key_path)? {
        if ca.still_good(&existing.cert_der) {
            return Ok(existing);
        }
        tracing::info!(certificate = %cert_path.display(), "re-issuing certificate");
    }
    let issued = issue(ca)?;
    write_private(&key_path, issued.key_pem.expose_secret().as_bytes())?;
    write_public(&cert_path, issued.cert_pem.as_bytes())?;
    Ok(issued)
}

/// Reads a certificate and key pair; `None` when either is missing or unusable.
fn read_leaf(cert_path: &Path, key_path: &Path) -> Result<Option<IssuedCert>, PkiError> {
    if !cert_path.exists() || !key_path.exists() {
        return Ok(None);
    }
    let cert_pem = read_string(cert_path)?;
    let key_pem = read_string(key_path)?;
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return Ok(None);
    };
    if KeyPair::from_pem(&key_pem).is_err() {
        return Ok(None);
    }
    Ok(Some(IssuedCert {
        cert_der: pem.contents,
        cert_pem,
        key_pem: PrivateKeyPem(key_pem),
    }))
}

/// localhost, the loopback addresses and this machine's host name.
/// The names the serving certificate is issued for: loopback and this machine's host name.
pub fn serving_hosts() -> Vec<String> {
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    // A host name that is not a valid DNS name (or is already listed) is left out rather than
    // failing the start.
    let valid = !hostname.is_empty()
        && hostname.len() <= 253
        && hostname
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if valid && !hosts.contains(&hostname) {
        hosts.push(hostname);
    }
    hosts
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn read_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Creates `dir` (and parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PkiError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Writes a secret file with mode 0600: created under a temporary name with that mode from the
/// start (never briefly world-readable), then renamed over the target.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_atomically(path, contents, 0o600)
}

fn write_public(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_atomically(path, contents, 0o644)
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A stale temporary file may have another mode: remove it so `mode` applies.
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests;
