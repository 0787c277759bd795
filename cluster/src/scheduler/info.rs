//! The scheduler's parsed view of a pod ([`PodInfo`]) and of a node ([`NodeFacts`]): computed
//! once when the watch delivers the object, so a scheduling decision only compares numbers and
//! short strings.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint as ApiTaint,
};

use super::resources::{self, Resources};

/// `namespace/name`.
pub type PodKey = String;

/// The key of a pod.
pub fn pod_key(pod: &Pod) -> PodKey {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// A node selector requirement's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    /// The value is greater than this integer.
    Gt(i64),
    /// The value is less than this integer.
    Lt(i64),
    /// An operator or operand the API server should have refused: matches nothing.
    Invalid,
}

/// One `matchExpressions` or `matchFields` requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    fn parse(req: &NodeSelectorRequirement) -> Requirement {
        let values = req.values.clone().unwrap_or_default();
        let single_int = || match values.as_slice() {
            [one] => one.parse::<i64>().ok(),
            _ => None,
        };
        let operator = match req.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => single_int().map_or(Operator::Invalid, Operator::Gt),
            "Lt" => single_int().map_or(Operator::Invalid, Operator::Lt),
            _ => Operator::Invalid,
        };
        Requirement {
            key: req.key.clone(),
            operator,
            values,
        }
    }

    /// Whether a node with this value for the key (None: no such label) satisfies it.
    pub fn matches(&self, value: Option<&str>) -> bool {
        match (&self.operator, value) {
            (Operator::In, Some(v)) => self.values.iter().any(|x| x == v),
            (Operator::In, None) => false,
            (Operator::NotIn, Some(v)) => !self.values.iter().any(|x| x == v),
            (Operator::NotIn, None) => true,
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
            (Operator::Gt(bound), Some(v)) => v.parse::<i64>().is_ok_and(|n| n > *bound),
            (Operator::Lt(bound), Some(v)) => v.parse::<i64>().is_ok_and(|n| n < *bound),
            (Operator::Gt(_) | Operator::Lt(_), None) => false,
            (Operator::Invalid, _) => false,
        }
    }
}

/// One `nodeSelectorTerms` entry: its requirements are ANDed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub expressions: Vec<Requirement>,
    /// `matchFields`; only `metadata.name` is a node field.
    pub fields: Vec<Requirement>,
}

impl Term {
    fn parse(term: &NodeSelectorTerm) -> Term {
        let parse = |list: &Option<Vec<NodeSelectorRequirement>>| {
            list.iter().flatten().map(Requirement::parse).collect()
        };
        Term {
            expressions: parse(&term.match_expressions),
            fields: parse(&term.match_fields),
        }
    }
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    /// Empty: any key (with `Exists`).
    pub key: String,
    /// `Exists` rather than `Equal`.
    pub exists: bool,
    pub value: String,
    /// Empty: any effect.
    pub effect: String,
}

impl Toleration {
    /// Kube's `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != taint.effect {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        self.exists || self.value == taint.value
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

impl Taint {
    fn from_api(t: &ApiTaint) -> Taint {
        Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.clone(),
        }
    }
}

/// The taint a node whose Ready condition is False or missing carries in Kubernetes (put by
/// the node lifecycle controller); the scheduler applies it itself so a NotReady node is
/// avoided even before that controller acts.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The taint of a node whose Ready condition is Unknown (its agent stopped reporting).
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// The taint that a pod tolerates to be placed on an unschedulable (cordoned) node.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// What the scheduler needs of a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodInfo {
    pub key: PodKey,
    pub uid: String,
    pub requests: Resources,
    /// Requests with kube's non-zero cpu/memory defaults, for scoring.
    pub non_zero: Resources,
    pub node_selector: Vec<(String, String)>,
    /// Required node affinity: any term must match. None: no required affinity.
    pub affinity: Option<Vec<Term>>,
    pub tolerations: Vec<Toleration>,
    /// The uid of the controller owning the pod: its replicas are spread over nodes.
    pub spread_key: Option<String>,
}

impl PodInfo {
    /// Parses what scheduling needs from a pod.
    pub fn from_pod(pod: &Pod) -> PodInfo {
        let spec = pod.spec.as_ref();
        let affinity = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|selector| {
                selector
                    .node_selector_terms
                    .iter()
                    .map(Term::parse)
                    .collect()
            });
        let tolerations = spec
            .and_then(|s| s.tolerations.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.clone().unwrap_or_default(),
                exists: t.operator.as_deref() == Some("Exists"),
                value: t.value.clone().unwrap_or_default(),
                effect: t.effect.clone().unwrap_or_default(),
            })
            .collect();
        let spread_key = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        PodInfo {
            key: pod_key(pod),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            requests: resources::pod_requests(pod),
            non_zero: resources::pod_non_zero_requests(pod),
            node_selector: spec
                .and_then(|s| s.node_selector.as_ref())
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            affinity,
            tolerations,
            spread_key,
        }
    }
}

/// What the scheduler needs of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Only the NoSchedule and NoExecute taints, the ones that keep pods off; a NotReady node
    /// also carries the not-ready/unreachable taint here.
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Allocatable pod count.
    pub allowed_pods: i64,
}

impl NodeFacts {
    /// Parses a Node.
    pub fn from_node(node: &Node) -> NodeFacts {
        let status = node.status.as_ref();
        let spec = node.spec.as_ref();
        let mut taints: Vec<Taint> = spec
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .map(Taint::from_api)
            .collect();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        let synthetic = match ready {
            Some("True") => None,
            Some("Unknown") => Some(UNREACHABLE_TAINT),
            _ => Some(NOT_READY_TAINT),
        };
        if let Some(key) = synthetic {
            if !taints.iter().any(|t| t.key == key) {
                taints.push(Taint {
                    key: key.to_owned(),
                    value: String::new(),
                    effect: "NoSchedule".to_owned(),
                });
            }
        }
        let allocatable = status.and_then(|s| s.allocatable.as_ref());
        let allowed_pods = allocatable
            .and_then(|a| a.get("pods"))
            .and_then(|q| resources::parse_quantity(&q.0))
            .map_or(0, |n| n as i64);
        NodeFacts {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints,
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            allocatable: Resources::from_list(allocatable),
            allowed_pods,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_facts_mark_not_ready() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "a", "effect": "PreferNoSchedule"}]},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "False"}]},
        }))
        .unwrap();
        let facts = NodeFacts::from_node(&node);
        assert_eq!(facts.allocatable.milli_cpu, 2000);
        assert_eq!(facts.allowed_pods, 110);
        assert_eq!(facts.taints.len(), 1);
        assert_eq!(facts.taints[0].key, NOT_READY_TAINT);
    }

    #[test]
    fn requirement_operators() {
        let req = |op: &str, values: &[&str]| {
            Requirement::parse(&NodeSelectorRequirement {
                key: "k".into(),
                operator: op.into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            })
        };
        assert!(req("In", &["a", "b"]).matches(Some("b")));
        assert!(!req("In", &["a"]).matches(None));
        assert!(req("NotIn", &["a"]).matches(None));
        assert!(!req("NotIn", &["a"]).matches(Some("a")));
        assert!(req("Exists", &[]).matches(Some("")));
        assert!(req("DoesNotExist", &[]).matches(None));
        assert!(req("Gt", &["5"]).matches(Some("6")));
        assert!(!req("Gt", &["5"]).matches(Some("5")));
        assert!(req("Lt", &["5"]).matches(Some("4")));
        assert!(!req("Lt", &["x"]).matches(Some("4")));
        assert!(!req("Bogus", &[]).matches(Some("4")));
    }
}
