//! Simulated nodes: the kubelet stand-in. No container runs anywhere; a simulated node does what
//! the API can see of a kubelet, and its Node says so (label [`SIMULATED_LABEL`]`=true`).
//!
//! Contract: [`ensure_nodes`] creates the Node objects of `kgate up --nodes N` (and
//! [`create_node`] those of `kgate node add`); [`spawn_manager`] watches the simulated Nodes and
//! runs one agent per Node ([`agent`]): it registers the Node's status (capacity, conditions,
//! addresses, nodeInfo) and pod CIDR, heartbeats a Lease in kube-node-lease, and runs the pods
//! bound to the node to Running with an address of its pod CIDR and their ServiceAccount token
//! mounted ([`pods`], [`tokens`]). An agent pauses while its Node carries the annotation
//! [`AGENT_STOPPED_ANNOTATION`]`=true` (`kgate node stop NAME`), and resumes when it is removed
//! (`kgate node start NAME`).
//!
//! Everything goes through the API with kube-rs (watches, status subresources, TokenRequest),
//! with the identity of the client given; failures are logged and retried.

pub mod agent;
pub mod ipam;
mod manager;
mod pods;
pub mod status;
pub mod tokens;

use k8s_openapi::api::core::v1::{Node, Taint};
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use status::CAPACITY_ANNOTATION;

/// The label every simulated Node carries.
pub const SIMULATED_LABEL: &str = "kgate.io/simulated";
/// The label of the Nodes of one `kgate nodes` process (its `--name-prefix`), so that several
/// can share a cluster, each running the agents of its own Nodes only.
pub const NODE_GROUP_LABEL: &str = "kgate.io/node-group";
/// The annotation that pauses a simulated node's agent.
pub const AGENT_STOPPED_ANNOTATION: &str = "kgate.io/agent-stopped";
/// The namespace of the node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// `spec.leaseDurationSeconds` of a node Lease (kubelet's 40 s).
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// What a simulated node offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    /// Allocatable CPU in millicores.
    pub cpu_millis: u64,
    /// Allocatable memory in bytes.
    pub memory_bytes: u64,
    /// Allocatable pod count.
    pub pods: u32,
    pub labels: BTreeMap<String, String>,
}

/// How the node manager runs.
#[derive(Debug, Clone, Default)]
pub struct NodeManagerOptions {
    /// Where the nodes keep their files (`STATE_DIR/NODE/pods/NS_POD_UID/token`); without one,
    /// no ServiceAccount token is requested for pods.
    pub state_dir: Option<PathBuf>,
    /// Run only the Nodes labelled [`NODE_GROUP_LABEL`] with this value; every simulated Node
    /// when `None` (`kgate up`, which owns its cluster).
    pub group: Option<String>,
}

/// Whether the Node's agent is paused ([`AGENT_STOPPED_ANNOTATION`]`=true`).
pub fn is_stopped(node: &Node) -> bool {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(AGENT_STOPPED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether the Node is a simulated one ([`SIMULATED_LABEL`]`=true`).
pub fn is_simulated(node: &Node) -> bool {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SIMULATED_LABEL))
        .is_some_and(|v| v == "true")
}

/// Creates a simulated Node offering `spec`, with `taints`, then writes its capacity and
/// allocatable into its status (the API server drops the status of a created object; the
/// capacity is also in [`CAPACITY_ANNOTATION`], so a failed status write only logs).
pub async fn create_node(
    client: &kube::Client,
    spec: &NodeSpec,
    taints: &[Taint],
) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let object = status::new_node(spec, taints);
    let created = api.create(&PostParams::default(), &object).await?;
    let body = serde_json::json!({"status": {
        "capacity": object.status.as_ref().and_then(|s| s.capacity.clone()),
        "allocatable": object.status.as_ref().and_then(|s| s.allocatable.clone()),
    }});
    match api
        .patch_status(&spec.name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(node) => Ok(node),
        Err(error) => {
            tracing::warn!(node = %spec.name, %error, "cannot write the new Node's capacity; its agent will");
            Ok(created)
        }
    }
}

/// Creates the simulated Nodes that do not exist yet; existing ones are left as they are (a
/// restart keeps them).
pub async fn ensure_nodes(client: &kube::Client, nodes: &[NodeSpec]) -> Result<(), kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    for spec in nodes {
        if api.get_opt(&spec.name).await?.is_some() {
            continue;
        }
        match create_node(client, spec, &[]).await {
            Ok(_) => tracing::info!(node = %spec.name, "simulated Node created"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Runs the agents of every simulated Node until the task is aborted (which stops them all).
pub fn spawn_manager(
    client: kube::Client,
    options: NodeManagerOptions,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(manager::run(client, options))
}
