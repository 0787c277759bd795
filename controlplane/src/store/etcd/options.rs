//! The etcd backend's options, and the client settings made from them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use crate::store::StoreError;

/// etcd's default `--max-request-bytes` (1.5 MiB).
const ETCD_MAX_REQUEST_BYTES: usize = 1_572_864;
/// Room in an etcd request for what is not the value: the key (three times in an update's
/// transaction) and the framing. Kubernetes keys are well under 1 KiB.
const REQUEST_HEADROOM: usize = 8 * 1024;
/// HTTP/2 pings on open watch streams, so a silently lost etcd (network partition) ends the
/// watches within this plus the request timeout. etcd refuses pings more often than every 5 s.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);

/// How to reach etcd and where to keep the data. `Default` gives the values documented on each
/// field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// etcd client URLs, `http://host:port` or `https://host:port` (the latter needs `tls`).
    /// Default `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// The etcd key prefix that replaces `/registry/` in the Store's keys; a `/` is appended if
    /// missing. Default `/registry/`, kube-apiserver's layout.
    pub prefix: String,
    /// TLS to etcd (its CA, and a client certificate if etcd asks for one). Default none.
    pub tls: Option<EtcdTls>,
    /// The longest wait for one etcd request (and for connecting); a request that takes longer
    /// fails with `Unavailable`. Default 10 s.
    pub request_timeout: Duration,
    /// The largest value accepted; larger ones fail with `TooLarge` without reaching etcd.
    /// Default 1.5 MiB less 8 KiB, so that with the key and framing a write fits in etcd's
    /// default `--max-request-bytes` of 1.5 MiB. Set it below etcd's limit if that was changed.
    pub max_value_bytes: usize,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/registry/".into(),
            tls: None,
            request_timeout: Duration::from_secs(10),
            max_value_bytes: ETCD_MAX_REQUEST_BYTES - REQUEST_HEADROOM,
        }
    }
}

/// TLS to etcd: PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA that signed etcd's serving certificate.
    pub ca_file: PathBuf,
    /// A client certificate, for etcd's `--client-cert-auth`; with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key.
    pub key_file: Option<PathBuf>,
}

/// The client settings for `options`, refusing options that cannot work.
pub(super) async fn connect_options(options: &EtcdOptions) -> Result<ConnectOptions, StoreError> {
    if options.endpoints.is_empty() {
        return Err(StoreError::Backend("no etcd endpoints configured".into()));
    }
    let mut connect = ConnectOptions::new()
        .with_connect_timeout(options.request_timeout)
        .with_keep_alive(KEEP_ALIVE_INTERVAL, options.request_timeout)
        // Pings with no stream open make etcd send GOAWAY ("too many pings").
        .with_keep_alive_while_idle(false);
    match &options.tls {
        Some(tls) => {
            if let Some(plain) = options.endpoints.iter().find(|e| e.starts_with("http://")) {
                return Err(StoreError::Backend(format!(
                    "etcd endpoint {plain} is http:// but TLS is configured; use https://"
                )));
            }
            connect = connect.with_tls(tls_options(tls).await?);
        }
        None => {
            if let Some(secure) = options.endpoints.iter().find(|e| e.starts_with("https://")) {
                return Err(StoreError::Backend(format!(
                    "etcd endpoint {secure} is https:// but no CA file is configured"
                )));
            }
        }
    }
    Ok(connect)
}

/// Reads the TLS files. Errors name the files, never their contents.
async fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, StoreError> {
    async fn read(what: &str, path: &Path) -> Result<Vec<u8>, StoreError> {
        tokio::fs::read(path).await.map_err(|e| {
            StoreError::Backend(format!(
                "cannot read the etcd {what} {}: {e}",
                path.display()
            ))
        })
    }
    let ca = read("CA file", &tls.ca_file).await?;
    let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(ca));
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let cert = read("client certificate", cert).await?;
            let key = read("client key", key).await?;
            options = options.identity(Identity::from_pem(cert, key));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Backend(
                "an etcd client certificate needs its key, and a key its certificate".into(),
            ))
        }
    }
    Ok(options)
}
