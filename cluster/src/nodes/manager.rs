//! The node manager: a watch of the simulated Nodes (label [`SIMULATED_LABEL`]`=true`) that
//! runs one [`Agent`] per Node, started when a Node appears (at start, or later through
//! `kgate node add` or any client), fed every new version of its Node, and stopped when the
//! Node goes. It also hands out the node indices ([`super::ipam`]) the agents derive their
//! addresses from, reserving the ones Nodes already carry first.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use std::collections::{HashMap, HashSet};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::agent::Agent;
use super::ipam::{self, NodeIndices, PodCidr};
use super::{status, NodeManagerOptions, NODE_GROUP_LABEL, SIMULATED_LABEL};

/// A running agent; aborted when dropped, so aborting the manager stops every agent.
struct Running {
    uid: Option<String>,
    node: watch::Sender<Node>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Manager {
    client: kube::Client,
    options: NodeManagerOptions,
    agents: HashMap<String, Running>,
    indices: NodeIndices,
}

/// Watches the simulated Nodes and runs their agents until dropped.
pub(crate) async fn run(client: kube::Client, options: NodeManagerOptions) {
    let api: Api<Node> = Api::all(client.clone());
    let selector = match &options.group {
        Some(group) => format!("{SIMULATED_LABEL}=true,{NODE_GROUP_LABEL}={group}"),
        None => format!("{SIMULATED_LABEL}=true"),
    };
    let config = watcher::Config::default().labels(&selector);
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut manager = Manager {
        client,
        options,
        agents: HashMap::new(),
        indices: NodeIndices::default(),
    };
    let mut listing: Option<Vec<Node>> = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => listing = Some(Vec::new()),
            Ok(Event::InitApply(node)) => match &mut listing {
                Some(list) => list.push(node),
                None => manager.apply(node),
            },
            Ok(Event::InitDone) => manager.relist(listing.take().unwrap_or_default()),
            Ok(Event::Apply(node)) => manager.apply(node),
            Ok(Event::Delete(node)) => {
                if let Some(name) = node.metadata.name.as_deref() {
                    manager.remove(name);
                }
            }
            Err(error) => tracing::warn!(%error, "simulated Node watch failed; retrying"),
        }
    }
}

/// The node index a Node's own addresses show, if they follow [`ipam`]'s scheme.
fn index_in_node(node: &Node) -> Option<u32> {
    let from_cidr = node
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .and_then(PodCidr::parse)
        .and_then(|c| ipam::index_of_pod_cidr(&c));
    from_cidr.or_else(|| status::reported_internal_ip(node).and_then(ipam::index_of_node_ip))
}

impl Manager {
    /// After a (re)list: stops the agents of Nodes gone meanwhile, reserves the indices the
    /// Nodes carry, then starts or updates every agent.
    fn relist(&mut self, nodes: Vec<Node>) {
        let present: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        let gone: Vec<String> = self
            .agents
            .keys()
            .filter(|name| !present.contains(name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.remove(&name);
        }
        for node in &nodes {
            self.reserve_own_index(node);
        }
        for node in nodes {
            self.apply(node);
        }
    }

    fn reserve_own_index(&mut self, node: &Node) {
        let (Some(name), Some(index)) = (node.metadata.name.as_deref(), index_in_node(node)) else {
            return;
        };
        if !self.indices.reserve(name, index) {
            tracing::warn!(
                node = name,
                index,
                "the Node's addresses collide with another node's; it gets new ones"
            );
        }
    }

    /// A new or changed Node: its agent is started, or given the new version.
    fn apply(&mut self, node: Node) {
        let Some(name) = node.metadata.name.clone() else {
            return;
        };
        let simulated = node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SIMULATED_LABEL))
            .is_some_and(|v| v == "true");
        if !simulated {
            self.remove(&name);
            return;
        }
        if let Some(running) = self.agents.get(&name) {
            if running.uid == node.metadata.uid && !running.task.is_finished() {
                running.node.send_replace(node);
                return;
            }
            // The Node was deleted and created again between two events: a new agent.
            self.agents.remove(&name);
        }
        self.reserve_own_index(&node);
        let Some(index) = self.indices.index_of(&name) else {
            tracing::error!(node = %name, "no node address left; the node gets no agent");
            return;
        };
        let uid = node.metadata.uid.clone();
        let (sender, receiver) = watch::channel(node);
        let agent = Agent {
            client: self.client.clone(),
            name: name.clone(),
            index,
            node_dir: self.options.state_dir.as_ref().map(|d| d.join(&name)),
            node: receiver,
        };
        tracing::info!(node = %name, "simulated node agent started");
        let task = tokio::spawn(agent.run());
        self.agents.insert(
            name,
            Running {
                uid,
                node: sender,
                task,
            },
        );
    }

    /// A Node gone: its agent stops, its index and state folder are freed.
    fn remove(&mut self, name: &str) {
        if self.agents.remove(name).is_some() {
            tracing::info!(
                node = name,
                "simulated node agent stopped: the Node is gone"
            );
        }
        self.indices.release(name);
        if let Some(dir) = self.options.state_dir.as_ref().map(|d| d.join(name)) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "cannot remove a node's folder")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};

    #[test]
    fn a_nodes_index_comes_from_its_cidr_then_its_address() {
        let mut node = Node::default();
        assert_eq!(index_in_node(&node), None);
        node.status = Some(NodeStatus {
            addresses: Some(vec![NodeAddress {
                type_: "InternalIP".into(),
                address: "10.240.0.15".into(),
            }]),
            ..NodeStatus::default()
        });
        assert_eq!(index_in_node(&node), Some(5));
        node.spec = Some(NodeSpec {
            pod_cidr: Some("10.244.9.0/24".into()),
            ..NodeSpec::default()
        });
        assert_eq!(index_in_node(&node), Some(9));
    }
}
