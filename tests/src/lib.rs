//! End-to-end harness: runs the real `kgate` binary on loopback ports, in a temporary data
//! directory per test, and drives it with the real kubectl and curl installed on the machine.
//!
//! What it owns: finding (or building) the binary, starting `kgate up` or the split mode
//! (`kgate controlplane` + `kgate gateway`), waiting for the ready line and `/readyz`, killing
//! every process it started when the [`Kgate`] is dropped (also on a panic), and running clients
//! with isolated `HOME`/`KUBECACHEDIR` so no test shares kubectl's discovery cache.
//!
//! Every wait is a bounded poll that fails with what the processes printed. Nothing is mocked.

pub mod cluster_flows;
pub mod differential;
pub mod etcd;
pub mod flows;
pub mod oidc;
pub mod real_components;
pub mod reference;

use base64::Engine as _;
use std::fmt;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long a kgate process may take to print its ready line (debug build, busy machine).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one kubectl or curl run may take before it is killed and the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `kgate` binary: `$KGATE_BIN`, else `<target>/debug/kgate`, built once with
/// `cargo build -p kgate-cli --bin kgate` if it is missing.
pub fn kgate_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("KGATE_BIN") {
            let bin = PathBuf::from(bin);
            assert!(bin.is_file(), "KGATE_BIN={} is not a file", bin.display());
            return bin;
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let bin = target.join("debug").join("kgate");
        if !bin.is_file() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "kgate-cli", "--bin", "kgate"])
                .current_dir(workspace_root())
                .status()
                .expect("cannot run cargo to build the kgate binary");
            assert!(status.success(), "cargo build -p kgate-cli failed");
        }
        assert!(bin.is_file(), "no kgate binary at {}", bin.display());
        bin
    })
    .clone()
}

/// The default kubectl, or `$KUBECTL`.
pub fn default_kubectl() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// A specific kubectl minor version, e.g. `versioned_kubectl("1.27")`: `$KUBECTL_1_27`, else
/// `kubectl.1.27` on PATH, beside the real `kubectl` binary (e.g. the Google Cloud SDK's
/// folder), in /usr/bin or /usr/local/bin. Panics if none is installed (`scripts/test.sh`
/// installs them).
pub fn versioned_kubectl(minor: &str) -> PathBuf {
    let var = format!("KUBECTL_{}", minor.replace('.', "_"));
    if let Some(bin) = std::env::var_os(&var) {
        return PathBuf::from(bin);
    }
    let name = format!("kubectl.{minor}");
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let beside: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::canonicalize(d.join("kubectl")).ok())
        .filter_map(|k| k.parent().map(Path::to_path_buf))
        .collect();
    dirs.extend(beside);
    dirs.push("/usr/bin".into());
    dirs.push("/usr/local/bin".into());
    dirs.into_iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed (set {var}, or run scripts/test.sh, which installs it)")
        })
}

/// The result of one client run, printable in full for failure messages.
#[derive(Debug, Clone)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\n[{}]\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The stdout of a run that must have succeeded; panics with everything otherwise.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.success(), "command failed:\n{self}");
        &self.stdout
    }

    /// The stderr of a run that must have failed; panics with everything otherwise.
    #[track_caller]
    pub fn err(&self) -> &str {
        assert!(!self.success(), "command should have failed:\n{self}");
        &self.stderr
    }

    /// Asserts the run failed and its stderr contains `needle`.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) {
        assert!(
            !self.success() && self.stderr.contains(needle),
            "expected a failure mentioning {needle:?}:\n{self}"
        );
    }
}

/// Runs `cmd` with `stdin` to completion, killing it after `timeout`.
pub fn run_bounded(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Run {
    let command = describe(&cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = child.stdout.take().map(read_all);
    let err = child.stderr.take().map(read_all);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out.map(join_text).unwrap_or_default();
                let stderr = err.map(join_text).unwrap_or_default();
                panic!(
                    "{command} did not finish within {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
                );
            }
            Err(e) => panic!("cannot wait for {command}: {e}"),
        }
    };
    Run {
        command,
        status,
        stdout: out.map(join_text).unwrap_or_default(),
        stderr: err.map(join_text).unwrap_or_default(),
    }
}

fn read_all(mut pipe: impl std::io::Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join_text(handle: thread::JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        text.push(' ');
        if arg.len() > 200 {
            text.push_str(&format!("<{} bytes>", arg.len()));
        } else if arg.contains(' ') || arg.is_empty() {
            text.push_str(&format!("'{arg}'"));
        } else {
            text.push_str(&arg);
        }
    }
    text
}

/// Options for starting kgate.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--max-request-bytes`.
    pub max_request_bytes: Option<u64>,
    /// `--max-header-bytes`.
    pub max_header_bytes: Option<usize>,
    /// `--etcd-servers` (for `up`, or the split mode's control plane).
    pub etcd_servers: Option<String>,
    /// `--authorization-policy-file` (for `up`, or both processes of the split mode).
    pub authorization_policy_file: Option<PathBuf>,
    /// More gateway flags (for `up`, or the split mode's gateway), e.g. `--authentication-config`.
    pub gateway_args: Vec<String>,
    /// Start without waiting for readiness (`up` only): for a kgate that cannot be ready, such
    /// as one whose OIDC provider is down. The address comes from the admin kubeconfig.
    pub allow_unready: bool,
}

impl Options {
    fn gateway_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(n) = self.max_request_bytes {
            args.push("--max-request-bytes".to_owned());
            args.push(n.to_string());
        }
        if let Some(n) = self.max_header_bytes {
            args.push("--max-header-bytes".to_owned());
            args.push(n.to_string());
        }
        if let Some(path) = &self.authorization_policy_file {
            args.push("--authorization-policy-file".to_owned());
            args.push(path.display().to_string());
        }
        args.extend(self.gateway_args.iter().cloned());
        args
    }

    fn storage_args(&self) -> Vec<String> {
        match &self.etcd_servers {
            Some(servers) => vec!["--etcd-servers".to_owned(), servers.clone()],
            None => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    Split,
}

/// One kgate process, its output captured: stdout lines go to a channel (and a log), stderr to
/// a file in the test's temporary folder.
struct Proc {
    name: String,
    child: Child,
    /// In a mutex only so that a `Kgate` can be shared with a client thread.
    lines: Mutex<Receiver<String>>,
    stdout_log: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl Proc {
    fn spawn(name: &str, args: &[String], logs: &Path) -> Proc {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let stderr_path = logs.join(format!("{name}-{n}.stderr.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("cannot create a log file");
        let mut cmd = Command::new(kgate_bin());
        cmd.args(args)
            .env("KGATE_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let command = describe(&cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout_log = Arc::new(Mutex::new(vec![format!("$ {command}")]));
        if let Some(stdout) = child.stdout.take() {
            let log = stdout_log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut log) = log.lock() {
                        log.push(line.clone());
                    }
                    let _ = tx.send(line);
                }
            });
        }
        Proc {
            name: name.to_owned(),
            child,
            lines: Mutex::new(lines),
            stdout_log,
            stderr_path,
        }
    }

    /// What the process printed so far (stdout, then the end of stderr).
    fn output(&self) -> String {
        let stdout = self
            .stdout_log
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_default();
        let stderr = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = stderr.lines().collect();
        let shown = if lines.len() <= 80 {
            lines.join("\n")
        } else {
            format!(
                "{}\n[... {} lines ...]\n{}",
                lines[..40].join("\n"),
                lines.len() - 80,
                lines[lines.len() - 40..].join("\n")
            )
        };
        format!(
            "--- {} stdout ---\n{stdout}\n--- {} stderr ({}) ---\n{shown}",
            self.name,
            self.name,
            self.stderr_path.display(),
        )
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let lines = self
                .lines
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match lines.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "{} exited ({status}) before printing {prefix:?}\n{}",
                            self.name,
                            self.output()
                        );
                    }
                    if Instant::now() >= deadline {
                        panic!(
                            "{} did not print {prefix:?} within {timeout:?}\n{}",
                            self.name,
                            self.output()
                        );
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    thread::sleep(Duration::from_millis(100));
                    let status = self.child.try_wait().ok().flatten();
                    panic!(
                        "{} closed its stdout ({status:?}) before printing {prefix:?}\n{}",
                        self.name,
                        self.output()
                    );
                }
            }
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit.
    fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(sent, "cannot send SIGTERM to {} ({pid})", self.name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let output = self.output();
                    let _ = self.child.kill();
                    panic!(
                        "{} did not exit within 30 s of SIGTERM\n{output}",
                        self.name
                    );
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A running kgate (`up`, or the split mode) in its own temporary folder.
pub struct Kgate {
    // Field order matters: processes are killed before the folder is removed.
    procs: Vec<Proc>,
    mode: Mode,
    options: Options,
    addr: SocketAddr,
    controlplane_addr: Option<SocketAddr>,
    /// Removed on drop, unless the test failed (then kept for the logs) or
    /// `KGATE_E2E_KEEP` is set.
    root: Option<tempfile::TempDir>,
    seq: AtomicUsize,
}

impl Drop for Kgate {
    fn drop(&mut self) {
        // Kill the processes before their folder goes.
        self.procs.clear();
        if thread::panicking() || std::env::var_os("KGATE_E2E_KEEP").is_some() {
            if let Some(root) = self.root.take() {
                let path = root.keep();
                eprintln!("[e2e] kept {} (logs in logs/)", path.display());
            }
        }
    }
}

impl fmt::Debug for Kgate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kgate")
            .field("mode", &self.mode)
            .field("addr", &self.addr)
            .field("root", &self.root())
            .finish_non_exhaustive()
    }
}

impl Kgate {
    /// `kgate up` on a free loopback port, with default options.
    pub fn up() -> Kgate {
        Kgate::up_with(Options::default())
    }

    /// `kgate up` on a free loopback port.
    pub fn up_with(options: Options) -> Kgate {
        Kgate::start(Mode::Up, options)
    }

    /// `kgate controlplane` then `kgate gateway --upstream` in front of it, on free ports.
    pub fn split() -> Kgate {
        Kgate::split_with(Options::default())
    }

    /// The split mode with options (storage options go to `kgate controlplane`).
    pub fn split_with(options: Options) -> Kgate {
        Kgate::start(Mode::Split, options)
    }

    fn start(mode: Mode, options: Options) -> Kgate {
        let root = tempfile::Builder::new()
            .prefix("kgate-e2e-")
            .tempdir()
            .expect("cannot create a temporary folder");
        for dir in ["home", "kubecache", "logs", "files"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("cannot create a folder");
        }
        let placeholder: SocketAddr = ([127, 0, 0, 1], 0).into();
        let mut kgate = Kgate {
            procs: Vec::new(),
            mode,
            options,
            addr: placeholder,
            controlplane_addr: None,
            root: Some(root),
            seq: AtomicUsize::new(0),
        };
        kgate.launch();
        kgate
    }

    fn launch(&mut self) {
        let data_dir = self.data_dir().display().to_string();
        let logs = self.root().join("logs");
        let mut gateway_args = vec![
            "--data-dir".to_owned(),
            data_dir.clone(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        gateway_args.extend(self.options.gateway_args());
        match self.mode {
            Mode::Up => {
                let mut args = vec!["up".to_owned()];
                args.extend(gateway_args);
                args.extend(self.options.storage_args());
                let mut proc = Proc::spawn("kgate-up", &args, &logs);
                let url = if self.options.allow_unready {
                    let kubeconfig = proc.wait_line("kubeconfig: ", START_TIMEOUT);
                    server_of_kubeconfig(Path::new(&kubeconfig))
                } else {
                    proc.wait_line("kgate is ready on ", START_TIMEOUT)
                };
                self.addr = parse_url_addr(&url, &proc);
                self.procs.push(proc);
            }
            Mode::Split => {
                let mut args = vec![
                    "controlplane".to_owned(),
                    "--data-dir".to_owned(),
                    data_dir,
                    "--listen".to_owned(),
                    "127.0.0.1:0".to_owned(),
                ];
                args.extend(self.options.storage_args());
                // The control plane's escalation and bind checks ask the same policy.
                if let Some(path) = &self.options.authorization_policy_file {
                    args.push("--authorization-policy-file".to_owned());
                    args.push(path.display().to_string());
                }
                let mut cp = Proc::spawn("kgate-controlplane", &args, &logs);
                let url = cp.wait_line("kgate control plane is ready on ", START_TIMEOUT);
                let cp_addr = parse_url_addr(&url, &cp);
                self.controlplane_addr = Some(cp_addr);
                self.procs.push(cp);
                let mut args = vec!["gateway".to_owned()];
                args.extend(gateway_args);
                args.push("--upstream".to_owned());
                args.push(format!("https://{cp_addr}"));
                let mut gw = Proc::spawn("kgate-gateway", &args, &logs);
                let url = gw.wait_line("kgate is ready on ", START_TIMEOUT);
                self.addr = parse_url_addr(&url, &gw);
                self.procs.push(gw);
            }
        }
        assert!(
            self.admin_kubeconfig().is_file(),
            "kgate is ready but wrote no {}\n{}",
            self.admin_kubeconfig().display(),
            self.output()
        );
        if self.options.allow_unready {
            return;
        }
        // /readyz answers 200 without credentials once ready.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = self
                .request("GET", "/readyz")
                .identity(Identity::None)
                .send();
            if resp.status == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz is not 200 within 10 s of the ready line: {resp}\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops every process with SIGTERM (each must exit cleanly), then starts again on the same
    /// data directory (on a new free port; the admin kubeconfig is rewritten).
    pub fn restart(&mut self) {
        let procs = std::mem::take(&mut self.procs);
        // Gateway first, then the control plane it talks to.
        for proc in procs.into_iter().rev() {
            let name = proc.name.clone();
            let output = proc.output();
            let status = proc.terminate();
            assert!(
                status.success(),
                "{name} did not shut down cleanly on SIGTERM: {status}\n{output}"
            );
        }
        self.launch();
    }

    /// Kills every process with SIGKILL: no shutdown at all, as a crash would leave it. Needs
    /// only `&self`, so a test can crash kgate while another thread is sending requests.
    pub fn kill_hard(&self) {
        for pid in self.pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    /// After [`Kgate::kill_hard`]: reaps the dead processes and starts again on the same data
    /// directory.
    pub fn start_after_crash(&mut self) {
        for mut proc in std::mem::take(&mut self.procs).into_iter().rev() {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
        self.launch();
    }

    /// The test's temporary folder.
    pub fn root(&self) -> &Path {
        match &self.root {
            Some(root) => root.path(),
            None => Path::new("/nonexistent"),
        }
    }

    /// The gateway's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The separate control plane's address (split mode only).
    pub fn controlplane_addr(&self) -> Option<SocketAddr> {
        self.controlplane_addr
    }

    /// `https://ADDR` of the gateway.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.data_dir().join("admin.kubeconfig")
    }

    /// A folder for the test's own files (manifests, scripts, kubeconfigs).
    pub fn files(&self) -> PathBuf {
        self.root().join("files")
    }

    /// Writes `text` to a file in [`Kgate::files`] and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.files().join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        path
    }

    /// Everything the kgate processes printed, for failure messages.
    pub fn output(&self) -> String {
        self.procs
            .iter()
            .map(Proc::output)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything the kgate processes wrote to stderr (their logs) so far, in full.
    pub fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| std::fs::read_to_string(&p.stderr_path).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The pids of the running kgate processes.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Panics if a kgate process has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        for proc in &mut self.procs {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("{} exited: {status}\n{}", proc.name, proc.output());
            }
        }
    }

    /// `kgate kubeconfig` for a user from this data directory's CA, written to a file.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str], expiration: &str) -> PathBuf {
        let mut cmd = Command::new(kgate_bin());
        cmd.arg("kubeconfig")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--user", user]);
        for group in groups {
            cmd.args(["--group", group]);
        }
        cmd.args(["--server", &self.url(), "--expiration", expiration]);
        let run = run_bounded(cmd, None, CLIENT_TIMEOUT);
        let text = run.ok();
        assert!(
            text.contains("client-certificate-data"),
            "kgate kubeconfig printed no client certificate:\n{run}"
        );
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        self.write_file(&format!("{user}-{n}.kubeconfig"), text)
    }

    /// A kubectl command (`bin`, e.g. `kubectl` or `/usr/bin/kubectl.1.27`) for `kubeconfig`,
    /// with an isolated HOME and discovery cache.
    pub fn kubectl_command(&self, bin: &Path, kubeconfig: &Path) -> Command {
        ApiServer::kubectl_command(self, bin, kubeconfig)
    }

    /// kubectl (the default one) as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_as(&self.admin_kubeconfig(), args)
    }

    /// kubectl as the admin; panics with everything unless it succeeded. Returns stdout.
    #[track_caller]
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        assert!(run.success(), "kubectl failed:\n{run}\n{}", self.output());
        run.stdout
    }

    /// Retries kubectl with `kubeconfig` until it succeeds, within `flows::RBAC_PROPAGATION_BOUND`
    /// (an RBAC change reaches every decision within a watch event); its stdout.
    pub fn kubectl_as_eventually(&self, kubeconfig: &Path, args: &[&str]) -> String {
        poll(
            &format!("kubectl {} succeeds", args.join(" ")),
            flows::RBAC_PROPAGATION_BOUND,
            || {
                let run = self.kubectl_as(kubeconfig, args);
                if run.success() {
                    Ok(run.stdout.clone())
                } else {
                    Err(run.to_string())
                }
            },
        )
    }

    /// kubectl (the default one) with `kubeconfig`.
    pub fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        self.kubectl_bin(&default_kubectl(), kubeconfig, args)
    }

    /// A given kubectl binary with `kubeconfig`.
    pub fn kubectl_bin(&self, bin: &Path, kubeconfig: &Path, args: &[&str]) -> Run {
        let mut cmd = self.kubectl_command(bin, kubeconfig);
        cmd.args(args);
        run_bounded(cmd, None, CLIENT_TIMEOUT)
    }

    /// Starts building a raw HTTPS request to the gateway (as the admin by default).
    pub fn request(&self, method: &str, path: &str) -> Request<'_> {
        request(self, method, path)
    }

    /// The `.metadata.resourceVersion` of an object, as the admin.
    pub fn resource_version(&self, args: &[&str]) -> String {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "jsonpath={.metadata.resourceVersion}"]);
        self.kubectl_ok(&all).trim().to_owned()
    }
}

fn parse_url_addr(url: &str, proc: &Proc) -> SocketAddr {
    url.trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| {
            panic!(
                "cannot read an address from {url:?}: {e}\n{}",
                proc.output()
            )
        })
}

/// An API server the end-to-end tests drive: kgate, or the real kube-apiserver of
/// [`reference::Reference`]. The differential suites send the same requests to both.
pub trait ApiServer: Sync {
    /// Which server this is, for failure messages ("kgate", "kube-apiserver").
    fn name(&self) -> &'static str;
    /// `https://ADDR`.
    fn url(&self) -> String;
    /// A kubeconfig of a `system:masters` user.
    fn admin_kubeconfig(&self) -> PathBuf;
    /// A folder for the test's own files.
    fn files(&self) -> PathBuf;
    /// The test's temporary folder (kubectl's HOME and cache live under it).
    fn root(&self) -> &Path;
    /// A number unique within this server's test, for file names.
    fn next_seq(&self) -> usize;
    /// A kubeconfig with a client certificate for `user` in `groups`, trusted by this server.
    fn kubeconfig_for(&self, user: &str, groups: &[&str], expiration: &str) -> PathBuf;
    /// What the server's processes printed, for failure messages.
    fn output(&self) -> String;

    /// Starts building a raw HTTPS request (as the admin by default).
    fn request(&self, method: &str, path: &str) -> Request<'_>
    where
        Self: Sized,
    {
        request(self, method, path)
    }

    /// A kubectl command (`bin`) for `kubeconfig`, with an isolated HOME and discovery cache.
    fn kubectl_command(&self, bin: &Path, kubeconfig: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .env("HOME", self.root().join("home"))
            .env("KUBECACHEDIR", self.root().join("kubecache"))
            .env_remove("KUBECONFIG")
            .env_remove("KUBE_EDITOR")
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    /// The default kubectl with `kubeconfig`.
    fn kubectl_as(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        let mut cmd = self.kubectl_command(&default_kubectl(), kubeconfig);
        cmd.args(args);
        run_bounded(cmd, None, CLIENT_TIMEOUT)
    }

    /// kubectl as the admin; panics with everything unless it succeeded. Returns stdout.
    #[track_caller]
    fn kubectl_ok(&self, args: &[&str]) -> String {
        let run = self.kubectl_as(&self.admin_kubeconfig(), args);
        assert!(
            run.success(),
            "kubectl on {} failed:\n{run}\n{}",
            self.name(),
            self.output()
        );
        run.stdout
    }
}

/// A request builder for any server (the trait's `request` needs a sized receiver).
pub fn request<'a>(server: &'a dyn ApiServer, method: &str, path: &str) -> Request<'a> {
    Request {
        server,
        method: method.to_owned(),
        path: path.to_owned(),
        identity: Identity::Kubeconfig(server.admin_kubeconfig()),
        headers: Vec::new(),
        body: None,
        http1: false,
        chunked: false,
    }
}

impl ApiServer for Kgate {
    fn name(&self) -> &'static str {
        "kgate"
    }
    fn url(&self) -> String {
        Kgate::url(self)
    }
    fn admin_kubeconfig(&self) -> PathBuf {
        Kgate::admin_kubeconfig(self)
    }
    fn files(&self) -> PathBuf {
        Kgate::files(self)
    }
    fn root(&self) -> &Path {
        Kgate::root(self)
    }
    fn next_seq(&self) -> usize {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }
    fn kubeconfig_for(&self, user: &str, groups: &[&str], expiration: &str) -> PathBuf {
        Kgate::kubeconfig_for(self, user, groups, expiration)
    }
    fn output(&self) -> String {
        Kgate::output(self)
    }
}

/// Who a raw request claims to be.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No client certificate, no token.
    None,
    /// The client certificate and key of a kubeconfig file.
    Kubeconfig(PathBuf),
    /// `Authorization: Bearer <token>` and no client certificate.
    Bearer(String),
}

/// A raw HTTPS request made with curl (`--path-as-is`, so paths reach the server unchanged).
pub struct Request<'a> {
    server: &'a dyn ApiServer,
    method: String,
    path: String,
    identity: Identity,
    headers: Vec<String>,
    body: Option<Vec<u8>>,
    http1: bool,
    chunked: bool,
}

impl Request<'_> {
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    pub fn header(mut self, header: &str) -> Self {
        self.headers.push(header.to_owned());
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.body("application/json", body)
    }

    /// A body of `content_type` (a patch: `application/merge-patch+json`, ...).
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.headers.push(format!("Content-Type: {content_type}"));
        self.body = Some(body.into());
        self
    }

    /// HTTP/1.1 instead of the HTTP/2 curl negotiates by default.
    pub fn http1(mut self) -> Self {
        self.http1 = true;
        self
    }

    /// Sends the body with `Transfer-Encoding: chunked` (no Content-Length; HTTP/1.1).
    pub fn chunked(mut self) -> Self {
        self.http1 = true;
        self.chunked = true;
        self
    }

    pub fn send(self) -> Response {
        let files = self.server.files();
        let n = self.server.next_seq();
        let ca = files.join("server-ca.crt");
        if !ca.exists() {
            let pem = kubeconfig_pem(
                &self.server.admin_kubeconfig(),
                "certificate-authority-data",
            );
            std::fs::write(&ca, pem).expect("cannot write the CA file");
        }
        let out = files.join(format!("response-{n}.body"));
        let head = files.join(format!("response-{n}.headers"));
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--path-as-is", "--globoff", "--max-time", "30"])
            .arg("--cacert")
            .arg(&ca)
            .arg("-X")
            .arg(&self.method)
            .arg("-o")
            .arg(&out)
            .arg("-D")
            .arg(&head)
            .args(["-w", "%{http_code}"]);
        if self.http1 {
            cmd.arg("--http1.1");
        }
        match &self.identity {
            Identity::None => {}
            Identity::Kubeconfig(path) => {
                let cert = files.join(format!("client-{n}.crt"));
                let key = files.join(format!("client-{n}.key"));
                std::fs::write(&cert, kubeconfig_pem(path, "client-certificate-data"))
                    .expect("cannot write a client certificate");
                std::fs::write(&key, kubeconfig_pem(path, "client-key-data"))
                    .expect("cannot write a client key");
                cmd.arg("--cert").arg(cert).arg("--key").arg(key);
            }
            Identity::Bearer(token) => {
                cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
            }
        }
        for header in &self.headers {
            cmd.arg("-H").arg(header);
        }
        if self.chunked {
            cmd.arg("-H").arg("Transfer-Encoding: chunked");
        }
        if let Some(body) = &self.body {
            let path = files.join(format!("request-{n}.body"));
            std::fs::write(&path, body).expect("cannot write a request body");
            cmd.arg("--data-binary").arg(format!("@{}", path.display()));
        }
        cmd.arg(format!("{}{}", self.server.url(), self.path));
        let run = run_bounded(cmd, None, CLIENT_TIMEOUT);
        let body = std::fs::read(&out).unwrap_or_default();
        let status = run.stdout.trim().parse().unwrap_or(0);
        Response {
            request: format!("{} {} ({:?})", self.method, self.path, self.identity),
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            headers: parse_headers(&read_text(&head)),
            bytes: body,
            curl: run,
        }
    }
}

/// A raw response: status and body.
#[derive(Debug)]
pub struct Response {
    pub request: String,
    /// The HTTP status, 0 if curl got none.
    pub status: u16,
    pub body: String,
    /// The final response's headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body as sent (`body` is its lossy UTF-8 text).
    pub bytes: Vec<u8>,
    pub curl: Run,
}

/// The header lines of the last response in curl's `-D` dump (an interim `100 Continue` comes
/// first), names in lower case.
fn parse_headers(dump: &str) -> Vec<(String, String)> {
    let last = dump
        .split("\r\n\r\n")
        .filter(|block| block.starts_with("HTTP/"))
        .last()
        .unwrap_or_default();
    last.lines()
        .skip(1)
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}\n--- body ---\n{}\n--- curl ---\n{}",
            self.request, self.status, self.body, self.curl
        )
    }
}

impl Response {
    /// The values of header `name` (lower case), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Asserts this is `code` with a `metav1.Status` body whose `code` is also `code`, and
    /// returns the Status.
    #[track_caller]
    pub fn assert_status(&self, code: u16) -> serde_json::Value {
        assert_eq!(self.status, code, "wrong HTTP status:\n{self}");
        let status: serde_json::Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}):\n{self}"));
        assert_eq!(
            status["kind"], "Status",
            "the body is not a Status:\n{self}"
        );
        assert_eq!(
            status["apiVersion"], "v1",
            "the Status has no apiVersion v1:\n{self}"
        );
        assert_eq!(
            status["status"], "Failure",
            "the Status is not a Failure:\n{self}"
        );
        assert_eq!(status["code"], code, "the Status code differs:\n{self}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "the Status has no message:\n{self}"
        );
        status
    }
}

/// One `*-data` field of a kubeconfig (the first cluster/user), base64-decoded.
pub fn kubeconfig_pem(path: &Path, field: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    let section = if field.starts_with("certificate-authority") {
        ("clusters", "cluster")
    } else {
        ("users", "user")
    };
    let data = doc[section.0][0][section.1][field]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no {field}", path.display()));
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .unwrap_or_else(|e| panic!("{field} in {} is not base64: {e}", path.display()))
}

/// Writes a copy of `base` whose user credentials come from `creds` (e.g. a certificate
/// from another CA), to `out`.
pub fn kubeconfig_with_user_from(base: &Path, creds: &Path, out: &Path) {
    let read = |p: &Path| -> serde_yaml::Value {
        let text =
            std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", p.display()))
    };
    let mut doc = read(base);
    let other = read(creds);
    doc["users"][0]["user"] = other["users"][0]["user"].clone();
    let text = serde_yaml::to_string(&doc).expect("cannot write YAML");
    std::fs::write(out, text).expect("cannot write a kubeconfig");
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `timeout`; panics with
/// `what` and the last observation otherwise.
#[track_caller]
pub fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!("{what}: not within {timeout:?}; last:\n{last}");
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// A long-running client (e.g. `kubectl get -w`) whose stdout lines arrive on a channel; it is
/// killed on drop.
pub struct Streaming {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Streaming {
    pub fn spawn(mut cmd: Command) -> Streaming {
        let command = describe(&cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = child.stderr.take().map(read_all);
        Streaming {
            child,
            lines,
            seen: vec![format!("$ {command}")],
            stderr,
        }
    }

    /// Reads lines until one satisfies `matches` (bounded); returns it.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let stderr = self.stderr.take().map(join_text).unwrap_or_default();
                    panic!(
                        "{what}: no such line within {timeout:?} ({e:?}); lines so far:\n{}\n--- stderr ---\n{stderr}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the `KIND:` line of `kubectl explain` output, if any.
pub fn explain_kind(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("KIND:"))
        .map(str::trim)
}

/// Waits `duration` (used only where the clock itself is the subject, e.g. a certificate
/// expiring).
pub fn sleep(duration: Duration) {
    thread::sleep(duration);
}

/// Flushes stderr so progress notes interleave sensibly with test output.
pub fn note(text: &str) {
    eprintln!("[e2e] {text}");
    let _ = std::io::stderr().flush();
}

/// Reads a whole file to a string (for test assertions about files).
pub fn read_text(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// The `server:` of a kubeconfig's first cluster.
pub fn server_of_kubeconfig(path: &Path) -> String {
    let text = read_text(path);
    let config: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()));
    config["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap_or_else(|| panic!("{} names no server", path.display()))
        .to_owned()
}
