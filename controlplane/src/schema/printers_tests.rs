//! Rows of each kind against what kube-apiserver prints.

use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::resources::RESOURCES;

const NOW: OffsetDateTime = datetime!(2025-01-10 12:00:00 UTC);
const HOUR_AGO: &str = "2025-01-10T11:00:00Z";

#[test]
fn every_row_has_one_cell_per_column_and_a_name_column() {
    for r in RESOURCES {
        let obj = json!({"metadata": {"name": "x", "creationTimestamp": HOUR_AGO}});
        assert_eq!(
            cells(r.kind, &obj, NOW).len(),
            columns(r.kind).len(),
            "{}",
            r.kind
        );
        assert!(columns(r.kind).iter().any(|c| c.format == "name") || r.kind == "Event");
    }
    assert_eq!(cells("Unknown", &json!({}), NOW).len(), 2);
}

#[test]
fn pods() {
    let running = json!({
        "metadata": {"name": "p", "creationTimestamp": HOUR_AGO},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"finishedAt": "2025-01-10T11:55:00Z"}}},
            {"name": "b", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        ]},
    });
    assert_eq!(
        cells("Pod", &running, NOW),
        vec![
            json!("p"),
            json!("1/2"),
            json!("CrashLoopBackOff"),
            json!("2 (5m ago)"),
            json!("60m"),
            json!("10.0.0.5"),
            json!("n1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
    let mut terminating = running.clone();
    terminating["metadata"]["deletionTimestamp"] = json!(HOUR_AGO);
    assert_eq!(cells("Pod", &terminating, NOW)[2], "Terminating");
    let init = json!({"metadata": {"name": "i"},
        "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "x"}, {"name": "y"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "x", "state": {"terminated": {"exitCode": 0}}},
            {"name": "y", "state": {"running": {}}}]}});
    assert_eq!(cells("Pod", &init, NOW)[2], "Init:1/2");
    assert_eq!(cells("Pod", &init, NOW)[4], "<unknown>");
}

#[test]
fn workloads() {
    let d = json!({
        "metadata": {"name": "web", "creationTimestamp": HOUR_AGO},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"},
                                                 {"name": "s", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    });
    assert_eq!(
        cells("Deployment", &d, NOW),
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("60m"),
            json!("c,s"),
            json!("nginx:1.27,busybox"),
            json!("app=web,tier in (a,b)")
        ]
    );
    assert_eq!(
        cells("ReplicaSet", &d, NOW)[1..4],
        [json!(3), json!(0), json!(2)]
    );
}

#[test]
fn services_nodes_and_others() {
    let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort",
        "clusterIP": "10.96.0.10", "selector": {"b": "2", "a": "1"},
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
    assert_eq!(
        cells("Service", &svc, NOW)[1..],
        [
            json!("NodePort"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("<unknown>"),
            json!("a=1,b=2")
        ]
    );
    let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "True"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0"},
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}]}});
    let row = cells("Node", &node, NOW);
    for (ready, shown) in [("False", "NotReady"), ("Unknown", "NotReady")] {
        let lost = json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}});
        assert_eq!(cells("Node", &lost, NOW)[1], shown);
    }
    assert_eq!(
        cells("Node", &json!({"metadata": {"name": "n"}}), NOW)[1],
        "Unknown"
    );
    assert_eq!(
        row[1..6],
        [
            json!("Ready,SchedulingDisabled"),
            json!("control-plane"),
            json!("<unknown>"),
            json!("v1.33.0"),
            json!("192.168.1.2")
        ]
    );
    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "d", "namespace": "ns"}]});
    assert_eq!(cells("RoleBinding", &rb, NOW)[1], "ClusterRole/view");
    assert_eq!(cells("RoleBinding", &rb, NOW)[5], "ns/d");
    let role = json!({"metadata": {"name": "r", "creationTimestamp": HOUR_AGO}});
    assert_eq!(
        cells("ClusterRole", &role, NOW),
        vec![json!("r"), json!(HOUR_AGO)]
    );
    let ev = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "FailedScheduling",
        "involvedObject": {"kind": "Pod", "name": "p"}, "message": "no nodes ",
        "lastTimestamp": "2025-01-10T11:59:30Z", "count": 4});
    let row = cells("Event", &ev, NOW);
    assert_eq!(
        row[..4],
        [
            json!("30s"),
            json!("Warning"),
            json!("FailedScheduling"),
            json!("pod/p")
        ]
    );
    assert_eq!(row[6], "no nodes");
    let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "1.1.1.1"},
        {"ip": "1.1.1.2"}, {"ip": "1.1.1.3"}, {"ip": "1.1.1.4"}], "ports": [{"port": 80}]}]});
    assert_eq!(
        cells("Endpoints", &ep, NOW)[1],
        "1.1.1.1:80,1.1.1.2:80,1.1.1.3:80 + 1 more..."
    );
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    assert_eq!(cells("ConfigMap", &cm, NOW)[1], 2);
    let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}});
    assert_eq!(cells("Lease", &lease, NOW)[1], "node-1");
    let slice = json!({"metadata": {"name": "web-abcde"}, "addressType": "IPv4",
        "ports": [{"port": 8080}], "endpoints": [{"addresses": ["10.244.0.2"]},
        {"addresses": ["10.244.1.2"]}]});
    let row = cells("EndpointSlice", &slice, NOW);
    assert_eq!(
        row[1..4],
        [json!("IPv4"), json!("8080"), json!("10.244.0.2,10.244.1.2")]
    );
    assert_eq!(columns("EndpointSlice").len(), row.len());
    assert_eq!(label_selector(None), "<none>");
}

#[test]
fn volumes_and_claims() {
    let pv = json!({"metadata": {"name": "pv1", "creationTimestamp": HOUR_AGO},
        "spec": {"capacity": {"storage": "1.5Gi"}, "persistentVolumeReclaimPolicy": "Retain",
            "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteOnce"],
            "claimRef": {"namespace": "default", "name": "c1"}, "storageClassName": "fast"},
        "status": {"phase": "Bound"}});
    assert_eq!(
        cells("PersistentVolume", &pv, NOW),
        vec![
            json!("pv1"),
            json!("1536Mi"),
            json!("RWO,ROX,RWX"),
            json!("Retain"),
            json!("Bound"),
            json!("default/c1"),
            json!("fast"),
            json!("<unset>"),
            json!(""),
            json!("60m"),
            json!("<unset>"),
        ]
    );
    let mut old = json!({"metadata": {"name": "pv2", "deletionTimestamp": HOUR_AGO,
            "annotations": {"volume.beta.kubernetes.io/storage-class": "old"}},
        "spec": {"accessModes": ["ReadWriteOncePod"], "storageClassName": "new",
            "volumeMode": "Block", "volumeAttributesClassName": "gold"},
        "status": {"phase": "Released", "reason": "Why"}});
    let row = cells("PersistentVolume", &old, NOW);
    assert_eq!(
        row[1..9],
        [
            json!("0"),
            json!("RWOP"),
            json!(""),
            json!("Terminating"),
            json!(""),
            json!("old"),
            json!("gold"),
            json!("Why")
        ]
    );
    assert_eq!(row[10], "Block");
    old["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": ""});
    assert_eq!(cells("PersistentVolume", &old, NOW)[6], "");

    let pending = json!({"metadata": {"name": "c2"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}});
    assert_eq!(
        cells("PersistentVolumeClaim", &pending, NOW),
        vec![
            json!("c2"),
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!("<unset>"),
            json!("<unknown>"),
            json!("<unset>"),
        ]
    );
    let bound = json!({"metadata": {"name": "c1"},
        "spec": {"volumeName": "pv1", "storageClassName": "fast", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "capacity": {"storage": "2048Mi"},
            "accessModes": ["ReadWriteOnce"]}});
    assert_eq!(
        cells("PersistentVolumeClaim", &bound, NOW)[1..7],
        [
            json!("Bound"),
            json!("pv1"),
            json!("2Gi"),
            json!("RWO"),
            json!("fast"),
            json!("<unset>")
        ]
    );
    let unfilled = json!({"metadata": {"name": "c3"}, "spec": {"volumeName": "pv1"}});
    assert_eq!(
        cells("PersistentVolumeClaim", &unfilled, NOW)[3],
        json!("0")
    );
}

#[test]
fn storage_classes_and_csi() {
    let sc = json!({"metadata": {"name": "fast",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "csi.example.com", "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": true});
    assert_eq!(
        cells("StorageClass", &sc, NOW)[..5],
        [
            json!("fast (default)"),
            json!("csi.example.com"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(true)
        ]
    );
    for (key, value, shown) in [
        (
            "storageclass.beta.kubernetes.io/is-default-class",
            "true",
            "s (default)",
        ),
        ("storageclass.kubernetes.io/is-default-class", "True", "s"),
        ("storageclass.kubernetes.io/is-default-class", "false", "s"),
    ] {
        let sc = json!({"metadata": {"name": "s", "annotations": {key: value}},
            "provisioner": "p", "reclaimPolicy": "Retain"});
        let row = cells("StorageClass", &sc, NOW);
        assert_eq!(
            row[..5],
            [
                json!(shown),
                json!("p"),
                json!("Retain"),
                json!("Immediate"),
                json!(false)
            ]
        );
    }
    let driver = json!({"metadata": {"name": "csi.example.com"}, "spec": {
        "attachRequired": false, "podInfoOnMount": true,
        "tokenRequests": [{"audience": "a1"}, {"audience": "a2"}],
        "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
    assert_eq!(
        cells("CSIDriver", &driver, NOW)[..7],
        [
            json!("csi.example.com"),
            json!(false),
            json!(true),
            json!(false),
            json!("a1,a2"),
            json!(false),
            json!("Persistent,Ephemeral")
        ]
    );
    let bare = json!({"metadata": {"name": "d"}, "spec": {"tokenRequests": []}});
    assert_eq!(
        cells("CSIDriver", &bare, NOW)[1..7],
        [
            json!(true),
            json!(false),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("<none>")
        ]
    );
    let node =
        json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
    assert_eq!(cells("CSINode", &node, NOW)[1], 2);
    let va = json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi.example.com",
        "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}});
    assert_eq!(
        cells("VolumeAttachment", &va, NOW)[..5],
        [
            json!("va"),
            json!("csi.example.com"),
            json!("pv1"),
            json!("n1"),
            json!(true)
        ]
    );
    let inline = json!({"metadata": {"name": "va2"}, "spec": {"attacher": "a", "nodeName": "n",
        "source": {"inlineVolumeSpec": {}}}});
    assert_eq!(
        cells("VolumeAttachment", &inline, NOW)[2..5],
        [json!(""), json!("n"), json!(false)]
    );
    assert_eq!(columns("VolumeAttachment")[1].format, "name");
    let vac = json!({"metadata": {"name": "gold"}, "driverName": "csi.example.com"});
    assert_eq!(
        cells("VolumeAttributesClass", &vac, NOW)[1],
        "csi.example.com"
    );
    // kube's CSIStorageCapacity storage has no printer: the default Name and Created At.
    let cap = json!({"metadata": {"name": "cap", "creationTimestamp": HOUR_AGO},
        "storageClassName": "fast", "capacity": "10Gi"});
    assert_eq!(
        cells("CSIStorageCapacity", &cap, NOW),
        vec![json!("cap"), json!(HOUR_AGO)]
    );
    assert_eq!(columns("CSIStorageCapacity")[1].ty, "date");
}

#[test]
fn replication_stateful_sets_and_budgets() {
    let rc = json!({"metadata": {"name": "rc", "creationTimestamp": HOUR_AGO},
        "spec": {"replicas": 2, "selector": {"b": "x", "app": "rc"}, "template": {"spec": {
            "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
        "status": {"replicas": 1, "readyReplicas": 1}});
    assert_eq!(
        cells("ReplicationController", &rc, NOW),
        vec![
            json!("rc"),
            json!(2),
            json!(1),
            json!(1),
            json!("60m"),
            json!("a,b"),
            json!("nginx,busybox"),
            json!("app=rc,b=x")
        ]
    );
    let bare = json!({"metadata": {"name": "rc"}});
    assert_eq!(
        cells("ReplicationController", &bare, NOW)[5..],
        [json!(""), json!(""), json!("<none>")]
    );
    let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3,
        "template": {"spec": {"containers": [{"name": "a", "image": "postgres"}]}}},
        "status": {"readyReplicas": 2}});
    assert_eq!(
        cells("StatefulSet", &sts, NOW),
        vec![
            json!("db"),
            json!("2/3"),
            json!("<unknown>"),
            json!("a"),
            json!("postgres")
        ]
    );
    let pdb = json!({"metadata": {"name": "b"}, "spec": {"minAvailable": "50%"},
        "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        cells("PodDisruptionBudget", &pdb, NOW)[1..4],
        [json!("50%"), json!("N/A"), json!(1)]
    );
    let pdb = json!({"metadata": {"name": "b"}, "spec": {"maxUnavailable": 1}});
    assert_eq!(
        cells("PodDisruptionBudget", &pdb, NOW)[1..4],
        [json!("N/A"), json!("1"), json!(0)]
    );
}

#[test]
fn dynamic_resource_allocation() {
    let mut claim = json!({"metadata": {"name": "c"}});
    assert_eq!(cells("ResourceClaim", &claim, NOW)[1], "pending");
    claim["status"] = json!({"allocation": {"devices": {}}});
    assert_eq!(cells("ResourceClaim", &claim, NOW)[1], "allocated");
    claim["status"]["reservedFor"] = json!([{"resource": "pods", "name": "p", "uid": "u"}]);
    assert_eq!(cells("ResourceClaim", &claim, NOW)[1], "allocated,reserved");
    claim["metadata"]["deletionTimestamp"] = json!(HOUR_AGO);
    assert_eq!(
        cells("ResourceClaim", &claim, NOW)[1],
        "deleted,allocated,reserved"
    );
    claim["status"] = json!({});
    assert_eq!(cells("ResourceClaim", &claim, NOW)[1], "deleted");
    let slice = json!({"metadata": {"name": "s"}, "spec": {"driver": "dra.example.com",
        "nodeName": "n1", "pool": {"name": "p1", "generation": 1, "resourceSliceCount": 1}}});
    assert_eq!(
        cells("ResourceSlice", &slice, NOW)[..4],
        [
            json!("s"),
            json!("n1"),
            json!("dra.example.com"),
            json!("p1")
        ]
    );
    let all = json!({"metadata": {"name": "s"}, "spec": {"driver": "d", "allNodes": true,
        "pool": {"name": "p"}}});
    assert_eq!(cells("ResourceSlice", &all, NOW)[1], "");
    for kind in ["DeviceClass", "ResourceClaimTemplate"] {
        let o = json!({"metadata": {"name": "x", "creationTimestamp": HOUR_AGO}});
        assert_eq!(cells(kind, &o, NOW), vec![json!("x"), json!("60m")]);
        assert_eq!(columns(kind)[1].name, "Age");
    }
}

#[test]
fn scales() {
    let scale = json!({"kind": "Scale", "metadata": {"name": "web", "creationTimestamp": HOUR_AGO},
        "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}});
    assert_eq!(
        cells("Scale", &scale, NOW),
        vec![json!("web"), json!(3), json!(2), json!("60m")]
    );
    assert_eq!(columns("Scale").len(), 4);
}

#[test]
fn admission_configuration() {
    let hooks = json!({"metadata": {"name": "h", "creationTimestamp": HOUR_AGO},
        "webhooks": [{"name": "a.b.c"}, {"name": "d.e.f"}]});
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        assert_eq!(
            cells(kind, &hooks, NOW),
            vec![json!("h"), json!(2), json!("60m")]
        );
    }
    let policy = json!({"metadata": {"name": "p", "creationTimestamp": HOUR_AGO},
        "spec": {"validations": [{"expression": "true"}],
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}});
    assert_eq!(
        cells("ValidatingAdmissionPolicy", &policy, NOW),
        vec![json!("p"), json!(1), json!("v1/ConfigMap"), json!("60m")]
    );
    let unset = json!({"metadata": {"name": "p"}, "spec": {}});
    assert_eq!(
        cells("ValidatingAdmissionPolicy", &unset, NOW)[1..3],
        [json!(0), json!("<unset>")]
    );
    let binding = |param_ref: serde_json::Value| {
        let b =
            json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": param_ref}});
        cells("ValidatingAdmissionPolicyBinding", &b, NOW)[1..3].to_vec()
    };
    assert_eq!(
        binding(json!({"name": "c", "namespace": "ns"})),
        [json!("p"), json!("ns/c")]
    );
    assert_eq!(binding(json!({"name": "c"}))[1], "*/c");
    assert_eq!(binding(json!(null))[1], "<unset>");
    assert_eq!(
        binding(json!({"selector": {"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["x", "y"]}]}}))[1],
        "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:k,Operator:In,Values:[x y],},},}"
    );
}
