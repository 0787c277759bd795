//! Restarting `kgate up` on the same data dir keeps every object and its resourceVersion.

use kgate_e2e::{flows, Kgate};
use std::collections::BTreeMap;

/// Every object of these kinds, keyed by kind/namespace/name, with (resourceVersion, uid).
fn snapshot(kg: &Kgate) -> BTreeMap<String, (String, String)> {
    let kinds = "namespaces,configmaps,secrets,deployments.apps,pods,services,serviceaccounts,\
                 roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,\
                 clusterroles.rbac.authorization.k8s.io,clusterrolebindings.rbac.authorization.k8s.io";
    let out = kg.kubectl_ok(&["get", kinds, "-A", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("kubectl prints JSON");
    let items = list["items"].as_array().expect("a List with items");
    items
        .iter()
        .map(|o| {
            let key = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("?")
            );
            let rv = o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let uid = o["metadata"]["uid"].as_str().unwrap_or("").to_owned();
            (key, (rv, uid))
        })
        .collect()
}

#[test]
fn restart_keeps_every_object_and_resource_version() {
    let mut kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "keep"]);
    kg.kubectl_ok(&[
        "create",
        "configmap",
        "conf",
        "-n",
        "keep",
        "--from-literal=k=v",
    ]);
    kg.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "-n",
        "keep",
        "--from-literal=p=s3cret",
    ]);
    let manifest = kg.write_file(
        "deploy.yaml",
        &flows::deployment_manifest("keep", "nginx:1.26"),
    );
    kg.kubectl_ok(&["apply", "-f", &manifest.to_string_lossy()]);
    kg.kubectl_ok(&["scale", "deploy", "web", "-n", "keep", "--replicas=2"]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "keep",
    ]);
    // One update after create, so the stored revision differs from the creation one.
    kg.kubectl_ok(&["label", "configmap", "conf", "-n", "keep", "changed=yes"]);

    let before = snapshot(&kg);
    for key in [
        "Namespace//keep",
        "ConfigMap/keep/conf",
        "Secret/keep/pw",
        "Deployment/keep/web",
        "RoleBinding/keep/alice-view",
        "ClusterRole//cluster-admin",
        "Namespace//kube-system",
    ] {
        assert!(
            before.contains_key(key),
            "{key} missing before the restart: {before:#?}"
        );
    }
    for (key, (rv, uid)) in &before {
        assert!(
            !rv.is_empty() && !uid.is_empty(),
            "{key} has no resourceVersion or uid"
        );
    }

    kg.restart();

    let after = snapshot(&kg);
    assert_eq!(
        before, after,
        "objects or resourceVersions changed across the restart"
    );
    let data = kg.kubectl_ok(&[
        "get",
        "secret",
        "pw",
        "-n",
        "keep",
        "-o",
        "jsonpath={.data.p}",
    ]);
    assert_eq!(data.trim(), "czNjcmV0", "the Secret's data changed");
    let replicas = kg.kubectl_ok(&[
        "get",
        "deploy",
        "web",
        "-n",
        "keep",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas.trim(), "2");

    // A write after the restart gets a resourceVersion no earlier object has.
    kg.kubectl_ok(&["create", "configmap", "new", "-n", "keep"]);
    let rv = kg.resource_version(&["configmap", "new", "-n", "keep"]);
    assert!(
        before.values().all(|(old, _)| old != &rv),
        "the new object's resourceVersion {rv} was already used before the restart"
    );
    if let (Ok(new), Some(max)) = (
        rv.parse::<u64>(),
        before
            .values()
            .filter_map(|(v, _)| v.parse::<u64>().ok())
            .max(),
    ) {
        assert!(
            new > max,
            "resourceVersion went backwards after the restart: {new} <= {max}"
        );
    }
    // A stale update is still a conflict after the restart.
    let old_rv = &before["ConfigMap/keep/conf"].0;
    let stale = kg.write_file(
        "stale.json",
        &format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"conf","namespace":"keep","resourceVersion":"{old_rv}"}},"data":{{"k":"v2"}}}}"#
        ),
    );
    kg.kubectl_ok(&["label", "configmap", "conf", "-n", "keep", "again=yes"]);
    kg.kubectl(&["replace", "-f", &stale.to_string_lossy()])
        .fails_with("Conflict");

    // The restarted server still enforces the stored RBAC.
    let alice = kg.kubeconfig_for("alice", &[], "24h");
    let run = kg.kubectl_as(&alice, &["get", "configmaps", "-n", "keep", "-o", "name"]);
    assert!(
        run.success(),
        "alice's RoleBinding did not survive the restart:\n{run}"
    );
}
