//! Services against a real kgate: ClusterIP and NodePort allocation by the API server (also
//! under concurrent creations), and the Endpoints and EndpointSlice controllers, run
//! in-process, following pods whose status the test sets through `pods/status`; read back with
//! the real kubectl too.

// Tests may unwrap (STYLE); the crate-level allowance does not reach integration tests.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kgate_e2e::Kgate;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};
use support::{eventually, kubectl, kubectl_json};

const WITHIN: Duration = Duration::from_secs(20);

fn in_service_cidr(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().expect("an IPv4 address");
    u32::from(ip) >> 20 == u32::from(Ipv4Addr::new(10, 96, 0, 0)) >> 20
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(status) => (status.code, status.message),
        other => panic!("not an API error: {other}"),
    }
}

fn service(name: &str, spec: Value) -> Service {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_ips_and_node_ports_are_allocated_without_collisions() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");

    kubectl(
        &kg,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    );
    let web = kubectl_json(&kg, &["get", "service", "web"]);
    let ip = web["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(in_service_cidr(&ip), "{ip}");
    assert_ne!(ip, "10.96.0.1", "reserved for the kubernetes Service");
    assert_eq!(web["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(web["spec"]["ipFamilies"], json!(["IPv4"]));
    assert_eq!(web["spec"]["ipFamilyPolicy"], "SingleStack");
    let table = kubectl(&kg, &["get", "service", "web"]);
    assert!(table.contains(&ip), "{table}");

    // 50 concurrent creations: 50 distinct addresses.
    let creations = (0..50).map(|i| {
        let svcs = svcs.clone();
        async move {
            let svc = service(&format!("many-{i}"), json!({"ports": [{"port": 80}]}));
            svcs.create(&PostParams::default(), &svc).await.unwrap()
        }
    });
    let created = futures::future::join_all(creations).await;
    let ips: HashSet<String> = created
        .iter()
        .map(|s| s.spec.as_ref().unwrap().cluster_ip.clone().unwrap())
        .collect();
    assert_eq!(ips.len(), 50);
    assert!(ips.iter().all(|ip| in_service_cidr(ip)));
    assert!(!ips.contains(&ip));

    // NodePort: a port in range; a requested one must be free.
    kubectl(
        &kg,
        &["create", "service", "nodeport", "np", "--tcp=80:8080"],
    );
    let np = kubectl_json(&kg, &["get", "service", "np"]);
    let node_port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    assert!(in_service_cidr(np["spec"]["clusterIP"].as_str().unwrap()));
    let taken = service(
        "np2",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}),
    );
    let (code, message) = api_error(
        svcs.create(&PostParams::default(), &taken)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains(&format!(
            "spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
        )),
        "{message}"
    );

    // A requested ClusterIP must be free; once set it cannot change.
    let dup = service("dup", json!({"clusterIP": ip, "ports": [{"port": 80}]}));
    let (code, message) = api_error(svcs.create(&PostParams::default(), &dup).await.unwrap_err());
    assert_eq!(code, 422);
    assert!(
        message.contains(&format!(
            "spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{message}"
    );
    let change = json!({"spec": {"clusterIP": "10.96.123.45"}});
    let (code, message) = api_error(
        svcs.patch("web", &PatchParams::default(), &Patch::Merge(&change))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(message.contains("may not change once set"), "{message}");
    // An update that leaves the IP alone keeps it.
    let label = json!({"metadata": {"labels": {"touched": "yes"}}});
    let patched = svcs
        .patch("web", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .unwrap();
    assert_eq!(
        patched.spec.unwrap().cluster_ip.as_deref(),
        Some(ip.as_str())
    );

    // Headless and ExternalName Services hold no address.
    kubectl(
        &kg,
        &[
            "create",
            "service",
            "clusterip",
            "headless",
            "--clusterip=None",
        ],
    );
    let headless = kubectl_json(&kg, &["get", "service", "headless"]);
    assert_eq!(headless["spec"]["clusterIP"], "None");
    kubectl(
        &kg,
        &[
            "create",
            "service",
            "externalname",
            "ext",
            "--external-name=example.com",
        ],
    );
    let ext = kubectl_json(&kg, &["get", "service", "ext"]);
    assert!(
        ext["spec"].get("clusterIP").is_none_or(|v| v == ""),
        "{ext}"
    );

    // A deleted Service's address is free again.
    kubectl(&kg, &["delete", "service", "web"]);
    let again = service("again", json!({"clusterIP": ip, "ports": [{"port": 80}]}));
    svcs.create(&PostParams::default(), &again).await.unwrap();
}

async fn make_pod(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx",
            "ports": [{"name": "http", "containerPort": 8080}]}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    set_status(pods, name, ip, ready).await;
}

async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// (ready IPs, not-ready IPs, ports) of an Endpoints object.
fn addresses(ep: &Endpoints) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<i32>) {
    let mut ready = BTreeSet::new();
    let mut not_ready = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for subset in ep.subsets.iter().flatten() {
        ready.extend(subset.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(
            subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| a.ip.clone()),
        );
        ports.extend(subset.ports.iter().flatten().map(|p| p.port));
    }
    (ready, not_ready, ports)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The endpoints of a Service's slices: (ip, ready) pairs.
async fn slice_endpoints(
    slices: &Api<EndpointSlice>,
    svc: &str,
) -> Result<BTreeSet<(String, bool)>, String> {
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={svc}")))
        .await
        .map_err(|e| e.to_string())?;
    if list.items.is_empty() {
        return Err("no slices".into());
    }
    Ok(list
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false);
            (e.addresses[0].clone(), ready)
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_and_slices_follow_ready_pods_and_go_with_the_service() {
    let kg = support::bare_kgate();
    let client = support::admin_client(&kg).await;
    let controller = kgate_cluster::controllers::endpoints::spawn(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");

    // `kubectl create service` selects app=<name>.
    kubectl(
        &kg,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    );
    make_pod(&pods, "web-1", "10.244.0.11", true).await;
    make_pod(&pods, "web-2", "10.244.0.12", true).await;
    make_pod(&pods, "web-3", "10.244.0.13", false).await;
    // A pod with an IP but another label, and one without an IP: neither is listed.
    let stranger: Pod = serde_json::from_value(json!({
        "metadata": {"name": "db", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "postgres"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &stranger)
        .await
        .unwrap();
    set_status(&pods, "db", "10.244.0.99", true).await;
    let pending: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web-pending", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pending).await.unwrap();

    let want_ready = set(&["10.244.0.11", "10.244.0.12"]);
    let want_not_ready = set(&["10.244.0.13"]);
    eventually(
        "the Endpoints list the ready and not-ready pods",
        WITHIN,
        || async {
            let ep = eps.get_opt("web").await.map_err(|e| e.to_string())?;
            let ep = ep.ok_or("no Endpoints yet")?;
            let got = addresses(&ep);
            if got
                == (
                    want_ready.clone(),
                    want_not_ready.clone(),
                    BTreeSet::from([8080]),
                )
            {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
    let ep = eps.get("web").await.unwrap();
    let subset = &ep.subsets.as_ref().unwrap()[0];
    let first = &subset.addresses.as_ref().unwrap()[0];
    assert_eq!(first.node_name.as_deref(), Some("node-a"));
    let target = first.target_ref.as_ref().unwrap();
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.name.as_deref(), Some("web-1"));
    assert_eq!(target.namespace.as_deref(), Some("default"));
    assert_eq!(
        target.uid.as_deref(),
        pods.get("web-1").await.unwrap().uid().as_deref()
    );

    let want_slice: BTreeSet<(String, bool)> = BTreeSet::from([
        ("10.244.0.11".to_owned(), true),
        ("10.244.0.12".to_owned(), true),
        ("10.244.0.13".to_owned(), false),
    ]);
    eventually(
        "the EndpointSlice holds the same addresses",
        WITHIN,
        || async {
            let got = slice_endpoints(&slices, "web").await?;
            (got == want_slice).then_some(()).ok_or(format!("{got:?}"))
        },
    )
    .await;
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let slice = &list.items[0];
    assert!(slice.name_any().starts_with("web-"), "{}", slice.name_any());
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice.labels()["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    let web_uid = svcs.get("web").await.unwrap().uid();
    assert_eq!(slice.owner_references()[0].uid, web_uid.unwrap());
    assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));

    // The real kubectl shows both.
    let table = kubectl(&kg, &["get", "endpoints", "web"]);
    assert!(table.contains("10.244.0.11:8080"), "{table}");
    assert!(table.contains("10.244.0.12:8080"), "{table}");
    assert!(!table.contains("10.244.0.13"), "{table}");
    let table = kubectl(&kg, &["get", "endpointslices"]);
    assert!(table.contains(&slice.name_any()), "{table}");
    let listed = kubectl_json(
        &kg,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
        ],
    );
    assert_eq!(listed["items"][0]["endpoints"].as_array().unwrap().len(), 3);

    // A pod that becomes ready moves over; a deleted pod leaves.
    set_status(&pods, "web-3", "10.244.0.13", true).await;
    pods.delete("web-1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let want_ready = set(&["10.244.0.12", "10.244.0.13"]);
    eventually("the Endpoints follow the pods", WITHIN, || async {
        let ep = eps.get("web").await.map_err(|e| e.to_string())?;
        let got = addresses(&ep);
        if got.0 == want_ready && got.1.is_empty() {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
    eventually("the slice follows the pods", WITHIN, || async {
        let got = slice_endpoints(&slices, "web").await?;
        let want = BTreeSet::from([
            ("10.244.0.12".to_owned(), true),
            ("10.244.0.13".to_owned(), true),
        ]);
        (got == want).then_some(()).ok_or(format!("{got:?}"))
    })
    .await;

    // A named targetPort resolves to the pods' container port.
    let named = service(
        "named",
        json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}),
    );
    svcs.create(&PostParams::default(), &named).await.unwrap();
    eventually("the named port is resolved", WITHIN, || async {
        let ep = eps.get_opt("named").await.map_err(|e| e.to_string())?;
        let got = addresses(&ep.ok_or("no Endpoints yet")?);
        (got.2 == BTreeSet::from([8080]) && got.0.len() == 2)
            .then_some(())
            .ok_or(format!("{got:?}"))
    })
    .await;

    // Deleting the Service removes its Endpoints and slices.
    kubectl(&kg, &["delete", "service", "web"]);
    eventually(
        "the Endpoints and slices go with the Service",
        WITHIN,
        || async {
            let ep = eps.get_opt("web").await.map_err(|e| e.to_string())?;
            let left = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .map_err(|e| e.to_string())?;
            (ep.is_none() && left.items.is_empty())
                .then_some(())
                .ok_or(format!(
                    "endpoints: {}, slices: {}",
                    ep.is_some(),
                    left.items.len()
                ))
        },
    )
    .await;
    // The other Service's are untouched.
    assert!(eps.get_opt("named").await.unwrap().is_some());
    controller.abort();
}

/// `kgate up --controllers=endpoints` runs the same controllers as system:kube-controller-manager
/// with the endpoint and endpointslice controller roles: enough for every request they make.
#[tokio::test(flavor = "multi_thread")]
async fn kgate_up_runs_the_controllers_under_their_own_roles() {
    let kg = Kgate::up_with(kgate_e2e::Options {
        gateway_args: vec!["--nodes=0".into(), "--controllers=endpoints".into()],
        ..kgate_e2e::Options::default()
    });
    let client = support::admin_client(&kg).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    kubectl(
        &kg,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    );
    make_pod(&pods, "web-1", "10.244.1.1", true).await;
    eventually("the Endpoints list the pod", WITHIN, || async {
        let ep = eps.get_opt("web").await.map_err(|e| e.to_string())?;
        let got = addresses(&ep.ok_or("no Endpoints yet")?);
        (got.0 == set(&["10.244.1.1"]))
            .then_some(())
            .ok_or(format!("{got:?}"))
    })
    .await;
    eventually("the slice lists the pod", WITHIN, || async {
        let got = slice_endpoints(&slices, "web").await?;
        (got.len() == 1).then_some(()).ok_or(format!("{got:?}"))
    })
    .await;
    kubectl(&kg, &["delete", "service", "web"]);
    eventually("the Endpoints go with the Service", WITHIN, || async {
        let ep = eps.get_opt("web").await.map_err(|e| e.to_string())?;
        ep.is_none().then_some(()).ok_or("still there".to_owned())
    })
    .await;
}
