//! The cluster runs, end to end with the real kubectl: `kgate up` starts simulated nodes, the
//! scheduler and the controllers, so a Deployment ends as Running pods spread over Ready nodes;
//! scheduling follows load, nodeSelector and taints, and says why a pod cannot be placed;
//! controllers heal, roll out and roll back; a stopped node's pods come back elsewhere;
//! Services get a ClusterIP and Endpoints; deletions cascade.

use kgate_e2e::cluster_flows;
use kgate_e2e::{Kgate, Options};

fn kgate(extra: &[&str]) -> Kgate {
    Kgate::up_with(Options {
        gateway_args: extra.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
}

#[test]
fn a_deployment_ends_as_running_pods_spread_over_ready_nodes_and_heals() {
    // ES256 signing keys here: the pods' tokens show which key signed them.
    let kg = kgate(&[
        "--node-monitor-grace-period=5s",
        "--service-account-signing-algorithm=ES256",
        // Pods stay 2 s on a lost node (kube's default is 300 s), so the scenario sees
        // them come back elsewhere soon.
        "--default-unreachable-toleration-seconds=2",
    ]);
    cluster_flows::deployment_heals_scales_serves_and_survives_a_node(&kg);
}

#[test]
fn rollouts_undo_and_namespace_deletion() {
    let kg = kgate(&[]);
    cluster_flows::rollout_undo_and_namespace_deletion(&kg);
}

#[test]
fn scheduling_follows_load_selectors_and_taints_and_says_why_it_cannot() {
    let kg = kgate(&["--nodes=0"]);
    cluster_flows::scheduling_follows_load_selectors_and_taints(&kg);
}
