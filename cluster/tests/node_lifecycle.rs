//! The node lifecycle controller against a real kgate: a node whose Lease stops is Unknown and
//! tainted unreachable after the grace period, its intolerant pods are evicted and tolerant ones
//! stay; renewing the Lease again removes the taints; a node reporting Ready=False is tainted
//! not-ready.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::eventually_some;

const GRACE: Duration = Duration::from_secs(3);
const WITHIN: Duration = Duration::from_secs(25);

/// Registers a node with its Ready condition and a fresh Lease.
async fn register(client: &kube::Client, name: &str, ready: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    set_ready(client, name, ready).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()},
    }))
    .unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
}

/// What the node's agent does: post its Ready condition.
async fn set_ready(client: &kube::Client, name: &str, status: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let patch = json!({"status": {"conditions": [{
        "type": "Ready", "status": status, "reason": "KubeletReady",
        "message": "simulated", "lastHeartbeatTime": Timestamp::now().to_string(),
        "lastTransitionTime": Timestamp::now().to_string(),
    }]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// Renews the node's Lease every 500 ms while `on` is set.
fn renew(
    client: kube::Client,
    name: &'static str,
    on: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        loop {
            if on.load(Ordering::SeqCst) {
                let patch = json!({"spec": {"renewTime": now()}});
                let _ = leases
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
}

async fn pod_on(pods: &Api<Pod>, name: &str, node: &str, tolerations: serde_json::Value) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "tolerations": tolerations,
                 "containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
}

fn ready_of(node: &Node) -> Option<(String, Option<String>, Option<String>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn taints_of(node: &Node) -> Vec<(String, String, bool)> {
    let mut out: Vec<_> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect, t.time_added.is_some()))
        .collect();
    out.sort();
    out
}

async fn has_event(client: &kube::Client, involved: &str, reason: &str) -> Option<()> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = events
        .list(&ListParams::default().fields(&format!("involvedObject.name={involved}")))
        .await
        .ok()?;
    list.items
        .iter()
        .any(|e| e.reason.as_deref() == Some(reason))
        .then_some(())
}

/// When the eviction of `pod` was recorded (the Event follows the delete).
async fn eviction_time(client: &kube::Client, pod: &str) -> Timestamp {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let fields = format!("involvedObject.name={pod}");
    eventually_some("an eviction event", WITHIN, || async {
        let list = events
            .list(&ListParams::default().fields(&fields))
            .await
            .ok()?;
        list.items
            .iter()
            .find(|e| e.reason.as_deref() == Some("TaintManagerEviction"))
            .and_then(|e| e.first_timestamp.clone())
            .map(|t| t.0)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_node_is_unknown_tainted_and_drained_until_it_renews() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    register(&client, "n1", "True").await;
    let on = Arc::new(AtomicBool::new(true));
    let renewer = renew(client.clone(), "n1", on.clone());
    pod_on(&pods, "doomed", "n1", json!([])).await;
    pod_on(
        &pods,
        "tolerant",
        "n1",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 60}]),
    )
    .await;
    pod_on(
        &pods,
        "brief",
        "n1",
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 2}]),
    )
    .await;
    let controller = kgate_cluster::controllers::node_lifecycle::spawn(client.clone(), GRACE);

    // Renewed past the grace period: left alone.
    tokio::time::sleep(GRACE + Duration::from_secs(2)).await;
    let n1 = nodes.get("n1").await.unwrap();
    assert_eq!(ready_of(&n1).map(|r| r.0).as_deref(), Some("True"));
    assert!(taints_of(&n1).is_empty(), "{:?}", taints_of(&n1));
    assert!(pods.get_opt("doomed").await.unwrap().is_some());

    // Silent: Unknown, tainted, intolerant pods evicted.
    on.store(false, Ordering::SeqCst);
    let stopped = Instant::now();
    let n1 = eventually_some("n1 is Unknown and tainted", WITHIN, || async {
        let n = nodes.get("n1").await.unwrap();
        let unknown = ready_of(&n).is_some_and(|r| r.0 == "Unknown");
        (unknown && taints_of(&n).len() == 2).then_some(n)
    })
    .await;
    assert!(stopped.elapsed() < GRACE + Duration::from_secs(5));
    assert_eq!(
        ready_of(&n1),
        Some((
            "Unknown".into(),
            Some("NodeStatusUnknown".into()),
            Some("Kubelet stopped posting node status.".into())
        ))
    );
    assert_eq!(
        taints_of(&n1),
        vec![
            (
                "node.kubernetes.io/unreachable".into(),
                "NoExecute".into(),
                true
            ),
            (
                "node.kubernetes.io/unreachable".into(),
                "NoSchedule".into(),
                true
            ),
        ]
    );
    eventually_some("doomed is evicted", WITHIN, || async {
        pods.get_opt("doomed")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    // Tolerated for 2 s: evicted, but not before 2 s after the taint.
    eventually_some("brief is evicted", WITHIN, || async {
        pods.get_opt("brief").await.unwrap().is_none().then_some(())
    })
    .await;
    let tainted_at = n1
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .and_then(|t| t.iter().find(|t| t.effect == "NoExecute"))
        .and_then(|t| t.time_added.clone())
        .unwrap()
        .0;
    let evicted_at = eviction_time(&client, "brief").await;
    assert!(
        evicted_at.duration_since(tainted_at) >= k8s_openapi::jiff::SignedDuration::from_secs(2),
        "tainted at {tainted_at}, evicted at {evicted_at}"
    );
    let tolerant = pods.get("tolerant").await.unwrap();
    assert!(tolerant.metadata.deletion_timestamp.is_none());
    eventually_some("a NodeNotReady event", WITHIN, || {
        has_event(&client, "n1", "NodeNotReady")
    })
    .await;
    eventually_some("a TaintManagerEviction event", WITHIN, || {
        has_event(&client, "doomed", "TaintManagerEviction")
    })
    .await;

    // Renewed again: the taints go; Ready is the agent's to set.
    on.store(true, Ordering::SeqCst);
    eventually_some("n1's taints are removed", WITHIN, || async {
        let n = nodes.get("n1").await.unwrap();
        taints_of(&n).is_empty().then_some(())
    })
    .await;
    set_ready(&client, "n1", "True").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n1 = nodes.get("n1").await.unwrap();
    assert_eq!(ready_of(&n1).map(|r| r.0).as_deref(), Some("True"));
    assert!(taints_of(&n1).is_empty());
    assert!(pods.get_opt("tolerant").await.unwrap().is_some());
    renewer.abort();
    controller.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_reporting_not_ready_is_tainted_not_ready() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let nodes: Api<Node> = Api::all(client.clone());
    register(&client, "sick", "False").await;
    let on = Arc::new(AtomicBool::new(true));
    let renewer = renew(client.clone(), "sick", on);
    let controller = kgate_cluster::controllers::node_lifecycle::spawn(client.clone(), GRACE);
    eventually_some("sick is tainted not-ready", WITHIN, || async {
        let n = nodes.get("sick").await.unwrap();
        (taints_of(&n)
            == vec![
                (
                    "node.kubernetes.io/not-ready".into(),
                    "NoExecute".into(),
                    true,
                ),
                (
                    "node.kubernetes.io/not-ready".into(),
                    "NoSchedule".into(),
                    true,
                ),
            ])
        .then_some(())
    })
    .await;
    // Its condition is the agent's: still False, not Unknown.
    let n = nodes.get("sick").await.unwrap();
    assert_eq!(ready_of(&n).map(|r| r.0).as_deref(), Some("False"));
    set_ready(&client, "sick", "True").await;
    eventually_some(
        "the not-ready taints go with Ready=True",
        WITHIN,
        || async {
            let n = nodes.get("sick").await.unwrap();
            taints_of(&n).is_empty().then_some(())
        },
    )
    .await;
    renewer.abort();
    controller.abort();
}
