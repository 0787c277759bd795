//! The Deployment controller (kube's `pkg/controller/deployment`): each Deployment owns
//! ReplicaSets, one per pod template ("<deployment>-<pod-template-hash>"), and moves replicas
//! from the old ones to the new one as its strategy says: RollingUpdate (within maxSurge and
//! maxUnavailable, scaling old ones down only as the new one becomes available) or Recreate
//! (old ones to zero, wait for their pods to go, then the new one). It keeps the revision
//! annotations `kubectl rollout history|undo` read, prunes old ReplicaSets beyond
//! `revisionHistoryLimit`, scales proportionally on a scaling event, stops progressing while
//! paused, and reports `status` (replicas, updated, ready, available, unavailable and the
//! Available and Progressing conditions `kubectl rollout status` reads).
//!
//! It runs kube-runtime's applier over a reflector of Deployments and one of ReplicaSets (the
//! ReplicaSet cache the reconciler reads is the same watch that triggers the owner).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, TryStreamExt};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::workloads_common::{
    claim, controller_of, controller_ref, delete_if_uid, is_already_exists, is_not_found, now,
    object_reference, one_by_one, owners_to_sync, record_event, run_applier, selector_is_empty,
    Error, RESYNC,
};

/// The component name in Events.
const COMPONENT: &str = "deployment-controller";
/// The revision of a ReplicaSet (and of its Deployment).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a reused ReplicaSet had.
pub const REVISION_HISTORY_ANNOTATION: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled by it.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas + maxSurge when the ReplicaSet was last scaled by it.
pub const MAX_REPLICAS_ANNOTATION: &str = "deployment.kubernetes.io/max-replicas";
/// The label that tells the ReplicaSets (and pods) of one template apart.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Deployment annotations never copied to its ReplicaSets (kube's `annotationsToSkip`).
const ANNOTATIONS_TO_SKIP: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
];

// Condition reasons, as kube's deploymentutil.
const NEW_RS_REASON: &str = "NewReplicaSetCreated";
const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
const FAILED_RS_CREATE_REASON: &str = "FailedCreate";
const PAUSED_REASON: &str = "DeploymentPaused";
const RESUMED_REASON: &str = "DeploymentResumed";
const MIN_AVAILABLE_REASON: &str = "MinimumReplicasAvailable";
const MIN_UNAVAILABLE_REASON: &str = "MinimumReplicasUnavailable";

/// Runs the controller until the task is aborted.
pub fn spawn(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(client))
}

struct Ctx {
    client: Client,
    replicasets: Store<ReplicaSet>,
}

async fn run(client: Client) {
    let d_api: Api<Deployment> = Api::all(client.clone());
    let rs_api: Api<ReplicaSet> = Api::all(client.clone());
    let (d_store, d_writer) = reflector::store();
    let (rs_store, rs_writer) = reflector::store();
    let d_trigger = watcher(d_api, watcher::Config::default())
        .default_backoff()
        .reflect(d_writer)
        .touched_objects()
        .map_ok(|d: Deployment| vec![ObjectRef::from_obj(&d)]);
    let owners = d_store.clone();
    let rs_trigger = watcher(rs_api, watcher::Config::default())
        .default_backoff()
        .reflect(rs_writer)
        .touched_objects()
        .map_ok(move |rs: ReplicaSet| deployments_of(&rs, &owners));
    let queue = one_by_one(stream::select(d_trigger, rs_trigger));
    let ctx = Arc::new(Ctx {
        client,
        replicasets: rs_store,
    });
    run_applier("deployment", reconcile, ctx, d_store, queue, 8).await;
}

/// The Deployments a ReplicaSet event concerns: its controller if that is a Deployment, else
/// (an orphan) every Deployment of its namespace whose selector matches it.
fn deployments_of(rs: &ReplicaSet, deployments: &Store<Deployment>) -> Vec<ObjectRef<Deployment>> {
    owners_to_sync(&rs.metadata, deployments, |d| {
        d.spec.as_ref().map(|s| &s.selector)
    })
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (kube's deploymentutil).

fn d_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `intstr.GetScaledValueFromIntOrPercent`; an invalid value counts as 0.
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let Some(p) = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse::<i64>().ok())
            else {
                return s.trim().parse().unwrap_or(0);
            };
            let product = p * i64::from(total);
            let v = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(v).unwrap_or(i32::MAX)
        }
    }
}

/// `deploymentutil.ResolveFenceposts`: (maxSurge, maxUnavailable) for `desired` replicas,
/// surge rounded up, unavailable down, never both zero.
fn resolve_fenceposts(d: &Deployment, desired: i32) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let default = IntOrString::String("25%".into());
    let surge = rolling
        .and_then(|r| r.max_surge.as_ref())
        .unwrap_or(&default);
    let unavailable = rolling
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&default);
    let surge = scaled_value(surge, desired, true).max(0);
    let unavailable = scaled_value(unavailable, desired, false).max(0);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    resolve_fenceposts(d, d_replicas(d)).0
}

fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = d_replicas(d);
    if is_recreate(d) || replicas == 0 {
        return 0;
    }
    resolve_fenceposts(d, replicas).1.min(replicas)
}

/// kube's `rand.SafeEncodeString`: each byte to a character that cannot form bad words.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// The pod-template-hash of a template: FNV-1a (32 bits) of its canonical JSON and the
/// collision count, rendered as kube's `ComputeHash` renders its sum. Stable across restarts
/// (the JSON of a typed template has a fixed field order), different for another template.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let text = serde_json::to_vec(template).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    let mut write = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    write(&text);
    if let Some(c) = collision_count {
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&c.to_le_bytes());
        write(&buf);
    }
    safe_encode(&hash.to_string())
}

/// The template without the pod-template-hash label (and an empty label map as none).
fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = t.clone();
    if let Some(meta) = t.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
            if labels.is_empty() {
                meta.labels = None;
            }
        }
        if meta.annotations.as_ref().is_some_and(BTreeMap::is_empty) {
            meta.annotations = None;
        }
    }
    if t.metadata
        .as_ref()
        .is_some_and(|m| *m == ObjectMeta::default())
    {
        t.metadata = None;
    }
    t
}

/// `deploymentutil.EqualIgnoreHash`.
fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

fn rs_template(rs: &ReplicaSet) -> PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The ReplicaSet's revision (0 when absent or invalid).
fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(&rs.metadata, key).and_then(|v| v.parse().ok())
}

/// Oldest first, then by name (kube's `ReplicaSetsByCreationTimestamp`).
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let ts = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    ts(a)
        .cmp(&ts(b))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

/// The ReplicaSets of a Deployment: the new one (same template) and the others.
#[derive(Debug, Clone, Default)]
struct Sets {
    new: Option<ReplicaSet>,
    old: Vec<ReplicaSet>,
}

impl Sets {
    fn split(d: &Deployment, list: &[ReplicaSet]) -> Sets {
        let template = d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let mut sorted = list.to_vec();
        sorted.sort_by(by_creation);
        let new_index = sorted
            .iter()
            .position(|rs| equal_ignore_hash(&rs_template(rs), &template));
        let new = new_index.map(|i| sorted.remove(i));
        Sets { new, old: sorted }
    }

    fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.as_ref()).collect()
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut ReplicaSet> {
        self.old
            .iter_mut()
            .chain(self.new.as_mut())
            .find(|rs| rs.name_any() == name)
    }
}

fn sum(sets: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    sets.iter().map(|rs| f(rs)).sum()
}

fn available_of(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.available_replicas)
}

/// `deploymentutil.NewRSNewReplicas`.
fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let replicas = d_replicas(d);
    if is_recreate(d) {
        return replicas;
    }
    let surge = resolve_fenceposts(d, replicas).0;
    let current = sum(all, rs_replicas);
    let max_total = replicas + surge;
    if current >= max_total {
        return rs_replicas(new);
    }
    let up = (max_total - current).min(replicas - rs_replicas(new));
    rs_replicas(new) + up
}

/// `deploymentutil.IsSaturated`.
fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let replicas = d_replicas(d);
    int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) == Some(replicas)
        && rs_replicas(rs) == replicas
        && available_of(rs) == replicas
}

/// `deploymentutil.FindActiveOrLatest`: the one ReplicaSet with replicas, or the latest when
/// none has any; `None` when several have.
fn find_active_or_latest(sets: &Sets) -> Option<String> {
    if sets.new.is_none() && sets.old.is_empty() {
        return None;
    }
    let mut old = sets.old.clone();
    old.sort_by(|a, b| by_creation(b, a));
    let active: Vec<&ReplicaSet> = old
        .iter()
        .chain(sets.new.as_ref())
        .filter(|rs| rs_replicas(rs) > 0)
        .collect();
    match active.len() {
        0 => sets
            .new
            .as_ref()
            .or_else(|| old.first())
            .map(ResourceExt::name_any),
        1 => Some(active[0].name_any()),
        _ => None,
    }
}

/// `deploymentutil.GetProportion` (with `getReplicaSetFraction`).
fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = {
        let replicas = d_replicas(d);
        if replicas == 0 {
            -rs_replicas(rs)
        } else {
            let deployment_replicas = replicas + max_surge(d);
            let annotated = int_annotation(rs, MAX_REPLICAS_ANNOTATION)
                .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
            if annotated == 0 {
                0
            } else {
                let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas)
                    / f64::from(annotated);
                // f64 → i32: the value is bounded by replica counts.
                #[allow(clippy::cast_possible_truncation)]
                let rounded = size.round() as i32;
                rounded - rs_replicas(rs)
            }
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

fn new_condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    let t = now();
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(t.clone()),
        last_transition_time: Some(t),
    }
}

fn get_condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// `deploymentutil.SetDeploymentCondition`: no change for the same status and reason; the
/// transition time kept for the same status.
fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = get_condition(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition.last_transition_time = current.last_transition_time.clone();
        }
    }
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != condition.type_);
    conditions.push(condition);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// kube's `calculateStatus`.
fn calculate_status(d: &Deployment, sets: &Sets) -> DeploymentStatus {
    let all = sets.all();
    let available = sum(&all, available_of);
    let total = sum(&all, rs_replicas);
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nonzero(sum(&all, |rs| rs_status(rs, |s| Some(s.replicas)))),
        updated_replicas: nonzero(
            sets.new
                .as_ref()
                .map_or(0, |rs| rs_status(rs, |s| Some(s.replicas))),
        ),
        ready_replicas: nonzero(sum(&all, |rs| rs_status(rs, |s| s.ready_replicas))),
        available_replicas: nonzero(available),
        unavailable_replicas: nonzero((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let condition = if available >= d_replicas(d) - max_unavailable(d) {
        new_condition(
            "Available",
            "True",
            MIN_AVAILABLE_REASON,
            "Deployment has minimum availability.".into(),
        )
    } else {
        new_condition(
            "Available",
            "False",
            MIN_UNAVAILABLE_REASON,
            "Deployment does not have minimum availability.".into(),
        )
    };
    set_condition(&mut status, condition);
    status
}

/// `deploymentutil.DeploymentComplete`.
fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = d_replicas(d);
    let v = |x: Option<i32>| x.unwrap_or(0);
    v(status.updated_replicas) == replicas
        && v(status.replicas) == replicas
        && v(status.available_replicas) == replicas
        && status.observed_generation >= d.metadata.generation
}

/// A count as kube serializes it (`omitempty`): zero is absent.
fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// `deploymentutil.DeploymentProgressing`.
fn deployment_progressing(d: &Deployment, status: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let v = |x: Option<i32>| x.unwrap_or(0);
    let old_old = v(old.replicas) - v(old.updated_replicas);
    let new_old = v(status.replicas) - v(status.updated_replicas);
    v(status.updated_replicas) > v(old.updated_replicas)
        || new_old < old_old
        || v(status.ready_replicas) > v(old.ready_replicas)
        || v(status.available_replicas) > v(old.available_replicas)
}

/// Seconds until the Progressing condition's deadline (negative: past it).
fn deadline_left(d: &Deployment, status: &DeploymentStatus) -> Option<f64> {
    let deadline = progress_deadline(d)?;
    let cond = get_condition(status, "Progressing")?;
    let from = cond.last_update_time.as_ref()?.0;
    let elapsed = Timestamp::now().duration_since(from).as_secs_f64();
    Some(f64::from(deadline) - elapsed)
}

/// `deploymentutil.DeploymentTimedOut`.
fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus) -> bool {
    let Some(cond) = get_condition(status, "Progressing") else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => false,
        Some(TIMED_OUT_REASON) => true,
        _ => deadline_left(d, status).is_some_and(|left| left < 0.0),
    }
}

/// The label selector's query form.
fn selector_string(selector: &LabelSelector) -> String {
    let mut terms: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        terms.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    terms.join(",")
}

// ---------------------------------------------------------------------------------------------
// The sync loop (kube's syncDeployment and the strategies).

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ctx.replicasets.wait_until_ready().await.is_err() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut d = (*d).clone();
    let Some(spec) = d.spec.clone() else {
        return Ok(Action::await_change());
    };
    if selector_is_empty(&spec.selector) {
        // kube refuses to act on an empty selector (it would select every pod).
        if d.status.as_ref().and_then(|s| s.observed_generation) < d.metadata.generation {
            let mut status = d.status.clone().unwrap_or_default();
            status.observed_generation = d.metadata.generation;
            write_status(&ctx, &mut d, status).await?;
        }
        return Ok(Action::await_change());
    }
    let list = claim_replicasets(&ctx, &d).await?;
    if d.metadata.deletion_timestamp.is_some() {
        let sets = Sets::split(&d, &list);
        sync_status(&ctx, &mut d, &sets).await?;
        return Ok(Action::await_change());
    }
    check_paused_conditions(&ctx, &mut d).await?;
    if is_paused(&d) || is_scaling_event(&d, &list) {
        sync(&ctx, &mut d, &list).await?;
    } else if is_recreate(&d) {
        rollout_recreate(&ctx, &mut d, &list).await?;
    } else {
        rollout_rolling(&ctx, &mut d, &list).await?;
    }
    Ok(requeue(&d))
}

/// When to look again without an event: at the progress deadline of a rollout in progress.
fn requeue(d: &Deployment) -> Action {
    let status = d.status.clone().unwrap_or_default();
    let in_progress = get_condition(&status, "Progressing").is_some_and(|c| {
        c.status == "True"
            && !matches!(
                c.reason.as_deref(),
                Some(NEW_RS_AVAILABLE_REASON | TIMED_OUT_REASON)
            )
    });
    match deadline_left(d, &status) {
        Some(left) if in_progress => {
            Action::requeue(Duration::from_secs_f64(left.max(0.0) + 1.0).min(RESYNC))
        }
        _ => Action::requeue(RESYNC),
    }
}

/// kube's `ClaimReplicaSets`: the Deployment's ReplicaSets after adopting matching orphans and
/// releasing owned ones that stopped matching.
async fn claim_replicasets(ctx: &Ctx, d: &Deployment) -> Result<Vec<ReplicaSet>, Error> {
    let ns = d.namespace().unwrap_or_default();
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let candidates = ctx
        .replicasets
        .state()
        .into_iter()
        .filter(|rs| rs.metadata.namespace.as_deref() == Some(ns.as_str()));
    let claimed = claim(&ctx.client, d, &selector, candidates).await?;
    Ok(claimed.into_iter().map(Arc::unwrap_or_clone).collect())
}

fn rs_api(ctx: &Ctx, rs: &ReplicaSet) -> Api<ReplicaSet> {
    Api::namespaced(ctx.client.clone(), &rs.namespace().unwrap_or_default())
}

/// kube's `isScalingEvent`: an active ReplicaSet was last scaled for another replica count.
fn is_scaling_event(d: &Deployment, list: &[ReplicaSet]) -> bool {
    let replicas = d_replicas(d);
    list.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .filter_map(|rs| int_annotation(rs, DESIRED_REPLICAS_ANNOTATION))
        .any(|desired| desired != replicas)
}

/// Writes the Deployment's status (all of it) and keeps the answer as `d`. kube's role grants
/// `update` (not patch) on deployments/status: a PUT guarded by `d`'s resourceVersion.
async fn write_status(
    ctx: &Ctx,
    d: &mut Deployment,
    status: DeploymentStatus,
) -> Result<(), Error> {
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let mut next = d.clone();
    next.status = Some(status);
    *d = api
        .replace_status(&d.name_any(), &PostParams::default(), &next)
        .await?;
    Ok(())
}

/// Sets the Deployment's own revision annotation (`SetDeploymentRevision`). kube writes it with
/// the status, whose subresource here keeps metadata as stored: an update of the object.
async fn set_deployment_revision(
    ctx: &Ctx,
    d: &mut Deployment,
    revision: &str,
) -> Result<(), Error> {
    if annotation(&d.metadata, REVISION_ANNOTATION) == Some(revision) {
        return Ok(());
    }
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let mut next = d.clone();
    next.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_ANNOTATION.into(), revision.to_owned());
    *d = api
        .replace(&d.name_any(), &PostParams::default(), &next)
        .await?;
    Ok(())
}

/// kube's `checkPausedConditions`: Progressing Unknown with DeploymentPaused / DeploymentResumed.
async fn check_paused_conditions(ctx: &Ctx, d: &mut Deployment) -> Result<(), Error> {
    if progress_deadline(d).is_none() {
        return Ok(());
    }
    let mut status = d.status.clone().unwrap_or_default();
    let reason = get_condition(&status, "Progressing").and_then(|c| c.reason.clone());
    if reason.as_deref() == Some(TIMED_OUT_REASON) {
        return Ok(());
    }
    let paused_cond = reason.as_deref() == Some(PAUSED_REASON);
    let condition = match (is_paused(d), paused_cond) {
        (true, false) => new_condition(
            "Progressing",
            "Unknown",
            PAUSED_REASON,
            "Deployment is paused".into(),
        ),
        (false, true) => new_condition(
            "Progressing",
            "Unknown",
            RESUMED_REASON,
            "Deployment is resumed".into(),
        ),
        _ => return Ok(()),
    };
    set_condition(&mut status, condition);
    write_status(ctx, d, status).await
}

/// kube's `copyDeploymentAnnotationsToReplicaSet`; true when something changed.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if ANNOTATIONS_TO_SKIP.contains(&k.as_str()) || target.get(k) == Some(v) {
            continue;
        }
        target.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// kube's `SetReplicasAnnotations`; true when something changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [
        (DESIRED_REPLICAS_ANNOTATION, desired),
        (MAX_REPLICAS_ANNOTATION, max),
    ] {
        let v = v.to_string();
        if target.get(k) != Some(&v) {
            target.insert(k.to_owned(), v);
            changed = true;
        }
    }
    changed
}

/// kube's `SetNewReplicaSetAnnotations`: copied annotations, the new revision (the old one moved
/// to the revision history) and, for a new ReplicaSet, the replicas annotations.
fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let old = annotation(&rs.metadata, REVISION_ANNOTATION).map(str::to_owned);
    let old_int = old
        .as_deref()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    if old_int < new_revision {
        let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        target.insert(REVISION_ANNOTATION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = match target.get(REVISION_HISTORY_ANNOTATION) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old,
            };
            target.insert(REVISION_HISTORY_ANNOTATION.into(), history);
        }
    }
    if !exists {
        let replicas = d_replicas(d);
        changed |= set_replicas_annotations(rs, replicas, replicas + max_surge(d));
    }
    changed
}

/// kube's `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when asked and
/// missing) and the old ones, revisions synced.
async fn sets_and_sync_revision(
    ctx: &Ctx,
    d: &mut Deployment,
    list: &[ReplicaSet],
    create: bool,
) -> Result<Sets, Error> {
    let mut sets = Sets::split(d, list);
    let max_old = sets.old.iter().map(revision).max().unwrap_or(0);
    let new_revision = max_old + 1;
    if let Some(existing) = sets.new.take() {
        let mut copy = existing.clone();
        let annotations_changed = set_new_rs_annotations(d, &mut copy, new_revision, true);
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        let min_ready_changed = copy.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready;
        if annotations_changed || min_ready_changed {
            let patch = json!({
                "metadata": {"annotations": copy.metadata.annotations,
                    "resourceVersion": existing.metadata.resource_version},
                "spec": {"minReadySeconds": min_ready},
            });
            let updated = rs_api(ctx, &existing)
                .patch(
                    &existing.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            sets.new = Some(updated);
            return Ok(sets);
        }
        let rev = annotation(&copy.metadata, REVISION_ANNOTATION)
            .unwrap_or("")
            .to_owned();
        set_deployment_revision(ctx, d, &rev).await?;
        let status = d.status.clone().unwrap_or_default();
        if progress_deadline(d).is_some() && get_condition(&status, "Progressing").is_none() {
            let mut status = status;
            set_condition(
                &mut status,
                new_condition(
                    "Progressing",
                    "True",
                    FOUND_NEW_RS_REASON,
                    format!("Found new replica set {:?}", copy.name_any()),
                ),
            );
            write_status(ctx, d, status).await?;
        }
        sets.new = Some(copy);
        return Ok(sets);
    }
    if !create {
        return Ok(sets);
    }
    let spec = d.spec.clone().unwrap_or_default();
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = compute_hash(&spec.template, collision);
    let mut template = spec.template.clone();
    template
        .metadata
        .get_or_insert_with(ObjectMeta::default)
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
    let name = format!("{}-{hash}", d.name_any());
    let mut new_rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: d.namespace(),
            owner_references: Some(vec![controller_ref("apps/v1", "Deployment", &d.metadata)]),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    let replicas = {
        let all: Vec<&ReplicaSet> = sets.old.iter().chain(Some(&new_rs)).collect();
        new_rs_new_replicas(d, &all, &new_rs)
    };
    if let Some(s) = new_rs.spec.as_mut() {
        s.replicas = Some(replicas);
    }
    set_new_rs_annotations(d, &mut new_rs, new_revision, false);
    let api: Api<ReplicaSet> =
        Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let (created, already_existed) = match api.create(&PostParams::default(), &new_rs).await {
        Ok(rs) => (rs, false),
        Err(e) if is_already_exists(&e) => {
            let existing = api.get(&name).await?;
            let ours = controller_of(&existing.metadata)
                .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
            if ours && equal_ignore_hash(&rs_template(&existing), &spec.template) {
                (existing, true)
            } else {
                // A hash collision: bump collisionCount so the next try gets another name.
                let mut status = d.status.clone().unwrap_or_default();
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                write_status(ctx, d, status).await?;
                return Err(Error::Invalid(format!(
                    "replica set {name:?} exists with another template; collision count bumped"
                )));
            }
        }
        Err(e) => {
            if progress_deadline(d).is_some() {
                let mut status = d.status.clone().unwrap_or_default();
                set_condition(
                    &mut status,
                    new_condition(
                        "Progressing",
                        "False",
                        FAILED_RS_CREATE_REASON,
                        format!("Failed to create new replica set {name:?}: {e}"),
                    ),
                );
                write_status(ctx, d, status).await?;
            }
            return Err(e.into());
        }
    };
    if !already_existed && replicas > 0 {
        scaling_event(
            ctx,
            d,
            format!("Scaled up replica set {name} from 0 to {replicas}"),
        )
        .await;
    }
    set_deployment_revision(ctx, d, &new_revision.to_string()).await?;
    if !already_existed && progress_deadline(d).is_some() {
        let mut status = d.status.clone().unwrap_or_default();
        set_condition(
            &mut status,
            new_condition(
                "Progressing",
                "True",
                NEW_RS_REASON,
                format!("Created new replica set {name:?}"),
            ),
        );
        write_status(ctx, d, status).await?;
    }
    sets.new = Some(created);
    Ok(sets)
}

/// kube's "ScalingReplicaSet" Event on the Deployment.
async fn scaling_event(ctx: &Ctx, d: &Deployment, message: String) {
    record_event(
        &ctx.client,
        COMPONENT,
        object_reference("apps/v1", "Deployment", &d.metadata),
        "Normal",
        "ScalingReplicaSet",
        message,
    )
    .await;
}

/// kube's `scaleReplicaSet`: sets the replicas and the replicas annotations when either
/// differs; true when it scaled.
async fn scale_rs(
    ctx: &Ctx,
    d: &Deployment,
    sets: &mut Sets,
    name: &str,
    new_scale: i32,
) -> Result<bool, Error> {
    let Some(rs) = sets.get_mut(name) else {
        return Ok(false);
    };
    let replicas = d_replicas(d);
    let mut copy = rs.clone();
    let annotations_changed =
        set_replicas_annotations(&mut copy, replicas, replicas + max_surge(d));
    let old_scale = rs_replicas(rs);
    if old_scale == new_scale && !annotations_changed {
        return Ok(false);
    }
    let patch = json!({
        "metadata": {
            "annotations": {
                DESIRED_REPLICAS_ANNOTATION: replicas.to_string(),
                MAX_REPLICAS_ANNOTATION: (replicas + max_surge(d)).to_string(),
            },
            "resourceVersion": rs.metadata.resource_version,
        },
        "spec": {"replicas": new_scale},
    });
    let updated = rs_api(ctx, rs)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    *rs = updated;
    if old_scale != new_scale {
        let direction = if new_scale > old_scale { "up" } else { "down" };
        scaling_event(
            ctx,
            d,
            format!("Scaled {direction} replica set {name} from {old_scale} to {new_scale}"),
        )
        .await;
    }
    Ok(old_scale != new_scale)
}

/// kube's `sync`: scaling and status only (paused, or a scaling event).
async fn sync(ctx: &Ctx, d: &mut Deployment, list: &[ReplicaSet]) -> Result<(), Error> {
    let mut sets = sets_and_sync_revision(ctx, d, list, false).await?;
    scale(ctx, d, &mut sets).await?;
    if is_paused(d) {
        cleanup(ctx, d, &sets).await?;
    }
    sync_status(ctx, d, &sets).await
}

/// kube's `syncDeploymentStatus`.
async fn sync_status(ctx: &Ctx, d: &mut Deployment, sets: &Sets) -> Result<(), Error> {
    let status = calculate_status(d, sets);
    if d.status.as_ref() == Some(&status) {
        return Ok(());
    }
    write_status(ctx, d, status).await
}

/// kube's `scale`: a scaling event moves replicas proportionally across the active sets.
async fn scale(ctx: &Ctx, d: &Deployment, sets: &mut Sets) -> Result<(), Error> {
    let replicas = d_replicas(d);
    if let Some(name) = find_active_or_latest(sets) {
        let current = sets.get_mut(&name).map_or(replicas, |rs| rs_replicas(rs));
        if current != replicas {
            scale_rs(ctx, d, sets, &name, replicas).await?;
        }
        return Ok(());
    }
    if is_saturated(d, sets.new.as_ref()) {
        let names: Vec<String> = sets
            .old
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .map(ResourceExt::name_any)
            .collect();
        for name in names {
            scale_rs(ctx, d, sets, &name, 0).await?;
        }
        return Ok(());
    }
    if is_recreate(d) {
        return Ok(());
    }
    let mut active: Vec<ReplicaSet> = sets
        .all()
        .into_iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .cloned()
        .collect();
    let total: i32 = active.iter().map(rs_replicas).sum();
    let allowed = if replicas > 0 {
        replicas + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    // Larger first; ties: newer first when adding, older first when removing.
    let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    active.sort_by(|a, b| {
        rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
            if to_add > 0 {
                created(b).cmp(&created(a))
            } else {
                created(a).cmp(&created(b))
            }
        })
    });
    let mut sizes: Vec<(String, i32)> = Vec::new();
    let mut added = 0;
    for rs in &active {
        let size = if to_add != 0 {
            let p = proportion(d, rs, to_add, added);
            added += p;
            rs_replicas(rs) + p
        } else {
            rs_replicas(rs)
        };
        sizes.push((rs.name_any(), size));
    }
    if to_add != 0 {
        if let Some(first) = sizes.first_mut() {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    for (name, size) in sizes {
        scale_rs(ctx, d, sets, &name, size).await?;
    }
    Ok(())
}

/// kube's `rolloutRolling`.
async fn rollout_rolling(ctx: &Ctx, d: &mut Deployment, list: &[ReplicaSet]) -> Result<(), Error> {
    let mut sets = sets_and_sync_revision(ctx, d, list, true).await?;
    if reconcile_new_rs(ctx, d, &mut sets).await? {
        return sync_rollout_status(ctx, d, &sets).await;
    }
    if reconcile_old_rss(ctx, d, &mut sets).await? {
        return sync_rollout_status(ctx, d, &sets).await;
    }
    let status = calculate_status(d, &sets);
    if deployment_complete(d, &status) {
        cleanup(ctx, d, &sets).await?;
    }
    sync_rollout_status(ctx, d, &sets).await
}

/// kube's `reconcileNewReplicaSet`.
async fn reconcile_new_rs(ctx: &Ctx, d: &Deployment, sets: &mut Sets) -> Result<bool, Error> {
    let Some(new) = sets.new.clone() else {
        return Ok(false);
    };
    let replicas = d_replicas(d);
    let current = rs_replicas(&new);
    if current == replicas {
        return Ok(false);
    }
    let target = if current > replicas {
        replicas
    } else {
        new_rs_new_replicas(d, &sets.all(), &new)
    };
    scale_rs(ctx, d, sets, &new.name_any(), target).await
}

/// kube's `reconcileOldReplicaSets`: scales old sets down as far as availability allows,
/// unhealthy replicas first.
async fn reconcile_old_rss(ctx: &Ctx, d: &Deployment, sets: &mut Sets) -> Result<bool, Error> {
    let old_count: i32 = sets.old.iter().map(rs_replicas).sum();
    if old_count == 0 {
        return Ok(false);
    }
    let all_count = sum(&sets.all(), rs_replicas);
    let min_available = d_replicas(d) - max_unavailable(d);
    let new_unavailable = sets
        .new
        .as_ref()
        .map_or(0, |rs| rs_replicas(rs) - available_of(rs));
    let max_scaled_down = all_count - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Ok(false);
    }
    // cleanupUnhealthyReplicas: the unavailable replicas of old sets go first.
    let mut old = sets.old.clone();
    old.sort_by(by_creation);
    let mut cleaned = 0;
    for rs in &old {
        if cleaned >= max_scaled_down {
            break;
        }
        let replicas = rs_replicas(rs);
        let available = available_of(rs);
        if replicas == 0 || replicas == available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(replicas - available);
        scale_rs(ctx, d, sets, &rs.name_any(), replicas - down).await?;
        cleaned += down;
    }
    // scaleDownOldReplicaSetsForRollingUpdate.
    let available: i32 = sum(&sets.all(), available_of);
    let mut scaled = 0;
    if available > min_available {
        let total_down = available - min_available;
        let mut old = sets.old.clone();
        old.sort_by(by_creation);
        for rs in &old {
            if scaled >= total_down {
                break;
            }
            let replicas = rs_replicas(rs);
            if replicas == 0 {
                continue;
            }
            let down = replicas.min(total_down - scaled);
            scale_rs(ctx, d, sets, &rs.name_any(), replicas - down).await?;
            scaled += down;
        }
    }
    Ok(cleaned + scaled > 0)
}

/// kube's `rolloutRecreate`.
async fn rollout_recreate(ctx: &Ctx, d: &mut Deployment, list: &[ReplicaSet]) -> Result<(), Error> {
    let mut sets = sets_and_sync_revision(ctx, d, list, false).await?;
    let active_old: Vec<String> = sets
        .old
        .iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .map(ResourceExt::name_any)
        .collect();
    let mut scaled_down = false;
    for name in active_old {
        scaled_down |= scale_rs(ctx, d, &mut sets, &name, 0).await?;
    }
    if scaled_down || old_pods_running(ctx, d, &sets).await? {
        return sync_rollout_status(ctx, d, &sets).await;
    }
    if sets.new.is_none() {
        sets = sets_and_sync_revision(ctx, d, list, true).await?;
    }
    if let Some(name) = sets.new.as_ref().map(ResourceExt::name_any) {
        let replicas = d_replicas(d);
        scale_rs(ctx, d, &mut sets, &name, replicas).await?;
    }
    let status = calculate_status(d, &sets);
    if deployment_complete(d, &status) {
        cleanup(ctx, d, &sets).await?;
    }
    sync_rollout_status(ctx, d, &sets).await
}

/// kube's `oldPodsRunning`: an old set still reports pods, or a pod of one is not finished.
async fn old_pods_running(ctx: &Ctx, d: &Deployment, sets: &Sets) -> Result<bool, Error> {
    if sets
        .old
        .iter()
        .any(|rs| rs_status(rs, |s| Some(s.replicas)) > 0)
    {
        return Ok(true);
    }
    let old_uids: Vec<&str> = sets
        .old
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    if old_uids.is_empty() {
        return Ok(false);
    }
    let selector = d
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    Ok(list.items.iter().any(|p| {
        let owned = controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid.as_str()));
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        owned && !matches!(phase, Some("Failed" | "Succeeded"))
    }))
}

/// kube's `cleanupDeployment`: old sets at zero beyond `revisionHistoryLimit` are deleted,
/// lowest revision first.
async fn cleanup(ctx: &Ctx, d: &Deployment, sets: &Sets) -> Result<(), Error> {
    let Some(limit) = d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
        return Ok(());
    };
    let mut cleanable: Vec<&ReplicaSet> = sets
        .old
        .iter()
        .filter(|rs| {
            rs_replicas(rs) == 0
                && rs_status(rs, |s| Some(s.replicas)) == 0
                && rs.metadata.generation <= rs.status.as_ref().and_then(|s| s.observed_generation)
                && rs.metadata.deletion_timestamp.is_none()
        })
        .collect();
    let excess = cleanable
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    if excess == 0 {
        return Ok(());
    }
    cleanable.sort_by(|a, b| {
        revision(a)
            .cmp(&revision(b))
            .then_with(|| by_creation(a, b))
    });
    for rs in cleanable.into_iter().take(excess) {
        let params = delete_if_uid(&rs.metadata);
        match rs_api(ctx, rs).delete(&rs.name_any(), &params).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// kube's `syncRolloutStatus`: the status with the Progressing condition moved along.
async fn sync_rollout_status(ctx: &Ctx, d: &mut Deployment, sets: &Sets) -> Result<(), Error> {
    let mut status = calculate_status(d, sets);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, "Progressing");
    }
    let old = d.status.clone().unwrap_or_default();
    let current = get_condition(&old, "Progressing").cloned();
    let complete_already = status.replicas == status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE_REASON);
    let new_name = sets.new.as_ref().map(ResourceExt::name_any);
    if progress_deadline(d).is_some() && !complete_already {
        if deployment_complete(d, &status) {
            if let Some(name) = &new_name {
                set_condition(
                    &mut status,
                    new_condition(
                        "Progressing",
                        "True",
                        NEW_RS_AVAILABLE_REASON,
                        format!("ReplicaSet {name:?} has successfully progressed."),
                    ),
                );
            }
        } else if deployment_progressing(d, &status) {
            let message = match &new_name {
                Some(name) => format!("ReplicaSet {name:?} is progressing."),
                None => format!("Deployment {:?} is progressing.", d.name_any()),
            };
            let mut condition = new_condition("Progressing", "True", RS_UPDATED_REASON, message);
            if let Some(current) = &current {
                if current.status == "True" {
                    condition.last_transition_time = current.last_transition_time.clone();
                }
                remove_condition(&mut status, "Progressing");
            }
            set_condition(&mut status, condition);
        } else if deployment_timed_out(d, &old) {
            let message = match &new_name {
                Some(name) => format!("ReplicaSet {name:?} has timed out progressing."),
                None => format!("Deployment {:?} has timed out progressing.", d.name_any()),
            };
            set_condition(
                &mut status,
                new_condition("Progressing", "False", TIMED_OUT_REASON, message),
            );
        }
    }
    // ReplicaFailure of any set is the Deployment's.
    let failure = sets.all().into_iter().find_map(|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "ReplicaFailure"))
            .cloned()
    });
    match failure {
        Some(f) => set_condition(
            &mut status,
            DeploymentCondition {
                type_: f.type_,
                status: f.status,
                reason: f.reason,
                message: f.message,
                last_update_time: f.last_transition_time.clone(),
                last_transition_time: f.last_transition_time,
            },
        ),
        None => remove_condition(&mut status, "ReplicaFailure"),
    }
    if d.status.as_ref() == Some(&status) {
        return Ok(());
    }
    write_status(ctx, d, status).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn deployment(value: Value) -> Deployment {
        serde_json::from_value(value).unwrap()
    }

    fn web(replicas: i32, strategy: Value) -> Deployment {
        deployment(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "d1", "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "strategy": strategy,
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
        }))
    }

    #[test]
    fn percentages_round_surge_up_and_unavailable_down() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(scaled_value(&pct("25%"), 3, true), 1);
        assert_eq!(scaled_value(&pct("25%"), 3, false), 0);
        assert_eq!(scaled_value(&pct("25%"), 10, true), 3);
        assert_eq!(scaled_value(&pct("25%"), 10, false), 2);
        assert_eq!(scaled_value(&IntOrString::Int(2), 10, true), 2);
        // Defaults (an empty strategy) are 25%/25%.
        let d = web(3, json!({}));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = web(
            4,
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
        );
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
        let d = web(4, json!({"type": "Recreate"}));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
    }

    #[test]
    fn the_hash_is_stable_and_follows_the_template() {
        let d = web(3, json!({}));
        let t = d.spec.as_ref().unwrap().template.clone();
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t.clone(), None));
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(h
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
        let mut other = t.clone();
        other.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.27".into());
        assert_ne!(h, compute_hash(&other, None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        // The template with the hash label is the same template.
        let mut labeled = t.clone();
        labeled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH_LABEL.into(), h);
        assert!(equal_ignore_hash(&labeled, &t));
        assert!(!equal_ignore_hash(&other, &t));
    }

    fn rs(name: &str, replicas: i32, available: i32, annotations: Value) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": replicas, "availableReplicas": available},
        }))
        .unwrap()
    }

    #[test]
    fn new_replica_set_grows_within_the_surge() {
        let d = web(10, json!({}));
        let old = rs("old", 10, 10, json!({}));
        let new = rs("new", 0, 0, json!({}));
        // 10 + 3 surge: 3 more may exist.
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let new = rs("new", 3, 0, json!({}));
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
    }

    #[test]
    fn scaling_is_proportional_to_the_last_max_replicas() {
        // Was 10 (+3 surge = 13), now 20 (+5 = 25): a set of 8 grows to round(8*25/13)=15.
        let d = web(20, json!({}));
        let a = rs("a", 8, 8, json!({MAX_REPLICAS_ANNOTATION: "13"}));
        assert_eq!(proportion(&d, &a, 12, 0), 7);
        assert_eq!(proportion(&d, &a, 12, 10), 2);
    }

    #[test]
    fn conditions_keep_their_transition_time_for_the_same_status() {
        let mut status = DeploymentStatus::default();
        let mut first = new_condition("Progressing", "True", NEW_RS_REASON, "a".into());
        first.last_transition_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::from_second(1000).unwrap(),
        ));
        set_condition(&mut status, first.clone());
        set_condition(
            &mut status,
            new_condition("Progressing", "True", NEW_RS_REASON, "b".into()),
        );
        assert_eq!(
            get_condition(&status, "Progressing")
                .unwrap()
                .message
                .as_deref(),
            Some("a")
        );
        set_condition(
            &mut status,
            new_condition("Progressing", "True", NEW_RS_AVAILABLE_REASON, "c".into()),
        );
        let c = get_condition(&status, "Progressing").unwrap();
        assert_eq!(c.message.as_deref(), Some("c"));
        assert_eq!(c.last_transition_time, first.last_transition_time);
    }

    #[test]
    fn a_reused_replica_set_gets_the_next_revision() {
        let d = web(3, json!({}));
        let mut old = rs("web-1", 0, 0, json!({REVISION_ANNOTATION: "1"}));
        assert!(set_new_rs_annotations(&d, &mut old, 3, true));
        let a = old.metadata.annotations.unwrap();
        assert_eq!(a[REVISION_ANNOTATION], "3");
        assert_eq!(a[REVISION_HISTORY_ANNOTATION], "1");
    }

    #[test]
    fn selectors_render_as_queries() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
        }))
        .unwrap();
        assert_eq!(selector_string(&sel), "app=web,tier in (a,b)");
    }
}
