use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::json;

use super::*;

fn service(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"app": "web"}},
        "spec": spec,
    }))
    .unwrap()
}

fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "nginx",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .unwrap(),
    )
}

fn web() -> Service {
    service(
        json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}),
    )
}

#[test]
fn endpoints_list_ready_and_not_ready_pods_with_resolved_ports() {
    let pods = vec![
        pod("b", "10.0.0.2", true),
        pod("a", "10.0.0.1", true),
        pod("c", "10.0.0.3", false),
    ];
    let ep = subsets::desired(&web(), &pods);
    let v = serde_json::to_value(&ep).unwrap();
    assert_eq!(v["metadata"]["name"], "web");
    assert_eq!(v["metadata"]["labels"][SKIP_MIRROR_LABEL], "true");
    assert_eq!(v["metadata"]["labels"]["app"], "web");
    let subsets = v["subsets"].as_array().unwrap();
    assert_eq!(subsets.len(), 1);
    let ips: Vec<&str> = subsets[0]["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(subsets[0]["addresses"][0]["nodeName"], "node-1");
    assert_eq!(
        subsets[0]["addresses"][0]["targetRef"],
        json!({"kind": "Pod", "name": "a", "namespace": "default", "uid": "uid-a"})
    );
    assert_eq!(subsets[0]["notReadyAddresses"][0]["ip"], "10.0.0.3");
    assert_eq!(
        subsets[0]["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
}

#[test]
fn named_target_ports_resolve_per_pod_and_unresolved_pods_are_left_out() {
    let svc = service(json!({"selector": {"app": "web"},
        "ports": [{"port": 80, "targetPort": "http"}]}));
    let mut other: Pod = (*pod("x", "10.0.0.9", true)).clone();
    other.spec.as_mut().unwrap().containers[0].ports = None;
    let pods = vec![pod("a", "10.0.0.1", true), Arc::new(other)];
    let v = serde_json::to_value(subsets::desired(&svc, &pods)).unwrap();
    assert_eq!(v["subsets"].as_array().unwrap().len(), 1);
    assert_eq!(v["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(v["subsets"][0]["addresses"].as_array().unwrap().len(), 1);
    // A missing targetPort is the Service port.
    let svc = service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}));
    let v = serde_json::to_value(subsets::desired(&svc, &pods)).unwrap();
    assert_eq!(v["subsets"][0]["ports"][0]["port"], 80);
}

#[test]
fn terminating_ipless_and_finished_pods_are_not_endpoints() {
    let mut terminating: Pod = (*pod("t", "10.0.0.5", true)).clone();
    terminating.metadata.deletion_timestamp =
        Some(serde_json::from_value(json!("2025-01-01T00:00:00Z")).unwrap());
    let mut finished: Pod = (*pod("f", "10.0.0.6", true)).clone();
    finished.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    finished.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let pods = vec![
        Arc::new(terminating),
        pod("n", "", true),
        Arc::new(finished),
    ];
    let ep = subsets::desired(&web(), &pods);
    assert!(ep.subsets.is_none(), "{ep:?}");
    // The slices keep the terminating pod, marked so.
    let slices = slices::desired(&web(), &pods);
    assert_eq!(slices.len(), 1);
    assert_eq!(slices[0].endpoints.len(), 1);
    let c = slices[0].endpoints[0].conditions.clone().unwrap();
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn slices_carry_labels_owner_conditions_and_split_at_100() {
    let pods: Vec<Arc<Pod>> = (0..250)
        .map(|i| {
            pod(
                &format!("p{i}"),
                &format!("10.1.{}.{}", i / 200, i % 200),
                i % 2 == 0,
            )
        })
        .collect();
    let slices = slices::desired(&web(), &pods);
    assert_eq!(
        slices.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    let s = serde_json::to_value(&slices[0]).unwrap();
    assert_eq!(s["metadata"]["generateName"], "web-");
    assert_eq!(s["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
    assert_eq!(s["metadata"]["labels"][MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(
        s["metadata"]["ownerReferences"][0],
        json!({"apiVersion": "v1", "kind": "Service",
        "name": "web", "uid": "svc-uid", "controller": true, "blockOwnerDeletion": true})
    );
    assert_eq!(s["addressType"], "IPv4");
    assert_eq!(
        s["ports"],
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}])
    );
    let ep = &s["endpoints"][0];
    assert_eq!(ep["nodeName"], "node-1");
    assert_eq!(ep["targetRef"]["kind"], "Pod");
    let ready = slices
        .iter()
        .flat_map(|s| &s.endpoints)
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .count();
    assert_eq!(ready, 125);
}

#[test]
fn a_service_without_pods_has_one_empty_slice_and_no_subsets() {
    let slices = slices::desired(&web(), &[]);
    assert_eq!(slices.len(), 1);
    assert!(slices[0].endpoints.is_empty());
    assert!(subsets::desired(&web(), &[]).subsets.is_none());
}

#[test]
fn headless_services_are_labelled_and_list_portless_addresses() {
    let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
    let ep = serde_json::to_value(subsets::desired(&svc, &[pod("a", "10.0.0.1", true)])).unwrap();
    assert_eq!(ep["metadata"]["labels"][HEADLESS_LABEL], "");
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], "10.0.0.1");
    assert!(ep["subsets"][0].get("ports").is_none());
}

#[test]
fn selectors_and_external_names() {
    assert!(selector(&web()).is_some());
    assert!(selector(&service(json!({"ports": [{"port": 80}]}))).is_none());
    assert!(selector(&service(
        json!({"type": "ExternalName", "selector": {"app": "web"}})
    ))
    .is_none());
    let p = pod("a", "10.0.0.1", true);
    assert!(matches(selector(&web()).unwrap(), &p));
    let other = service(json!({"selector": {"app": "db"}}));
    assert!(!matches(selector(&other).unwrap(), &p));
}

#[test]
fn publish_not_ready_addresses_makes_every_pod_ready() {
    let svc = service(
        json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true, "ports": [{"port": 80}]}),
    );
    let v = serde_json::to_value(subsets::desired(&svc, &[pod("a", "10.0.0.1", false)])).unwrap();
    assert_eq!(v["subsets"][0]["addresses"][0]["ip"], "10.0.0.1");
    let s = slices::desired(&svc, &[pod("a", "10.0.0.1", false)]);
    assert_eq!(
        s[0].endpoints[0].conditions.as_ref().unwrap().ready,
        Some(true)
    );
}
