//! The ReplicaSet controller (kube's `pkg/controller/replicaset`): keeps `spec.replicas` active
//! pods matching each ReplicaSet's selector and controlled by it. It creates missing pods from
//! the template, deletes extras (unscheduled, pending and not-ready ones first, then the
//! newest), adopts matching orphans, releases owned pods that stopped matching, and reports
//! `status` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
//! observedGeneration) through the status subresource.
//!
//! It runs kube-runtime's applier (the engine under `Controller`) over a reflector of
//! ReplicaSets and the pod watch (its own, or one shared through
//! [`SharedPods`](super::shared_pods::SharedPods)), so the pod watch both fills the cache the
//! reconciler reads and triggers the owner (or, for an orphan, every ReplicaSet whose selector
//! matches it). As kube's controller, it keeps "expectations": after creating or deleting pods
//! it does not act again for that ReplicaSet until the watch has shown those changes, so a stale
//! cache never causes a second round of creations.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{stream, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use serde_json::{json, Value};

use super::shared_pods::spawn_with_own_pods;
use super::workloads_common::{
    claim, controller_of, controller_ref, delete_if_uid, is_not_found, is_pod_active,
    is_pod_available, is_pod_ready, now, object_reference, one_by_one, owners_to_sync, ready_since,
    record_event, run_applier, status_code, until_available, Error, RESYNC,
};

/// The component name in Events.
const COMPONENT: &str = "replicaset-controller";
/// At most this many pods are created or deleted in one reconcile (kube's burstReplicas).
const BURST_REPLICAS: usize = 500;
/// Expectations not met within this time are dropped (kube: 5 minutes); a missed watch event
/// then only delays the next round.
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the controller until the task is aborted, with a pod watch of its own.
pub fn spawn(client: Client) -> tokio::task::JoinHandle<()> {
    spawn_with_own_pods(client, run)
}

/// Runs the controller until the task is aborted, on a
/// [`SharedPods`](super::shared_pods::SharedPods)' store and one of its subscriptions.
pub fn spawn_with_pods(
    client: Client,
    pods: Store<Pod>,
    events: impl Stream<Item = Arc<Event<Pod>>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(client, pods, events))
}

/// What a ReplicaSet waits to see in the pod watch before it acts again.
#[derive(Debug)]
struct Expectation {
    /// Creations not yet seen.
    creates: usize,
    /// Pods of this ReplicaSet already known when the creations were asked for.
    known: HashSet<String>,
    /// uids of deletions not yet seen.
    deletes: HashSet<String>,
    since: Instant,
}

/// Expectations by ReplicaSet key ("namespace/name"), as kube's `ControllerExpectations`.
#[derive(Debug, Default)]
struct Expectations(Mutex<HashMap<String, Expectation>>);

impl Expectations {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Expectation>) -> T) -> T {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut map)
    }

    fn expect_creations(&self, key: &str, count: usize, known: HashSet<String>) {
        self.with(|m| {
            m.insert(
                key.to_owned(),
                Expectation {
                    creates: count,
                    known,
                    deletes: HashSet::new(),
                    since: Instant::now(),
                },
            )
        });
    }

    fn expect_deletions(&self, key: &str, uids: HashSet<String>) {
        self.with(|m| {
            m.insert(
                key.to_owned(),
                Expectation {
                    creates: 0,
                    known: HashSet::new(),
                    deletes: uids,
                    since: Instant::now(),
                },
            )
        });
    }

    /// `count` creations will never be seen (they failed or were skipped).
    fn creations_failed(&self, key: &str, count: usize) {
        self.with(|m| {
            if let Some(e) = m.get_mut(key) {
                e.creates = e.creates.saturating_sub(count);
            }
        });
    }

    fn deletion_failed(&self, key: &str, uid: &str) {
        self.with(|m| {
            if let Some(e) = m.get_mut(key) {
                e.deletes.remove(uid);
            }
        });
    }

    /// A watch event about `pod`.
    fn observe(&self, pod: &Pod, deleted: bool) {
        let Some(owner) = controller_of(&pod.metadata).filter(|r| r.kind == "ReplicaSet") else {
            return;
        };
        let key = format!("{}/{}", pod.namespace().unwrap_or_default(), owner.name);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.with(|m| {
            if let Some(e) = m.get_mut(&key) {
                if deleted || pod.metadata.deletion_timestamp.is_some() {
                    e.deletes.remove(&uid);
                }
                if !deleted && e.creates > 0 && e.known.insert(uid) {
                    e.creates -= 1;
                }
            }
        });
    }

    /// True when the ReplicaSet may act: nothing pending (checked against the cache too), or
    /// the expectations expired.
    fn satisfied(&self, key: &str, namespace: &str, pods: &Store<Pod>) -> bool {
        self.with(|m| {
            let Some(e) = m.get_mut(key) else {
                return true;
            };
            if !e.deletes.is_empty() {
                let live: HashSet<String> = pods
                    .state()
                    .iter()
                    .filter(|p| {
                        p.metadata.namespace.as_deref() == Some(namespace)
                            && p.metadata.deletion_timestamp.is_none()
                    })
                    .filter_map(|p| p.metadata.uid.clone())
                    .collect();
                e.deletes.retain(|uid| live.contains(uid));
            }
            let done = (e.creates == 0 && e.deletes.is_empty())
                || e.since.elapsed() > EXPECTATIONS_TIMEOUT;
            if done {
                m.remove(key);
            }
            done
        })
    }

    fn forget(&self, key: &str) {
        self.with(|m| m.remove(key));
    }
}

struct Ctx {
    client: Client,
    pods: Store<Pod>,
    expectations: Arc<Expectations>,
}

async fn run(
    client: Client,
    pod_store: Store<Pod>,
    pod_events: impl Stream<Item = Arc<Event<Pod>>> + Send + 'static,
) {
    let rs_api: Api<ReplicaSet> = Api::all(client.clone());
    let (rs_store, rs_writer) = reflector::store();
    let expectations = Arc::new(Expectations::default());

    let forgetter = expectations.clone();
    let rs_trigger = watcher(rs_api, watcher::Config::default())
        .default_backoff()
        .reflect(rs_writer)
        .map_ok(move |event| match event {
            Event::Apply(rs) | Event::InitApply(rs) => vec![ObjectRef::from_obj(&rs)],
            Event::Delete(rs) => {
                forgetter.forget(&format!(
                    "{}/{}",
                    rs.namespace().unwrap_or_default(),
                    rs.name_any()
                ));
                Vec::new()
            }
            Event::Init | Event::InitDone => Vec::new(),
        });
    let owners = rs_store.clone();
    let observer = expectations.clone();
    let pod_trigger = pod_events.map(move |event| {
        Ok::<_, watcher::Error>(match &*event {
            Event::Apply(pod) | Event::InitApply(pod) => {
                observer.observe(pod, false);
                replicasets_of(pod, &owners)
            }
            Event::Delete(pod) => {
                observer.observe(pod, true);
                replicasets_of(pod, &owners)
            }
            Event::Init | Event::InitDone => Vec::new(),
        })
    });
    let queue = one_by_one(stream::select(rs_trigger, pod_trigger));
    let ctx = Arc::new(Ctx {
        client,
        pods: pod_store,
        expectations,
    });
    run_applier("replicaset", reconcile, ctx, rs_store, queue, 16).await;
}

/// The ReplicaSets a pod event concerns: its controller if that is a ReplicaSet, else (an
/// orphan) every ReplicaSet of its namespace whose selector matches it.
fn replicasets_of(pod: &Pod, replicasets: &Store<ReplicaSet>) -> Vec<ObjectRef<ReplicaSet>> {
    owners_to_sync(&pod.metadata, replicasets, |rs| {
        rs.spec.as_ref().map(|s| &s.selector)
    })
}

async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ctx.pods.wait_until_ready().await.is_err() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = rs.namespace().unwrap_or_default();
    let name = rs.name_any();
    let key = format!("{ns}/{name}");
    let Some(spec) = rs.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let needs_sync = ctx.expectations.satisfied(&key, &ns, &ctx.pods);
    let active: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()) && is_pod_active(p))
        .collect();
    let pods = claim_pods(&ctx, &rs, active).await?;

    let mut manage_error = None;
    if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        if let Err(e) = manage_replicas(&ctx, &rs, &key, &pods).await {
            manage_error = Some(e);
        }
    }
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let status = calculate_status(&rs, &pods, manage_error.as_ref());
    update_status(&ctx, &rs, status).await?;
    if let Some(e) = manage_error {
        return Err(e);
    }
    if !needs_sync {
        // Expectations pending: the watch normally brings us back; this is the fallback.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    // Come back when the next ready pod becomes available.
    let now = Timestamp::now();
    let next = pods
        .iter()
        .filter_map(|p| until_available(p, min_ready, now))
        .filter(|d| !d.is_zero())
        .min();
    Ok(Action::requeue(
        next.map_or(RESYNC, |d| d + Duration::from_millis(100)),
    ))
}

/// kube's `ClaimPods`: the active pods this ReplicaSet controls after adopting matching orphans
/// and releasing owned pods that no longer match.
async fn claim_pods(
    ctx: &Ctx,
    rs: &ReplicaSet,
    pods: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, Error> {
    let Some(spec) = rs.spec.as_ref() else {
        return Ok(Vec::new());
    };
    claim(&ctx.client, rs, &spec.selector, pods).await
}

/// kube's `manageReplicas`: creates or deletes pods so that the active ones number
/// `spec.replicas`.
async fn manage_replicas(
    ctx: &Ctx,
    rs: &ReplicaSet,
    key: &str,
    pods: &[Arc<Pod>],
) -> Result<(), Error> {
    let Some(spec) = rs.spec.as_ref() else {
        return Ok(());
    };
    let wanted = usize::try_from(spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
    let ns = rs.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match pods.len().cmp(&wanted) {
        Ordering::Equal => Ok(()),
        Ordering::Less => {
            let diff = (wanted - pods.len()).min(BURST_REPLICAS);
            let known = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
            ctx.expectations.expect_creations(key, diff, known);
            let pod = pod_from_template(rs);
            let params = PostParams::default();
            // Slow start as kube: batches of 1, 2, 4, ... stop at the first failing batch.
            let mut batch = 1;
            let mut done = 0;
            let mut created = 0;
            let mut first_error = None;
            while done < diff {
                let size = batch.min(diff - done);
                let results =
                    futures::future::join_all((0..size).map(|_| api.create(&params, &pod))).await;
                done += size;
                let mut names = Vec::new();
                for r in results {
                    match r {
                        Ok(p) => {
                            created += 1;
                            names.push(p.name_any());
                        }
                        Err(e) => {
                            ctx.expectations.creations_failed(key, 1);
                            first_error.get_or_insert(e);
                        }
                    }
                }
                pod_events(ctx, rs, "SuccessfulCreate", "Created", names).await;
                if first_error.is_some() {
                    break;
                }
                batch *= 2;
            }
            ctx.expectations.creations_failed(key, diff - done);
            if created > 0 {
                tracing::debug!(replicaset = key, created, "created pods");
            }
            match first_error {
                None => Ok(()),
                Some(e) => {
                    record_event(
                        &ctx.client,
                        COMPONENT,
                        object_reference("apps/v1", "ReplicaSet", &rs.metadata),
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    )
                    .await;
                    Err(e.into())
                }
            }
        }
        Ordering::Greater => {
            let diff = (pods.len() - wanted).min(BURST_REPLICAS);
            let victims = pods_to_delete(pods, diff);
            let uids = victims
                .iter()
                .filter_map(|p| p.metadata.uid.clone())
                .collect();
            ctx.expectations.expect_deletions(key, uids);
            let results = futures::future::join_all(victims.iter().map(|p| {
                let api = api.clone();
                async move {
                    let name = p.name_any();
                    (p, api.delete(&name, &delete_if_uid(&p.metadata)).await)
                }
            }))
            .await;
            let mut first_error = None;
            let mut names = Vec::new();
            for (pod, result) in results {
                match result {
                    Ok(_) => names.push(pod.name_any()),
                    Err(e) if is_not_found(&e) => {
                        ctx.expectations
                            .deletion_failed(key, pod.metadata.uid.as_deref().unwrap_or(""));
                    }
                    Err(e) => {
                        ctx.expectations
                            .deletion_failed(key, pod.metadata.uid.as_deref().unwrap_or(""));
                        first_error.get_or_insert(e);
                    }
                }
            }
            pod_events(ctx, rs, "SuccessfulDelete", "Deleted", names).await;
            match first_error {
                None => Ok(()),
                Some(e) => Err(e.into()),
            }
        }
    }
}

/// kube's "Created pod: x" / "Deleted pod: x" Events on the ReplicaSet.
async fn pod_events(ctx: &Ctx, rs: &ReplicaSet, reason: &str, verb: &str, names: Vec<String>) {
    let object = object_reference("apps/v1", "ReplicaSet", &rs.metadata);
    futures::future::join_all(names.into_iter().map(|name| {
        record_event(
            &ctx.client,
            COMPONENT,
            object.clone(),
            "Normal",
            reason,
            format!("{verb} pod: {name}"),
        )
    }))
    .await;
}

/// kube's `GetPodFromTemplate`: a pod named `<rs>-<random>` with the template's labels,
/// annotations, finalizers and spec, controlled by the ReplicaSet.
fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref("apps/v1", "ReplicaSet", &rs.metadata)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// The `count` pods to delete first, as kube's `ActivePodsWithRanks` orders them (simplified):
/// unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
/// more pods of this set on the same node first, ready more recently first, more restarts
/// first, newer first.
fn pods_to_delete(pods: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone());
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in pods {
        if let Some(n) = node(p) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let rank = |p: &Pod| node(p).and_then(|n| per_node.get(&n).copied()).unwrap_or(0);
    let phase = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map_or(0, |cs| {
                cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
            })
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let mut sorted: Vec<Arc<Pod>> = pods.to_vec();
    sorted.sort_by(|a, b| {
        node(a)
            .is_some()
            .cmp(&node(b).is_some())
            .then_with(|| phase(a).cmp(&phase(b)))
            .then_with(|| is_pod_ready(a).cmp(&is_pod_ready(b)))
            .then_with(|| rank(b).cmp(&rank(a)))
            .then_with(
                || match (ready_since(a).flatten(), ready_since(b).flatten()) {
                    (Some(x), Some(y)) => y.cmp(&x),
                    _ => Ordering::Equal,
                },
            )
            .then_with(|| restarts(b).cmp(&restarts(a)))
            .then_with(|| match (created(a), created(b)) {
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (x, y) => y.cmp(&x),
            })
    });
    sorted.truncate(count);
    sorted
}

/// The status kube's `calculateStatus` computes from the claimed active pods.
fn calculate_status(rs: &ReplicaSet, pods: &[Arc<Pod>], manage_error: Option<&Error>) -> Value {
    let spec = rs.spec.clone().unwrap_or_default();
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let now_ts = Timestamp::now();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| is_pod_ready(p)).count();
    let available = pods
        .iter()
        .filter(|p| is_pod_available(p, min_ready, now_ts))
        .count();
    let mut conditions: Vec<ReplicaSetCondition> = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match manage_error {
        Some(err) if !has_failure => {
            let wanted = usize::try_from(spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
            let reason = if pods.len() < wanted {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            conditions.push(ReplicaSetCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(err.to_string()),
                last_transition_time: Some(now()),
            });
        }
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    // As kube serializes it: zero counts (but replicas) are absent.
    let nonzero = |n: usize| if n == 0 { Value::Null } else { json!(n) };
    json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": nonzero(fully_labeled),
        "readyReplicas": nonzero(ready),
        "availableReplicas": nonzero(available),
        "observedGeneration": rs.metadata.generation,
        "conditions": if conditions.is_empty() { Value::Null } else { serde_json::to_value(&conditions).unwrap_or(Value::Null) },
    })
}

/// Writes the status through the status subresource when it changed.
async fn update_status(ctx: &Ctx, rs: &ReplicaSet, status: Value) -> Result<(), Error> {
    let current = rs
        .status
        .as_ref()
        .map(serde_json::to_value)
        .transpose()?
        .unwrap_or_else(|| json!({}));
    let field = |v: &Value, f: &str| v.get(f).and_then(Value::as_i64).unwrap_or(0);
    let same = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|f| field(&current, f) == field(&status, f))
        && current.get("conditions").unwrap_or(&Value::Null) == &status["conditions"];
    if same {
        return Ok(());
    }
    // kube's role grants `update` (not patch) on replicasets/status: a PUT of the whole object,
    // retried once on a fresh read after a conflict, as kube's updateReplicaSetStatus.
    let api: Api<ReplicaSet> =
        Api::namespaced(ctx.client.clone(), &rs.namespace().unwrap_or_default());
    let status: ReplicaSetStatus = serde_json::from_value(status)?;
    let mut next = rs.clone();
    for attempt in 0..2 {
        next.status = Some(status.clone());
        match api
            .replace_status(&rs.name_any(), &PostParams::default(), &next)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {
                ctx.expectations.forget(&format!(
                    "{}/{}",
                    rs.namespace().unwrap_or_default(),
                    rs.name_any()
                ));
                return Ok(());
            }
            Err(e) if attempt == 0 && status_code(&e) == Some(409) => {
                match api.get_opt(&rs.name_any()).await? {
                    Some(fresh) if fresh.metadata.uid == rs.metadata.uid => next = fresh,
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: i64) -> Arc<Pod> {
        let mut v = json!({
            "metadata": {"name": name, "creationTimestamp": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::from_second(created).unwrap())},
            "spec": {"containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        });
        if let Some(n) = node {
            v["spec"]["nodeName"] = json!(n);
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    #[test]
    fn deletion_prefers_unscheduled_pending_unready_then_newest() {
        let pods = vec![
            pod("running-old", Some("n1"), "Running", true, 100),
            pod("running-new", Some("n2"), "Running", true, 200),
            pod("unready", Some("n3"), "Running", false, 50),
            pod("pending", Some("n4"), "Pending", false, 10),
            pod("unscheduled", None, "Pending", false, 5),
        ];
        let names: Vec<String> = pods_to_delete(&pods, 5)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "running-new",
                "running-old"
            ]
        );
    }

    #[test]
    fn new_pods_come_from_the_template_with_a_controller_ref() {
        let rs: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-abc", "namespace": "ns", "uid": "u1"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        }))
        .unwrap();
        let pod = pod_from_template(&rs);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-abc-"));
        assert_eq!(pod.metadata.labels.unwrap()["app"], "web");
        let owner = &pod.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.uid.as_str(),
                owner.controller,
                owner.block_owner_deletion
            ),
            ("ReplicaSet", "u1", Some(true), Some(true))
        );
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("nginx")
        );
    }
}
