//! Revision history (kube's `deploymentutil` revision and hash helpers, and
//! `cleanupDeployment`): the pod-template hash that names a ReplicaSet, the revision
//! annotations `kubectl rollout history|undo` read, and pruning beyond `revisionHistoryLimit`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::ResourceExt;

use super::sync::set_replicas_annotations;
use super::util::{annotation, by_creation, d_replicas, max_surge, rs_replicas, rs_status, Sets};
use super::ANNOTATIONS_TO_SKIP;
use super::{
    rs_api, Ctx, POD_TEMPLATE_HASH_LABEL, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
};
use crate::controllers::workloads_common::{delete_if_uid, is_not_found, Error};

/// kube's `rand.SafeEncodeString`: each byte to a character that cannot form bad words.
pub(super) fn safe_encode(s: &str) -> String {
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
pub(super) fn without_hash(t: &PodTemplateSpec) -> PodTemplateSpec {
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
pub(super) fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

pub(super) fn rs_template(rs: &ReplicaSet) -> PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

/// The ReplicaSet's revision (0 when absent or invalid).
pub(super) fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION_ANNOTATION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sets the Deployment's own revision annotation (`SetDeploymentRevision`). kube writes it with
/// the status, whose subresource here keeps metadata as stored: an update of the object.
pub(super) async fn set_deployment_revision(
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

/// kube's `copyDeploymentAnnotationsToReplicaSet`; true when something changed.
pub(super) fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
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

/// kube's `SetNewReplicaSetAnnotations`: copied annotations, the new revision (the old one moved
/// to the revision history) and, for a new ReplicaSet, the replicas annotations.
pub(super) fn set_new_rs_annotations(
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

/// kube's `cleanupDeployment`: old sets at zero beyond `revisionHistoryLimit` are deleted,
/// lowest revision first.
pub(super) async fn cleanup(ctx: &Ctx, d: &Deployment, sets: &Sets) -> Result<(), Error> {
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
