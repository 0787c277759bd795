//! What a simulated node writes into the API, as pure functions of what it read: the Node
//! object of a new node, the node's status (capacity, conditions, addresses, nodeInfo), the
//! Lease heartbeat, and a bound pod's Running status. The agent ([`super::agent`]) only sends
//! them.

use k8s_openapi::api::core::v1::{Container, Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{NodeSpec, SIMULATED_LABEL};

/// The annotation a simulated Node keeps its capacity in (`cpu=4,memory=8Gi,pods=110`), read
/// when its status has none (the API server drops the status of a created object).
pub const CAPACITY_ANNOTATION: &str = "kgate.io/capacity";
/// What the Ready condition says.
pub const READY_MESSAGE: &str = "kubelet is posting ready status (simulated: no containers run)";
/// nodeInfo.kubeletVersion.
pub const KUBELET_VERSION: &str = "v1.33.0-kgate";
/// The container runtime every simulated node reports; also the scheme of container and image
/// ids.
pub const RUNTIME: &str = "kgate-sim";
/// Ephemeral storage every simulated node reports.
const EPHEMERAL_STORAGE: &str = "100Gi";
/// The capacity of a simulated Node that says nothing about it.
const DEFAULT_CAPACITY: (u64, u64, u32) = (4000, 8 << 30, 110);

/// `time` as a `metav1.Time` (seconds) JSON string.
pub fn time(at: Timestamp) -> Value {
    serde_json::to_value(Time(at)).unwrap_or(Value::Null)
}

/// `time` as a `metav1.MicroTime` JSON string.
pub fn micro_time(at: Timestamp) -> Value {
    serde_json::to_value(MicroTime(at)).unwrap_or(Value::Null)
}

/// CPU millicores as Kubernetes writes them: `4`, `500m`.
pub fn cpu_quantity(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes as Kubernetes writes them: the largest binary suffix that divides evenly.
pub fn memory_quantity(bytes: u64) -> String {
    for (suffix, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// The capacity map of a node offering `spec`.
pub fn capacity_of(spec: &NodeSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cpu".to_owned(), cpu_quantity(spec.cpu_millis)),
        ("memory".to_owned(), memory_quantity(spec.memory_bytes)),
        ("pods".to_owned(), spec.pods.to_string()),
        ("ephemeral-storage".to_owned(), EPHEMERAL_STORAGE.to_owned()),
    ])
}

fn capacity_annotation(spec: &NodeSpec) -> String {
    format!(
        "cpu={},memory={},pods={}",
        cpu_quantity(spec.cpu_millis),
        memory_quantity(spec.memory_bytes),
        spec.pods
    )
}

/// The Node object of a new simulated node: its labels (the spec's, the simulated label and
/// the well-known ones kubelet sets), its capacity (annotation; status is written after
/// creation), and `taints`.
pub fn new_node(spec: &NodeSpec, taints: &[Taint]) -> Node {
    let mut labels = spec.labels.clone();
    for (key, value) in [
        (SIMULATED_LABEL, "true"),
        ("kubernetes.io/hostname", spec.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("node.kubernetes.io/instance-type", "kgate-simulated"),
    ] {
        labels
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
    }
    let capacity: BTreeMap<_, _> = capacity_of(spec)
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(v),
            )
        })
        .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                CAPACITY_ANNOTATION.to_owned(),
                capacity_annotation(spec),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: (!taints.is_empty()).then(|| taints.to_vec()),
            ..Default::default()
        }),
        status: Some(k8s_openapi::api::core::v1::NodeStatus {
            allocatable: Some(capacity.clone()),
            capacity: Some(capacity),
            ..Default::default()
        }),
    }
}

/// Parses [`CAPACITY_ANNOTATION`]'s value into a capacity map (unknown keys ignored).
fn parse_capacity_annotation(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|item| item.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, v)| ["cpu", "memory", "pods"].contains(k) && !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The (capacity, allocatable) a simulated Node reports: what its status says, else its
/// annotation, else the defaults; ephemeral-storage is added when missing.
pub fn resources_of(node: &Node) -> (Map<String, Value>, Map<String, Value>) {
    let status = node.status.as_ref();
    let from_status = |field: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >| {
        field
            .filter(|m| ["cpu", "memory", "pods"].iter().all(|k| m.contains_key(*k)))
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.0.clone())))
                    .collect::<Map<_, _>>()
            })
    };
    let mut capacity = from_status(status.and_then(|s| s.capacity.as_ref())).unwrap_or_else(|| {
        let mut map: Map<String, Value> = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CAPACITY_ANNOTATION))
            .map(|text| parse_capacity_annotation(text))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        let (cpu, memory, pods) = DEFAULT_CAPACITY;
        for (key, value) in [
            ("cpu", cpu_quantity(cpu)),
            ("memory", memory_quantity(memory)),
            ("pods", pods.to_string()),
        ] {
            map.entry(key).or_insert(Value::String(value));
        }
        map
    });
    capacity
        .entry("ephemeral-storage")
        .or_insert_with(|| Value::String(EPHEMERAL_STORAGE.to_owned()));
    let mut allocatable = from_status(status.and_then(|s| s.allocatable.as_ref()))
        .unwrap_or_else(|| capacity.clone());
    if let Some(storage) = capacity.get("ephemeral-storage") {
        allocatable
            .entry("ephemeral-storage")
            .or_insert_with(|| storage.clone());
    }
    (capacity, allocatable)
}

/// When the condition `kind` of `node` last changed, if its status is still `status`.
fn kept_transition(node: &Node, kind: &str, status: &str) -> Option<Time> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == status)?
        .last_transition_time
        .clone()
}

/// The node addresses an agent reports.
#[derive(Debug, Clone)]
pub struct NodeAddressing {
    pub internal_ip: Ipv4Addr,
}

/// The status an agent posts for `node` at `now`: resources, the four conditions (Ready, no
/// pressure), addresses and nodeInfo.
pub fn node_status(node: &Node, addressing: &NodeAddressing, now: Timestamp) -> Value {
    let name = node.metadata.name.clone().unwrap_or_default();
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let (capacity, allocatable) = resources_of(node);
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        let transition = kept_transition(node, kind, status)
            .map(|t| time(t.0))
            .unwrap_or_else(|| time(now));
        json!({
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": time(now),
            "lastTransitionTime": transition,
        })
    };
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID",
                "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", READY_MESSAGE),
        ],
        "addresses": [
            {"type": "InternalIP", "address": addressing.internal_ip.to_string()},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": uid.replace('-', ""),
            "systemUUID": uid,
            "bootID": uid,
            "kernelVersion": "6.1.0-kgate",
            "osImage": "kgate simulated node",
            "containerRuntimeVersion": format!("{RUNTIME}://1"),
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    })
}

/// The InternalIP a Node's status already reports.
pub fn reported_internal_ip(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")?
        .address
        .parse()
        .ok()
}

/// Whether the Node's Ready condition is True.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The node's Lease (kube-node-lease/NAME), owned by the Node so it goes with it.
pub fn lease(node_name: &str, node_uid: Option<&str>, now: Timestamp) -> Value {
    let mut metadata = json!({"name": node_name, "namespace": super::LEASE_NAMESPACE});
    if let Some(uid) = node_uid {
        metadata["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "Node", "name": node_name, "uid": uid,
        }]);
    }
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": lease_spec(node_name, now),
    })
}

/// The Lease spec of a renewal.
pub fn lease_spec(node_name: &str, now: Timestamp) -> Value {
    json!({
        "holderIdentity": node_name,
        "leaseDurationSeconds": super::LEASE_DURATION_SECONDS,
        "renewTime": micro_time(now),
    })
}

/// Where a pod runs: the node's address and the pod's own.
#[derive(Debug, Clone, Copy)]
pub struct PodPlacement {
    pub host_ip: Ipv4Addr,
    pub pod_ip: Ipv4Addr,
}

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Running status of `pod` at `now`: IPs, conditions (readiness gates ignored: nothing
/// runs to say otherwise) and a started, ready status per container; init containers as
/// completed.
pub fn running_pod_status(pod: &Pod, placement: PodPlacement, now: Timestamp) -> Value {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let status = pod.status.as_ref();
    let start = status
        .and_then(|s| s.start_time.clone())
        .map(|t| time(t.0))
        .unwrap_or_else(|| time(now));
    let kept = |kind: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == "True"))
            .and_then(|c| c.last_transition_time.clone())
            .map(|t| time(t.0))
            .unwrap_or_else(|| time(now))
    };
    let conditions: Vec<Value> = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(|kind| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": kept(kind)}))
    .collect();
    let spec = pod.spec.as_ref();
    let container_id = |name: &str| format!("{RUNTIME}://{uid}/{name}");
    let image_id = |image: &str| format!("{RUNTIME}://{image}");
    let status_of = |c: &Container, started: bool, state: Value| {
        let image = c.image.clone().unwrap_or_default();
        json!({
            "name": c.name,
            "image": image,
            "imageID": image_id(&image),
            "containerID": container_id(&c.name),
            "ready": true,
            "started": started,
            "restartCount": 0,
            "state": state,
        })
    };
    let containers: Vec<Value> = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| status_of(c, true, json!({"running": {"startedAt": start}})))
        .collect();
    let init_containers: Vec<Value> = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let state = json!({"terminated": {
                "exitCode": 0, "reason": "Completed",
                "startedAt": start, "finishedAt": start,
                "containerID": container_id(&c.name),
            }});
            status_of(c, false, state)
        })
        .collect();
    let pod_ip = placement.pod_ip.to_string();
    let host_ip = placement.host_ip.to_string();
    let mut status = json!({
        "phase": "Running",
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start,
        "containerStatuses": containers,
    });
    if !init_containers.is_empty() {
        status["initContainerStatuses"] = Value::Array(init_containers);
    }
    status
}

/// Whether the pod uses the node's network (its IP is the node's).
pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The phase the pod reports.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// The pod's reported IPv4 address.
pub fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, NodeCondition, PodSpec, PodStatus};

    fn spec() -> NodeSpec {
        NodeSpec {
            name: "n1".into(),
            cpu_millis: 2500,
            memory_bytes: 4 << 30,
            pods: 20,
            labels: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
        }
    }

    #[test]
    fn quantities_are_written_as_kubernetes_does() {
        assert_eq!(cpu_quantity(4000), "4");
        assert_eq!(cpu_quantity(2500), "2500m");
        assert_eq!(memory_quantity(8 << 30), "8Gi");
        assert_eq!(memory_quantity(1536 << 20), "1536Mi");
        assert_eq!(memory_quantity(1000), "1000");
    }

    #[test]
    fn new_nodes_carry_labels_capacity_and_taints() {
        let taint = Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        let node = new_node(&spec(), std::slice::from_ref(&taint));
        let labels = node.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["zone"], "a");
        assert_eq!(labels[SIMULATED_LABEL], "true");
        assert_eq!(labels["kubernetes.io/hostname"], "n1");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(
            labels["node.kubernetes.io/instance-type"],
            "kgate-simulated"
        );
        let annotations = node.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations[CAPACITY_ANNOTATION],
            "cpu=2500m,memory=4Gi,pods=20"
        );
        let status = node.status.as_ref().unwrap();
        assert_eq!(status.capacity.as_ref().unwrap()["cpu"].0, "2500m");
        assert_eq!(status.allocatable.as_ref().unwrap()["pods"].0, "20");
        assert_eq!(
            node.spec.as_ref().unwrap().taints.as_ref().unwrap()[0],
            taint
        );
    }

    #[test]
    fn resources_come_from_status_then_annotation_then_defaults() {
        let mut node = new_node(&spec(), &[]);
        let (capacity, allocatable) = resources_of(&node);
        assert_eq!(capacity["cpu"], "2500m");
        assert_eq!(capacity["ephemeral-storage"], "100Gi");
        assert_eq!(allocatable["memory"], "4Gi");
        // As created through the API: the status is gone, the annotation stays.
        node.status = None;
        let (capacity, allocatable) = resources_of(&node);
        assert_eq!(capacity["cpu"], "2500m");
        assert_eq!(capacity["pods"], "20");
        assert_eq!(allocatable, capacity);
        node.metadata.annotations = None;
        let (capacity, _) = resources_of(&node);
        assert_eq!(capacity["cpu"], "4");
        assert_eq!(capacity["memory"], "8Gi");
        assert_eq!(capacity["pods"], "110");
    }

    #[test]
    fn node_status_is_ready_and_keeps_transition_times() {
        let mut node = new_node(&spec(), &[]);
        node.metadata.uid = Some("1234-5678".into());
        let addressing = NodeAddressing {
            internal_ip: Ipv4Addr::new(10, 240, 0, 10),
        };
        let earlier: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        node.status.as_mut().unwrap().conditions = Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(Time(earlier)),
            ..NodeCondition::default()
        }]);
        let now: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        let status = node_status(&node, &addressing, now);
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
        assert_eq!(ready["reason"], "KubeletReady");
        assert_eq!(ready["message"], READY_MESSAGE);
        assert_eq!(ready["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(ready["lastHeartbeatTime"], "2026-02-01T00:00:00Z");
        for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == kind)
                .unwrap();
            assert_eq!(c["status"], "False");
            assert_eq!(c["lastTransitionTime"], "2026-02-01T00:00:00Z");
        }
        assert_eq!(status["addresses"][0]["address"], "10.240.0.10");
        assert_eq!(
            status["addresses"][1],
            json!({"type": "Hostname", "address": "n1"})
        );
        assert_eq!(status["nodeInfo"]["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(
            status["nodeInfo"]["containerRuntimeVersion"],
            "kgate-sim://1"
        );
        assert_eq!(status["capacity"]["cpu"], "2500m");
        // The status deserializes as a NodeStatus.
        let typed: k8s_openapi::api::core::v1::NodeStatus = serde_json::from_value(status).unwrap();
        let back = Node {
            status: Some(typed),
            ..Node::default()
        };
        assert!(is_ready(&back));
        assert_eq!(reported_internal_ip(&back), Some(addressing.internal_ip));
    }

    #[test]
    fn lease_is_held_by_the_node_and_owned_by_it() {
        let now: Timestamp = "2026-02-01T00:00:00.123456Z".parse().unwrap();
        let lease = lease("n1", Some("u-1"), now);
        assert_eq!(lease["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(lease["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(lease["spec"]["holderIdentity"], "n1");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(lease["spec"]["renewTime"], "2026-02-01T00:00:00.123456Z");
    }

    #[test]
    fn running_pod_status_has_ips_conditions_and_container_statuses() {
        let container = |name: &str, image: &str| Container {
            name: name.into(),
            image: Some(image.into()),
            ..Container::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                uid: Some("uid-1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![container("app", "nginx"), container("side", "busybox:1")],
                init_containers: Some(vec![container("init", "alpine")]),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..PodStatus::default()
            }),
        };
        let placement = PodPlacement {
            host_ip: Ipv4Addr::new(10, 240, 0, 10),
            pod_ip: Ipv4Addr::new(10, 244, 0, 2),
        };
        let now: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
        let status = running_pod_status(&pod, placement, now);
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "10.244.0.2");
        assert_eq!(status["podIPs"], json!([{"ip": "10.244.0.2"}]));
        assert_eq!(status["hostIP"], "10.240.0.10");
        assert_eq!(status["startTime"], "2026-02-01T00:00:00Z");
        for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert!(
                status["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["type"] == kind && c["status"] == "True"),
                "{kind}"
            );
        }
        let side = &status["containerStatuses"][1];
        assert_eq!(side["name"], "side");
        assert_eq!(side["image"], "busybox:1");
        assert_eq!(side["imageID"], "kgate-sim://busybox:1");
        assert_eq!(side["containerID"], "kgate-sim://uid-1/side");
        assert_eq!(side["ready"], true);
        assert_eq!(side["started"], true);
        assert_eq!(side["restartCount"], 0);
        assert_eq!(
            side["state"]["running"]["startedAt"],
            "2026-02-01T00:00:00Z"
        );
        assert_eq!(
            status["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        // The status deserializes as a PodStatus.
        let typed: PodStatus = serde_json::from_value(status).unwrap();
        assert_eq!(typed.container_statuses.unwrap().len(), 2);
    }
}
