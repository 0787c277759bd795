//! Progress (kube's `progress.go`): the Available and Progressing conditions, the progress
//! deadline, and the status `kubectl rollout status` reads.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::sync::calculate_status;
use super::util::{d_replicas, Sets};
use super::{write_status, Ctx};
use super::{NEW_RS_AVAILABLE_REASON, RS_UPDATED_REASON, TIMED_OUT_REASON};
use crate::controllers::workloads_common::{now, Error};

pub(super) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
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

pub(super) fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_)
}

/// `deploymentutil.SetDeploymentCondition`: no change for the same status and reason; the
/// transition time kept for the same status.
pub(super) fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
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

pub(super) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

pub(super) fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// `deploymentutil.DeploymentComplete`.
pub(super) fn deployment_complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = d_replicas(d);
    let v = |x: Option<i32>| x.unwrap_or(0);
    v(status.updated_replicas) == replicas
        && v(status.replicas) == replicas
        && v(status.available_replicas) == replicas
        && status.observed_generation >= d.metadata.generation
}

/// A count as kube serializes it (`omitempty`): zero is absent.
pub(super) fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// `deploymentutil.DeploymentProgressing`.
pub(super) fn deployment_progressing(d: &Deployment, status: &DeploymentStatus) -> bool {
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
pub(super) fn deadline_left(d: &Deployment, status: &DeploymentStatus) -> Option<f64> {
    let deadline = progress_deadline(d)?;
    let cond = get_condition(status, "Progressing")?;
    let from = cond.last_update_time.as_ref()?.0;
    let elapsed = Timestamp::now().duration_since(from).as_secs_f64();
    Some(f64::from(deadline) - elapsed)
}

/// `deploymentutil.DeploymentTimedOut`.
pub(super) fn deployment_timed_out(d: &Deployment, status: &DeploymentStatus) -> bool {
    let Some(cond) = get_condition(status, "Progressing") else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => false,
        Some(TIMED_OUT_REASON) => true,
        _ => deadline_left(d, status).is_some_and(|left| left < 0.0),
    }
}

/// kube's `syncRolloutStatus`: the status with the Progressing condition moved along.
pub(super) async fn sync_rollout_status(
    ctx: &Ctx,
    d: &mut Deployment,
    sets: &Sets,
) -> Result<(), Error> {
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
