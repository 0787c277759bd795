//! The cluster scenario, shared by `tests/cluster.rs` (kgate's own scheduler and controllers)
//! and `tests/real_components.rs` (the real kube-scheduler and kube-controller-manager against
//! `kgate up --controllers nodes`), with the checks of pods and nodes it is made of (generic
//! over the server, for the reference's `kgate nodes` test too).

use crate::{poll, run_bounded, ApiServer, Kgate};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

pub const CONVERGE: Duration = Duration::from_secs(60);

pub fn json(kg: &dyn ApiServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kg.kubectl_ok(&all)).expect("kubectl printed JSON")
}

/// `kgate node ...` against this server.
pub fn kgate_node(kg: &dyn ApiServer, args: &[&str]) -> String {
    let mut cmd = Command::new(crate::kgate_bin());
    cmd.arg("node")
        .args(args)
        .arg("--kubeconfig")
        .arg(kg.admin_kubeconfig());
    run_bounded(cmd, None, Duration::from_secs(30))
        .ok()
        .to_owned()
}

/// The pod's spec has the token volume the ServiceAccount admission adds, and its node wrote the
/// token that volume projects (0600, bound to the pod) into its state folder, under the node's
/// own identity (which may not read ServiceAccounts, as kube's system:node role).
pub fn pod_token_is_mounted(kg: &Kgate, name: &str) {
    use base64::Engine as _;
    use std::os::unix::fs::PermissionsExt as _;
    let pod = json(kg, &["get", "pod", name]);
    assert_eq!(pod["spec"]["serviceAccountName"], "default", "{pod}");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("kube-api-access-"))
        })
        .unwrap_or_else(|| panic!("no token volume: {pod}"));
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "token"
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let file = kg
        .data_dir()
        .join("nodes")
        .join(node)
        .join("pods")
        .join(format!("default_{name}_{uid}"))
        .join("token");
    let token = poll("the pod's token file", CONVERGE, || {
        std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))
    });
    let mode = std::fs::metadata(&file).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let part = |i: usize| -> Value {
        let encoded = token.split('.').nth(i).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| panic!("the token file holds no JWT"))
    };
    assert_eq!(part(0)["alg"], "ES256");
    let claims = part(1);
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], uid);
}

/// The pod got the not-ready and unreachable tolerations the DefaultTolerationSeconds admission
/// adds (kube's 300 s, and the 2 s of this test's flag), shown by `kubectl describe`.
pub fn default_tolerations_are_added(kg: &dyn ApiServer, name: &str) {
    let pod = json(kg, &["get", "pod", name]);
    let seconds = |key: &str| {
        pod["spec"]["tolerations"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["key"] == key && t["effect"] == "NoExecute" && t["operator"] == "Exists")
            .map(|t| t["tolerationSeconds"].clone())
    };
    assert_eq!(
        seconds("node.kubernetes.io/not-ready"),
        Some(300.into()),
        "{pod}"
    );
    assert_eq!(
        seconds("node.kubernetes.io/unreachable"),
        Some(2.into()),
        "{pod}"
    );
    let described = kg.kubectl_ok(&["describe", "pod", name]);
    assert!(
        described.contains("node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"),
        "{described}"
    );
}

/// The pods of namespace `ns` matching `selector`: name to (phase, node, pod IP, ready).
pub fn pods(
    kg: &dyn ApiServer,
    ns: &str,
    selector: &str,
) -> BTreeMap<String, (String, String, String, bool)> {
    let list = json(kg, &["get", "pods", "-n", ns, "-l", selector]);
    let mut out = BTreeMap::new();
    for pod in list["items"].as_array().into_iter().flatten() {
        if pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        out.insert(
            pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            (
                pod["status"]["phase"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                pod["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                pod["status"]["podIP"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                ready,
            ),
        );
    }
    out
}

/// Waits until exactly `count` pods match and all are Running and Ready; returns them.
pub fn running(
    kg: &dyn ApiServer,
    ns: &str,
    selector: &str,
    count: usize,
) -> BTreeMap<String, (String, String, String, bool)> {
    poll(
        &format!("{count} Running pods for {selector}"),
        CONVERGE,
        || {
            let pods = pods(kg, ns, selector);
            let all_running = pods.values().all(|(phase, node, ip, ready)| {
                phase == "Running" && !node.is_empty() && !ip.is_empty() && *ready
            });
            if pods.len() == count && all_running {
                Ok(pods)
            } else {
                Err(format!("{pods:#?}"))
            }
        },
    )
}

pub fn per_node(
    pods: &BTreeMap<String, (String, String, String, bool)>,
) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (_, node, _, _) in pods.values() {
        *counts.entry(node.clone()).or_insert(0) += 1;
    }
    counts
}

pub fn ready_nodes(kg: &dyn ApiServer) -> Vec<String> {
    let nodes = json(kg, &["get", "nodes"]);
    nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|n| n["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// Three Ready nodes; a Deployment of 6 ends as Running pods spread 2 per node, heals a deleted
/// pod (whose token and default tolerations are checked), scales both ways, gets a Service
/// whose Endpoints are its ready pods, comes back elsewhere when a node stops, and is deleted
/// with its ReplicaSets and pods. Needs the pods' unreachable toleration at 2 s
/// (`--default-unreachable-toleration-seconds=2`).
pub fn deployment_heals_scales_serves_and_survives_a_node(kg: &Kgate) {
    let nodes = poll("3 Ready nodes", CONVERGE, || {
        let ready = ready_nodes(kg);
        if ready.len() == 3 {
            Ok(ready)
        } else {
            Err(format!("{ready:?}"))
        }
    });
    assert_eq!(nodes, ["kgate-node-1", "kgate-node-2", "kgate-node-3"]);
    let table = kg.kubectl_ok(&["get", "nodes"]);
    assert!(table.contains("Ready"), "{table}");

    kg.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=6",
    ]);
    let web = running(kg, "default", "app=web", 6);
    assert_eq!(
        per_node(&web).values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "spread by load: {web:#?}"
    );

    // A deleted pod is replaced.
    let victim = web.keys().next().cloned().unwrap_or_default();
    kg.kubectl_ok(&["delete", "pod", &victim, "--wait=false"]);
    let healed = running(kg, "default", "app=web", 6);
    assert!(!healed.contains_key(&victim), "{healed:#?}");
    pod_token_is_mounted(kg, healed.keys().next().map_or("", String::as_str));
    default_tolerations_are_added(kg, healed.keys().next().map_or("", String::as_str));

    // Scale both ways.
    kg.kubectl_ok(&["scale", "deployment", "web", "--replicas=8"]);
    running(kg, "default", "app=web", 8);
    kg.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"]);
    running(kg, "default", "app=web", 3);

    // A Service gets a ClusterIP; its Endpoints list exactly the ready pods' IPs.
    kg.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
    let service = json(kg, &["get", "service", "web"]);
    let ip = service["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        ip.starts_with("10.9") || ip.starts_with("10.1"),
        "{service}"
    );
    poll("Endpoints of the ready pods", CONVERGE, || {
        let mut want: Vec<String> = running(kg, "default", "app=web", 3)
            .values()
            .map(|(_, _, ip, _)| ip.clone())
            .collect();
        want.sort();
        let endpoints = json(kg, &["get", "endpoints", "web"]);
        let mut got: Vec<String> = endpoints["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["ip"].as_str().map(str::to_owned))
            .collect();
        got.sort();
        if got == want {
            Ok(())
        } else {
            Err(format!("endpoints {got:?}, pods {want:?}"))
        }
    });

    // A stopped node goes NotReady; its pods come back on the others.
    let before = running(kg, "default", "app=web", 3);
    let stopped = before
        .values()
        .next()
        .map(|p| p.1.clone())
        .unwrap_or_default();
    kgate_node(kg, &["stop", &stopped]);
    poll("the stopped node NotReady", CONVERGE, || {
        let table = kg.kubectl_ok(&["get", "node", &stopped]);
        if table.contains("NotReady") {
            Ok(())
        } else {
            Err(table)
        }
    });
    poll("the pods rescheduled elsewhere", CONVERGE, || {
        let pods = running(kg, "default", "app=web", 3);
        if pods.values().all(|p| p.1 != stopped) {
            Ok(())
        } else {
            Err(format!("{pods:#?}"))
        }
    });
    kgate_node(kg, &["start", &stopped]);
    poll("the node Ready again", CONVERGE, || {
        if ready_nodes(kg).contains(&stopped) {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    });

    // Deleting the Deployment removes its ReplicaSets and pods.
    kg.kubectl_ok(&["delete", "deployment", "web"]);
    poll("ReplicaSets and pods gone", CONVERGE, || {
        let rs = json(kg, &["get", "replicasets", "-l", "app=web"]);
        let pods = pods(kg, "default", "app=web");
        if rs["items"].as_array().is_some_and(Vec::is_empty) && pods.is_empty() {
            Ok(())
        } else {
            Err(format!("{rs}\n{pods:#?}"))
        }
    });
}

/// A rollout, its history and undo; deleting a namespace empties and removes it.
pub fn rollout_undo_and_namespace_deletion(kg: &Kgate) {
    kg.kubectl_ok(&["create", "namespace", "shop"]);
    kg.kubectl_ok(&[
        "create",
        "deployment",
        "api",
        "-n",
        "shop",
        "--image=nginx:1.26",
        "--replicas=2",
    ]);
    running(kg, "shop", "app=api", 2);
    kg.kubectl_ok(&[
        "set",
        "image",
        "-n",
        "shop",
        "deployment/api",
        "nginx=nginx:1.27",
    ]);
    kg.kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        "shop",
        "deployment/api",
        "--timeout=60s",
    ]);
    let history = kg.kubectl_ok(&["rollout", "history", "-n", "shop", "deployment/api"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    kg.kubectl_ok(&["rollout", "undo", "-n", "shop", "deployment/api"]);
    kg.kubectl_ok(&[
        "rollout",
        "status",
        "-n",
        "shop",
        "deployment/api",
        "--timeout=60s",
    ]);
    let deployment = json(kg, &["get", "deployment", "api", "-n", "shop"]);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    running(kg, "shop", "app=api", 2);

    kg.kubectl_ok(&["delete", "namespace", "shop", "--wait=false"]);
    poll("the namespace emptied and removed", CONVERGE, || {
        let run = kg.kubectl(&["get", "namespace", "shop"]);
        if !run.success() && run.stderr.contains("NotFound") {
            Ok(())
        } else {
            Err(format!("{run}"))
        }
    });
}

/// Scheduling on four nodes added with `kgate node add` (the server started with none): by
/// load, nodeSelector and taints; a pod too big for every node is Pending and `kubectl describe`
/// says why for each node, until a node that fits arrives.
pub fn scheduling_follows_load_selectors_and_taints(kg: &Kgate) {
    for (name, extra) in [
        ("busy", vec!["--cpu", "10"]),
        ("idle", vec!["--cpu", "10"]),
        ("ssd", vec!["--cpu", "10", "--label", "disk=ssd"]),
        (
            "tainted",
            vec!["--cpu", "10", "--taint", "dedicated=gpu:NoSchedule"],
        ),
    ] {
        let mut args = vec!["add", name];
        args.extend(extra);
        kgate_node(kg, &args);
    }
    poll("4 Ready nodes", CONVERGE, || {
        let ready = ready_nodes(kg);
        if ready.len() == 4 {
            Ok(())
        } else {
            Err(format!("{ready:?}"))
        }
    });
    let pod = |name: &str, cpu: &str, extra: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"test":"sched"}}}},
               "spec":{{{extra}"containers":[{{"name":"c","image":"nginx",
               "resources":{{"requests":{{"cpu":"{cpu}"}}}}}}]}}}}"#
        )
    };
    let create = |manifest: String| {
        let path = kg.write_file("pod.json", &manifest);
        kg.kubectl_ok(&["create", "-f", &path.display().to_string()]);
    };
    let node_of = |name: &str| {
        poll(&format!("{name} scheduled"), CONVERGE, || {
            let pod = json(kg, &["get", "pod", name]);
            pod["spec"]["nodeName"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| pod.to_string())
        })
    };
    // busy at 90%, idle at 30%, ssd at 50%: the next pod goes to idle.
    create(pod(
        "fill-busy",
        "9",
        r#""nodeSelector":{"kubernetes.io/hostname":"busy"},"#,
    ));
    create(pod(
        "fill-idle",
        "3",
        r#""nodeSelector":{"kubernetes.io/hostname":"idle"},"#,
    ));
    create(pod(
        "fill-ssd",
        "5",
        r#""nodeSelector":{"kubernetes.io/hostname":"ssd"},"#,
    ));
    assert_eq!(node_of("fill-busy"), "busy");
    assert_eq!(node_of("fill-idle"), "idle");
    assert_eq!(node_of("fill-ssd"), "ssd");
    create(pod("next", "1", ""));
    assert_eq!(node_of("next"), "idle", "the least loaded node (30%) wins");

    // nodeSelector; a taint is avoided unless tolerated.
    create(pod("wants-ssd", "1", r#""nodeSelector":{"disk":"ssd"},"#));
    assert_eq!(node_of("wants-ssd"), "ssd");
    create(pod(
        "gpu-job",
        "1",
        r#""nodeSelector":{"kubernetes.io/hostname":"tainted"},"tolerations":[{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}],"#,
    ));
    assert_eq!(node_of("gpu-job"), "tainted");

    // Too big for every node: Pending, and describe says why for every node.
    create(pod("huge", "32", ""));
    let described = poll("FailedScheduling in describe", CONVERGE, || {
        let text = kg.kubectl_ok(&["describe", "pod", "huge"]);
        if text.contains("FailedScheduling") {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert!(described.contains("0/4 nodes are available"), "{described}");
    assert!(described.contains("Insufficient cpu"), "{described}");
    assert!(described.contains("untolerated taint"), "{described}");
    assert_eq!(
        json(kg, &["get", "pod", "huge"])["status"]["phase"],
        "Pending"
    );

    // A node that fits arrives: the pod is scheduled.
    kgate_node(kg, &["add", "big", "--cpu", "64"]);
    assert_eq!(node_of("huge"), "big");
}
