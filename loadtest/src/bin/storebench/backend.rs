//! Starting the systems under test: `kgate up` on its embedded store, `kgate up
//! --etcd-servers` against an etcd this harness starts itself, and the real kube-apiserver on
//! etcd 3.6 (`scripts/kube-reference.sh up --durable`, the peer kgate is measured against). Each
//! lives in its own temporary directory (data and logs) and is stopped when its [`Backend`] is
//! dropped.

use crate::api::Api;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use kgate_loadtest::{free_port, spawn, start_kgate_up, tail, Proc};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Which store `kgate up` keeps its objects in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The embedded redb store (the default of `kgate up`).
    Embedded,
    /// etcd v3 (`--etcd-servers`), one local member started by the harness.
    Etcd,
    /// Not kgate: kube-apiserver v1.34 on etcd v3.6 (fsync on), built and started by
    /// `scripts/kube-reference.sh`.
    KubeApiserver,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Embedded => "embedded",
            Kind::Etcd => "etcd",
            Kind::KubeApiserver => "kube-apiserver",
        }
    }
}

/// A running `kgate up` (and its etcd, for [`Kind::Etcd`]), or kube-apiserver and its etcd.
pub struct Backend {
    pub api: Api,
    /// kgate, or kube-apiserver.
    pub server_pid: u32,
    pub etcd_pid: Option<u32>,
    /// The server first, so it stops before its etcd.
    _procs: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl Backend {
    /// Every server process of this backend (for CPU accounting).
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.server_pid)
            .chain(self.etcd_pid)
            .collect()
    }
}

/// Starts the backend of `kind` in a new directory under `work_dir` (the system temporary
/// directory if `None`).
pub async fn start(
    kind: Kind,
    kgate: &Path,
    etcd: &Path,
    kube_reference: &Path,
    work_dir: Option<&Path>,
) -> Result<Backend> {
    let dir = match work_dir {
        Some(parent) => tempfile::Builder::new()
            .prefix("storebench-")
            .tempdir_in(parent),
        None => tempfile::Builder::new().prefix("storebench-").tempdir(),
    }
    .context("creating a work directory")?;
    if kind == Kind::KubeApiserver {
        return start_kube_apiserver(kube_reference, dir).await;
    }
    let mut procs = Vec::new();
    let mut etcd_pid = None;
    // The storage alone: no simulated nodes, scheduler or controllers adding their own load
    // (the figures before issue 7 were taken without them).
    let mut extra: Vec<std::ffi::OsString> = vec!["--nodes=0".into(), "--controllers=".into()];
    if kind == Kind::Etcd {
        let (proc, url) = start_etcd(etcd, dir.path()).await?;
        etcd_pid = Some(proc.id());
        extra.push("--etcd-servers".into());
        extra.push(url.into());
        procs.push(proc);
    }
    let up = start_kgate_up(kgate, dir.path(), &extra, Duration::from_secs(60)).await?;
    let server_pid = up.proc.id();
    procs.insert(0, up.proc);
    Ok(Backend {
        api: up.api,
        server_pid,
        etcd_pid,
        _procs: procs,
        _dir: dir,
    })
}

/// Whether this kgate binary knows `--etcd-servers` (from `kgate up --help`).
pub fn kgate_has_etcd(kgate: &Path) -> Result<bool> {
    let out = Command::new(kgate)
        .args(["up", "--help"])
        .output()
        .with_context(|| format!("running {} up --help", kgate.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("--etcd-servers"))
}

/// Starts a one-member etcd with its data under `dir`; returns it and its client URL once its
/// `/health` says so.
async fn start_etcd(etcd: &Path, dir: &Path) -> Result<(Proc, String)> {
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = dir.join("etcd.log");
    let mut proc = spawn(
        Command::new(etcd)
            .arg("--name")
            .arg("b")
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("b={peer}")),
        &log,
    )
    .context("starting etcd (apt-get install etcd-server)")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if etcd_healthy(client_port).await {
            return Ok((proc, client));
        }
        if let Some(status) = proc.0.try_wait()? {
            bail!("etcd exited with {status}:\n{}", tail(&log));
        }
        if Instant::now() > deadline {
            bail!("etcd not healthy after 30 s:\n{}", tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /health` on etcd's client port answers `"health":"true"`.
async fn etcd_healthy(port: u16) -> bool {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let req = http::Request::get("/health")
            .header("host", "127.0.0.1")
            .body(Empty::<Bytes>::new())?;
        let body = sender
            .send_request(req)
            .await?
            .into_body()
            .collect()
            .await?;
        anyhow::Ok(String::from_utf8_lossy(&body.to_bytes()).contains(r#""health":"true""#))
    };
    attempt.await.unwrap_or(false)
}

/// `scripts/kube-reference.sh up DIR/reference --durable`: kube-apiserver on an etcd that
/// syncs its writes, as kgate's store does. Waits for the script's `ready` file.
async fn start_kube_apiserver(script: &Path, dir: tempfile::TempDir) -> Result<Backend> {
    let reference = dir.path().join("reference");
    let log = dir.path().join("kube-reference.log");
    let mut proc = spawn(
        Command::new(script)
            .arg("up")
            .arg(&reference)
            .arg("--durable"),
        &log,
    )
    .with_context(|| format!("starting {}", script.display()))?;
    // A first build of the Go binaries takes minutes; a built one starts in seconds.
    let deadline = Instant::now() + Duration::from_secs(900);
    while !reference.join("ready").is_file() {
        if let Some(status) = proc.0.try_wait()? {
            bail!("{} exited with {status}:\n{}", script.display(), tail(&log));
        }
        if Instant::now() > deadline {
            bail!("kube-apiserver not ready after 900 s:\n{}", tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let read_pid = |name: &str| -> Result<u32> {
        let path = reference.join("logs").join(format!("{name}.pid"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("{} holds no pid", path.display()))
    };
    let server = std::fs::read_to_string(reference.join("server")).context("reading server")?;
    let addr = server
        .trim()
        .trim_start_matches("https://")
        .parse()
        .with_context(|| format!("no address in {server:?}"))?;
    let api = Api::from_kubeconfig(addr, &reference.join("admin.kubeconfig"))?;
    Ok(Backend {
        api,
        server_pid: read_pid("kube-apiserver")?,
        etcd_pid: Some(read_pid("etcd")?),
        // SIGTERM to the script stops kube-apiserver, then etcd.
        _procs: vec![proc],
        _dir: dir,
    })
}
