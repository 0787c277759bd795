//! Privilege-escalation prevention with the real kubectl: eve may create Roles and RoleBindings
//! in `team`, but only grant what she holds, until she is given `escalate` (for Roles) and
//! `bind` (for RoleBindings), as in kube-apiserver. Checked in `kgate up` and in the split mode.

use kgate_e2e::Kgate;

fn escalation_flow(kg: &Kgate) {
    kg.kubectl_ok(&["create", "namespace", "team"]);
    kg.kubectl_ok(&[
        "create",
        "role",
        "rbac-writer",
        "-n",
        "team",
        "--verb=create,update,get",
        "--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io",
    ]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "eve-rbac-writer",
        "-n",
        "team",
        "--role=rbac-writer",
        "--user=eve",
    ]);
    let eve = kg.kubeconfig_for("eve", &[], "24h");

    // What eve holds she may grant.
    kg.kubectl_as_eventually(
        &eve,
        &[
            "create",
            "role",
            "role-getter",
            "-n",
            "team",
            "--verb=get",
            "--resource=roles.rbac.authorization.k8s.io",
        ],
    );
    // More she may not.
    let denied = kg.kubectl_as(
        &eve,
        &[
            "create",
            "role",
            "pod-deleter",
            "-n",
            "team",
            "--verb=delete",
            "--resource=pods",
        ],
    );
    denied.fails_with(r#"roles.rbac.authorization.k8s.io "pod-deleter" is forbidden: user "eve" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#);
    denied.fails_with(r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#);
    // Binding a role whose permissions she lacks is refused too.
    let bind = [
        "create",
        "rolebinding",
        "eve-admin",
        "-n",
        "team",
        "--clusterrole=admin",
        "--user=eve",
    ];
    kg.kubectl_as(&eve, &bind).fails_with(
        r#"rolebindings.rbac.authorization.k8s.io "eve-admin" is forbidden: user "eve" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#,
    );

    // `escalate` on roles lifts the first limit, in team only.
    kg.kubectl_ok(&[
        "create",
        "role",
        "escalator",
        "-n",
        "team",
        "--verb=escalate",
        "--resource=roles.rbac.authorization.k8s.io",
    ]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "eve-escalator",
        "-n",
        "team",
        "--role=escalator",
        "--user=eve",
    ]);
    kg.kubectl_as_eventually(
        &eve,
        &[
            "create",
            "role",
            "pod-deleter",
            "-n",
            "team",
            "--verb=delete",
            "--resource=pods",
        ],
    );
    // Escalate does not let her bind.
    kg.kubectl_as(&eve, &bind)
        .fails_with("is attempting to grant RBAC permissions");

    // `bind` on the admin ClusterRole (by name) lifts the second.
    kg.kubectl_ok(&[
        "create",
        "role",
        "admin-binder",
        "-n",
        "team",
        "--verb=bind",
        "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=admin",
    ]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "eve-admin-binder",
        "-n",
        "team",
        "--role=admin-binder",
        "--user=eve",
    ]);
    kg.kubectl_as_eventually(&eve, &bind);
    // Only that role: binding cluster-admin is still refused.
    kg.kubectl_as(
        &eve,
        &[
            "create",
            "rolebinding",
            "eve-cluster-admin",
            "-n",
            "team",
            "--clusterrole=cluster-admin",
            "--user=eve",
        ],
    )
    .fails_with("is attempting to grant RBAC permissions not currently held");
}

#[test]
fn a_role_writer_grants_only_what_she_holds_until_given_escalate_and_bind() {
    let kg = Kgate::up();
    escalation_flow(&kg);
}

#[test]
fn split_mode_checks_escalation_too() {
    let kg = Kgate::split();
    escalation_flow(&kg);
}

/// Review finding 1: a user who may only patch ClusterRoles labels cluster-admin so that the
/// aggregation controller copies `*` into `view`, making every viewer cluster-admin. Kubernetes
/// skips the escalation check only for updates that change nothing but the fields the garbage
/// collector writes; a label is not one of them, so the new rules (`*` on `*`) must be held.
#[test]
fn a_clusterrole_patcher_cannot_relabel_cluster_admin_into_an_aggregated_role() {
    let kg = Kgate::up();
    kg.kubectl_ok(&[
        "create",
        "clusterrole",
        "clusterrole-patcher",
        "--verb=get,list,patch,update",
        "--resource=clusterroles.rbac.authorization.k8s.io",
    ]);
    kg.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "mallory-patcher",
        "--clusterrole=clusterrole-patcher",
        "--user=mallory",
    ]);
    let mallory = kg.kubeconfig_for("mallory", &[], "24h");
    kg.kubectl_as_eventually(&mallory, &["get", "clusterrole", "cluster-admin"]);

    let relabel = kg.kubectl_as(
        &mallory,
        &[
            "label",
            "clusterrole",
            "cluster-admin",
            "rbac.authorization.k8s.io/aggregate-to-view=true",
        ],
    );
    relabel.fails_with(r#"clusterroles.rbac.authorization.k8s.io "cluster-admin" is forbidden: user "mallory" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#);
    relabel.fails_with(r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#);
    // The same through a raw merge patch, and on `view` itself (whose aggregated rules she
    // does not hold; its aggregationRule would need full authority besides).
    let status = kg
        .request(
            "PATCH",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin",
        )
        .identity(kgate_e2e::Identity::Kubeconfig(mallory.clone()))
        .body(
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"rbac.authorization.k8s.io/aggregate-to-edit":"true"}}}"#,
        )
        .send()
        .assert_status(403);
    assert_eq!(status["reason"], "Forbidden", "{status}");
    kg.kubectl_as(
        &mallory,
        &["label", "clusterrole", "view", "kgate.test/touched=true"],
    )
    .fails_with(r#"clusterroles.rbac.authorization.k8s.io "view" is forbidden: user "mallory""#);

    // Nothing changed: no label on cluster-admin, and `view` grants no wildcard.
    let labels = kg.kubectl_ok(&[
        "get",
        "clusterrole",
        "cluster-admin",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert!(!labels.contains("aggregate-to"), "{labels}");
    let view = kg.kubectl_ok(&["get", "clusterrole", "view", "-o", "json"]);
    assert!(!view.contains(r#""*""#), "view gained a wildcard:\n{view}");
    assert!(!view.contains("kgate.test/touched"), "{view}");
    // What Kubernetes lets through: an update of the fields the garbage collector writes.
    kg.kubectl_as(
        &mallory,
        &[
            "patch",
            "clusterrole",
            "cluster-admin",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["kgate.test/hold"]}}"#,
        ],
    )
    .ok();
    kg.kubectl_ok(&[
        "patch",
        "clusterrole",
        "cluster-admin",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}

/// Review finding 6: an `escalate` grant limited by resourceNames does not apply to a create,
/// which Kubernetes authorizes with an empty name (the object has none in the URL yet); it does
/// apply to updates of that role.
#[test]
fn an_escalate_grant_by_name_does_not_cover_creating_that_role() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    kg.kubectl_ok(&[
        "create",
        "role",
        "named-escalator",
        "-n",
        "team",
        "--verb=escalate",
        "--resource=roles.rbac.authorization.k8s.io",
        "--resource-name=deployer",
    ]);
    kg.kubectl_ok(&[
        "create",
        "role",
        "role-writer",
        "-n",
        "team",
        "--verb=create,get,list,update,patch",
        "--resource=roles.rbac.authorization.k8s.io",
    ]);
    for role in ["named-escalator", "role-writer"] {
        kg.kubectl_ok(&[
            "create",
            "rolebinding",
            &format!("erin-{role}"),
            "-n",
            "team",
            &format!("--role={role}"),
            "--user=erin",
        ]);
    }
    let erin = kg.kubeconfig_for("erin", &[], "24h");
    kg.kubectl_as_eventually(&erin, &["get", "roles", "-n", "team"]);
    let create = [
        "create",
        "role",
        "deployer",
        "-n",
        "team",
        "--verb=delete",
        "--resource=deployments.apps",
    ];
    kg.kubectl_as(&erin, &create)
        .fails_with("is attempting to grant RBAC permissions not currently held");
    kg.kubectl(&["get", "role", "deployer", "-n", "team"])
        .fails_with("NotFound");
    // Once it exists, the grant by name lets her widen it.
    kg.kubectl_ok(&[
        "create",
        "role",
        "deployer",
        "-n",
        "team",
        "--verb=get",
        "--resource=deployments.apps",
    ]);
    kg.kubectl_as_eventually(
        &erin,
        &[
            "patch",
            "role",
            "deployer",
            "-n",
            "team",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]"#,
        ],
    );
}
