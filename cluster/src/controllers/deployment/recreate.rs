//! The Recreate strategy (kube's `recreate.go`): old ReplicaSets to zero, wait until their
//! pods are gone, then scale up the new one.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::ResourceExt;

use super::history::cleanup;
use super::progress::{deployment_complete, sync_rollout_status};
use super::sync::{calculate_status, scale_rs, sets_and_sync_revision};
use super::util::{d_replicas, rs_replicas, rs_status, selector_string, Sets};
use super::Ctx;
use crate::controllers::workloads_common::{controller_of, Error};

/// kube's `rolloutRecreate`.
pub(super) async fn rollout_recreate(
    ctx: &Ctx,
    d: &mut Deployment,
    list: &[ReplicaSet],
) -> Result<(), Error> {
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
pub(super) async fn old_pods_running(
    ctx: &Ctx,
    d: &Deployment,
    sets: &Sets,
) -> Result<bool, Error> {
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
