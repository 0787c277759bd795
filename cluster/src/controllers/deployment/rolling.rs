//! The RollingUpdate strategy (kube's `rolling.go`): the new ReplicaSet grows within maxSurge,
//! old ones shrink within maxUnavailable as the new one becomes available.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;

use super::history::cleanup;
use super::progress::{deployment_complete, sync_rollout_status};
use super::sync::{calculate_status, scale_rs, sets_and_sync_revision};
use super::util::{
    available_of, by_creation, d_replicas, max_unavailable, new_rs_new_replicas, rs_replicas, sum,
    Sets,
};
use super::Ctx;
use crate::controllers::workloads_common::Error;

/// kube's `rolloutRolling`.
pub(super) async fn rollout_rolling(
    ctx: &Ctx,
    d: &mut Deployment,
    list: &[ReplicaSet],
) -> Result<(), Error> {
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
pub(super) async fn reconcile_new_rs(
    ctx: &Ctx,
    d: &Deployment,
    sets: &mut Sets,
) -> Result<bool, Error> {
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
pub(super) async fn reconcile_old_rss(
    ctx: &Ctx,
    d: &Deployment,
    sets: &mut Sets,
) -> Result<bool, Error> {
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
