//! The node lifecycle controller, as kube-controller-manager's: a node whose Lease in
//! `kube-node-lease` was not renewed for the grace period (or that never had one, counted from
//! when the controller first saw it) gets every condition its agent owns set to Unknown
//! through `nodes/status` and the `node.kubernetes.io/unreachable` taints (NoSchedule and
//! NoExecute); a node whose agent reports Ready=False gets the `node.kubernetes.io/not-ready`
//! ones. When the Lease is renewed again the taints go (Ready is the agent's to set).
//!
//! It is also the taint manager: a pod on a node with a `NoExecute` taint it does not tolerate
//! is deleted (its controller recreates it elsewhere), at once or when its
//! `tolerationSeconds` run out. `NodeNotReady` and `TaintManagerEviction` Events say so.
//!
//! Nodes and Leases are watched through reflectors, Pods through a
//! [`SharedPods`](super::shared_pods::SharedPods) store (its own, or one shared with other
//! controllers); every pass (each second) works from them, and a failed write is simply done
//! again on the next pass.

mod taints;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::task::JoinHandle;

use super::shared_pods::{spawn_with_own_pods, AbortOnDrop};
use taints::{Eviction, Health};

/// kube-controller-manager's default `--node-monitor-grace-period`.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(40);

/// The namespace of the node heartbeats.
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often every node is looked at.
const PASS_EVERY: Duration = Duration::from_secs(1);
/// The component named in the Events of node health.
const NODE_COMPONENT: &str = "node-controller";
/// The component named in the Events of evictions.
const EVICTION_COMPONENT: &str = "taint-eviction-controller";

/// Runs the controller until the task is aborted: a node whose Lease was not renewed for
/// `grace_period` becomes NotReady.
pub fn spawn(client: kube::Client, grace_period: Duration) -> JoinHandle<()> {
    // It reads the store only; the subscription it does not use is dropped at once.
    spawn_with_own_pods(client, move |client, pods, _events| {
        run(client, pods, grace_period)
    })
}

/// As [`spawn`], reading pods from a [`SharedPods`](super::shared_pods::SharedPods)' store.
pub fn spawn_with_pods(
    client: kube::Client,
    pods: Store<Pod>,
    grace_period: Duration,
) -> JoinHandle<()> {
    tokio::spawn(run(client, pods, grace_period))
}

/// A reflector's store of `api`, kept up to date by a task that ends with the guard.
fn reflect<K>(api: Api<K>, what: &'static str) -> (Store<K>, AbortOnDrop)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    (store, AbortOnDrop(tokio::spawn(drain(stream, what))))
}

async fn drain<S, T>(stream: S, what: &'static str)
where
    S: Stream<Item = Result<T, watcher::Error>> + Send,
{
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        if let Err(e) = event {
            tracing::warn!(resource = what, error = %e, "node lifecycle: watch failed; retrying");
        }
    }
}

async fn run(client: kube::Client, pods: Store<Pod>, grace_period: Duration) {
    let (nodes, _n) = reflect(Api::<Node>::all(client.clone()), "nodes");
    let (leases, _l) = reflect(
        Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
        "leases",
    );
    for (ready, what) in [
        (nodes.wait_until_ready().await, "nodes"),
        (leases.wait_until_ready().await, "leases"),
        (pods.wait_until_ready().await, "pods"),
    ] {
        if ready.is_err() {
            // Only when the reflector task ended, which only an abort does.
            tracing::warn!(resource = what, "node lifecycle: reflector gone");
            return;
        }
    }
    let grace = SignedDuration::try_from(grace_period).unwrap_or(SignedDuration::from_secs(40));
    let mut controller = Controller {
        client,
        nodes,
        leases,
        pods,
        grace,
        first_seen: HashMap::new(),
        reported: HashSet::new(),
    };
    tracing::info!(grace = ?grace_period, "node lifecycle controller started");
    let mut tick = tokio::time::interval(PASS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        controller.pass().await;
    }
}

struct Controller {
    client: kube::Client,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    grace: SignedDuration,
    /// When each node was first seen: the start of its grace period without a Lease.
    first_seen: HashMap<String, Timestamp>,
    /// Nodes whose NotReady Event was recorded (until they are healthy again).
    reported: HashSet<String>,
}

impl Controller {
    async fn pass(&mut self) {
        let now = Timestamp::now();
        let nodes = self.nodes.state();
        let names: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
        self.first_seen.retain(|n, _| names.contains(n));
        self.reported.retain(|n| names.contains(n));
        let mut no_execute: HashMap<String, Vec<Taint>> = HashMap::new();
        for node in nodes {
            let name = node.name_any();
            let node = match self.reconcile(&node, now).await {
                Ok(updated) => updated.map_or(node, Arc::new),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "node lifecycle: update failed; will retry");
                    node
                }
            };
            let taints: Vec<Taint> = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|t| t.effect == taints::NO_EXECUTE)
                .collect();
            if !taints.is_empty() {
                no_execute.insert(name, taints);
            }
        }
        if !no_execute.is_empty() {
            self.evict(&no_execute, now).await;
        }
    }

    fn health(&mut self, node: &Node, now: Timestamp) -> Health {
        let name = node.name_any();
        let first_seen = *self.first_seen.entry(name.clone()).or_insert(now);
        let renewed = self
            .leases
            .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE))
            .and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        let heard = renewed.map_or(first_seen, |r| r.max(first_seen));
        if now.duration_since(heard) > self.grace {
            return Health::Unreachable;
        }
        let conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        if taints::ready_status(conditions) == Some("False") {
            Health::NotReady
        } else {
            Health::Healthy
        }
    }

    /// Brings one node's conditions and taints in line; returns the node as last written.
    async fn reconcile(
        &mut self,
        node: &Node,
        now: Timestamp,
    ) -> Result<Option<Node>, kube::Error> {
        let name = node.name_any();
        let health = self.health(node, now);
        let api: Api<Node> = Api::all(self.client.clone());
        let mut latest: Option<Node> = None;
        if health == Health::Unreachable {
            let conditions = node
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            if taints::ready_status(&conditions) != Some("Unknown") {
                let patch = json!({
                    "metadata": {"resourceVersion": node.metadata.resource_version},
                    "status": {"conditions": taints::unknown_conditions(&conditions, now)},
                });
                let updated = api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                tracing::info!(node = %name, "node lifecycle: node stopped posting its status; Ready is Unknown");
                latest = Some(updated);
            }
            if self.reported.insert(name.clone()) {
                let message = format!("Node {name} status is now: NodeNotReady");
                self.record(node_ref(node), "NodeNotReady", &message, NODE_COMPONENT)
                    .await;
            }
        } else if health == Health::Healthy {
            self.reported.remove(&name);
        }
        let base = latest.as_ref().unwrap_or(node);
        let current = base
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if let Some(next) = taints::retaint(&current, health, now) {
            let patch = json!({
                "metadata": {"resourceVersion": base.metadata.resource_version},
                "spec": {"taints": if next.is_empty() { serde_json::Value::Null } else { json!(next) }},
            });
            let updated = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            tracing::info!(node = %name, health = ?health, "node lifecycle: taints updated");
            latest = Some(updated);
        }
        Ok(latest)
    }

    /// Deletes the pods on `no_execute` nodes whose tolerations ran out.
    async fn evict(&self, no_execute: &HashMap<String, Vec<Taint>>, now: Timestamp) {
        for pod in self.pods.state() {
            let Some(spec) = pod.spec.as_ref() else {
                continue;
            };
            let Some(node_taints) = spec.node_name.as_ref().and_then(|n| no_execute.get(n)) else {
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let tolerations = spec.tolerations.as_deref().unwrap_or_default();
            let due = match taints::eviction(tolerations, node_taints, now) {
                Eviction::Never => false,
                Eviction::Now => true,
                Eviction::At(t) => t <= now,
            };
            if due {
                self.evict_pod(&pod).await;
            }
        }
    }

    async fn evict_pod(&self, pod: &Pod) {
        let (Some(namespace), Some(uid)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.uid.as_deref(),
        ) else {
            return;
        };
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {
                tracing::info!(pod = %format!("{namespace}/{name}"), node = ?pod.spec.as_ref().and_then(|s| s.node_name.as_deref()), "node lifecycle: evicted");
                let message = format!("Marking for deletion Pod {namespace}/{name}");
                let reference = ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(name),
                    namespace: Some(namespace.to_owned()),
                    uid: Some(uid.to_owned()),
                    ..ObjectReference::default()
                };
                self.record(
                    reference,
                    "TaintManagerEviction",
                    &message,
                    EVICTION_COMPONENT,
                )
                .await;
            }
            // Gone already (or replaced): nothing to evict.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{namespace}/{name}"), error = %e, "node lifecycle: eviction failed; will retry");
            }
        }
    }

    /// Records a Normal core/v1 Event (best effort: a failure is logged).
    async fn record(&self, object: ObjectReference, reason: &str, message: &str, component: &str) {
        let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                // kube names events "<object>.<unix nanos in hex>" (a generateName ending in
                // '.' is not a valid name prefix: kube-apiserver refuses it).
                name: Some(format!(
                    "{}.{:x}",
                    object.name.as_deref().unwrap_or("event"),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: object,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Normal".into()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some(component.into()),
                host: None,
            }),
            reporting_component: Some(component.into()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(reason, error = %e, "node lifecycle: could not record an event");
        }
    }
}

/// The reference an Event uses for a Node (cluster-scoped: its Events live in `default`).
fn node_ref(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Node".into()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        // kube records node events with the node's name as uid when it has none.
        ..ObjectReference::default()
    }
}
