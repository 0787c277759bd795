//! The cluster runs, end to end with the real kubectl: `kgate up` starts simulated nodes, the
//! scheduler and the controllers, so a Deployment ends as Running pods spread over Ready nodes;
//! scheduling follows load, nodeSelector and taints, and says why a pod cannot be placed;
//! controllers heal, roll out and roll back; a stopped node's pods come back elsewhere;
//! Services get a ClusterIP and Endpoints; deletions cascade.

use kgate_e2e::cluster_flows::{self, json, kgate_node, ready_nodes, CONVERGE};
use kgate_e2e::{poll, Kgate, Options};

fn kgate(extra: &[&str]) -> Kgate {
    Kgate::up_with(Options {
        gateway_args: extra.iter().map(|a| (*a).to_owned()).collect(),
        ..Options::default()
    })
}

#[test]
fn a_deployment_ends_as_running_pods_spread_over_ready_nodes_and_heals() {
    // ES256 signing keys here: the pods' tokens show which key signed them.
    let kg = kgate(&[
        "--node-monitor-grace-period=5s",
        "--service-account-signing-algorithm=ES256",
        // Pods stay 2 s on a lost node (kube's default is 300 s), so the scenario sees
        // them come back elsewhere soon.
        "--default-unreachable-toleration-seconds=2",
    ]);
    cluster_flows::deployment_heals_scales_serves_and_survives_a_node(&kg);
}

#[test]
fn rollouts_undo_and_namespace_deletion() {
    let kg = kgate(&[]);
    cluster_flows::rollout_undo_and_namespace_deletion(&kg);
}

#[test]
fn scheduling_follows_load_selectors_and_taints_and_says_why_it_cannot() {
    let kg = kgate(&["--nodes=0"]);
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
        kgate_node(&kg, &args);
    }
    poll("4 Ready nodes", CONVERGE, || {
        let ready = ready_nodes(&kg);
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
            let pod = json(&kg, &["get", "pod", name]);
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
        json(&kg, &["get", "pod", "huge"])["status"]["phase"],
        "Pending"
    );

    // A node that fits arrives: the pod is scheduled.
    kgate_node(&kg, &["add", "big", "--cpu", "64"]);
    assert_eq!(node_of("huge"), "big");
}
