//! The referee: the real kube-apiserver (built from Kubernetes' Go modules by
//! `scripts/kube-reference.sh`) beside etcd, in a temporary folder per test, driven by the same
//! clients as kgate through [`ApiServer`].
//!
//! What it owns: starting `scripts/kube-reference.sh up` in its own process group, waiting for
//! its `ready` file, client certificates for any user from the reference's client CA (openssl,
//! as the script makes its own), and stopping the whole group on drop (also on a panic).

use crate::{run_bounded, ApiServer, Run, CLIENT_TIMEOUT};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// kube-apiserver creates its bootstrap policy before `/readyz` answers; a cold Go build may
/// come first (the build is cached after the suite's first use).
const REFERENCE_START_TIMEOUT: Duration = Duration::from_secs(600);

/// How a reference is started.
#[derive(Debug, Clone, Default)]
pub struct ReferenceOptions {
    /// Also run the real kube-controller-manager and kube-scheduler.
    pub controllers: bool,
    /// Extra kube-apiserver flags (they replace the script's defaults of the same name).
    pub apiserver_args: Vec<String>,
}

/// A running kube-apiserver + etcd (and, with options, the real controllers).
pub struct Reference {
    // Field order: the processes stop before the folder goes.
    child: Option<Child>,
    root: Option<tempfile::TempDir>,
    dir: PathBuf,
    url: String,
    seq: AtomicUsize,
}

impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reference")
            .field("url", &self.url)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// `scripts/kube-reference.sh`.
pub fn script() -> PathBuf {
    crate::workspace_root()
        .join("scripts")
        .join("kube-reference.sh")
}

impl Reference {
    /// kube-apiserver and etcd with the script's defaults.
    pub fn up() -> Reference {
        Reference::up_with(ReferenceOptions::default())
    }

    pub fn up_with(options: ReferenceOptions) -> Reference {
        let root = tempfile::Builder::new()
            .prefix("kube-reference-e2e-")
            .tempdir()
            .expect("cannot create a temporary folder");
        for dir in ["home", "kubecache", "files"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("cannot create a folder");
        }
        let dir = root.path().join("reference");
        let mut cmd = Command::new(script());
        cmd.arg("up").arg(&dir);
        if options.controllers {
            cmd.arg("--controllers");
        }
        if !options.apiserver_args.is_empty() {
            cmd.arg("--").args(&options.apiserver_args);
        }
        let log = std::fs::File::create(root.path().join("kube-reference.log"))
            .expect("cannot create the script's log");
        let err = log.try_clone().expect("cannot share the log file");
        // A process group of its own, so that drop stops etcd and kube-apiserver with it.
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script().display()));
        let mut reference = Reference {
            child: Some(child),
            root: Some(root),
            dir,
            url: String::new(),
            seq: AtomicUsize::new(0),
        };
        reference.wait_ready();
        reference
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + REFERENCE_START_TIMEOUT;
        while !self.dir.join("ready").is_file() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "kube-reference.sh exited ({status}) before ready\n{}",
                        self.output()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready within {REFERENCE_START_TIMEOUT:?}\n{}",
                self.output()
            );
            thread::sleep(Duration::from_millis(100));
        }
        self.url = crate::read_text(&self.dir.join("server")).trim().to_owned();
        assert!(
            self.url.starts_with("https://"),
            "no server URL in {}",
            self.dir.display()
        );
    }

    /// The reference's own folder (certificates, keys, kubeconfigs, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA kube-apiserver trusts for kubelet client certificates' issuer.
    pub fn kubelet_client_ca(&self) -> PathBuf {
        self.dir.join("kubelet-client-ca.crt")
    }

    /// kubectl (the default one) as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_as(&self.admin_kubeconfig(), args)
    }

    /// A raw request (see [`ApiServer::request`]).
    pub fn request(&self, method: &str, path: &str) -> crate::Request<'_> {
        crate::request(self, method, path)
    }

    fn issue_client_certificate(&self, user: &str, groups: &[&str], prefix: &Path) {
        let mut subject = String::new();
        for group in groups {
            subject.push_str(&format!("/O={}", escape_subject(group)));
        }
        subject.push_str(&format!("/CN={}", escape_subject(user)));
        let key = prefix.with_extension("key");
        let csr = prefix.with_extension("csr");
        let crt = prefix.with_extension("crt");
        let ext = prefix.with_extension("ext");
        std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").expect("cannot write an ext file");
        let mut req = Command::new("openssl");
        req.args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", &subject]);
        let run = run_bounded(req, None, CLIENT_TIMEOUT);
        assert!(run.success(), "openssl req failed:\n{run}");
        let mut sign = Command::new("openssl");
        sign.args(["x509", "-req", "-days", "2", "-in"])
            .arg(&csr)
            .arg("-CA")
            .arg(self.dir.join("client-ca.crt"))
            .arg("-CAkey")
            .arg(self.dir.join("client-ca.key"))
            .arg("-CAcreateserial")
            .arg("-out")
            .arg(&crt)
            .arg("-extfile")
            .arg(&ext);
        let run = run_bounded(sign, None, CLIENT_TIMEOUT);
        assert!(run.success(), "openssl x509 failed:\n{run}");
    }
}

/// An X.509 subject attribute value for openssl's `-subj` (`/` and `,` escaped).
fn escape_subject(value: &str) -> String {
    value.replace('\\', "\\\\").replace('/', "\\/")
}

impl ApiServer for Reference {
    fn name(&self) -> &'static str {
        "kube-apiserver"
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    fn files(&self) -> PathBuf {
        self.root().join("files")
    }

    fn root(&self) -> &Path {
        match &self.root {
            Some(root) => root.path(),
            None => Path::new("/nonexistent"),
        }
    }

    fn next_seq(&self) -> usize {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    /// `expiration` is not honoured (the certificates live two days).
    fn kubeconfig_for(&self, user: &str, groups: &[&str], _expiration: &str) -> PathBuf {
        use base64::Engine as _;
        let n = self.next_seq();
        let prefix = self.files().join(format!("client-{n}"));
        self.issue_client_certificate(user, groups, &prefix);
        let b64 = |path: PathBuf| {
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-reference\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: kube-reference\n  context:\n    cluster: kube-reference\n    user: {user}\ncurrent-context: kube-reference\n",
            self.url,
            b64(self.dir.join("ca.crt")),
            b64(prefix.with_extension("crt")),
            b64(prefix.with_extension("key")),
        );
        let path = self.files().join(format!("{user}-{n}.kubeconfig"));
        std::fs::write(&path, text).expect("cannot write a kubeconfig");
        path
    }

    fn output(&self) -> String {
        let mut out = format!(
            "--- kube-reference.sh ---\n{}",
            crate::read_text(&self.root().join("kube-reference.log"))
        );
        for name in [
            "kube-apiserver",
            "etcd",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            let text = crate::read_text(&self.dir.join("logs").join(format!("{name}.log")));
            if text.is_empty() {
                continue;
            }
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            out.push_str(&format!(
                "\n--- {name} (last {} lines) ---\n{}",
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: the script, etcd, kube-apiserver and the controllers.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-TERM", "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            // Usually gone by now ("no such process" is the expected answer).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
        if thread::panicking() || std::env::var_os("KGATE_E2E_KEEP").is_some() {
            if let Some(root) = self.root.take() {
                let path = root.keep();
                eprintln!("[e2e] kept {} (logs in reference/logs/)", path.display());
            }
        }
    }
}

/// One request or case on which kgate and kube-apiserver were compared.
#[derive(Debug, Default)]
pub struct Differences {
    suite: String,
    total: usize,
    /// Case id → what differed.
    found: std::collections::BTreeMap<String, String>,
}

impl Differences {
    /// A tally for one suite; its ids are `SUITE:CASE` in `known-differences.md`.
    pub fn new(suite: &str) -> Differences {
        Differences {
            suite: suite.to_owned(),
            ..Differences::default()
        }
    }

    /// Records one compared case: `None` when both agreed, else what differed.
    pub fn case(&mut self, id: &str, difference: Option<String>) {
        self.total += 1;
        if let Some(what) = difference {
            let previous = self.found.insert(id.to_owned(), what);
            assert!(previous.is_none(), "case id {id} is used twice");
        }
    }

    pub fn total(&self) -> usize {
        self.total
    }

    /// Prints `agreed / total` and fails unless the cases that differed are exactly those
    /// `known-differences.md` lists for this suite: a new difference fails, and so does a listed
    /// one that no longer differs (the list must say what is true).
    #[track_caller]
    pub fn assert_only_known(&self) {
        let known = known_differences(&self.suite);
        let agreed = self.total - self.found.len();
        let line = format!(
            "differential {}: {agreed} / {} agreed ({} listed in known-differences.md)",
            self.suite,
            self.total,
            known.len()
        );
        // Straight to the process's stderr, past the test harness's capture, so that the test
        // command shows the counts of passing suites too; and into the summary file that
        // scripts/test.sh prints at the end.
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "[e2e] {line}");
        }
        if let Some(path) = std::env::var_os("KGATE_DIFFERENTIAL_SUMMARY") {
            use std::io::Write as _;
            if let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                let _ = writeln!(file, "{line}");
            }
        }
        let new: Vec<String> = self
            .found
            .iter()
            .filter(|(id, _)| !known.contains_key(*id))
            .map(|(id, what)| format!("  {}:{id}: {what}", self.suite))
            .collect();
        let gone: Vec<String> = known
            .keys()
            .filter(|id| !self.found.contains_key(*id))
            .map(|id| format!("  {}:{id}", self.suite))
            .collect();
        assert!(
            new.is_empty() && gone.is_empty(),
            "kgate and kube-apiserver disagree beyond tests/kube-reference/known-differences.md\n\
             differences not listed ({}):\n{}\nlisted but no longer different ({}):\n{}",
            new.len(),
            new.join("\n"),
            gone.len(),
            gone.join("\n")
        );
    }
}

/// The listed differences of one suite: from `tests/kube-reference/known-differences.md`, each
/// table row whose first cell is `` `SUITE:CASE` `` (the reason is the row's last cell).
pub fn known_differences(suite: &str) -> std::collections::BTreeMap<String, String> {
    let path = crate::workspace_root()
        .join("tests")
        .join("kube-reference")
        .join("known-differences.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    // A merge left half done would otherwise list both sides' rows and pass.
    for (n, line) in text.lines().enumerate() {
        assert!(
            !["<<<<<<<", "=======", ">>>>>>>"]
                .iter()
                .any(|marker| line.starts_with(marker)),
            "{}:{}: a merge conflict marker",
            path.display(),
            n + 1
        );
    }
    let prefix = format!("`{suite}:");
    let mut listed = std::collections::BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        let Some(id) = cells.first().map(|c| c.trim()) else {
            continue;
        };
        let Some(case) = id.strip_prefix(&prefix).and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        let reason = cells.last().map(|c| c.trim()).unwrap_or_default();
        assert!(
            !reason.is_empty() && cells.len() >= 2,
            "{}: the row of {id} gives no reason",
            path.display()
        );
        assert!(
            listed.insert(case.to_owned(), reason.to_owned()).is_none(),
            "{}: {id} is listed twice",
            path.display()
        );
    }
    listed
}

/// Replaces the values that differ between any two servers by nature (uids, timestamps,
/// resourceVersions, `continue` tokens, and the random suffix of a name made from
/// `metadata.generateName`) with placeholders, in place, at any depth. managedFields' `time` is
/// among the timestamps.
pub fn mask_volatile(value: &mut serde_json::Value) {
    use serde_json::Value;
    const VOLATILE: &[&str] = &[
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "time",
        "lastTransitionTime",
        "lastPhaseTransitionTime",
        "lastUpdateTime",
        "lastHeartbeatTime",
        "lastProbeTime",
        "startTime",
        "continue",
        "selfLink",
    ];
    match value {
        Value::Object(map) => {
            // A generated name is the prefix and five random characters (names.SimpleNameGenerator).
            if let (Some(Value::String(prefix)), Some(Value::String(name))) =
                (map.get("generateName"), map.get("name"))
            {
                if name.len() == prefix.len() + 5 && name.starts_with(prefix.as_str()) {
                    let masked = format!("{prefix}<suffix>");
                    map.insert("name".to_owned(), Value::String(masked));
                }
            }
            for (key, field) in map.iter_mut() {
                if VOLATILE.contains(&key.as_str()) && !field.is_null() {
                    *field = Value::String(format!("<{key}>"));
                } else {
                    mask_volatile(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_volatile),
        _ => {}
    }
}
