//! alice's certificate from `kgate kubeconfig`: forbidden, then allowed by a RoleBinding
//! without a restart, and only as far as the `view` ClusterRole goes.

use kgate_e2e::{flows, Kgate};

#[test]
fn alice_is_forbidden_until_a_rolebinding_lets_her_view_team() {
    let kg = Kgate::up();
    flows::alice_flow(&kg);
}

#[test]
fn a_group_binding_applies_to_every_member() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    let bob = kg.kubeconfig_for("bob", &["dev", "qa"], "24h");
    kg.kubectl_as(&bob, &["get", "configmaps", "-n", "team"])
        .fails_with(r#"configmaps is forbidden: User "bob" cannot list resource "configmaps" in API group "" in the namespace "team""#);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "qa-edit",
        "--clusterrole=edit",
        "--group=qa",
        "-n",
        "team",
    ]);
    kg.kubectl_as_eventually(&bob, &["create", "configmap", "by-bob", "-n", "team"]);
    let who = kg.kubectl_ok(&["get", "cm", "by-bob", "-n", "team", "-o", "name"]);
    assert_eq!(who.trim(), "configmap/by-bob");
    // edit cannot touch RBAC.
    kg.kubectl_as(
        &bob,
        &[
            "create",
            "rolebinding",
            "sneaky",
            "--clusterrole=admin",
            "--user=bob",
            "-n",
            "team",
        ],
    )
    .fails_with("forbidden");
}

/// Kubernetes lets a node read only what its Node authorizer ties to it; kgate has no Node
/// authorizer, so it gives the simulated nodes a role of their own, bound to their user by name.
/// A certificate in group `system:nodes` (or the simulated nodes' own user) reads no secret, and
/// the group binding of earlier versions, found at start, is removed.
#[test]
fn node_identities_read_no_secrets() {
    let mut kg = Kgate::up();
    kg.kubectl_ok(&["create", "secret", "generic", "db", "--from-literal=k=v"]);
    let intruder = kg.kubeconfig_for("system:node:intruder", &["system:nodes"], "1h");
    let simulated = kg.kubeconfig_for("system:node:kgate-nodes", &["system:nodes"], "1h");
    for who in [&intruder, &simulated] {
        kg.kubectl_as(who, &["get", "secret", "db", "-o", "yaml"])
            .fails_with("forbidden");
        kg.kubectl_as(who, &["get", "configmaps", "-A"])
            .fails_with("forbidden");
    }
    // What the simulated nodes do, they may do; the group alone may not.
    let nodes = kg.kubectl_as(&simulated, &["get", "nodes", "-o", "name"]);
    assert!(nodes.success(), "{nodes}");
    kg.kubectl_as(&intruder, &["get", "nodes"])
        .fails_with("forbidden");
    // Another namespace's Leases (the scheduler's leader lease) are out of the nodes' reach.
    kg.kubectl_as(&simulated, &["get", "leases", "-n", "kube-system"])
        .fails_with("forbidden");

    // An earlier version's group binding goes at the next start.
    kg.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "kgate:simulated-nodes",
        "--clusterrole=system:node",
        "--group=system:nodes",
    ]);
    kg.restart();
    let left = kg.kubectl(&["get", "clusterrolebinding", "kgate:simulated-nodes"]);
    left.fails_with("NotFound");
    let after = kg.kubeconfig_for("system:node:intruder", &["system:nodes"], "1h");
    kg.kubectl_as(&after, &["get", "secret", "db"])
        .fails_with("forbidden");
}
