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
