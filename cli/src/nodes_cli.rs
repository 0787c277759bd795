//! `kgate nodes`: N simulated nodes (the [`kgate_cluster::nodes`] agents) for any API server,
//! kwok's job: a real kube-apiserver with its real scheduler and controller manager runs a
//! Deployment's pods on them. The process creates its Nodes (`PREFIX-1` .. `PREFIX-N`, labelled
//! [`SIMULATED_LABEL`] and [`NODE_GROUP_LABEL`]`=PREFIX`), then runs their agents until SIGTERM
//! or Ctrl-C; a restart picks up the same Nodes. Several processes share a cluster when their
//! prefixes differ: each runs only the Nodes of its group.
//!
//! The kubeconfig's user acts for every node at once (Node status, Leases in kube-node-lease,
//! pods' status, TokenRequest for the pods' ServiceAccount tokens), so against kube-apiserver it
//! must be an administrator (kwok's choice too): the Node authorizer and the NodeRestriction
//! admission give an identity `system:node:NAME` only its own Node, and there is one identity
//! per process here, not per node.
//!
//! The Nodes advertise a kubelet port but serve no kubelet API (no logs, exec or metrics).

use anyhow::Context as _;
use clap::Args;
use kgate_cluster::nodes::{self, NodeSpec, NODE_GROUP_LABEL, SIMULATED_LABEL};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cluster::client_from_kubeconfig;

/// `kgate nodes`.
#[derive(Debug, Clone, Args)]
pub struct NodesOptions {
    /// The kubeconfig of the cluster to join (an administrator: see `kgate nodes --help`).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,
    /// How many simulated nodes to run.
    #[arg(long, default_value_t = 3)]
    pub count: u32,
    /// The Nodes' names are PREFIX-1 .. PREFIX-N; PREFIX is also their group label, so that
    /// processes with different prefixes share a cluster.
    #[arg(long, default_value = "kgate-node")]
    pub name_prefix: String,
    #[command(flatten)]
    pub node_resources: crate::cluster::NodeResources,
    /// Where the nodes write the ServiceAccount token files of their pods
    /// (`DIR/NODE/pods/NS_POD_UID/token`); without it no token is requested.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// The Nodes `options` asks for, checked before any connection.
fn node_specs(options: &NodesOptions) -> anyhow::Result<Vec<NodeSpec>> {
    let (cpu_millis, memory_bytes, pods) = options
        .node_resources
        .parse()
        .map_err(|(flag, reason)| anyhow::anyhow!("--{flag}: {reason}"))?;
    anyhow::ensure!(
        (1..=5000).contains(&options.count),
        "--count: must be between 1 and 5000"
    );
    // A label value and a DNS label once `-N` is added: lowercase alphanumerics and '-'.
    let prefix = &options.name_prefix;
    anyhow::ensure!(
        !prefix.is_empty()
            && prefix.len() <= 57
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !prefix.starts_with('-'),
        "--name-prefix: {prefix:?} must be lowercase letters, digits and '-' (at most 57), not starting with '-'"
    );
    let labels = BTreeMap::from([
        (SIMULATED_LABEL.to_owned(), "true".to_owned()),
        (NODE_GROUP_LABEL.to_owned(), prefix.clone()),
    ]);
    Ok((1..=options.count)
        .map(|i| NodeSpec {
            name: format!("{prefix}-{i}"),
            cpu_millis,
            memory_bytes,
            pods,
            labels: labels.clone(),
        })
        .collect())
}

/// Creates the Nodes and starts their agents; the caller waits for a signal and aborts the
/// returned task.
pub async fn start(options: NodesOptions) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let specs = node_specs(&options)?;
    let client = client_from_kubeconfig(&options.kubeconfig)
        .await
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", options.kubeconfig.display()))?;
    nodes::ensure_nodes(&client, &specs)
        .await
        .context("cannot create the simulated Nodes")?;
    Ok(nodes::spawn_manager(
        client,
        nodes::NodeManagerOptions {
            state_dir: options.state_dir,
            group: Some(options.name_prefix),
        },
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        nodes: NodesOptions,
    }

    fn options(args: &[&str]) -> NodesOptions {
        let mut all = vec!["kgate", "--kubeconfig", "k"];
        all.extend(args);
        Cli::parse_from(all).nodes
    }

    #[test]
    fn nodes_are_named_by_prefix_and_labelled_with_their_group() {
        let specs = node_specs(&options(&["--count", "2", "--name-prefix", "sim"])).unwrap();
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sim-1", "sim-2"]);
        assert_eq!(specs[0].labels[NODE_GROUP_LABEL], "sim");
        assert_eq!(specs[0].labels[SIMULATED_LABEL], "true");
    }

    #[test]
    fn bad_prefixes_and_counts_are_refused() {
        for args in [
            &["--name-prefix", "Big"][..],
            &["--name-prefix=-x"],
            &["--name-prefix", "a.b"],
            &["--count", "0"],
            &["--node-cpu", "lots"],
        ] {
            assert!(node_specs(&options(args)).is_err(), "{args:?}");
        }
    }
}
