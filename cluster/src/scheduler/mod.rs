//! The scheduler, as kube-scheduler: it watches Nodes and Pods, keeps a cache of every node's
//! facts and requested resources ([`cache`]), and places each pending pod that names
//! `default-scheduler` (or no scheduler) and has no node yet: the filters ([`filters`]) drop the
//! nodes that cannot run it, scoring ([`scoring`]) picks the least allocated of the rest, and a
//! `pods/binding` POST assigns it. The pod is assumed on its node as soon as it is picked, so
//! the next decision counts it before the watch confirms the binding. When no node fits, the
//! pod waits in the queue ([`queue`]) until the cluster changes (or a slow backoff passes), and
//! a `FailedScheduling` event plus a `PodScheduled=False` condition say why ([`report`]).
//!
//! Everything goes through the API with kube-rs watches; the cache is this component's own
//! reflector of the two watches, shaped for fast decisions (one pass over the nodes, no
//! listing per pod).

pub mod cache;
pub mod filters;
pub mod info;
pub mod queue;
mod report;
pub mod resources;
pub mod scoring;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

pub use cache::Cache;
pub use filters::FitError;
pub use info::{pod_key, PodInfo, PodKey};
pub use scoring::schedule_one;

use queue::Queue;
use report::Report;

/// The scheduler name this scheduler answers to (`spec.schedulerName`; unset means it).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// Bindings in flight at once.
const MAX_BINDS_IN_FLIGHT: usize = 64;
/// Decisions made before looking at the watches again.
const BATCH: usize = 32;
/// Reports waiting to be written before new ones are dropped.
const REPORT_QUEUE: usize = 1024;

/// Runs the scheduler until the task is aborted.
pub fn spawn(client: kube::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (reports, receiver) = mpsc::channel(REPORT_QUEUE);
        let scheduler = Scheduler::new(client.clone(), reports);
        // One task: aborting it stops both the scheduling loop and the reporter.
        tokio::join!(scheduler.run(), report::run(client, receiver));
    })
}

/// Whether this scheduler must place the pod.
pub fn is_ours(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let unassigned = spec.node_name.as_deref().unwrap_or("").is_empty();
    let named_us = spec
        .scheduler_name
        .as_deref()
        .is_none_or(|n| n.is_empty() || n == SCHEDULER_NAME);
    let pending = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Pending");
    let gated = spec
        .scheduling_gates
        .as_ref()
        .is_some_and(|g| !g.is_empty());
    unassigned && named_us && pending && pod.metadata.deletion_timestamp.is_none() && !gated
}

/// An unassigned pod waiting for a node.
struct Pending {
    pod: Arc<Pod>,
    info: Arc<PodInfo>,
}

/// The end of a binding request.
struct Bound {
    key: PodKey,
    node: String,
    pod: Arc<Pod>,
    result: Result<(), kube::Error>,
}

struct Scheduler {
    client: kube::Client,
    cache: Cache,
    pending: HashMap<PodKey, Pending>,
    queue: Queue,
    in_flight: HashSet<PodKey>,
    round_robin: u64,
    reports: mpsc::Sender<Report>,
    /// Keys seen since the watch (re)started its list; None once the list is done.
    node_relist: Option<HashSet<String>>,
    pod_relist: Option<HashSet<PodKey>>,
    nodes_synced: bool,
    pods_synced: bool,
}

impl Scheduler {
    fn new(client: kube::Client, reports: mpsc::Sender<Report>) -> Scheduler {
        Scheduler {
            client,
            cache: Cache::new(),
            pending: HashMap::new(),
            queue: Queue::default(),
            in_flight: HashSet::new(),
            round_robin: 0,
            reports,
            node_relist: None,
            pod_relist: None,
            nodes_synced: false,
            pods_synced: false,
        }
    }

    async fn run(mut self) {
        let nodes = watcher(
            Api::<Node>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff();
        let pods = watcher(
            Api::<Pod>::all(self.client.clone()),
            watcher::Config::default(),
        )
        .default_backoff();
        let mut nodes = std::pin::pin!(nodes);
        let mut pods = std::pin::pin!(pods);
        let mut binds = FuturesUnordered::new();
        info!("scheduler started");
        loop {
            let can_schedule = self.nodes_synced
                && self.pods_synced
                && self.queue.has_active()
                && binds.len() < MAX_BINDS_IN_FLIGHT;
            let wake = self
                .queue
                .next_due()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                biased;
                Some(bound) = binds.next(), if !binds.is_empty() => self.on_bound(bound),
                event = nodes.next() => match event {
                    Some(Ok(event)) => self.on_node(event),
                    Some(Err(error)) => warn!(%error, "watching nodes failed; retrying"),
                    None => return,
                },
                event = pods.next() => match event {
                    Some(Ok(event)) => self.on_pod(event),
                    Some(Err(error)) => warn!(%error, "watching pods failed; retrying"),
                    None => return,
                },
                () = tokio::time::sleep_until(wake.into()) => self.queue.release(Instant::now()),
                () = std::future::ready(()), if can_schedule => self.schedule_batch(&mut binds),
            }
        }
    }

    fn on_node(&mut self, event: Event<Node>) {
        match event {
            Event::Apply(node) | Event::InitApply(node) => {
                if let (Some(seen), Some(name)) = (&mut self.node_relist, &node.metadata.name) {
                    seen.insert(name.clone());
                }
                if self.cache.upsert_node(&node) {
                    self.queue.cluster_changed(Instant::now());
                }
            }
            Event::Delete(node) => {
                if let Some(name) = &node.metadata.name {
                    self.cache.remove_node(name);
                }
            }
            Event::Init => self.node_relist = Some(HashSet::new()),
            Event::InitDone => {
                let seen = self.node_relist.take().unwrap_or_default();
                for name in self.cache.node_names() {
                    if !seen.contains(&name) {
                        self.cache.remove_node(&name);
                    }
                }
                self.nodes_synced = true;
                self.queue.cluster_changed(Instant::now());
                info!(nodes = self.cache.node_count(), "scheduler: nodes listed");
            }
        }
    }

    fn on_pod(&mut self, event: Event<Pod>) {
        match event {
            Event::Apply(pod) | Event::InitApply(pod) => {
                if let Some(seen) = &mut self.pod_relist {
                    seen.insert(pod_key(&pod));
                }
                self.apply_pod(pod);
            }
            Event::Delete(pod) => self.delete_pod(&pod_key(&pod)),
            Event::Init => self.pod_relist = Some(HashSet::new()),
            Event::InitDone => {
                let seen = self.pod_relist.take().unwrap_or_default();
                let gone: Vec<PodKey> = self
                    .pending
                    .keys()
                    .cloned()
                    .chain(self.cache.pod_keys())
                    .filter(|k| !seen.contains(k) && !self.in_flight.contains(k))
                    .collect();
                for key in gone {
                    self.delete_pod(&key);
                }
                self.pods_synced = true;
                self.queue.cluster_changed(Instant::now());
            }
        }
    }

    fn apply_pod(&mut self, pod: Pod) {
        let key = pod_key(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        if let Some(node) = node {
            // Bound (by us or anyone): it counts on its node until it ends.
            if self.pending.remove(&key).is_some() {
                self.queue.remove(&key);
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded" | "Failed")) {
                if self.cache.remove_pod(&key) {
                    self.queue.cluster_changed(Instant::now());
                }
            } else {
                self.cache.add_bound(&PodInfo::from_pod(&pod), &node);
            }
            return;
        }
        if !is_ours(&pod) {
            if self.pending.remove(&key).is_some() {
                self.queue.remove(&key);
            }
            return;
        }
        let info = PodInfo::from_pod(&pod);
        let previous = self.pending.get(&key);
        let new = previous.is_none();
        let changed = previous.is_some_and(|p| {
            p.info.uid != info.uid
                || p.pod.spec != pod.spec
                || p.pod.metadata.labels != pod.metadata.labels
        });
        self.pending.insert(
            key.clone(),
            Pending {
                pod: Arc::new(pod),
                info: Arc::new(info),
            },
        );
        if self.in_flight.contains(&key) || self.cache.is_assumed(&key) {
            // Being bound: this is the pod as it was before the binding lands.
            return;
        }
        if new {
            self.queue.add(&key);
        } else if changed {
            self.queue.pod_updated(&key);
        }
    }

    fn delete_pod(&mut self, key: &str) {
        if self.pending.remove(key).is_some() {
            self.queue.remove(key);
        }
        if self.cache.remove_pod(key) {
            // Room was freed: pods that did not fit may now.
            self.queue.cluster_changed(Instant::now());
        }
    }

    /// Decides for up to [`BATCH`] queued pods; each placed pod is assumed on its node and its
    /// binding sent.
    fn schedule_batch(&mut self, binds: &mut FuturesUnordered<BoxFuture<'static, Bound>>) {
        let now = Instant::now();
        for _ in 0..BATCH {
            if binds.len() >= MAX_BINDS_IN_FLIGHT {
                break;
            }
            let Some(key) = self.queue.pop() else {
                break;
            };
            let Some(pending) = self.pending.get(&key) else {
                continue;
            };
            if self.in_flight.contains(&key) || self.cache.is_assumed(&key) {
                continue;
            }
            let (pod, info) = (pending.pod.clone(), pending.info.clone());
            match schedule_one(&self.cache, &info, &mut self.round_robin) {
                Ok(node) => {
                    debug!(pod = %key, %node, "binding");
                    self.cache.assume(&info, &node);
                    self.in_flight.insert(key.clone());
                    binds.push(Box::pin(bind(self.client.clone(), key, pod, node)));
                }
                Err(fit) => {
                    info!(pod = %key, reason = %fit, "unable to schedule pod");
                    self.queue.failed(&key, true, now);
                    let report = Report::Unschedulable {
                        pod,
                        message: fit.message().to_owned(),
                    };
                    if self.reports.try_send(report).is_err() {
                        debug!(pod = %key, "report queue full; FailedScheduling not recorded");
                    }
                }
            }
        }
    }

    fn on_bound(&mut self, bound: Bound) {
        self.in_flight.remove(&bound.key);
        match bound.result {
            Ok(()) => {
                self.queue.succeeded(&bound.key);
                let report = Report::Scheduled {
                    pod: bound.pod,
                    node: bound.node,
                };
                // Best effort: a full queue drops the Normal event, never the binding.
                let _ = self.reports.try_send(report);
            }
            Err(error) => {
                self.cache.forget(&bound.key);
                let code = match &error {
                    kube::Error::Api(status) => status.code,
                    _ => 0,
                };
                if code == 404 || code == 409 {
                    // Gone, or already bound by someone else: the watch brings the truth.
                    debug!(pod = %bound.key, %error, "binding refused");
                    self.queue.remove(&bound.key);
                } else if self.pending.contains_key(&bound.key) {
                    warn!(pod = %bound.key, node = %bound.node, %error, "binding failed; retrying");
                    self.queue.failed(&bound.key, false, Instant::now());
                }
            }
        }
    }
}

/// POSTs `pods/NAME/binding`.
async fn bind(client: kube::Client, key: PodKey, pod: Arc<Pod>, node: String) -> Bound {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some(node.clone()),
            ..ObjectReference::default()
        },
    };
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let result = api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await
        .map(|_| ());
    Bound {
        key,
        node,
        pod,
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(extra: serde_json::Value) -> Pod {
        let mut p = json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}});
        for (k, v) in extra.as_object().unwrap() {
            for (k2, v2) in v.as_object().unwrap() {
                p[k][k2] = v2.clone();
            }
        }
        serde_json::from_value(p).unwrap()
    }

    #[test]
    fn which_pods_are_ours() {
        assert!(is_ours(&pod(json!({}))));
        assert!(is_ours(&pod(
            json!({"spec": {"schedulerName": "default-scheduler"}})
        )));
        assert!(!is_ours(&pod(json!({"spec": {"schedulerName": "other"}}))));
        // NodeName preset: not ours to place.
        assert!(!is_ours(&pod(json!({"spec": {"nodeName": "n1"}}))));
        assert!(!is_ours(&pod(json!({"status": {"phase": "Failed"}}))));
        assert!(!is_ours(&pod(
            json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}})
        )));
        assert!(!is_ours(&pod(
            json!({"spec": {"schedulingGates": [{"name": "wait"}]}})
        )));
    }
}
