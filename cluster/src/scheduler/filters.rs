//! The filter plugins, in kube-scheduler's order (NodeUnschedulable, TaintToleration,
//! NodeAffinity, NodeResourcesFit), each refusing a node with kube's reason text, and
//! [`FitError`], the "0/N nodes are available: ..." message that says why every node refused.
//!
//! NodeName is not a filter here: a pod whose `spec.nodeName` is set is bound already and never
//! reaches the scheduler. A node whose Ready condition is not True carries, in this view, the
//! `node.kubernetes.io/not-ready` (or `unreachable`) NoSchedule taint that Kubernetes' node
//! lifecycle controller would give it, so TaintToleration refuses it with kube's wording.

use std::collections::BTreeMap;
use std::fmt;

use super::cache::NodeInfo;
use super::info::{NodeFacts, PodInfo, Taint, UNSCHEDULABLE_TAINT};

/// Why a node cannot run a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason<'a> {
    /// `spec.unschedulable` (cordoned), not tolerated.
    Unschedulable,
    /// The first NoSchedule/NoExecute taint no toleration matches.
    UntoleratedTaint(&'a Taint),
    /// nodeSelector or required node affinity does not match.
    NodeAffinity,
    /// Not enough room.
    Resources(Insufficient<'a>),
}

/// The resources a node lacks for a pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Insufficient<'a> {
    pub pods: bool,
    pub cpu: bool,
    pub memory: bool,
    pub scalars: Vec<&'a str>,
}

impl Reason<'_> {
    /// Kube's reason strings (one per lacking resource for NodeResourcesFit).
    pub fn messages(&self) -> Vec<String> {
        match self {
            Reason::Unschedulable => vec!["node(s) were unschedulable".to_owned()],
            Reason::UntoleratedTaint(t) => vec![format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key, t.value
            )],
            Reason::NodeAffinity => {
                vec!["node(s) didn't match Pod's node affinity/selector".to_owned()]
            }
            Reason::Resources(lack) => {
                let mut out = Vec::new();
                if lack.pods {
                    out.push("Too many pods".to_owned());
                }
                if lack.cpu {
                    out.push("Insufficient cpu".to_owned());
                }
                if lack.memory {
                    out.push("Insufficient memory".to_owned());
                }
                out.extend(lack.scalars.iter().map(|s| format!("Insufficient {s}")));
                out
            }
        }
    }

    /// Whether evicting lower-priority pods could make room (only for resources), which
    /// decides kube's preemption sentence.
    fn preemption_might_help(&self) -> bool {
        matches!(self, Reason::Resources(_))
    }
}

/// NodeUnschedulable: a cordoned node takes only pods tolerating
/// `node.kubernetes.io/unschedulable:NoSchedule`.
pub fn node_unschedulable<'a>(pod: &PodInfo, node: &'a NodeFacts) -> Result<(), Reason<'a>> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: UNSCHEDULABLE_TAINT.to_owned(),
        value: String::new(),
        effect: "NoSchedule".to_owned(),
    };
    if pod.tolerations.iter().any(|t| t.tolerates(&taint)) {
        Ok(())
    } else {
        Err(Reason::Unschedulable)
    }
}

/// TaintToleration: every NoSchedule/NoExecute taint must be tolerated.
pub fn taint_toleration<'a>(pod: &PodInfo, node: &'a NodeFacts) -> Result<(), Reason<'a>> {
    match node
        .taints
        .iter()
        .find(|taint| !pod.tolerations.iter().any(|t| t.tolerates(taint)))
    {
        Some(taint) => Err(Reason::UntoleratedTaint(taint)),
        None => Ok(()),
    }
}

/// NodeAffinity: the nodeSelector's labels, and one of the required nodeSelectorTerms.
pub fn node_affinity<'a>(pod: &PodInfo, node: &'a NodeFacts) -> Result<(), Reason<'a>> {
    let selector_ok = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    let affinity_ok = match &pod.affinity {
        None => true,
        Some(terms) => terms.iter().any(|term| {
            // A term without requirements selects nothing, as in kube.
            (!term.expressions.is_empty() || !term.fields.is_empty())
                && term
                    .expressions
                    .iter()
                    .all(|r| r.matches(node.labels.get(&r.key).map(String::as_str)))
                && term
                    .fields
                    .iter()
                    .all(|r| r.key == "metadata.name" && r.matches(Some(node.name.as_str())))
        }),
    };
    if selector_ok && affinity_ok {
        Ok(())
    } else {
        Err(Reason::NodeAffinity)
    }
}

/// NodeResourcesFit: the pod count, and each requested resource within what is left.
pub fn resources_fit<'a>(
    pod: &'a PodInfo,
    node: &NodeFacts,
    info: &NodeInfo,
) -> Result<(), Reason<'a>> {
    let mut lack = Insufficient {
        pods: info.pod_count + 1 > node.allowed_pods,
        ..Insufficient::default()
    };
    let req = &pod.requests;
    let alloc = &node.allocatable;
    let used = &info.requested;
    lack.cpu = req.milli_cpu > 0 && req.milli_cpu > alloc.milli_cpu - used.milli_cpu;
    lack.memory = req.memory > 0 && req.memory > alloc.memory - used.memory;
    for (name, amount) in &req.scalars {
        let have = alloc.scalars.get(name).copied().unwrap_or(0);
        let taken = used.scalars.get(name).copied().unwrap_or(0);
        if *amount > 0 && *amount > have - taken {
            lack.scalars.push(name.as_str());
        }
    }
    if lack.pods || lack.cpu || lack.memory || !lack.scalars.is_empty() {
        Err(Reason::Resources(lack))
    } else {
        Ok(())
    }
}

/// All filters in order; the first refusal is the node's reason.
pub fn run_filters<'a>(
    pod: &'a PodInfo,
    node: &'a NodeFacts,
    info: &NodeInfo,
) -> Result<(), Reason<'a>> {
    node_unschedulable(pod, node)?;
    taint_toleration(pod, node)?;
    node_affinity(pod, node)?;
    resources_fit(pod, node, info)
}

/// No node can run the pod: kube's `FitError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    message: String,
}

impl FitError {
    /// Builds kube's message from every node's refusal.
    pub fn new<'a>(num_nodes: usize, refusals: impl IntoIterator<Item = Reason<'a>>) -> FitError {
        if num_nodes == 0 {
            return FitError {
                message: "no nodes available to schedule pods".to_owned(),
            };
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut preemption: BTreeMap<&str, usize> = BTreeMap::new();
        for reason in refusals {
            for message in reason.messages() {
                *reasons.entry(message).or_default() += 1;
            }
            let why = if reason.preemption_might_help() {
                "No preemption victims found for incoming pod"
            } else {
                "Preemption is not helpful for scheduling"
            };
            *preemption.entry(why).or_default() += 1;
        }
        let histogram = |counts: Vec<String>| {
            let mut counts = counts;
            // kube sorts the "N reason" strings themselves.
            counts.sort();
            counts.join(", ")
        };
        let filters = histogram(reasons.iter().map(|(r, n)| format!("{n} {r}")).collect());
        let post = histogram(preemption.iter().map(|(r, n)| format!("{n} {r}")).collect());
        FitError {
            message: format!(
                "0/{num_nodes} nodes are available: {filters}. preemption: 0/{num_nodes} nodes are available: {post}."
            ),
        }
    }

    /// The message, as the FailedScheduling event and PodScheduled condition carry it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FitError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::cache::Cache;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::{json, Value};

    fn node(name: &str, extra: Value) -> NodeFacts {
        let mut n = json!({"metadata": {"name": name, "labels": {"disk": "ssd", "rank": "5"}},
            "spec": {},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"},
                "conditions": [{"type": "Ready", "status": "True"}]}});
        merge(&mut n, extra);
        NodeFacts::from_node(&serde_json::from_value::<Node>(n).unwrap())
    }

    fn pod(spec: Value) -> PodInfo {
        let mut p = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"containers": [{"name": "c"}]}});
        merge(&mut p, json!({"spec": spec}));
        PodInfo::from_pod(&serde_json::from_value::<Pod>(p).unwrap())
    }

    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    fn msgs(r: Result<(), Reason<'_>>) -> Vec<String> {
        r.err().map(|r| r.messages()).unwrap_or_default()
    }

    #[test]
    fn unschedulable_unless_tolerated() {
        let n = node("n", json!({"spec": {"unschedulable": true}}));
        assert_eq!(
            msgs(node_unschedulable(&pod(json!({})), &n)),
            ["node(s) were unschedulable"]
        );
        let tolerant = pod(json!({"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}));
        assert!(node_unschedulable(&tolerant, &n).is_ok());
        assert!(node_unschedulable(&pod(json!({})), &node("m", json!({}))).is_ok());
    }

    #[test]
    fn taints_need_tolerations() {
        let n = node(
            "n",
            json!({"spec": {"taints": [
            {"key": "gpu", "value": "yes", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"}]}}),
        );
        assert_eq!(
            msgs(taint_toleration(&pod(json!({})), &n)),
            ["node(s) had untolerated taint {gpu: yes}"]
        );
        let equal =
            pod(json!({"tolerations": [{"key": "gpu", "operator": "Equal", "value": "yes"}]}));
        assert!(taint_toleration(&equal, &n).is_ok());
        let wrong_value = pod(json!({"tolerations": [{"key": "gpu", "value": "no"}]}));
        assert!(taint_toleration(&wrong_value, &n).is_err());
        let wrong_effect = pod(
            json!({"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}]}),
        );
        assert!(taint_toleration(&wrong_effect, &n).is_err());
        let exists = pod(json!({"tolerations": [{"key": "gpu", "operator": "Exists"}]}));
        assert!(taint_toleration(&exists, &n).is_ok());
        let all = pod(json!({"tolerations": [{"operator": "Exists"}]}));
        assert!(taint_toleration(&all, &n).is_ok());
        let no_execute = node(
            "x",
            json!({"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}}),
        );
        assert_eq!(
            msgs(taint_toleration(&pod(json!({})), &no_execute)),
            ["node(s) had untolerated taint {k: }"]
        );
    }

    #[test]
    fn not_ready_nodes_are_refused() {
        let not_ready = node(
            "n",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        assert_eq!(
            msgs(taint_toleration(&pod(json!({})), &not_ready)),
            ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
        );
        let missing = node("n", json!({"status": {"conditions": []}}));
        assert!(taint_toleration(&pod(json!({})), &missing).is_err());
        let unknown = node(
            "n",
            json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}),
        );
        assert_eq!(
            msgs(taint_toleration(&pod(json!({})), &unknown)),
            ["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
        );
    }

    #[test]
    fn node_selector_and_affinity() {
        let n = node("n1", json!({}));
        assert!(node_affinity(&pod(json!({"nodeSelector": {"disk": "ssd"}})), &n).is_ok());
        assert_eq!(
            msgs(node_affinity(
                &pod(json!({"nodeSelector": {"disk": "hdd"}})),
                &n
            )),
            ["node(s) didn't match Pod's node affinity/selector"]
        );
        let affinity = |terms: Value| {
            pod(json!({"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}))
        };
        let ok = |terms: Value| node_affinity(&affinity(terms), &n).is_ok();
        assert!(ok(
            json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}]}])
        ));
        assert!(!ok(
            json!([{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}])
        ));
        assert!(ok(
            json!([{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}])
        ));
        assert!(ok(
            json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}])
        ));
        assert!(ok(
            json!([{"matchExpressions": [{"key": "rank", "operator": "Gt", "values": ["4"]}]}])
        ));
        assert!(!ok(
            json!([{"matchExpressions": [{"key": "rank", "operator": "Lt", "values": ["4"]}]}])
        ));
        // Terms are ORed, requirements inside a term ANDed.
        assert!(ok(json!([
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}])));
        assert!(!ok(
            json!([{"matchExpressions": [{"key": "disk", "operator": "Exists"}],
            "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]}])
        ));
        assert!(!ok(json!([{}])));
        assert!(!ok(json!([])));
    }

    #[test]
    fn resources_fit_counts_requests_and_pods() {
        let mut cache = Cache::new();
        let n: Node = serde_json::from_value(json!({"metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "2", "example.com/dongle": "1"}}}))
        .unwrap();
        cache.upsert_node(&n);
        let big = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}}}]}),
        );
        let (facts, info) = cache.nodes().next().unwrap();
        assert!(resources_fit(&big, facts, info).is_ok());
        cache.assume(&big, "n");
        let (facts, info) = cache.nodes().next().unwrap();
        let again = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "4Gi"}}}]}),
        );
        assert_eq!(
            msgs(resources_fit(&again, facts, info)),
            ["Insufficient cpu", "Insufficient memory"]
        );
        let empty = pod(json!({}));
        assert!(resources_fit(&empty, facts, info).is_ok());
        let dongles = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/dongle": "2"}}}]}),
        );
        assert_eq!(
            msgs(resources_fit(&dongles, facts, info)),
            ["Insufficient example.com/dongle"]
        );
        let mut other = empty.clone();
        other.key = "d/other".into();
        cache.assume(&other, "n");
        let (facts, info) = cache.nodes().next().unwrap();
        assert_eq!(msgs(resources_fit(&empty, facts, info)), ["Too many pods"]);
    }

    #[test]
    fn fit_error_reads_like_kube() {
        let taint = Taint {
            key: "gpu".into(),
            value: "yes".into(),
            effect: "NoSchedule".into(),
        };
        let cpu = Reason::Resources(Insufficient {
            cpu: true,
            ..Default::default()
        });
        let err = FitError::new(3, [cpu, Reason::NodeAffinity, Reason::NodeAffinity]);
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node \
             affinity/selector. preemption: 0/3 nodes are available: 1 No preemption victims \
             found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
        let err = FitError::new(2, [Reason::UntoleratedTaint(&taint), Reason::Unschedulable]);
        assert_eq!(
            err.message(),
            "0/2 nodes are available: 1 node(s) had untolerated taint {gpu: yes}, 1 node(s) were \
             unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful for \
             scheduling."
        );
        assert_eq!(
            FitError::new(0, []).message(),
            "no nodes available to schedule pods"
        );
    }
}
