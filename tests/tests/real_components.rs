//! The real components with kgate, both ways:
//! - the real kube-scheduler and kube-controller-manager (v1.34.2) as the scheduler and
//!   controllers of `kgate up --controllers nodes` (see `kgate_e2e::real_components`) run the
//!   cluster scenario of `tests/cluster.rs`: Deployment, ReplicaSet, pods Running on kgate's
//!   simulated nodes, healing, scaling, Service Endpoints, node failure and eviction, garbage
//!   collection, rollout and undo, namespace deletion; scheduling by load, nodeSelector and
//!   taints, and FailedScheduling saying why (also for a pod whose PersistentVolumeClaim is
//!   missing or unbound: the default profile runs unchanged);
//! - `kgate nodes` joins the real kube-apiserver (with its real scheduler and controller
//!   manager) as simulated nodes, and a Deployment's pods run on them.

use kgate_e2e::cluster_flows::{self, ready_nodes, running, CONVERGE};
use kgate_e2e::real_components::RealComponents;
use kgate_e2e::reference::{Reference, ReferenceOptions};
use kgate_e2e::{
    kgate_bin, kubeconfig_pem, poll, run_bounded, ApiServer, Kgate, Options, Streaming,
};
use std::process::Command;
use std::time::Duration;

#[test]
fn the_real_scheduler_and_controller_manager_run_the_cluster_scenario_on_kgate() {
    let kg = Kgate::up_with(Options {
        gateway_args: [
            "--controllers=nodes",
            "--service-account-signing-algorithm=ES256",
            // Pods stay 2 s on a lost node (kube's default is 300 s).
            "--default-unreachable-toleration-seconds=2",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect(),
        ..Options::default()
    });
    // kcm's node monitor grace period above the simulated nodes' 10 s Lease renewals.
    let mut components = RealComponents::start(&kg, "20s");
    // Each component leads through its Lease in kgate.
    for lease in ["kube-scheduler", "kube-controller-manager"] {
        poll(&format!("the {lease} Lease held"), CONVERGE, || {
            let run = kg.kubectl(&[
                "get",
                "lease",
                "-n",
                "kube-system",
                lease,
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ]);
            if run.success() && !run.stdout.trim().is_empty() {
                Ok(())
            } else {
                Err(format!("{run}\n{}", components.errors_and_warnings()))
            }
        });
    }
    cluster_flows::deployment_heals_scales_serves_and_survives_a_node(&kg);
    cluster_flows::rollout_undo_and_namespace_deletion(&kg);
    components.assert_running();
    // kube-controller-manager made its controllers' ServiceAccounts and acted as them.
    let accounts = kg.kubectl_ok(&["get", "serviceaccounts", "-n", "kube-system", "-o", "name"]);
    for account in [
        "deployment-controller",
        "replicaset-controller",
        "node-controller",
    ] {
        assert!(
            accounts.contains(&format!("serviceaccount/{account}")),
            "{accounts}"
        );
    }
    // Every namespace got kgate's CA in kube-root-ca.crt, which pods' token volumes project.
    let ca = std::fs::read_to_string(kg.data_dir().join("pki").join("ca.crt")).expect("the CA");
    let published = kg.kubectl_ok(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-o",
        "jsonpath={.data.ca\\.crt}",
    ]);
    assert_eq!(published.trim(), ca.trim());
    // kcm's own port authenticates kgate's client certificates with the CA kgate publishes,
    // and asks kgate (SubjectAccessReview) whether they may: the admin may read /metrics; a
    // user without a binding may not, nor may system:anonymous (kcm, as kube's components,
    // lets anonymous requests through authentication).
    let admin = kg.admin_kubeconfig();
    let cert = kg.write_file("admin.crt", "");
    let key = kg.write_file("admin.key", "");
    std::fs::write(&cert, kubeconfig_pem(&admin, "client-certificate-data")).expect("cert");
    std::fs::write(&key, kubeconfig_pem(&admin, "client-key-data")).expect("key");
    let nobody = kg.kubeconfig_for("nobody", &[], "1h");
    let nobody_cert = kg.write_file("nobody.crt", "");
    let nobody_key = kg.write_file("nobody.key", "");
    std::fs::write(
        &nobody_cert,
        kubeconfig_pem(&nobody, "client-certificate-data"),
    )
    .expect("cert");
    std::fs::write(&nobody_key, kubeconfig_pem(&nobody, "client-key-data")).expect("key");
    let metrics = format!("{}/metrics", components.kcm_url());
    let code = |identity: Option<(&std::path::Path, &std::path::Path)>| {
        let mut curl = Command::new("curl");
        curl.args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some((cert, key)) = identity {
            curl.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        curl.arg(&metrics);
        run_bounded(curl, None, Duration::from_secs(30))
            .ok()
            .to_owned()
    };
    assert_eq!(code(Some((&cert, &key))), "200");
    assert_eq!(code(Some((&nobody_cert, &nobody_key))), "403");
    assert_eq!(code(None), "403");
    // Every informer of both could list and watch what it asked for: no refusal, no API
    // missing, no watch-list that fell back.
    let complaints = components.errors_and_warnings();
    for needle in [
        "Failed to watch",
        "failed to list",
        "watchlist request ended with an error",
        "Unable to sync caches",
        // kube-apiserver writes no requestheader keys either without a requestheader CA, and
        // kcm then logs each retry: only a missing ConfigMap is kgate's fault.
        "configmap \\\"extension-apiserver-authentication\\\" not found",
    ] {
        assert!(!complaints.contains(needle), "{needle}:\n{complaints}");
    }
}

#[test]
fn the_real_scheduler_places_pods_by_load_selectors_and_taints_and_says_why_it_cannot() {
    let kg = Kgate::up_with(Options {
        gateway_args: vec!["--controllers=nodes".to_owned(), "--nodes=0".to_owned()],
        ..Options::default()
    });
    let mut components = RealComponents::start(&kg, "20s");
    cluster_flows::scheduling_follows_load_selectors_and_taints(&kg);
    // The default profile's volume plugins run on kgate's PersistentVolumeClaims: a pod whose
    // claim is missing, then unbound, waits, and the scheduler says why.
    let create = |object: &str| {
        let mut cmd = kg.kubectl_command(&kgate_e2e::default_kubectl(), &kg.admin_kubeconfig());
        cmd.args(["create", "-f", "-"]);
        run_bounded(cmd, Some(object.as_bytes()), Duration::from_secs(30)).ok();
    };
    create(
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"needs-claim"},"spec":{
            "containers":[{"name":"c","image":"busybox"}],
            "volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}]}}"#,
    );
    let says = |what: &'static str| {
        poll(what, CONVERGE, || {
            let text = kg.kubectl_ok(&["describe", "pod", "needs-claim"]);
            if text.contains(what) {
                Ok(())
            } else {
                Err(text)
            }
        })
    };
    says(r#"persistentvolumeclaim "data" not found"#);
    create(
        r#"{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"data"},"spec":{
            "storageClassName":"","accessModes":["ReadWriteOnce"],
            "resources":{"requests":{"storage":"1Gi"}}}}"#,
    );
    says("pod has unbound immediate PersistentVolumeClaims");
    components.assert_running();
}

#[test]
fn kgate_nodes_join_the_reference_and_run_a_deployments_pods() {
    let reference = Reference::up_with(ReferenceOptions {
        controllers: true,
        ..ReferenceOptions::default()
    });
    let state = reference.root().join("files").join("nodes");
    let mut cmd = Command::new(kgate_bin());
    cmd.arg("nodes")
        .arg("--kubeconfig")
        .arg(reference.admin_kubeconfig())
        .args(["--count", "3", "--state-dir"])
        .arg(&state);
    let mut nodes = Streaming::spawn(cmd);
    nodes.wait_for("kgate nodes running", Duration::from_secs(30), |l| {
        l.starts_with("kgate nodes: 3 simulated nodes running")
    });
    let names = poll("3 Ready nodes", CONVERGE, || {
        let ready = ready_nodes(&reference);
        if ready.len() == 3 {
            Ok(ready)
        } else {
            Err(format!("{ready:?}"))
        }
    });
    assert_eq!(names, ["kgate-node-1", "kgate-node-2", "kgate-node-3"]);
    // Scheduled by the real kube-scheduler, made by the real kcm's ReplicaSet controller.
    reference.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=5",
    ]);
    let pods = running(&reference, "default", "app=web", 5);
    for (name, (_, node, ip, _)) in &pods {
        assert!(names.contains(node), "{name} on {node}: {pods:#?}");
        assert!(ip.starts_with("10.244."), "{name}: {ip}");
    }
    let rs = reference.kubectl_ok(&["get", "replicasets", "-l", "app=web", "-o", "name"]);
    assert_eq!(rs.lines().count(), 1, "{rs}");
    // The nodes mounted each pod's ServiceAccount token, from kube-apiserver's TokenRequest.
    let tokens = poll("the pods' token files", CONVERGE, || {
        let found: Vec<_> = names
            .iter()
            .flat_map(|n| {
                std::fs::read_dir(state.join(n).join("pods"))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .filter(|e| e.path().join("token").is_file())
            .collect();
        if found.len() == 5 {
            Ok(found)
        } else {
            Err(format!("{} token files", found.len()))
        }
    });
    assert_eq!(tokens.len(), 5);
}
