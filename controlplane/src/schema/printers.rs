//! The columns and cells of each kind's Table, after kube-apiserver's printers
//! (k8s.io/kubernetes pkg/printers/internalversion/printers.go). Column names are kube's
//! (`Nominated Node`); kubectl upper-cases them. Kinds without a printer get kube's default
//! columns, Name and Created At.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::printers_storage as storage;
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
const NODE_ADDRESSES_DOC: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const RC_REPLICAS_DOC: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const RC_STATUS_REPLICAS_DOC: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const RC_SELECTOR_DOC: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const PV_CAPACITY_DOC: &str = "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity";
const PV_ACCESS_MODES_DOC: &str = "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes";
const PV_RECLAIM_POLICY_DOC: &str = "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming";
const PV_PHASE_DOC: &str = "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase";
const PV_CLAIM_REF_DOC: &str = "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding";
const PV_REASON_DOC: &str = "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.";
const PV_VOLUME_MODE_DOC: &str = "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.";
const PVC_ACCESS_MODES_DOC: &str = "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1";
const PVC_VOLUME_MODE_DOC: &str = "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.";
const CSI_ATTACH_REQUIRED_DOC: &str = "attachRequired indicates this CSI volume driver requires an attach operation (because it implements the CSI ControllerPublishVolume() method), and that the Kubernetes attach detach controller should call the attach volume interface which checks the volumeattachment status and waits until the volume is attached before proceeding to mounting. The CSI external-attacher coordinates with CSI volume driver and updates the volumeattachment status when the attach operation is complete. If the value is specified to false, the attach operation will be skipped. Otherwise the attach operation will be called.\n\nThis field is immutable.";
const CSI_POD_INFO_ON_MOUNT_DOC: &str = "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations, if set to true. If set to false, pod information will not be passed on mount. Default is false.\n\nThe CSI driver specifies podInfoOnMount as part of driver deployment. If true, Kubelet will pass pod information as VolumeContext in the CSI NodePublishVolume() calls. The CSI driver is responsible for parsing and validating the information passed in as VolumeContext.\n\nThe following VolumeContext will be passed if podInfoOnMount is set to true. This list might grow, but the prefix will be used. \"csi.storage.k8s.io/pod.name\": pod.Name \"csi.storage.k8s.io/pod.namespace\": pod.Namespace \"csi.storage.k8s.io/pod.uid\": string(pod.UID) \"csi.storage.k8s.io/ephemeral\": \"true\" if the volume is an ephemeral inline volume\n                                defined by a CSIVolumeSource, otherwise \"false\"\n\n\"csi.storage.k8s.io/ephemeral\" is a new feature in Kubernetes 1.16. It is only required for drivers which support both the \"Persistent\" and \"Ephemeral\" VolumeLifecycleMode. Other drivers can leave pod info disabled and/or ignore this field. As Kubernetes 1.15 doesn't support this field, drivers can only support one mode when deployed on such a cluster and the deployment determines which mode that is, for example via a command line parameter of the driver.\n\nThis field was immutable in Kubernetes < 1.29 and now is mutable.";
const CSI_STORAGE_CAPACITY_DOC: &str = "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report by creating CSIStorageCapacity objects with capacity information, if set to true.\n\nThe check can be enabled immediately when deploying a driver. In that case, provisioning new volumes with late binding will pause until the driver deployment has published some suitable CSIStorageCapacity object.\n\nAlternatively, the driver can be deployed with the field unset or false and it can be flipped later when storage capacity information has been published.\n\nThis field was immutable in Kubernetes <= 1.22 and now is mutable.";
const CSI_TOKEN_REQUESTS_DOC: &str = "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication. Kubelet will pass the tokens in VolumeContext in the CSI NodePublishVolume calls. The CSI driver should parse and validate the following VolumeContext: \"csi.storage.k8s.io/serviceAccount.tokens\": {\n  \"<audience>\": {\n    \"token\": <token>,\n    \"expirationTimestamp\": <expiration timestamp in RFC3339>,\n  },\n  ...\n}\n\nNote: Audience in each TokenRequest should be different and at most one token is empty string. To receive a new token after expiry, RequiresRepublish can be used to trigger NodePublishVolume periodically.";
const CSI_REQUIRES_REPUBLISH_DOC: &str = "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume. This field defaults to false.\n\nNote: After a successful initial NodePublishVolume call, subsequent calls to NodePublishVolume should only update the contents of the volume. New mount points will not be seen by a running container.";
const CSI_MODES_DOC: &str = "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports. The default if the list is empty is \"Persistent\", which is the usage defined by the CSI specification and implemented in Kubernetes via the usual PV/PVC mechanism.\n\nThe other mode is \"Ephemeral\". In this mode, volumes are defined inline inside the pod spec with CSIVolumeSource and their lifecycle is tied to the lifecycle of that pod. A driver has to be aware of this because it is only going to get a NodePublishVolume call for such a volume.\n\nFor more information about implementing this mode, see https://kubernetes-csi.github.io/docs/ephemeral-local-volumes.html A driver can support one or more of these modes and more modes may be added in the future.\n\nThis field is beta. This field is immutable.";
const SC_RECLAIM_POLICY_DOC: &str = "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.";
const SC_VOLUME_BINDING_MODE_DOC: &str = "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.";
const VA_ATTACHER_DOC: &str = "attacher indicates the name of the volume driver that MUST handle this request. This is the name returned by GetPluginName().";
const VA_ATTACHED_DOC: &str = "attached indicates the volume is successfully attached. This field must only be set by the entity completing the attach operation, i.e. the external-attacher.";
const SLICE_NODE_DOC: &str = "NodeName identifies the node which provides the resources in this pool. A field selector can be used to list only ResourceSlice objects belonging to a certain node.\n\nThis field can be used to limit access from nodes to ResourceSlices with the same node name. It also indicates to autoscalers that adding new nodes of the same type as some old node might also make new resources available.\n\nExactly one of NodeName, NodeSelector, AllNodes, and PerDeviceNodeSelection must be set. This field is immutable.";
const SLICE_DRIVER_DOC: &str = "Driver identifies the DRA driver providing the capacity information. A field selector can be used to list only ResourceSlice objects with a certain driver name.\n\nMust be a DNS subdomain and should end with a DNS domain owned by the vendor of the driver. This field is immutable.";
const SLICE_POOL_DOC: &str = "Name is used to identify the pool. For node-local devices, this is often the node name, but this is not required.\n\nIt must not be longer than 253 characters and must consist of one or more DNS sub-domains separated by slashes. This field is immutable.";

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
            wide("Internal-IP", "string", NODE_ADDRESSES_DOC),
            wide("External-IP", "string", NODE_ADDRESSES_DOC),
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
            col("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"),
            col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
            col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system."),
            col("Port(s)", "string", "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"),
            AGE,
            wide("Selector", "string", "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/"),
        ],
        "Endpoints" => cols![
            NAME,
            col("Endpoints", "string", "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service."),
            AGE,
        ],
        "ConfigMap" => cols![NAME, col("Data", "string", CONFIGMAP_DATA_DOC), AGE],
        "Secret" => cols![
            NAME,
            col("Type", "string", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types"),
            col("Data", "string", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
            AGE,
        ],
        "ServiceAccount" => cols![
            NAME,
            col("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret"),
            AGE,
        ],
        "Event" => cols![
            col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
            col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
            col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
            col("Object", "string", "The object that this event is about."),
            wide("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object."),
            wide("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
            col("Message", "string", "A human-readable description of the status of this operation."),
            wide("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
            wide("Count", "string", "The number of times this event has occurred."),
            Column { priority: 1, ..NAME },
        ],
        "Deployment" => cols![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            col("Up-to-date", "string", "Total number of non-terminating pods targeted by this deployment that have the desired template spec."),
            col("Available", "string", "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
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
            col("Desired", "integer", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
            col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
            col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", "Selector is a label query over pods that should match the replica count. If the selector is empty, it is defaulted to the labels present on the pod template. Label keys and values that must match in order to be controlled by this replica set. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ],
        "ReplicationController" => cols![
            NAME,
            col("Desired", "integer", RC_REPLICAS_DOC),
            col("Current", "integer", RC_STATUS_REPLICAS_DOC),
            col("Ready", "integer", "The number of ready replicas for this replication controller."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide("Selector", "string", RC_SELECTOR_DOC),
        ],
        "StatefulSet" => cols![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        "PodDisruptionBudget" => cols![
            NAME,
            col("Min Available", "string", "The minimum number of pods that must be available."),
            col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
            col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
            AGE,
        ],
        "PersistentVolume" => cols![
            NAME,
            col("Capacity", "string", PV_CAPACITY_DOC),
            col("Access Modes", "string", PV_ACCESS_MODES_DOC),
            col("Reclaim Policy", "string", PV_RECLAIM_POLICY_DOC),
            col("Status", "string", PV_PHASE_DOC),
            col("Claim", "string", PV_CLAIM_REF_DOC),
            col("StorageClass", "string", "StorageClass of the pv"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            col("Reason", "string", PV_REASON_DOC),
            AGE,
            wide("VolumeMode", "string", PV_VOLUME_MODE_DOC),
        ],
        "PersistentVolumeClaim" => cols![
            NAME,
            col("Status", "string", "phase represents the current phase of PersistentVolumeClaim."),
            col("Volume", "string", "volumeName is the binding reference to the PersistentVolume backing this claim."),
            col("Capacity", "string", "capacity represents the actual resources of the underlying volume."),
            col("Access Modes", "string", PVC_ACCESS_MODES_DOC),
            col("StorageClass", "string", "StorageClass of the pvc"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
            AGE,
            wide("VolumeMode", "string", PVC_VOLUME_MODE_DOC),
        ],
        "CSIDriver" => cols![
            NAME,
            col("AttachRequired", "boolean", CSI_ATTACH_REQUIRED_DOC),
            col("PodInfoOnMount", "boolean", CSI_POD_INFO_ON_MOUNT_DOC),
            col("StorageCapacity", "boolean", CSI_STORAGE_CAPACITY_DOC),
            col("TokenRequests", "string", CSI_TOKEN_REQUESTS_DOC),
            col("RequiresRepublish", "boolean", CSI_REQUIRES_REPUBLISH_DOC),
            col("Modes", "string", CSI_MODES_DOC),
            AGE,
        ],
        "CSINode" => cols![
            NAME,
            col("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
            AGE,
        ],
        // CSIStorageCapacity has no printer in kube (its storage uses the default table
        // convertor): the default columns below.
        "StorageClass" => cols![
            NAME,
            col("Provisioner", "string", "provisioner indicates the type of the provisioner."),
            col("ReclaimPolicy", "string", SC_RECLAIM_POLICY_DOC),
            col("VolumeBindingMode", "string", SC_VOLUME_BINDING_MODE_DOC),
            col("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand."),
            AGE,
        ],
        "VolumeAttachment" => cols![
            NAME,
            // kube marks this column `name` too.
            Column { format: "name", ..col("Attacher", "string", VA_ATTACHER_DOC) },
            col("PV", "string", "persistentVolumeName represents the name of the persistent volume to attach."),
            col("Node", "string", "nodeName represents the node that the volume should be attached to."),
            col("Attached", "boolean", VA_ATTACHED_DOC),
            AGE,
        ],
        "VolumeAttributesClass" => cols![
            NAME,
            col("DriverName", "string", "Name of the CSI driver This field is immutable."),
            AGE,
        ],
        "DeviceClass" | "ResourceClaimTemplate" => cols![NAME, AGE],
        "ResourceClaim" => cols![
            NAME,
            col("State", "string", "A summary of the current state (allocated, pending, reserved, etc.)."),
            AGE,
        ],
        "ResourceSlice" => cols![
            NAME,
            col("Node", "string", SLICE_NODE_DOC),
            col("Driver", "string", SLICE_DRIVER_DOC),
            col("Pool", "string", SLICE_POOL_DOC),
            AGE,
        ],
        // The autoscaling/v1 Scale of a scale subresource.
        "Scale" => cols![
            // kube's Scale printer does not mark its Name column `name`.
            Column { format: "", ..NAME },
            col("Desired", "integer", "replicas is the desired number of instances for the scaled object."),
            col("Available", "integer", "replicas is the actual number of observed instances of the scaled object."),
            AGE,
        ],
        "Role" | "ClusterRole" => cols![NAME, CREATED_AT],
        "RoleBinding" => cols![
            NAME,
            col("Role", "string", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
            AGE,
            wide("Users", "string", "Users in the roleBinding"),
            wide("Groups", "string", "Groups in the roleBinding"),
            wide("ServiceAccounts", "string", "ServiceAccounts in the roleBinding"),
        ],
        "ClusterRoleBinding" => cols![
            NAME,
            col("Role", "string", "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
            AGE,
            wide("Users", "string", "Users in the clusterRoleBinding"),
            wide("Groups", "string", "Groups in the clusterRoleBinding"),
            wide("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding"),
        ],
        "Lease" => cols![
            NAME,
            col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
            AGE,
        ],
        "EndpointSlice" => cols![
            NAME,
            col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name."),
            col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports."),
            col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints."),
            AGE,
        ],
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => cols![
            NAME,
            col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"),
            AGE,
        ],
        "ValidatingAdmissionPolicy" => cols![
            NAME,
            col("Validations", "integer", "Validations indicates the number of validation rules defined in this configuration"),
            col("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
            AGE,
        ],
        "ValidatingAdmissionPolicyBinding" => cols![
            NAME,
            col("PolicyName", "string", "PolicyName indicates the policy definition which the policy binding binded to"),
            col("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
            AGE,
        ],
        _ => cols![NAME, CREATED_AT],
    }
}

/// The non-empty string at `pointer` (shared with the pod and storage rows).
pub(super) fn s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn i(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at `pointer`, empty when absent (shared with the pod and storage rows).
pub(super) fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
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
        "ReplicationController" => {
            let t = workload_template(o);
            vec![
                json!(name),
                json!(i(o, "/spec/replicas")),
                json!(i(o, "/status/replicas")),
                json!(i(o, "/status/readyReplicas")),
                json!(age),
                json!(t.0),
                json!(t.1),
                json!(map_selector(o.pointer("/spec/selector"))),
            ]
        }
        "StatefulSet" => {
            let t = workload_template(o);
            vec![
                json!(name),
                json!(format!(
                    "{}/{}",
                    i(o, "/status/readyReplicas"),
                    i(o, "/spec/replicas")
                )),
                json!(age),
                json!(t.0),
                json!(t.1),
            ]
        }
        "PodDisruptionBudget" => vec![
            json!(name),
            json!(int_or_string(o.pointer("/spec/minAvailable"))),
            json!(int_or_string(o.pointer("/spec/maxUnavailable"))),
            json!(i(o, "/status/disruptionsAllowed")),
            json!(age),
        ],
        "PersistentVolume" => storage::persistent_volume(o, name, age),
        "PersistentVolumeClaim" => storage::persistent_volume_claim(o, name, age),
        "CSIDriver" => storage::csi_driver(o, name, age),
        "CSINode" => vec![json!(name), json!(len(o, "/spec/drivers")), json!(age)],
        "StorageClass" => storage::storage_class(o, name, age),
        "VolumeAttachment" => vec![
            json!(name),
            json!(s(o, "/spec/attacher").unwrap_or("")),
            json!(s(o, "/spec/source/persistentVolumeName").unwrap_or("")),
            json!(s(o, "/spec/nodeName").unwrap_or("")),
            json!(o.pointer("/status/attached") == Some(&Value::Bool(true))),
            json!(age),
        ],
        "VolumeAttributesClass" => vec![
            json!(name),
            json!(s(o, "/driverName").unwrap_or("")),
            json!(age),
        ],
        "DeviceClass" | "ResourceClaimTemplate" => vec![json!(name), json!(age)],
        "ResourceClaim" => vec![json!(name), json!(resource_claim_state(o)), json!(age)],
        "ResourceSlice" => vec![
            json!(name),
            json!(s(o, "/spec/nodeName").unwrap_or("")),
            json!(s(o, "/spec/driver").unwrap_or("")),
            json!(s(o, "/spec/pool/name").unwrap_or("")),
            json!(age),
        ],
        "Scale" => vec![
            json!(name),
            json!(i(o, "/spec/replicas")),
            json!(i(o, "/status/replicas")),
            json!(age),
        ],
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
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => {
            vec![json!(name), json!(list(o, "/webhooks").len()), json!(age)]
        }
        "ValidatingAdmissionPolicy" => {
            let param_kind = match o.pointer("/spec/paramKind") {
                Some(Value::Object(_)) => format!(
                    "{}/{}",
                    s(o, "/spec/paramKind/apiVersion").unwrap_or(""),
                    s(o, "/spec/paramKind/kind").unwrap_or("")
                ),
                _ => "<unset>".to_owned(),
            };
            let validations = list(o, "/spec/validations").len();
            vec![
                json!(name),
                json!(validations),
                json!(param_kind),
                json!(age),
            ]
        }
        "ValidatingAdmissionPolicyBinding" => vec![
            json!(name),
            json!(s(o, "/spec/policyName").unwrap_or("")),
            json!(param_ref(o)),
            json!(age),
        ],
        _ => vec![json!(name), json!(created.unwrap_or(""))],
    }
}

/// A binding's ParamRef cell: `namespace/name`, `*/name` without a namespace, else the
/// selector as Go prints a `*metav1.LabelSelector` (its generated `String()`).
fn param_ref(o: &Value) -> String {
    let Some(Value::Object(_)) = o.pointer("/spec/paramRef") else {
        return "<unset>".to_owned();
    };
    if let Some(name) = s(o, "/spec/paramRef/name") {
        return match s(o, "/spec/paramRef/namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => format!("*/{name}"),
        };
    }
    let Some(Value::Object(selector)) = o.pointer("/spec/paramRef/selector") else {
        return "<unset>".to_owned();
    };
    let mut labels: Vec<(&String, &str)> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let expressions: String = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e["key"].as_str().unwrap_or(""),
                e["operator"].as_str().unwrap_or(""),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

/// intstr.IntOrString.String, `N/A` when unset (the PodDisruptionBudget columns).
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_owned(),
    }
}

/// kube's resourceClaimState: `deleted`, then `pending` or `allocated` (and `reserved`).
fn resource_claim_state(o: &Value) -> String {
    let deleted = o
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    match o.pointer("/status/allocation") {
        Some(a) if !a.is_null() => {
            states.push("allocated");
            if !list(o, "/status/reservedFor").is_empty() {
                states.push("reserved");
            }
        }
        _ if !deleted => states.push("pending"),
        _ => {}
    }
    states.join(",")
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
