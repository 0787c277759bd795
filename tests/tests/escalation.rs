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
