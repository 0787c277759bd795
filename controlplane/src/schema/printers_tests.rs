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
