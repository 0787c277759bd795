//! Pure helpers over Deployments and their ReplicaSets (kube's `deploymentutil`): replica
//! counts, maxSurge/maxUnavailable, the new/old split, proportions for a scaling event.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::history::{equal_ignore_hash, rs_template};
use super::{DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION};

pub(super) fn d_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub(super) fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub(super) fn rs_status(
    rs: &ReplicaSet,
    f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

pub(super) fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

pub(super) fn is_paused(d: &Deployment) -> bool {
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
pub(super) fn resolve_fenceposts(d: &Deployment, desired: i32) -> (i32, i32) {
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

pub(super) fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    resolve_fenceposts(d, d_replicas(d)).0
}

pub(super) fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = d_replicas(d);
    if is_recreate(d) || replicas == 0 {
        return 0;
    }
    resolve_fenceposts(d, replicas).1.min(replicas)
}

pub(super) fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub(super) fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(&rs.metadata, key).and_then(|v| v.parse().ok())
}

/// Oldest first, then by name (kube's `ReplicaSetsByCreationTimestamp`).
pub(super) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let ts = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    ts(a)
        .cmp(&ts(b))
        .then_with(|| a.name_any().cmp(&b.name_any()))
}

/// The ReplicaSets of a Deployment: the new one (same template) and the others.
#[derive(Debug, Clone, Default)]
pub(super) struct Sets {
    pub(super) new: Option<ReplicaSet>,
    pub(super) old: Vec<ReplicaSet>,
}

impl Sets {
    pub(super) fn split(d: &Deployment, list: &[ReplicaSet]) -> Sets {
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

    pub(super) fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.as_ref()).collect()
    }

    pub(super) fn get_mut(&mut self, name: &str) -> Option<&mut ReplicaSet> {
        self.old
            .iter_mut()
            .chain(self.new.as_mut())
            .find(|rs| rs.name_any() == name)
    }
}

pub(super) fn sum(sets: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    sets.iter().map(|rs| f(rs)).sum()
}

pub(super) fn available_of(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.available_replicas)
}

/// `deploymentutil.NewRSNewReplicas`.
pub(super) fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
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
pub(super) fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else { return false };
    let replicas = d_replicas(d);
    int_annotation(rs, DESIRED_REPLICAS_ANNOTATION) == Some(replicas)
        && rs_replicas(rs) == replicas
        && available_of(rs) == replicas
}

/// `deploymentutil.FindActiveOrLatest`: the one ReplicaSet with replicas, or the latest when
/// none has any; `None` when several have.
pub(super) fn find_active_or_latest(sets: &Sets) -> Option<String> {
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
pub(super) fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
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

/// The label selector's query form.
pub(super) fn selector_string(selector: &LabelSelector) -> String {
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
