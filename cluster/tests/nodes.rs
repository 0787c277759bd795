//! The simulated nodes against a real `kgate up` with no built-in components: the node manager
//! runs in-process with the admin's client, and what it does is checked through the API, with
//! kubectl, and with the `kgate node` command.

// Tests may unwrap: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod support;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kgate_cluster::nodes::{
    ensure_nodes, spawn_manager, NodeManagerOptions, NodeSpec, AGENT_STOPPED_ANNOTATION,
    SIMULATED_LABEL,
};
use kgate_e2e::{kgate_bin, run_bounded, Kgate, Run};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;
use support::{admin_client, bare_kgate, eventually, kubectl, kubectl_json};

/// Aborts the manager when the test ends, even on a panic.
struct Manager(tokio::task::JoinHandle<()>);

impl Drop for Manager {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spec(name: &str) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        cpu_millis: 2000,
        memory_bytes: 4 << 30,
        pods: 20,
        labels: BTreeMap::from([
            (SIMULATED_LABEL.to_owned(), "true".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
        ]),
    }
}

/// `kgate node ARGS --data-dir DATA_DIR`.
fn kgate_node(kg: &Kgate, args: &[&str]) -> Run {
    let mut cmd = Command::new(kgate_bin());
    cmd.arg("node")
        .args(args)
        .arg("--data-dir")
        .arg(kg.data_dir());
    tokio::task::block_in_place(|| run_bounded(cmd, None, Duration::from_secs(30)))
}

fn is_ready(node: &Value) -> bool {
    node["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

async fn wait_ready(kg: &Kgate, name: &str) -> Value {
    eventually(
        &format!("node {name} Ready"),
        Duration::from_secs(30),
        || async {
            let node = kubectl_json(kg, &["get", "node", name]);
            if is_ready(&node) {
                Ok(node)
            } else {
                Err(node["status"].to_string())
            }
        },
    )
    .await
}

async fn renew_time(leases: &Api<Lease>, name: &str) -> Option<String> {
    let lease = leases.get_opt(name).await.ok()??;
    let time = lease.spec?.renew_time?;
    Some(serde_json::to_value(time).ok()?.as_str()?.to_owned())
}

async fn set_stopped(nodes: &Api<Node>, name: &str, stopped: bool) {
    let value = if stopped { json!("true") } else { Value::Null };
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {AGENT_STOPPED_ANNOTATION: value}}})),
        )
        .await
        .expect("annotate the node");
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_register_ready_heartbeat_and_pause() {
    let kg = bare_kgate();
    let client = admin_client(&kg).await;
    let specs = [spec("sim-1"), spec("sim-2")];
    ensure_nodes(&client, &specs)
        .await
        .expect("create the nodes");
    let _manager = Manager(spawn_manager(client.clone(), NodeManagerOptions::default()));

    let mut cidrs = Vec::new();
    let mut ips = Vec::new();
    for name in ["sim-1", "sim-2"] {
        let node = wait_ready(&kg, name).await;
        let ready = node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready["reason"], "KubeletReady");
        assert!(ready["message"].as_str().unwrap().contains("simulated"));
        for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert!(node["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == kind && c["status"] == "False"));
        }
        assert_eq!(node["status"]["capacity"]["cpu"], "2");
        assert_eq!(node["status"]["allocatable"]["memory"], "4Gi");
        assert_eq!(node["status"]["allocatable"]["pods"], "20");
        assert_eq!(
            node["status"]["nodeInfo"]["kubeletVersion"],
            "v1.33.0-kgate"
        );
        assert_eq!(
            node["status"]["nodeInfo"]["osImage"],
            "kgate simulated node"
        );
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], name);
        assert_eq!(labels["zone"], "a");
        assert_eq!(
            labels["node.kubernetes.io/instance-type"],
            "kgate-simulated"
        );
        let addresses = node["status"]["addresses"].as_array().unwrap();
        assert!(addresses
            .iter()
            .any(|a| a["type"] == "Hostname" && a["address"] == name));
        ips.push(
            addresses
                .iter()
                .find(|a| a["type"] == "InternalIP")
                .unwrap()["address"]
                .clone(),
        );
        // The podCIDR is written by the agent before the status.
        cidrs.push(node["spec"]["podCIDR"].as_str().unwrap().to_owned());
    }
    assert_ne!(cidrs[0], cidrs[1], "pod CIDRs are unique");
    assert_ne!(ips[0], ips[1], "InternalIPs are unique");
    let table = kubectl(&kg, &["get", "nodes"]);
    assert_eq!(table.matches(" Ready ").count(), 2, "{table}");

    // A second start leaves the existing Nodes alone.
    ensure_nodes(&client, &specs).await.expect("ensure again");

    // The Lease is renewed.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let first = eventually("the Lease exists", Duration::from_secs(20), || async {
        renew_time(&leases, "sim-1")
            .await
            .ok_or_else(|| "no lease".to_owned())
    })
    .await;
    let lease = leases.get("sim-1").await.unwrap();
    let lease_spec = lease.spec.clone().unwrap();
    assert_eq!(lease_spec.holder_identity.as_deref(), Some("sim-1"));
    assert_eq!(lease_spec.lease_duration_seconds, Some(40));
    assert_eq!(lease.metadata.owner_references.unwrap()[0].kind, "Node");
    eventually("the Lease renews", Duration::from_secs(25), || async {
        match renew_time(&leases, "sim-1").await {
            Some(now) if now != first => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Stopped: no more renewals (the interval is 10 s, so 12 s without one shows it).
    let nodes: Api<Node> = Api::all(client.clone());
    set_stopped(&nodes, "sim-1", true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paused = renew_time(&leases, "sim-1").await.unwrap();
    let other = renew_time(&leases, "sim-2").await.unwrap();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(
        renew_time(&leases, "sim-1").await.unwrap(),
        paused,
        "a stopped agent renewed its Lease"
    );
    assert_ne!(
        renew_time(&leases, "sim-2").await.unwrap(),
        other,
        "the other node kept renewing"
    );

    // Started again: renewals resume at once.
    set_stopped(&nodes, "sim-1", false).await;
    eventually("renewals resume", Duration::from_secs(10), || async {
        match renew_time(&leases, "sim-1").await {
            Some(now) if now != paused => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bound_pods_run_with_addresses_and_tokens() {
    let kg = bare_kgate();
    let client = admin_client(&kg).await;
    ensure_nodes(&client, &[spec("sim-1")])
        .await
        .expect("create the node");
    let state = tempfile::tempdir().unwrap();
    let _manager = Manager(spawn_manager(
        client.clone(),
        NodeManagerOptions {
            state_dir: Some(state.path().to_path_buf()),
            group: None,
        },
    ));
    let node = wait_ready(&kg, "sim-1").await;
    let cidr = node["spec"]["podCIDR"].as_str().unwrap().to_owned();
    let host_ip = node["status"]["addresses"][0]["address"].clone();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["web", "api"] {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "nodeName": "sim-1",
                "containers": [
                    {"name": "app", "image": "nginx:1.27"},
                    {"name": "side", "image": "busybox"},
                ],
            },
        }))
        .unwrap();
        pods.create(&Default::default(), &pod).await.unwrap();
    }
    let mut pod_ips = Vec::new();
    for name in ["web", "api"] {
        let pod = eventually(
            &format!("pod {name} Running"),
            Duration::from_secs(30),
            || async {
                let pod = kubectl_json(&kg, &["get", "pod", name]);
                if pod["status"]["phase"] == "Running" {
                    Ok(pod)
                } else {
                    Err(pod["status"].to_string())
                }
            },
        )
        .await;
        let status = &pod["status"];
        let ip: Ipv4Addr = status["podIP"].as_str().unwrap().parse().unwrap();
        let prefix = cidr.trim_end_matches("0/24");
        assert!(ip.to_string().starts_with(prefix), "{ip} in {cidr}");
        assert_eq!(status["podIPs"][0]["ip"], ip.to_string());
        assert_eq!(status["hostIP"], host_ip);
        assert!(status["startTime"].is_string());
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(
                status["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["type"] == kind && c["status"] == "True"),
                "{kind}: {status}"
            );
        }
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        let containers = status["containerStatuses"].as_array().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["name"], "app");
        assert_eq!(containers[0]["image"], "nginx:1.27");
        assert_eq!(containers[0]["imageID"], "kgate-sim://nginx:1.27");
        assert_eq!(
            containers[0]["containerID"],
            format!("kgate-sim://{uid}/app")
        );
        assert_eq!(containers[0]["ready"], true);
        assert_eq!(containers[0]["started"], true);
        assert_eq!(containers[0]["restartCount"], 0);
        assert!(containers[0]["state"]["running"]["startedAt"].is_string());
        pod_ips.push(ip);
    }
    assert_ne!(pod_ips[0], pod_ips[1], "pod IPs are unique");

    // Marked not ready by another writer (kube-controller-manager does so to the pods of a node
    // it lost): the node reports it ready again, as kubelet's status manager, keeping its IP.
    let mut web = pods.get("web").await.unwrap();
    for c in web
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .unwrap()
        .iter_mut()
        .filter(|c| c.type_ == "Ready")
    {
        c.status = "False".into();
    }
    pods.replace_status("web", &Default::default(), &web)
        .await
        .unwrap();
    let ready_again = eventually("web ready again", Duration::from_secs(30), || async {
        let pod = kubectl_json(&kg, &["get", "pod", "web"]);
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            Ok(pod)
        } else {
            Err(pod["status"].to_string())
        }
    })
    .await;
    assert_eq!(ready_again["status"]["podIP"], pod_ips[0].to_string());

    // The projected token of web: a 0600 file that authenticates as the pod's ServiceAccount.
    let web = pods.get("web").await.unwrap();
    let uid = web.metadata.uid.clone().unwrap();
    let dir = state
        .path()
        .join("sim-1/pods")
        .join(format!("default_web_{uid}"));
    let file = dir.join("token");
    let token = eventually("the token file", Duration::from_secs(30), || async {
        std::fs::read_to_string(&file).map_err(|e| e.to_string())
    })
    .await;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let review = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token.trim()},
    });
    let response = tokio::task::block_in_place(|| {
        kg.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews")
            .json(review.to_string())
            .send()
    });
    assert_eq!(response.status, 201, "{response}");
    let answer: Value = serde_json::from_str(&response.body).unwrap();
    let status = &answer["status"];
    assert_eq!(status["authenticated"], true, "{answer}");
    assert_eq!(
        status["user"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        status["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["web"])
    );

    // Deleted: the token goes, and the address is free for the next pod.
    pods.delete("web", &Default::default()).await.unwrap();
    eventually("the pod folder goes", Duration::from_secs(20), || async {
        if dir.exists() {
            Err("still there".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_added_later_get_agents_and_the_cli_drives_them() {
    let kg = bare_kgate();
    let client = admin_client(&kg).await;
    let _manager = Manager(spawn_manager(client.clone(), NodeManagerOptions::default()));

    // A Node created through the API with the label alone gets an agent and default capacity.
    let nodes: Api<Node> = Api::all(client.clone());
    let plain: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "by-api", "labels": {SIMULATED_LABEL: "true"}},
    }))
    .unwrap();
    nodes.create(&Default::default(), &plain).await.unwrap();
    let node = wait_ready(&kg, "by-api").await;
    assert_eq!(node["status"]["capacity"]["cpu"], "4");
    assert_eq!(node["status"]["capacity"]["pods"], "110");

    // `kgate node add`: the running manager picks it up, with its capacity, labels and taints.
    let added = kgate_node(
        &kg,
        &[
            "add",
            "extra-1",
            "--cpu",
            "1500m",
            "--memory",
            "2Gi",
            "--pods",
            "7",
            "--label",
            "zone=b",
            "--taint",
            "dedicated=ci:NoSchedule",
        ],
    );
    assert!(added.ok().contains("node/extra-1 created"), "{added}");
    let node = wait_ready(&kg, "extra-1").await;
    assert_eq!(node["status"]["capacity"]["cpu"], "1500m");
    assert_eq!(node["status"]["allocatable"]["memory"], "2Gi");
    assert_eq!(node["status"]["allocatable"]["pods"], "7");
    assert_eq!(node["metadata"]["labels"]["zone"], "b");
    assert_eq!(node["metadata"]["labels"][SIMULATED_LABEL], "true");
    assert_eq!(node["spec"]["taints"][0]["key"], "dedicated");
    assert_eq!(node["spec"]["taints"][0]["effect"], "NoSchedule");
    kgate_node(&kg, &["add", "extra-1"]).fails_with("already exists");
    kgate_node(&kg, &["add", "Bad_Name"]).fails_with("not a valid node name");

    // stop / start set and remove the annotation; list shows the agent state.
    kgate_node(&kg, &["stop", "extra-1"]).ok();
    let node = kubectl_json(&kg, &["get", "node", "extra-1"]);
    assert_eq!(
        node["metadata"]["annotations"][AGENT_STOPPED_ANNOTATION],
        "true"
    );
    let list = kgate_node(&kg, &["list"]);
    let row = list
        .ok()
        .lines()
        .find(|l| l.starts_with("extra-1 "))
        .unwrap_or_else(|| panic!("{list}"))
        .to_owned();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[2], "stopped", "{row}");
    assert_eq!(cells[3], "1500m", "{row}");
    kgate_node(&kg, &["start", "extra-1"]).ok();
    let node = kubectl_json(&kg, &["get", "node", "extra-1"]);
    assert!(node["metadata"]["annotations"][AGENT_STOPPED_ANNOTATION].is_null());
    let list = kgate_node(&kg, &["list"]);
    assert!(
        list.ok()
            .lines()
            .any(|l| l.starts_with("extra-1 ") && l.contains(" Ready ") && l.contains(" running ")),
        "{list}"
    );

    // Clear one-line errors for what cannot be done.
    kgate_node(&kg, &["stop", "nowhere"]).fails_with("node \"nowhere\" not found");
    let real: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "real-1"},
    }))
    .unwrap();
    nodes.create(&Default::default(), &real).await.unwrap();
    let refused = kgate_node(&kg, &["stop", "real-1"]);
    refused.fails_with("is not a simulated node");
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(refused.stderr.trim().lines().count(), 1, "{refused}");
    let mut cmd = Command::new(kgate_bin());
    cmd.args(["node", "list", "--kubeconfig", "/nonexistent/kubeconfig"]);
    tokio::task::block_in_place(|| run_bounded(cmd, None, Duration::from_secs(30)))
        .fails_with("cannot use the kubeconfig /nonexistent/kubeconfig");
}
