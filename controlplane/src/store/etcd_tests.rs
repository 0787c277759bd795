//! The etcd backend against a real etcd (Debian's `etcd-server`, started per test on free
//! loopback ports and killed at the end): the conformance suite, then what only a networked
//! store has: etcd unreachable or gone, etcd's own request limit, the key prefix.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tempfile::TempDir;

use super::{EtcdOptions, EtcdStore, EtcdTls};
use crate::store::conformance::{self, next_event};
use crate::store::{EventKind, RangeRequest, Store, StoreError};

const ETCD: &str = "/usr/bin/etcd";

/// One etcd server for one test, with its data in a temporary folder; killed on drop.
struct TestEtcd {
    child: Child,
    endpoint: String,
    dir: TempDir,
    /// The client side of a TLS etcd.
    tls: Option<EtcdTls>,
}

/// A loopback port nobody listens on (now).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A prefix no other store of the test uses.
fn fresh_prefix() -> String {
    format!("/kgate-test-{:016x}/", rand::random::<u64>())
}

impl TestEtcd {
    async fn start() -> TestEtcd {
        TestEtcd::start_with(&[]).await
    }

    /// Starts etcd with `extra` flags and waits until it answers a read.
    async fn start_with(extra: &[&str]) -> TestEtcd {
        let extra = extra.iter().map(ToString::to_string).collect();
        TestEtcd::launch(TempDir::new().unwrap(), "http", extra, None).await
    }

    /// Starts etcd serving TLS with a certificate from `pki` and requiring client certificates.
    async fn start_tls(dir: TempDir, pki: &Pki) -> TestEtcd {
        let extra = vec![
            format!("--cert-file={}", pki.server_cert.display()),
            format!("--key-file={}", pki.server_key.display()),
            format!("--trusted-ca-file={}", pki.ca.display()),
            "--client-cert-auth".to_owned(),
        ];
        TestEtcd::launch(dir, "https", extra, Some(pki.client_tls())).await
    }

    /// Starts etcd with its data in `dir` and waits until a client with `tls` gets an answer.
    async fn launch(
        dir: TempDir,
        scheme: &str,
        extra: Vec<String>,
        tls: Option<EtcdTls>,
    ) -> TestEtcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: run scripts/test.sh, which installs it (Debian's etcd-server)"
        );
        // Both bound at once, so they differ; etcd binds them right after (a small race with
        // other processes, which a failed start would show in the log).
        let (client, peer) = {
            let a = TcpListener::bind("127.0.0.1:0").unwrap();
            let b = TcpListener::bind("127.0.0.1:0").unwrap();
            (
                a.local_addr().unwrap().port(),
                b.local_addr().unwrap().port(),
            )
        };
        let endpoint = format!("{scheme}://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = File::create(dir.path().join("etcd.log")).unwrap();
        let mut command = Command::new(ETCD);
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // etcd 3.4 refuses to start on other architectures than amd64 without this.
        if std::env::consts::ARCH != "x86_64" {
            let arch = match std::env::consts::ARCH {
                "aarch64" => "arm64",
                other => other,
            };
            command.env("ETCD_UNSUPPORTED_ARCH", arch);
        }
        let child = command.spawn().unwrap();
        let mut etcd = TestEtcd {
            child,
            endpoint,
            dir,
            tls,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let options = EtcdOptions {
                request_timeout: Duration::from_secs(1),
                ..etcd.options()
            };
            if EtcdStore::connect(options).await.is_ok() {
                return etcd;
            }
            if let Some(status) = etcd.child.try_wait().unwrap() {
                panic!("etcd exited with {status}:\n{}", etcd.log());
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not answer within 30 s:\n{}",
                etcd.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Options for a store on this etcd under a prefix of its own.
    fn options(&self) -> EtcdOptions {
        EtcdOptions {
            endpoints: vec![self.endpoint.clone()],
            prefix: fresh_prefix(),
            request_timeout: Duration::from_secs(5),
            tls: self.tls.clone(),
            ..Default::default()
        }
    }

    async fn store(&self) -> EtcdStore {
        EtcdStore::connect(self.options()).await.unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let etcd = TestEtcd::start().await;
    let limit = EtcdOptions::default().max_value_bytes;
    conformance::run_all(|| etcd.store(), limit).await;
}

#[test]
fn options_default_to_the_documented_values() {
    let options = EtcdOptions::default();
    assert_eq!(options.endpoints, ["http://127.0.0.1:2379"]);
    assert_eq!(options.prefix, "/registry/");
    assert_eq!(options.tls, None);
    assert_eq!(options.request_timeout, Duration::from_secs(10));
    // Under etcd's default --max-request-bytes, with room for the key and framing.
    assert!(options.max_value_bytes < 1_572_864);
    assert!(options.max_value_bytes >= 1_572_864 - 16 * 1024);
}

#[tokio::test]
async fn connecting_to_a_closed_port_is_unavailable_quickly() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let error = EtcdStore::connect(EtcdOptions {
        endpoints: vec![endpoint.clone()],
        request_timeout: Duration::from_secs(2),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&endpoint), "{error}");
    // The cause is there, not only the transport's "tcp connect error".
    assert!(error.to_string().contains("refused"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_etcd_that_never_answers_times_out_as_unavailable() {
    // Accepts TCP connections (the kernel does, into the backlog) but never speaks HTTP/2.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let error = EtcdStore::connect(EtcdOptions {
        endpoints: vec![endpoint.clone()],
        request_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&endpoint), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn options_that_cannot_work_are_refused_before_connecting() {
    let no_endpoints = EtcdStore::connect(EtcdOptions {
        endpoints: vec![],
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(no_endpoints, StoreError::Backend(_)),
        "{no_endpoints:?}"
    );

    let https_without_ca = EtcdStore::connect(EtcdOptions {
        endpoints: vec!["https://127.0.0.1:1".into()],
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        https_without_ca.to_string().contains("no CA file"),
        "{https_without_ca}"
    );

    let missing_ca = EtcdStore::connect(EtcdOptions {
        endpoints: vec!["https://127.0.0.1:1".into()],
        tls: Some(EtcdTls {
            ca_file: "/nonexistent/ca.pem".into(),
            cert_file: None,
            key_file: None,
        }),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        missing_ca.to_string().contains("/nonexistent/ca.pem"),
        "{missing_ca}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_unavailable_when_etcd_dies() {
    let mut etcd = TestEtcd::start().await;
    let store = etcd.store().await;
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/pods/", r0).await.unwrap();
    store
        .create("/registry/pods/ns/a", b"a".to_vec())
        .await
        .unwrap();
    assert_eq!(next_event(&mut watch).await.kind, EventKind::Create);

    etcd.kill();
    let end = tokio::time::timeout(Duration::from_secs(15), watch.next())
        .await
        .expect("the watch did not end within 15 s of etcd's death");
    assert!(
        matches!(end, Some(Err(StoreError::Unavailable(_)))),
        "{end:?}"
    );
    let after = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(after.is_none(), "the stream ended: {after:?}");

    // Every operation now fails as Unavailable within the request timeout, naming etcd.
    let started = Instant::now();
    let error = store.get("/registry/pods/ns/a").await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&etcd.endpoint), "{error}");
    let error = store
        .create("/registry/pods/ns/b", b"b".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let error = store.watch("/registry/pods/", r0).await.err();
    assert!(
        matches!(error, Some(StoreError::Unavailable(_))),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(16));
}

#[tokio::test]
async fn a_watch_outlives_the_request_timeout() {
    let etcd = TestEtcd::start().await;
    let store = EtcdStore::connect(EtcdOptions {
        request_timeout: Duration::from_secs(1),
        ..etcd.options()
    })
    .await
    .unwrap();
    let r0 = store.current_revision().await.unwrap();
    let mut watch = store.watch("/registry/", r0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kv = store.create("/registry/x/a", b"a".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, kv);
}

#[tokio::test]
async fn a_value_over_the_limit_never_reaches_etcd() {
    let mut etcd = TestEtcd::start().await;
    let store = EtcdStore::connect(EtcdOptions {
        max_value_bytes: 1000,
        request_timeout: Duration::from_secs(2),
        ..etcd.options()
    })
    .await
    .unwrap();
    let kv = store.create("/registry/a/k", vec![1; 1000]).await.unwrap();
    etcd.kill();
    // etcd is gone, so an answer other than Unavailable was given without asking it.
    let refused = Err(StoreError::TooLarge {
        size: 1001,
        limit: 1000,
    });
    assert_eq!(store.create("/registry/a/k2", vec![1; 1001]).await, refused);
    assert_eq!(
        store
            .update("/registry/a/k", vec![1; 1001], kv.mod_revision)
            .await,
        refused
    );
    assert!(matches!(
        store.create("/registry/a/k3", vec![1; 1000]).await,
        Err(StoreError::Unavailable(_))
    ));
}

#[tokio::test]
async fn etcds_own_request_limit_is_too_large() {
    let etcd = TestEtcd::start_with(&["--max-request-bytes=1048576"]).await;
    let store = EtcdStore::connect(EtcdOptions {
        max_value_bytes: 4 << 20,
        ..etcd.options()
    })
    .await
    .unwrap();
    let kv = store.create("/registry/a/k", vec![1; 1000]).await.unwrap();
    let r0 = store.current_revision().await.unwrap();
    // Over --max-request-bytes (etcd's "request is too large"), and over the gRPC receive limit
    // etcd sets 512 KiB above it (gRPC's "message larger than max").
    for size in [(1 << 20) + 1024, 2 << 20] {
        let error = store
            .create("/registry/a/big", vec![2; size])
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::TooLarge { size: s, limit } if s == size && limit < size),
            "{size}: {error:?}"
        );
        let error = store
            .update("/registry/a/k", vec![2; size], kv.mod_revision)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::TooLarge { .. }),
            "{size}: {error:?}"
        );
    }
    assert_eq!(store.current_revision().await.unwrap(), r0);
    assert_eq!(store.get("/registry/a/k").await.unwrap(), Some(kv));
}

#[tokio::test]
async fn the_prefix_relocates_and_isolates_the_keys() {
    let etcd = TestEtcd::start().await;
    let raw = etcd_client::Client::connect([etcd.endpoint.as_str()], None)
        .await
        .unwrap();

    // The default prefix keeps kube-apiserver's keys byte for byte.
    let kube = EtcdStore::connect(EtcdOptions {
        prefix: "/registry/".into(),
        ..etcd.options()
    })
    .await
    .unwrap();
    kube.create("/registry/pods/ns/p", b"kube".to_vec())
        .await
        .unwrap();
    let other = EtcdStore::connect(EtcdOptions {
        prefix: "/other".into(),
        ..etcd.options()
    })
    .await
    .unwrap();
    other
        .create("/registry/pods/ns/p", b"other".to_vec())
        .await
        .unwrap();

    let mut kv = raw.kv_client();
    let at = |key: &'static str| {
        let mut kv = kv.clone();
        async move {
            let response = kv.get(key, None).await.unwrap();
            response.kvs().first().map(|kv| kv.value().to_vec())
        }
    };
    assert_eq!(at("/registry/pods/ns/p").await, Some(b"kube".to_vec()));
    assert_eq!(at("/other/pods/ns/p").await, Some(b"other".to_vec()));

    // Each store sees only its own keys, under the Store's names.
    for (store, value) in [(&kube, &b"kube"[..]), (&other, &b"other"[..])] {
        let all = store
            .range(RangeRequest {
                prefix: "/registry/".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let items: Vec<_> = all
            .items
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_slice()))
            .collect();
        assert_eq!(items, [("/registry/pods/ns/p", value)]);
    }
    // A neighbour prefix sharing the first letters is not ours.
    kv.put("/other-team/pods/ns/q", "x", None).await.unwrap();
    let all = other
        .range(RangeRequest {
            prefix: "/registry/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
}

/// A watcher that does not read falls behind (etcd stops sending when the connection's flow
/// control window is full and parks it as slow); if the history it still needs is compacted
/// meanwhile, etcd cancels it, and the stream ends with `Compacted` after what was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_falls_behind_compaction_ends_with_compacted() {
    let etcd = TestEtcd::start().await;
    let store = etcd.store().await;
    let r0 = store.current_revision().await.unwrap();
    let mut kv = store.create("/registry/c/k", vec![0]).await.unwrap();
    let mut watch = store.watch("/registry/c/", r0).await.unwrap();
    // Far more than the HTTP/2 windows and etcd's per-watcher buffer of 128 responses hold.
    for i in 0..400u32 {
        kv = store
            .update("/registry/c/k", vec![i as u8; 64 * 1024], kv.mod_revision)
            .await
            .unwrap();
    }
    store.compact(kv.mod_revision).await.unwrap();
    let mut expected = r0 + 1;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
            Ok(Some(Ok(event))) => {
                // In order, none skipped, up to where etcd gave up on the watcher.
                assert_eq!(event.revision(), expected);
                assert!(
                    expected < kv.mod_revision,
                    "every event arrived: no compaction"
                );
                expected += 1;
            }
            Ok(Some(Err(StoreError::Compacted { compacted, .. }))) => {
                assert_eq!(compacted, kv.mod_revision);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

/// A CA, a serving certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "test etcd CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca.clone().self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |san: Vec<String>, usage: ExtendedKeyUsagePurpose, name: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(san).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "etcd",
        );
        let (client_cert, client_key) =
            leaf(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, "kgate");
        Pki {
            ca: write("ca.pem", ca_pem),
            server_cert: write("server.pem", server_cert),
            server_key: write("server-key.pem", server_key),
            client_cert: write("client.pem", client_cert),
            client_key: write("client-key.pem", client_key),
        }
    }

    fn client_tls(&self) -> EtcdTls {
        EtcdTls {
            ca_file: self.ca.clone(),
            cert_file: Some(self.client_cert.clone()),
            key_file: Some(self.client_key.clone()),
        }
    }
}

#[tokio::test]
async fn tls_with_a_client_certificate() {
    let dir = TempDir::new().unwrap();
    let pki = Pki::new(dir.path());
    let etcd = TestEtcd::start_tls(dir, &pki).await;
    let store = etcd.store().await;
    let kv = store
        .create("/registry/s/ns/x", b"s".to_vec())
        .await
        .unwrap();
    assert_eq!(store.get("/registry/s/ns/x").await.unwrap(), Some(kv));

    // Without the client certificate etcd refuses the connection.
    let error = EtcdStore::connect(EtcdOptions {
        tls: Some(EtcdTls {
            cert_file: None,
            key_file: None,
            ..pki.client_tls()
        }),
        request_timeout: Duration::from_secs(2),
        ..etcd.options()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    // A CA that did not sign etcd's certificate: the client refuses etcd.
    let other_dir = TempDir::new().unwrap();
    let other = Pki::new(other_dir.path());
    let error = EtcdStore::connect(EtcdOptions {
        tls: Some(other.client_tls()),
        request_timeout: Duration::from_secs(2),
        ..etcd.options()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains(&etcd.endpoint), "{error}");

    // A certificate without its key is a configuration error, found before connecting.
    let error = EtcdStore::connect(EtcdOptions {
        tls: Some(EtcdTls {
            key_file: None,
            ..pki.client_tls()
        }),
        ..etcd.options()
    })
    .await
    .unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    // TLS configured but an http:// endpoint: refused before anything is sent in the clear.
    let error = EtcdStore::connect(EtcdOptions {
        endpoints: vec![etcd.endpoint.replace("https://", "http://")],
        tls: Some(pki.client_tls()),
        ..etcd.options()
    })
    .await
    .unwrap_err();
    assert!(error.to_string().contains("use https://"), "{error}");
}
