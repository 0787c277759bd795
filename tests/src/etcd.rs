//! A real etcd (Debian's `etcd-server`) for the end-to-end tests: one member on free loopback
//! ports with its data in the test's folder, stopped on drop. It can be killed and started
//! again on the same ports and data, as an outage would.

use crate::{run_bounded, CLIENT_TIMEOUT};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long etcd may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The etcd binary: `$ETCD_BIN`, else Debian's.
pub fn etcd_bin() -> PathBuf {
    let bin = std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
    assert!(
        bin.is_file(),
        "etcd is not installed at {} (run scripts/test.sh, which installs Debian's etcd-server, or set ETCD_BIN)",
        bin.display()
    );
    bin
}

/// One etcd member.
pub struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
}

impl Etcd {
    /// Starts etcd with its data under `dir` and waits until it answers.
    pub fn start(dir: &Path) -> Etcd {
        let mut etcd = Etcd {
            child: None,
            client_port: free_port(),
            peer_port: free_port(),
            data_dir: dir.join("etcd-data"),
            log: dir.join("etcd.log"),
        };
        etcd.resume();
        etcd
    }

    /// `http://127.0.0.1:PORT`, for `--etcd-servers`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Kills etcd with SIGKILL (acknowledged writes are on disk: etcd fsyncs before it answers).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data, and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("cannot open the etcd log");
        let child = Command::new(etcd_bin())
            .arg("--name")
            .arg("kgate-e2e")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(self.endpoint())
            .arg("--advertise-client-urls")
            .arg(self.endpoint())
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("kgate-e2e={peer}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.healthy() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("etcd exited: {status}\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not answer within {START_TIMEOUT:?}\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn healthy(&self) -> bool {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "2"])
            .arg(format!("{}/health", self.endpoint()));
        let run = run_bounded(cmd, None, CLIENT_TIMEOUT);
        run.success() && run.stdout.contains("\"health\":\"true\"")
    }

    /// etcd's log, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("cannot find a free port")
}
