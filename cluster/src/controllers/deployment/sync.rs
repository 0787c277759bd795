//! Syncing without a rollout (kube's `sync.go`): finding or creating the new ReplicaSet and
//! the revision, scaling on a scaling event or while paused, and computing `status`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use super::history::{
    cleanup, compute_hash, equal_ignore_hash, revision, rs_template, set_deployment_revision,
    set_new_rs_annotations,
};
use super::progress::{get_condition, new_condition, nonzero, progress_deadline, set_condition};
use super::util::{
    annotation, available_of, d_replicas, find_active_or_latest, int_annotation, is_paused,
    is_recreate, is_saturated, max_surge, max_unavailable, new_rs_new_replicas, proportion,
    rs_replicas, rs_status, sum, Sets,
};
use super::{
    rs_api, write_status, Ctx, COMPONENT, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION,
};
use super::{
    FAILED_RS_CREATE_REASON, FOUND_NEW_RS_REASON, MIN_AVAILABLE_REASON, MIN_UNAVAILABLE_REASON,
    NEW_RS_REASON, PAUSED_REASON, RESUMED_REASON, TIMED_OUT_REASON,
};
use crate::controllers::workloads_common::{
    controller_of, controller_ref, is_already_exists, object_reference, record_event, Error,
};

/// kube's `calculateStatus`.
pub(super) fn calculate_status(d: &Deployment, sets: &Sets) -> DeploymentStatus {
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

/// kube's `isScalingEvent`: an active ReplicaSet was last scaled for another replica count.
pub(super) fn is_scaling_event(d: &Deployment, list: &[ReplicaSet]) -> bool {
    let replicas = d_replicas(d);
    list.iter()
        .filter(|rs| rs_replicas(rs) > 0)
        .filter_map(|rs| int_annotation(rs, DESIRED_REPLICAS_ANNOTATION))
        .any(|desired| desired != replicas)
}

/// kube's `checkPausedConditions`: Progressing Unknown with DeploymentPaused / DeploymentResumed.
pub(super) async fn check_paused_conditions(ctx: &Ctx, d: &mut Deployment) -> Result<(), Error> {
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

/// kube's `SetReplicasAnnotations`; true when something changed.
pub(super) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
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

/// kube's `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (created when asked and
/// missing) and the old ones, revisions synced.
pub(super) async fn sets_and_sync_revision(
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
pub(super) async fn scaling_event(ctx: &Ctx, d: &Deployment, message: String) {
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
pub(super) async fn scale_rs(
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
pub(super) async fn sync(ctx: &Ctx, d: &mut Deployment, list: &[ReplicaSet]) -> Result<(), Error> {
    let mut sets = sets_and_sync_revision(ctx, d, list, false).await?;
    scale(ctx, d, &mut sets).await?;
    if is_paused(d) {
        cleanup(ctx, d, &sets).await?;
    }
    sync_status(ctx, d, &sets).await
}

/// kube's `syncDeploymentStatus`.
pub(super) async fn sync_status(ctx: &Ctx, d: &mut Deployment, sets: &Sets) -> Result<(), Error> {
    let status = calculate_status(d, sets);
    if d.status.as_ref() == Some(&status) {
        return Ok(());
    }
    write_status(ctx, d, status).await
}

/// kube's `scale`: a scaling event moves replicas proportionally across the active sets.
pub(super) async fn scale(ctx: &Ctx, d: &Deployment, sets: &mut Sets) -> Result<(), Error> {
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
