//! The columns and cells of each kind's Table, after kube-apiserver's printers
//! (k8s.io/kubernetes pkg/printers/internalversion/printers.go). Column names are kube's
//! (`Nominated Node`); kubectl upper-cases them. Kinds without a printer get kube's default
//! columns, Name and Created At.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::table::age;

/// One column definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer` or `date`.
    pub ty: &'static str,
    /// `name` for the object's name column, else empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: shown with `-o wide`.
    pub priority: u8,
}

const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

// kube's printers describe columns with the API types' documentation (`SwaggerDoc()`), whole;
// these are k8s.io/api and apimachinery v0.34's.
const OBJECT_META_NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONFIGMAP_DATA_DOC: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const POD_NODE_NAME_DOC: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const POD_NOMINATED_NODE_NAME_DOC: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const POD_READINESS_GATES_DOC: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: OBJECT_META_NAME_DOC,
    priority: 0,
};
const AGE: Column = col("Age", "string", CREATION_TIMESTAMP_DOC);
const CREATED_AT: Column = col("Created At", "date", CREATION_TIMESTAMP_DOC);
const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = wide("Selector", "string", "Label selector for pods.");

/// A `'static` slice of columns: `const fn` calls are not promoted to statics on their own.
macro_rules! cols {
    ($($c:expr),* $(,)?) => {{
        const C: &[Column] = &[$($c),*];
        C
    }};
}

/// The columns of a kind, wide ones last.
pub fn columns(kind: &str) -> &'static [Column] {
    match kind {
        "Namespace" => cols![NAME, col("Status", "string", "The status of the namespace"), AGE],
        "Node" => cols![
            NAME,
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            AGE,
            col("Version", "string", "Kubelet Version reported by the node."),
            wide("Internal-IP", "string", "List of internal IPs."),
            wide("External-IP", "string", "List of external IPs."),
            wide("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            wide("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            wide("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ],
        "Pod" => cols![
            NAME,
            col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", "string", "The aggregate status of the containers in this pod."),
            col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            wide("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
            wide("Node", "string", POD_NODE_NAME_DOC),
            wide("Nominated Node", "string", POD_NOMINATED_NODE_NAME_DOC),
            wide("Readiness Gates", "string", POD_READINESS_GATES_DOC),
        ],
        "Service" => cols![
            NAME,
            col("Type", "string", "type determines how the Service is exposed."),
            col("Cluster-IP", "string", "clusterIP is the IP address of the service."),
            col("External-IP", "string", "List of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            col("Port(s)", "string", "The list of ports that are exposed by this service."),
            AGE,
            wide("Selector", "string", "Route service traffic to pods with label keys and values matching this selector."),
        ],
        "Endpoints" => cols![NAME, col("Endpoints", "string", "Endpoints of the service"), AGE],
        "ConfigMap" => cols![NAME, col("Data", "string", CONFIGMAP_DATA_DOC), AGE],
        "Secret" => cols![
            NAME,
            col("Type", "string", "The type of the secret"),
            col("Data", "string", "The number of entries in the secret"),
            AGE,
        ],
        "ServiceAccount" => cols![NAME, col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE],
        "Event" => cols![
            col("Last Seen", "string", "The last time this event was seen."),
            col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future."),
            col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            col("Object", "string", "The object that this event is about."),
            wide("Subobject", "string", "The subobject (field path) that this event is about."),
            wide("Source", "string", "The component reporting this event."),
            col("Message", "string", "A human-readable description of the status of this operation."),
            wide("First Seen", "string", "The first time this event was seen."),
            wide("Count", "string", "The number of times this event has occurred."),
            wide("Name", "string", "The name of the event."),
        ],
        "Deployment" => cols![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "DaemonSet" => cols![
            NAME,
            col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
            col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
            col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready."),
            col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
            col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
            col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. If empty, defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ],
        "ReplicaSet" => cols![
            NAME,
            col("Desired", "integer", "Replicas is the number of desired pods."),
            col("Current", "integer", "Replicas is the most recently observed number of replicas."),
            col("Ready", "integer", "The number of ready replicas for this replica set."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        "Role" | "ClusterRole" => cols![NAME, CREATED_AT],
        "RoleBinding" | "ClusterRoleBinding" => cols![
            NAME,
            col("Role", "string", "Role referenced by this binding."),
            AGE,
            wide("Users", "string", "Users in the binding."),
            wide("Groups", "string", "Groups in the binding."),
            wide("ServiceAccounts", "string", "ServiceAccounts in the binding."),
        ],
        "Lease" => cols![NAME, col("Holder", "string", "The holder of the lease."), AGE],
        "EndpointSlice" => cols![
            NAME,
            col("AddressType", "string", "The IP protocol family for this EndpointSlice."),
            col("Ports", "string", "The ports of the EndpointSlice"),
            col("Endpoints", "string", "The endpoints of the EndpointSlice"),
            AGE,
        ],
        _ => cols![NAME, CREATED_AT],
    }
}

fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn i(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn len(v: &Value, pointer: &str) -> usize {
    match v.pointer(pointer) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn or_none(parts: Vec<String>) -> String {
    if parts.is_empty() {
        "<none>".to_owned()
    } else {
        parts.join(",")
    }
}

/// The cells of one object's row, in the order of [`columns`].
pub fn cells(kind: &str, o: &Value, now: OffsetDateTime) -> Vec<Value> {
    let name = s(o, "/metadata/name").unwrap_or("");
    let created = s(o, "/metadata/creationTimestamp");
    let age = age(created, now);
    match kind {
        "Namespace" => vec![
            json!(name),
            json!(s(o, "/status/phase").unwrap_or("")),
            json!(age),
        ],
        "Node" => node(o, name, age),
        "Pod" => super::printers_pod::pod(o, name, age, now),
        "Service" => service(o, name, age),
        "Endpoints" => vec![json!(name), json!(endpoints(o)), json!(age)],
        "ConfigMap" => {
            let n = len(o, "/data") + len(o, "/binaryData");
            vec![json!(name), json!(n), json!(age)]
        }
        "Secret" => vec![
            json!(name),
            json!(s(o, "/type").unwrap_or("")),
            json!(len(o, "/data")),
            json!(age),
        ],
        "ServiceAccount" => vec![json!(name), json!(len(o, "/secrets")), json!(age)],
        "Event" => event(o, name, now),
        "Deployment" => {
            let t = workload_template(o);
            vec![
                json!(name),
                json!(format!(
                    "{}/{}",
                    i(o, "/status/readyReplicas"),
                    i(o, "/spec/replicas")
                )),
                json!(i(o, "/status/updatedReplicas")),
                json!(i(o, "/status/availableReplicas")),
                json!(age),
                json!(t.0),
                json!(t.1),
                json!(label_selector(o.pointer("/spec/selector"))),
            ]
        }
        "DaemonSet" => {
            let t = workload_template(o);
            vec![
                json!(name),
                json!(i(o, "/status/desiredNumberScheduled")),
                json!(i(o, "/status/currentNumberScheduled")),
                json!(i(o, "/status/numberReady")),
                json!(i(o, "/status/updatedNumberScheduled")),
                json!(i(o, "/status/numberAvailable")),
                json!(map_selector(o.pointer("/spec/template/spec/nodeSelector"))),
                json!(age),
                json!(t.0),
                json!(t.1),
                json!(label_selector(o.pointer("/spec/selector"))),
            ]
        }
        "ReplicaSet" => {
            let t = workload_template(o);
            vec![
                json!(name),
                json!(i(o, "/spec/replicas")),
                json!(i(o, "/status/replicas")),
                json!(i(o, "/status/readyReplicas")),
                json!(age),
                json!(t.0),
                json!(t.1),
                json!(label_selector(o.pointer("/spec/selector"))),
            ]
        }
        "Role" | "ClusterRole" => vec![json!(name), json!(created.unwrap_or(""))],
        "RoleBinding" | "ClusterRoleBinding" => binding(o, name, age),
        "Lease" => vec![
            json!(name),
            json!(s(o, "/spec/holderIdentity").unwrap_or("")),
            json!(age),
        ],
        "EndpointSlice" => vec![
            json!(name),
            json!(s(o, "/addressType").unwrap_or("")),
            json!(slice_ports(o)),
            json!(slice_endpoints(o)),
            json!(age),
        ],
        _ => vec![json!(name), json!(created.unwrap_or(""))],
    }
}

fn node(o: &Value, name: &str, age: String) -> Vec<Value> {
    let ready = list(o, "/status/conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["status"].as_str());
    // kubectl's printNode: any Ready status but True (False or Unknown) is NotReady; only a
    // node without the condition is Unknown.
    let mut status = match ready {
        Some("True") => "Ready".to_owned(),
        Some(_) => "NotReady".to_owned(),
        None => "Unknown".to_owned(),
    };
    if o.pointer("/spec/unschedulable") == Some(&Value::Bool(true)) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = o
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_owned()),
            _ if k == "kubernetes.io/role" => v.as_str().map(str::to_owned),
            _ => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    let addr = |ty: &str| {
        list(o, "/status/addresses")
            .iter()
            .find(|a| a["type"] == ty)
            .and_then(|a| a["address"].as_str())
            .unwrap_or("<none>")
            .to_owned()
    };
    let info = |f: &str| {
        s(o, &format!("/status/nodeInfo/{f}"))
            .unwrap_or("<unknown>")
            .to_owned()
    };
    vec![
        json!(name),
        json!(status),
        json!(or_none(roles)),
        json!(age),
        json!(s(o, "/status/nodeInfo/kubeletVersion").unwrap_or("")),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

fn service(o: &Value, name: &str, age: String) -> Vec<Value> {
    let ty = s(o, "/spec/type").unwrap_or("ClusterIP");
    let cluster_ip = s(o, "/spec/clusterIP").unwrap_or("<none>");
    let strings = |p: &str| -> Vec<String> {
        list(o, p)
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let external = match ty {
        "NodePort" => or_none(strings("/spec/externalIPs")),
        "LoadBalancer" => {
            let mut ips: Vec<String> = list(o, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| {
                    i["ip"]
                        .as_str()
                        .or(i["hostname"].as_str())
                        .map(str::to_owned)
                })
                .collect();
            ips.extend(strings("/spec/externalIPs"));
            if ips.is_empty() {
                "<pending>".to_owned()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => s(o, "/spec/externalName").unwrap_or("<none>").to_owned(),
        _ => or_none(strings("/spec/externalIPs")),
    };
    let ports: Vec<String> = list(o, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            let port = p["port"].as_i64().unwrap_or(0);
            match p["nodePort"].as_i64() {
                Some(np) if np != 0 => format!("{port}:{np}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    vec![
        json!(name),
        json!(ty),
        json!(cluster_ip),
        json!(external),
        json!(or_none(ports)),
        json!(age),
        json!(map_selector(o.pointer("/spec/selector"))),
    ]
}

/// `10.0.0.1:80,10.0.0.2:80 + 3 more...`, as kube's formatEndpoints (at most three shown).
fn endpoints(o: &Value) -> String {
    let mut all = Vec::new();
    for subset in list(o, "/subsets") {
        let ports = list(subset, "/ports");
        for addr in list(subset, "/addresses") {
            let ip = addr["ip"].as_str().unwrap_or("");
            if ports.is_empty() {
                all.push(ip.to_owned());
            }
            for p in ports {
                all.push(format!("{ip}:{}", p["port"].as_i64().unwrap_or(0)));
            }
        }
    }
    if all.len() > 3 {
        let more = all.len() - 3;
        return format!("{} + {more} more...", all[..3].join(","));
    }
    or_none(all)
}

/// kubectl's EndpointSlice ports: the port numbers, `<unset>` without any.
fn slice_ports(o: &Value) -> String {
    let ports: Vec<String> = list(o, "/ports")
        .iter()
        .filter_map(|p| p["port"].as_i64())
        .map(|p| p.to_string())
        .collect();
    if ports.is_empty() {
        "<unset>".to_owned()
    } else {
        ports.join(",")
    }
}

/// kubectl's EndpointSlice endpoints: the first three addresses, then `+ N more...`.
fn slice_endpoints(o: &Value) -> String {
    let all: Vec<String> = list(o, "/endpoints")
        .iter()
        .flat_map(|e| list(e, "/addresses"))
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    if all.len() > 3 {
        let more = all.len() - 3;
        return format!("{} + {more} more...", all[..3].join(","));
    }
    if all.is_empty() {
        return "<unset>".to_owned();
    }
    all.join(",")
}

fn event(o: &Value, name: &str, now: OffsetDateTime) -> Vec<Value> {
    let first = s(o, "/firstTimestamp").or(s(o, "/eventTime"));
    let last = s(o, "/series/lastObservedTime")
        .or(s(o, "/lastTimestamp"))
        .or(first);
    let object = format!(
        "{}/{}",
        s(o, "/involvedObject/kind").unwrap_or("").to_lowercase(),
        s(o, "/involvedObject/name").unwrap_or("")
    );
    let source = match (s(o, "/source/component"), s(o, "/source/host")) {
        (Some(c), Some(h)) => format!("{c}, {h}"),
        (Some(c), None) => c.to_owned(),
        _ => s(o, "/reportingComponent").unwrap_or("").to_owned(),
    };
    let count = o
        .pointer("/series/count")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| i(o, "/count"));
    vec![
        json!(age(last, now)),
        json!(s(o, "/type").unwrap_or("")),
        json!(s(o, "/reason").unwrap_or("")),
        json!(object),
        json!(s(o, "/involvedObject/fieldPath").unwrap_or("")),
        json!(source),
        json!(s(o, "/message").unwrap_or("").trim()),
        json!(age(first, now)),
        json!(count),
        json!(name),
    ]
}

fn binding(o: &Value, name: &str, age: String) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        s(o, "/roleRef/kind").unwrap_or(""),
        s(o, "/roleRef/name").unwrap_or("")
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subj in list(o, "/subjects") {
        let n = subj["name"].as_str().unwrap_or("").to_owned();
        match subj["kind"].as_str() {
            Some("User") => users.push(n),
            Some("Group") => groups.push(n),
            Some("ServiceAccount") => {
                sas.push(format!("{}/{n}", subj["namespace"].as_str().unwrap_or("")))
            }
            _ => {}
        }
    }
    // kube prints these without a placeholder when empty.
    vec![
        json!(name),
        json!(role),
        json!(age),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

/// Container names and images of a workload's pod template, comma separated.
fn workload_template(o: &Value) -> (String, String) {
    let cs = list(o, "/spec/template/spec/containers");
    let get = |f: &str| {
        cs.iter()
            .map(|c| c[f].as_str().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(",")
    };
    (get("name"), get("image"))
}

/// metav1.FormatLabelSelector: `app=web,tier in (a,b)`, `<none>` when empty.
pub fn label_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return "<none>".to_owned();
    };
    let mut parts: Vec<String> = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for e in list(sel, "/matchExpressions") {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = list(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            op => format!("{key} {op} ({})", values.join(",")),
        });
    }
    or_none(parts)
}

/// labels.FormatLabels of a plain map selector (services): sorted `k=v`, `<none>` when empty.
fn map_selector(sel: Option<&Value>) -> String {
    let mut parts: Vec<String> = sel
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    parts.sort();
    or_none(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "printers_tests.rs"]
mod tests;
