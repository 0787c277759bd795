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
//!
//! The files follow kube's: this one runs the controller and its reconcile loop; [`sync`],
//! [`rolling`], [`recreate`], [`progress`] and [`history`] are the steps, [`util`] the pure helpers.

mod history;
mod progress;
mod recreate;
mod rolling;
mod sync;
#[cfg(test)]
mod tests;
mod util;

use std::sync::Arc;
use std::time::Duration;

use futures::{stream, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};

use super::workloads_common::{
    claim, one_by_one, owners_to_sync, run_applier, selector_is_empty, Error, RESYNC,
};
use progress::{deadline_left, get_condition};
use recreate::rollout_recreate;
use rolling::rollout_rolling;
use sync::{check_paused_conditions, is_scaling_event, sync, sync_status};
use util::{is_paused, is_recreate, Sets};

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
