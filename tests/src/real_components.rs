//! The real kube-scheduler and kube-controller-manager (v1.34.2, built by
//! `scripts/kube-reference.sh build`) run against a kgate started with `--controllers nodes`, as
//! its scheduler and controllers: each under its own identity, a client certificate from kgate's
//! CA (`system:kube-scheduler`, `system:kube-controller-manager`), leader election through
//! kgate's Leases, informers through kgate's watch-list and watches.
//!
//! What they are told, and why:
//! - kube-controller-manager runs only the controllers of the APIs kgate serves
//!   ([`CONTROLLERS`]); with `--use-service-account-credentials` each works as its own
//!   ServiceAccount in kube-system, with a token from kgate's TokenRequest.
//! - kube-scheduler runs its default profile, unchanged: every plugin, DynamicResourceAllocation
//!   on (GA in 1.34). Its informers list what kgate serves for them (volumes, storage.k8s.io,
//!   PodDisruptionBudgets, StatefulSets, ReplicationControllers, resource.k8s.io); an informer
//!   that cannot list would keep the scheduler from ever starting.
//! - kube-controller-manager serves its HTTPS port ([`RealComponents::kcm_url`]) with kgate as
//!   its delegated authenticator and authorizer (client CA from the ConfigMap
//!   `kube-system/extension-apiserver-authentication`, TokenReview, SubjectAccessReview);
//!   kube-scheduler serves none (`--secure-port=0`): one such port is enough to show it.

use crate::{workspace_root, Kgate};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// kube-controller-manager's `--controllers`: every controller whose APIs kgate serves (apps
/// Deployments and ReplicaSets, Endpoints and EndpointSlices both ways, owner references, Node
/// health and NoExecute eviction, pod garbage, node TTL annotations, ServiceAccounts,
/// `kube-root-ca.crt` ConfigMaps (of kgate's CA), Namespace deletion, ClusterRole aggregation).
/// Left out: the controllers of APIs kgate lacks
/// (jobs, cronjobs, statefulsets, daemonsets' own controller, PV/PVC, certificates, resource
/// quotas, HPA, disruption, DRA...), the token controller (`serviceaccount-token`: kgate fills
/// its legacy token Secrets itself), node IPAM (kgate's simulated nodes allocate
/// their own pod CIDRs) and the cloud ones.
pub const CONTROLLERS: &str =
    "deployment,replicaset,endpoint,endpointslice,endpointslicemirroring,garbagecollector,\
nodelifecycle,taint-eviction-controller,podgc,ttl,serviceaccount,root-ca-cert-publisher,namespace,\
clusterrole-aggregation";

/// The folder of the built binaries; builds them when absent.
pub fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("KUBE_REFERENCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root()
                .join("target")
                .join("kube-reference")
                .join("bin")
        });
    let built = ["kube-scheduler", "kube-controller-manager"]
        .iter()
        .all(|b| dir.join(b).is_file());
    if !built {
        let mut cmd = Command::new(crate::reference::script());
        cmd.arg("build");
        let run = crate::run_bounded(cmd, None, Duration::from_secs(1200));
        assert!(run.success(), "kube-reference.sh build failed:\n{run}");
    }
    dir
}

/// The two processes; stopped (SIGKILL) when dropped.
pub struct RealComponents {
    procs: Vec<(&'static str, Child, PathBuf)>,
    kcm_port: u16,
}

impl RealComponents {
    /// Starts kube-scheduler and kube-controller-manager against `kg` (which should run
    /// `--controllers nodes`); `node_monitor_grace_period` is kcm's flag (e.g. `20s`).
    pub fn start(kg: &Kgate, node_monitor_grace_period: &str) -> RealComponents {
        let bin = bin_dir();
        let logs = kg.root().join("logs");
        let scheduler_kubeconfig = kg.kubeconfig_for("system:kube-scheduler", &[], "24h");
        let kcm_kubeconfig = kg.kubeconfig_for("system:kube-controller-manager", &[], "24h");
        let config = kg.write_file(
            "kube-scheduler.yaml",
            &format!(
                "apiVersion: kubescheduler.config.k8s.io/v1\n\
                 kind: KubeSchedulerConfiguration\n\
                 clientConnection:\n  kubeconfig: {}\n\
                 leaderElection:\n  leaderElect: true\n",
                scheduler_kubeconfig.display()
            ),
        );
        let scheduler = spawn(
            &bin.join("kube-scheduler"),
            &[
                format!("--config={}", config.display()),
                "--secure-port=0".into(),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
            &logs.join("kube-scheduler.log"),
        );
        let kcm_port = free_port();
        let kcm = spawn(
            &bin.join("kube-controller-manager"),
            &[
                format!("--kubeconfig={}", kcm_kubeconfig.display()),
                format!("--authentication-kubeconfig={}", kcm_kubeconfig.display()),
                format!("--authorization-kubeconfig={}", kcm_kubeconfig.display()),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={kcm_port}"),
                format!(
                    "--cert-dir={}",
                    kg.root().join("files").join("kcm-serving").display()
                ),
                format!("--controllers={CONTROLLERS}"),
                "--use-service-account-credentials=true".into(),
                // What root-ca-cert-publisher puts in every namespace's kube-root-ca.crt.
                format!(
                    "--root-ca-file={}",
                    kg.data_dir().join("pki").join("ca.crt").display()
                ),
                "--leader-elect=true".into(),
                "--node-monitor-period=2s".into(),
                format!("--node-monitor-grace-period={node_monitor_grace_period}"),
                "--profiling=false".into(),
                "--v=1".into(),
            ],
            &logs.join("kube-controller-manager.log"),
        );
        RealComponents {
            procs: vec![
                ("kube-scheduler", scheduler, logs.join("kube-scheduler.log")),
                (
                    "kube-controller-manager",
                    kcm,
                    logs.join("kube-controller-manager.log"),
                ),
            ],
            kcm_port,
        }
    }

    /// kube-controller-manager's HTTPS port (its serving certificate is self-signed).
    pub fn kcm_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.kcm_port)
    }

    /// The error and warning lines of both logs (klog's `E` and `W`), for a failure message or
    /// a check that nothing was refused.
    pub fn errors_and_warnings(&self) -> String {
        let mut out = String::new();
        for (name, _, log) in &self.procs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            for line in text
                .lines()
                .filter(|l| l.starts_with('E') || l.starts_with('W'))
            {
                out.push_str(&format!("{name}: {line}\n"));
            }
        }
        out
    }

    /// Panics if either process has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        for (name, child, log) in &mut self.procs {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                panic!(
                    "{name} exited ({status}):\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
    }
}

/// A loopback port free now (bound then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("cannot create a log file");
    let err = out.try_clone().expect("cannot share the log file");
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

impl Drop for RealComponents {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
