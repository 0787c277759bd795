//! Shared pieces of the load harnesses (`kgate-load`, `kgate-storebench` and
//! `kgate-clusterbench`): starting and stopping the processes under test (`kgate up` among
//! them), free ports, the TLS client configuration, the admin API client ([`api`]), per-process
//! CPU and memory from /proc, and percentiles.
//!
//! Nothing here asserts a timing: the harnesses are commands that print figures.

pub mod api;
pub mod load;

use anyhow::{bail, Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One process we started; killed (and reaped) on drop.
pub struct Proc(pub Child);

impl Proc {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    /// SIGTERM first, so a server with workers (nginx) stops them; SIGKILL after 5 s.
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.0.id().try_into().unwrap_or(0));
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            for _ in 0..100 {
                if matches!(self.0.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("binding 127.0.0.1:0 to find a free port")?
        .local_addr()?
        .port())
}

/// Starts `cmd` with stdout and stderr both written to `log`.
pub fn spawn(cmd: &mut Command, log: &Path) -> Result<Proc> {
    let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let err = out.try_clone()?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    Ok(Proc(child))
}

/// Waits (10 s at most) until something accepts TCP connections on 127.0.0.1:`port`.
pub async fn wait_for_port(port: u16) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("nothing listens on port {port} after 10 s")
}

/// A `kgate up` this harness started, ready to serve.
pub struct KgateUp {
    pub proc: Proc,
    /// The admin client of its admin kubeconfig.
    pub api: api::Api,
    /// Its `--data-dir`.
    pub data_dir: PathBuf,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

/// Starts `kgate up --data-dir DIR/kgate --listen 127.0.0.1:0 EXTRA...` with its log in
/// `DIR/kgate.log`, and waits (`ready_within` at most) for its ready line.
pub async fn start_kgate_up(
    kgate: &Path,
    dir: &Path,
    extra: &[OsString],
    ready_within: Duration,
) -> Result<KgateUp> {
    let data_dir = dir.join("kgate");
    let mut cmd = Command::new(kgate);
    cmd.arg("up")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .args(extra);
    let log = dir.join("kgate.log");
    let mut proc = spawn(&mut cmd, &log)?;
    let addr = wait_kgate_ready(&mut proc, &log, ready_within).await?;
    let api = api::Api::from_kubeconfig(addr, &data_dir.join("admin.kubeconfig"))?;
    Ok(KgateUp {
        proc,
        api,
        data_dir,
        log,
    })
}

/// Waits (`within` at most) for the `kgate is ready on https://ADDR` line of `kgate up` in its
/// log; fails with the log's tail if it exits first.
pub async fn wait_kgate_ready(proc: &mut Proc, log: &Path, within: Duration) -> Result<SocketAddr> {
    const READY: &str = "kgate is ready on https://";
    let deadline = Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix(READY)) {
            return line
                .trim()
                .parse()
                .with_context(|| format!("parsing the address in {READY}{line}"));
        }
        if let Some(status) = proc.0.try_wait()? {
            bail!(
                "kgate up exited with {status} before it was ready:\n{}",
                tail(log)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "kgate up not ready after {} s:\n{}",
                within.as_secs(),
                tail(log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a log, for error messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A TLS client configuration trusting `roots`, presenting `client` if given, and offering only
/// HTTP/1.1, so every front door and backend is compared on one protocol.
pub fn client_tls(
    roots: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store.add(cert).context("adding a CA certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store);
    let mut config = match client {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .context("the client certificate and key do not fit")?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// utime + stime of a process in seconds, from /proc/PID/stat (0 if it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    // Linux reports in USER_HZ, which is 100 on every architecture it runs on.
    ticks / 100.0
}

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, ...), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| {
            let value = line.strip_prefix(field)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// The pids of the children of `parent` (nginx workers).
pub fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// The `p` quantile (0.0..=1.0) of sorted samples, nearest rank; 0 (the default) when there are
/// none.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 0.5), 51);
        assert_eq!(percentile(&samples, 0.99), 99);
        assert_eq!(percentile(&samples, 1.0), 100);
        assert_eq!(percentile::<u64>(&[], 0.5), 0);
        assert_eq!(percentile(&[-3i64, -1, 2], 0.5), -1);
    }

    #[test]
    fn status_of_this_process_has_a_resident_size() -> Result<()> {
        assert!(status_kib(std::process::id(), "VmRSS")? > 0);
        assert!(status_kib(std::process::id(), "NoSuchField").is_err());
        Ok(())
    }
}
