//! The scheduler against a real kgate API: Nodes created by hand (no agents), the scheduler
//! in-process, pods created through the API, placements and reports checked through the API and
//! the real kubectl.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kgate_e2e::Kgate;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use support::{admin_client, bare_kgate, eventually};

const DEADLINE: Duration = Duration::from_secs(20);

/// `kubectl describe pod NAME` once it shows a FailedScheduling event.
async fn described_failed_scheduling(kg: &Kgate, name: &str) -> String {
    eventually(
        &format!("describe shows FailedScheduling for {name}"),
        DEADLINE,
        || {
            let out = tokio::task::block_in_place(|| kg.kubectl(&["describe", "pod", name]));
            async move {
                let text = out.stdout.clone();
                if text.contains("FailedScheduling") {
                    Ok(text)
                } else {
                    Err(format!("{out}"))
                }
            }
        },
    )
    .await
}

/// Creates a Ready node with `cpu` and `memory` allocatable; `extra` is merged into it.
async fn add_node(
    client: &kube::Client,
    name: &str,
    cpu: &str,
    memory: &str,
    spec: Value,
    labels: Value,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let resources = json!({"cpu": cpu, "memory": memory, "pods": "110"});
    let status = json!({"status": {"capacity": resources, "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "simulated", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// Creates a pod in `default` with one container; `spec` is merged into its spec.
async fn add_pod(client: &kube::Client, name: &str, requests: Value, spec: Value, meta: Value) {
    let mut pod = json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx",
            "resources": {"requests": requests}}]},
    });
    for (k, v) in spec.as_object().unwrap() {
        pod["spec"][k] = v.clone();
    }
    for (k, v) in meta.as_object().unwrap() {
        pod["metadata"][k] = v.clone();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
}

async fn node_of(client: &kube::Client, name: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    eventually(&format!("pod {name} is bound"), DEADLINE, || {
        let pods = pods.clone();
        async move {
            let pod = pods.get(name).await.map_err(|e| e.to_string())?;
            pod.spec
                .and_then(|s| s.node_name)
                .ok_or_else(|| "not bound yet".to_owned())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn places_pods_by_selector_taints_and_load() {
    let kg = bare_kgate();
    let client = admin_client(&kg).await;
    add_node(
        &client,
        "node-a",
        "4",
        "8Gi",
        json!({}),
        json!({"disk": "ssd"}),
    )
    .await;
    add_node(
        &client,
        "node-b",
        "4",
        "8Gi",
        json!({}),
        json!({"disk": "hdd"}),
    )
    .await;
    add_node(
        &client,
        "node-c",
        "4",
        "8Gi",
        json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}),
        json!({"disk": "hdd"}),
    )
    .await;
    let scheduler = kgate_cluster::scheduler::spawn(client.clone());

    // Load: node-a at 90%, node-b at 30% (pods bound by name, not by the scheduler).
    add_pod(
        &client,
        "fill-a",
        json!({"cpu": "3600m", "memory": "7372Mi"}),
        json!({"nodeName": "node-a"}),
        json!({}),
    )
    .await;
    add_pod(
        &client,
        "fill-b",
        json!({"cpu": "1200m", "memory": "2458Mi"}),
        json!({"nodeName": "node-b"}),
        json!({}),
    )
    .await;

    // Least allocated: the next pod goes to the 30% node, never the tainted one.
    add_pod(
        &client,
        "next",
        json!({"cpu": "100m", "memory": "128Mi"}),
        json!({}),
        json!({}),
    )
    .await;
    assert_eq!(node_of(&client, "next").await, "node-b");

    // nodeSelector wins over load.
    add_pod(
        &client,
        "wants-ssd",
        json!({"cpu": "100m"}),
        json!({"nodeSelector": {"disk": "ssd"}}),
        json!({}),
    )
    .await;
    assert_eq!(node_of(&client, "wants-ssd").await, "node-a");

    // The tainted node: taken only with a toleration.
    let on_c = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-c"]}]}]}}}});
    let mut tolerant = on_c.clone();
    tolerant["tolerations"] =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    add_pod(&client, "tolerant", json!({}), tolerant, json!({})).await;
    assert_eq!(node_of(&client, "tolerant").await, "node-c");
    add_pod(&client, "intolerant", json!({}), on_c, json!({})).await;
    let described = described_failed_scheduling(&kg, "intolerant").await;
    assert!(
        described.contains("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector."),
        "{described}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        pods.get("intolerant")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name,
        None
    );
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn spreads_replicas_reports_unschedulable_and_retries_on_new_node() {
    let kg = bare_kgate();
    let client = admin_client(&kg).await;
    for name in ["small-1", "small-2", "small-3"] {
        add_node(&client, name, "1", "2Gi", json!({}), json!({})).await;
    }
    let scheduler = kgate_cluster::scheduler::spawn(client.clone());

    // Six replicas of one owner on three equal nodes: two each.
    let owner = json!({"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "name": "web", "uid": "5f0c3a52-0000-4000-8000-000000000001", "controller": true}],
        "labels": {"app": "web"}});
    for i in 0..6 {
        add_pod(
            &client,
            &format!("web-{i}"),
            json!({}),
            json!({}),
            owner.clone(),
        )
        .await;
    }
    let mut placed: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..6 {
        *placed
            .entry(node_of(&client, &format!("web-{i}")).await)
            .or_default() += 1;
    }
    assert_eq!(
        placed.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{placed:?}"
    );

    // Too big for every node: Pending, with kube's reason in an event and the condition.
    add_pod(
        &client,
        "big",
        json!({"cpu": "2", "memory": "1Gi"}),
        json!({}),
        json!({}),
    )
    .await;
    let want = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.";
    let described = described_failed_scheduling(&kg, "big").await;
    assert!(
        described.contains("0/3 nodes are available: 3 Insufficient cpu."),
        "{described}"
    );
    assert!(described.contains("default-scheduler"), "{described}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let condition = eventually("PodScheduled=False", DEADLINE, || {
        let pods = pods.clone();
        async move {
            let pod = pods.get("big").await.map_err(|e| e.to_string())?;
            pod.status
                .and_then(|s| s.conditions)
                .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"))
                .filter(|c| c.status == "False")
                .ok_or_else(|| "no PodScheduled=False yet".to_owned())
        }
    })
    .await;
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(condition.message.as_deref(), Some(want));
    assert_eq!(
        pods.get("big")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending")
    );

    // A change that does not help: one more try, counted on the same event, not a new one.
    let nodes: Api<Node> = Api::all(client.clone());
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    nodes
        .patch("small-1", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    eventually(
        "the FailedScheduling event counts the repeat",
        DEADLINE,
        || {
            let events = events.clone();
            async move {
                let list = events
                    .list(&kube::api::ListParams::default().fields("involvedObject.name=big"))
                    .await
                    .map_err(|e| e.to_string())?;
                let failed: Vec<_> = list
                    .items
                    .iter()
                    .filter(|e| e.reason.as_deref() == Some("FailedScheduling"))
                    .map(|e| (e.count, e.message.clone()))
                    .collect();
                match failed.as_slice() {
                    [(Some(n), _)] if *n >= 2 => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;

    // A node that fits appears: the pod is placed there, without waiting for the slow retry.
    let started = Instant::now();
    add_node(&client, "large", "8", "16Gi", json!({}), json!({})).await;
    assert_eq!(node_of(&client, "big").await, "large");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let events = tokio::task::block_in_place(|| {
        kg.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=big",
            "-o",
            "json",
        ])
    });
    let events: Value = serde_json::from_str(&events).unwrap();
    let items = events["items"].as_array().unwrap();
    let reasons: Vec<&str> = items.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"Scheduled"), "{reasons:?}");
    // Repeats of one message are counted on one event, never a new event each.
    let mut failures: Vec<&str> = items
        .iter()
        .filter(|e| e["reason"] == "FailedScheduling")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(failures.contains(&want), "{failures:?}");
    let all = failures.len();
    failures.sort();
    failures.dedup();
    assert_eq!(failures.len(), all, "{items:?}");
    scheduler.abort();
}
