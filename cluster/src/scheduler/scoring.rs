//! Scoring and the decision for one pod: every node through the filters, the feasible ones
//! scored by NodeResourcesLeastAllocated (kube's: the mean over cpu and memory of the share left
//! free once the pod is counted, with the non-zero request defaults) plus a small spread term
//! (fewer replicas of the same controller on the node is better), the best taken; ties are
//! broken round-robin over the tied nodes in name order, so equal nodes take turns.

use super::cache::{Cache, NodeInfo};
use super::filters::{run_filters, FitError};
use super::info::{NodeFacts, PodInfo};

/// The highest score of a plugin.
pub const MAX_NODE_SCORE: f64 = 100.0;
/// The weight of the spread term against LeastAllocated's (1): it separates nodes whose load
/// is close, and never outweighs a real difference in load.
pub const SPREAD_WEIGHT: f64 = 0.1;

/// Kube's LeastAllocated: mean over cpu and memory of (allocatable - requested) / allocatable
/// * 100, counting the pod, with non-zero defaults for pods that request nothing.
pub fn least_allocated(pod: &PodInfo, node: &NodeFacts, info: &NodeInfo) -> f64 {
    let free = |allocatable: i64, requested: i64| {
        if allocatable <= 0 || requested > allocatable {
            0.0
        } else {
            (allocatable - requested) as f64 * MAX_NODE_SCORE / allocatable as f64
        }
    };
    let cpu = free(
        node.allocatable.milli_cpu,
        info.non_zero.milli_cpu + pod.non_zero.milli_cpu,
    );
    let memory = free(
        node.allocatable.memory,
        info.non_zero.memory + pod.non_zero.memory,
    );
    (cpu + memory) / 2.0
}

/// The spread score: 100 on a node without replicas of the pod's controller, falling to 0 on
/// the node with the most (`max` over the feasible nodes).
pub fn spread(count: u32, max: u32) -> f64 {
    if max == 0 {
        MAX_NODE_SCORE
    } else {
        f64::from(max - count.min(max)) * MAX_NODE_SCORE / f64::from(max)
    }
}

/// Picks the node for `pod`, or says why none fits. `round_robin` turns ties into turns.
pub fn schedule_one(
    cache: &Cache,
    pod: &PodInfo,
    round_robin: &mut u64,
) -> Result<String, FitError> {
    let spread_id = pod.spread_key.as_deref().and_then(|k| cache.spread_id(k));
    let mut feasible: Vec<(&str, f64, u32)> = Vec::new();
    let mut max_spread = 0;
    let mut total = 0usize;
    for (facts, info) in cache.nodes() {
        total += 1;
        if run_filters(pod, facts, info).is_err() {
            continue;
        }
        let count = spread_id.map_or(0, |id| info.spread_count(id));
        max_spread = max_spread.max(count);
        feasible.push((&facts.name, least_allocated(pod, facts, info), count));
    }
    if feasible.is_empty() {
        let refusals = cache
            .nodes()
            .filter_map(|(facts, info)| run_filters(pod, facts, info).err());
        return Err(FitError::new(total, refusals));
    }
    // Scores are compared at a resolution of 1/1000 point so equal nodes tie exactly.
    let quantized = |la: f64, count: u32| {
        ((la + SPREAD_WEIGHT * spread(count, max_spread)) * 1000.0).round() as i64
    };
    let best = feasible
        .iter()
        .map(|(_, la, count)| quantized(*la, *count))
        .max()
        .unwrap_or(0);
    let tied: Vec<&str> = feasible
        .iter()
        .filter(|(_, la, count)| quantized(*la, *count) == best)
        .map(|(name, _, _)| *name)
        .collect();
    let turn = usize::try_from(*round_robin % tied.len() as u64).unwrap_or(0);
    *round_robin = round_robin.wrapping_add(1);
    Ok(tied.get(turn).copied().unwrap_or(tied[0]).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn node(name: &str, cpu: &str, memory: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap()
    }

    fn pod(name: &str, requests: serde_json::Value, owner: Option<&str>) -> PodInfo {
        let mut meta = json!({"name": name, "namespace": "d", "uid": name});
        if let Some(owner) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": owner, "uid": owner, "controller": true}]);
        }
        let p: Pod = serde_json::from_value(json!({"metadata": meta,
            "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}]}}))
        .unwrap();
        PodInfo::from_pod(&p)
    }

    #[test]
    fn least_allocated_formula() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("a", "4", "8Gi"));
        let p = pod("p", json!({"cpu": "1", "memory": "2Gi"}), None);
        let (facts, info) = cache.nodes().next().unwrap();
        // cpu (4-1)/4 = 75, memory (8-2)/8 = 75
        assert_eq!(least_allocated(&p, facts, info), 75.0);
        // No requests: 100m and 200Mi for scoring.
        let empty = pod("e", json!({}), None);
        let expected = ((3900.0 / 4000.0) * 100.0 + (8192.0 - 200.0) / 8192.0 * 100.0) / 2.0;
        assert!((least_allocated(&empty, facts, info) - expected).abs() < 1e-9);
    }

    #[test]
    fn the_30_percent_node_beats_the_90_percent_one() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("busy", "10", "10Gi"));
        cache.upsert_node(&node("calm", "10", "10Gi"));
        cache.upsert_node(&node("full", "10", "10Gi"));
        cache.assume(
            &pod("b", json!({"cpu": "9", "memory": "9Gi"}), None),
            "busy",
        );
        cache.assume(
            &pod("c", json!({"cpu": "3", "memory": "3Gi"}), None),
            "calm",
        );
        cache.assume(
            &pod("f", json!({"cpu": "10", "memory": "10Gi"}), None),
            "full",
        );
        let mut rr = 0;
        for i in 0..3 {
            let p = pod(
                &format!("n{i}"),
                json!({"cpu": "500m", "memory": "512Mi"}),
                None,
            );
            assert_eq!(schedule_one(&cache, &p, &mut rr).unwrap(), "calm");
        }
    }

    #[test]
    fn six_replicas_on_three_equal_nodes_go_two_each() {
        for requests in [json!({}), json!({"cpu": "100m"})] {
            let mut cache = Cache::new();
            for name in ["a", "b", "c"] {
                cache.upsert_node(&node(name, "64", "256Gi"));
            }
            let mut rr = 0;
            let mut placed: BTreeMap<String, usize> = BTreeMap::new();
            for i in 0..6 {
                let p = pod(&format!("web-{i}"), requests.clone(), Some("rs-web"));
                let chosen = schedule_one(&cache, &p, &mut rr).unwrap();
                cache.assume(&p, &chosen);
                *placed.entry(chosen).or_default() += 1;
            }
            assert_eq!(placed.values().copied().collect::<Vec<_>>(), [2, 2, 2]);
        }
    }

    #[test]
    fn spread_separates_replicas_on_equal_load() {
        // Two nodes equally loaded, one already running a replica: the next goes elsewhere.
        let mut cache = Cache::new();
        cache.upsert_node(&node("a", "4", "8Gi"));
        cache.upsert_node(&node("b", "4", "8Gi"));
        cache.assume(&pod("r1", json!({"cpu": "1"}), Some("rs")), "a");
        cache.assume(&pod("x", json!({"cpu": "1"}), Some("other")), "b");
        let mut rr = 0;
        for _ in 0..2 {
            let p = pod("r2", json!({"cpu": "1"}), Some("rs"));
            assert_eq!(schedule_one(&cache, &p, &mut rr).unwrap(), "b");
        }
        assert_eq!(spread(0, 0), 100.0);
        assert_eq!(spread(1, 2), 50.0);
    }

    #[test]
    fn ties_take_turns() {
        let mut cache = Cache::new();
        for name in ["a", "b", "c"] {
            cache.upsert_node(&node(name, "4", "8Gi"));
        }
        let p = pod("p", json!({}), None);
        let mut rr = 0;
        let picks: Vec<String> = (0..3)
            .map(|_| schedule_one(&cache, &p, &mut rr).unwrap())
            .collect();
        assert_eq!(picks, ["a", "b", "c"]);
    }

    #[test]
    fn no_fit_explains_every_node() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("a", "1", "1Gi"));
        cache.upsert_node(&node("b", "1", "1Gi"));
        let p = pod("p", json!({"cpu": "2"}), None);
        let err = schedule_one(&cache, &p, &mut 0).unwrap_err();
        assert!(err
            .message()
            .starts_with("0/2 nodes are available: 2 Insufficient cpu."));
    }
}
