//! The scheduler's cache, as kube-scheduler's: every node's facts and the sum of the requests
//! of the pods bound to it, kept up to date from the watches, plus the pods the scheduler has
//! just bound and assumes on their node before the watch confirms the binding (so the next
//! decision, made before that confirmation, already counts them).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Node;

use super::info::{NodeFacts, PodInfo, PodKey};
use super::resources::Resources;

/// A node and what is bound to it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// None while pods are bound to a node the watch has not shown (or no longer shows).
    pub facts: Option<NodeFacts>,
    /// The sum of the bound pods' requests.
    pub requested: Resources,
    /// The same with the non-zero defaults, for scoring.
    pub non_zero: Resources,
    pub pod_count: i64,
    /// Bound pods per spread key id (see [`Cache::spread_id`]).
    spread: Vec<(u32, u32)>,
}

impl NodeInfo {
    /// How many bound pods share the spread key `id`.
    pub fn spread_count(&self, id: u32) -> u32 {
        self.spread
            .iter()
            .find(|(k, _)| *k == id)
            .map_or(0, |(_, n)| *n)
    }

    fn add(&mut self, pod: &CachedPod) {
        self.requested.add(&pod.requests);
        self.non_zero.add(&pod.non_zero);
        self.pod_count += 1;
        if let Some(id) = pod.spread {
            match self.spread.iter_mut().find(|(k, _)| *k == id) {
                Some((_, n)) => *n += 1,
                None => self.spread.push((id, 1)),
            }
        }
    }

    fn remove(&mut self, pod: &CachedPod) {
        self.requested.sub(&pod.requests);
        self.non_zero.sub(&pod.non_zero);
        self.pod_count -= 1;
        if let Some(id) = pod.spread {
            if let Some(i) = self.spread.iter().position(|(k, _)| *k == id) {
                self.spread[i].1 -= 1;
                if self.spread[i].1 == 0 {
                    self.spread.swap_remove(i);
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct CachedPod {
    uid: String,
    node: String,
    requests: Resources,
    non_zero: Resources,
    spread: Option<u32>,
    /// Bound by us and not yet seen bound by the watch.
    assumed: bool,
}

/// Nodes by name (so iteration, and thus tie-breaking, is in name order) and bound pods.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    pods: HashMap<PodKey, CachedPod>,
    spread_ids: HashMap<String, u32>,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Adds or updates a node; true when something scheduling depends on changed (so pods
    /// that did not fit deserve another try).
    pub fn upsert_node(&mut self, node: &Node) -> bool {
        let facts = NodeFacts::from_node(node);
        let info = self.nodes.entry(facts.name.clone()).or_default();
        if info.facts.as_ref() == Some(&facts) {
            return false;
        }
        info.facts = Some(facts);
        true
    }

    /// Removes a node (its bound pods stay counted until they are deleted).
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            if info.pod_count == 0 {
                self.nodes.remove(name);
            } else {
                info.facts = None;
            }
        }
    }

    /// The nodes the cache knows with their facts, in name order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeFacts, &NodeInfo)> {
        self.nodes
            .values()
            .filter_map(|info| info.facts.as_ref().map(|f| (f, info)))
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// The number of nodes with facts.
    pub fn node_count(&self) -> usize {
        self.nodes().count()
    }

    /// The names of all nodes with facts.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes().map(|(f, _)| f.name.clone()).collect()
    }

    /// The id of a spread key if any bound pod has it.
    pub fn spread_id(&self, key: &str) -> Option<u32> {
        self.spread_ids.get(key).copied()
    }

    fn intern(&mut self, key: &str) -> u32 {
        let next = u32::try_from(self.spread_ids.len()).unwrap_or(u32::MAX);
        *self.spread_ids.entry(key.to_owned()).or_insert(next)
    }

    fn insert(&mut self, key: &str, pod: CachedPod) {
        self.nodes.entry(pod.node.clone()).or_default().add(&pod);
        self.pods.insert(key.to_owned(), pod);
    }

    /// Removes a bound pod; true if it was counted.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(pod) = self.pods.remove(key) else {
            return false;
        };
        if let Some(info) = self.nodes.get_mut(&pod.node) {
            info.remove(&pod);
            if info.facts.is_none() && info.pod_count == 0 {
                self.nodes.remove(&pod.node);
            }
        }
        true
    }

    fn cached(&mut self, pod: &PodInfo, node: &str, assumed: bool) -> CachedPod {
        CachedPod {
            uid: pod.uid.clone(),
            node: node.to_owned(),
            requests: pod.requests.clone(),
            non_zero: pod.non_zero.clone(),
            spread: pod.spread_key.as_deref().map(|k| self.intern(k)),
            assumed,
        }
    }

    /// Records a pod the watch shows bound to `node` (confirming an assumed one).
    pub fn add_bound(&mut self, pod: &PodInfo, node: &str) {
        if let Some(cached) = self.pods.get_mut(&pod.key) {
            if cached.uid == pod.uid
                && cached.node == node
                && cached.requests == pod.requests
                && cached.non_zero == pod.non_zero
            {
                cached.assumed = false;
                return;
            }
            self.remove_pod(&pod.key);
        }
        let cached = self.cached(pod, node, false);
        self.insert(&pod.key, cached);
    }

    /// Counts a pod on the node it is being bound to, before the watch confirms it.
    pub fn assume(&mut self, pod: &PodInfo, node: &str) {
        self.remove_pod(&pod.key);
        let cached = self.cached(pod, node, true);
        self.insert(&pod.key, cached);
    }

    /// Drops an assumed pod whose binding failed; a confirmed one stays.
    pub fn forget(&mut self, key: &str) {
        if self.pods.get(key).is_some_and(|p| p.assumed) {
            self.remove_pod(key);
        }
    }

    /// Whether this pod (same uid) is assumed or bound in the cache.
    pub fn has_pod(&self, key: &str, uid: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.uid == uid)
    }

    /// Whether the pod is assumed and not yet confirmed.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|p| p.assumed)
    }

    /// The keys of all counted pods.
    pub fn pod_keys(&self) -> Vec<PodKey> {
        self.pods.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}}))
        .unwrap()
    }

    fn pod(name: &str, cpu: &str) -> PodInfo {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name,
            "namespace": "default", "uid": name,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                "uid": "rs-1", "controller": true}]},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
        .unwrap();
        PodInfo::from_pod(&pod)
    }

    #[test]
    fn assume_then_confirm_counts_once() {
        let mut cache = Cache::new();
        assert!(cache.upsert_node(&node("a")));
        assert!(!cache.upsert_node(&node("a")));
        let p = pod("p", "500m");
        cache.assume(&p, "a");
        cache.add_bound(&p, "a");
        let info = cache.node("a").unwrap();
        assert_eq!(info.requested.milli_cpu, 500);
        assert_eq!(info.pod_count, 1);
        assert_eq!(info.spread_count(cache.spread_id("rs-1").unwrap()), 1);
        // Confirmed: a late failure report does not drop it.
        cache.forget(&p.key);
        assert_eq!(cache.node("a").unwrap().pod_count, 1);
        assert!(cache.remove_pod(&p.key));
        let info = cache.node("a").unwrap();
        assert_eq!((info.requested.milli_cpu, info.pod_count), (0, 0));
        assert_eq!(info.spread_count(0), 0);
    }

    #[test]
    fn forget_drops_assumed() {
        let mut cache = Cache::new();
        cache.upsert_node(&node("a"));
        let p = pod("p", "1");
        cache.assume(&p, "a");
        assert!(cache.is_assumed(&p.key));
        cache.forget(&p.key);
        assert_eq!(cache.node("a").unwrap().pod_count, 0);
    }

    #[test]
    fn pods_on_unknown_nodes_are_kept_until_the_node_appears() {
        let mut cache = Cache::new();
        let p = pod("p", "1");
        cache.add_bound(&p, "later");
        assert_eq!(cache.node_count(), 0);
        cache.upsert_node(&node("later"));
        assert_eq!(cache.node("later").unwrap().requested.milli_cpu, 1000);
        cache.remove_node("later");
        assert_eq!(cache.node_count(), 0);
        assert!(cache.remove_pod(&p.key));
        assert!(cache.node("later").is_none());
    }
}
