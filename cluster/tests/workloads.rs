//! The ReplicaSet and Deployment controllers against a real kgate, driven by the real kubectl:
//! create, heal, scale, rolling update, rollout status|history|undo|restart|pause|resume, the
//! Recreate strategy, and a ReplicaSet's adoption, release and replacement of failed pods.
//!
//! There is no scheduler or node here: a tiny fake node in the test marks every new pod
//! Running and Ready through `pods/status`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod support;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kgate_e2e::Kgate;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};
use serde_json::json;
use support::{eventually, kubectl};

const WITHIN: Duration = Duration::from_secs(30);

/// `kubectl create deployment web --image=nginx --replicas=N`.
fn create_web(kg: &Kgate, replicas: u32) {
    kubectl(
        kg,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            &format!("--replicas={replicas}"),
        ],
    );
}

/// `kubectl rollout status deployment/web` (up to a minute); its output.
fn rollout_status(kg: &Kgate) -> String {
    kubectl(
        kg,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    )
}

/// An image the fake node never starts: its pods stay Pending.
const BROKEN: &str = "example.com/broken:1";

/// The node stand-in: every pending pod becomes Running and Ready (but those of [`BROKEN`]).
fn fake_node(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let all: Api<Pod> = Api::all(client.clone());
        let mut events = watcher(all, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        while let Some(event) = events.next().await {
            let Ok(pod) = event else { continue };
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            let broken = pod.spec.as_ref().is_some_and(|s| {
                s.containers
                    .iter()
                    .any(|c| c.image.as_deref() == Some(BROKEN))
            });
            if broken
                || pod.metadata.deletion_timestamp.is_some()
                || !matches!(phase.as_deref(), None | Some("Pending"))
            {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap());
            let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            );
            let status = json!({"status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            ]}});
            let _ = api
                .patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await;
        }
    })
}

/// The controllers' identity, as `kgate up` runs them.
const CONTROLLERS_USER: &str = "system:kube-controller-manager";

/// A client as the controllers' user, bound to nothing but Kubernetes' own roles of the two
/// controllers (so a request their roles do not allow fails the test).
async fn controllers_client(kg: &Kgate) -> Client {
    for role in ["replicaset-controller", "deployment-controller"] {
        let binding = format!("test:{role}");
        let exists = tokio::task::block_in_place(|| {
            kg.kubectl(&["get", "clusterrolebinding", &binding])
                .success()
        });
        if !exists {
            kubectl(
                kg,
                &[
                    "create",
                    "clusterrolebinding",
                    &binding,
                    &format!("--clusterrole=system:controller:{role}"),
                    &format!("--user={CONTROLLERS_USER}"),
                ],
            );
        }
    }
    // The roles are kube's: status is written with update, never patch.
    let can_patch = tokio::task::block_in_place(|| {
        kg.kubectl(&[
            "auth",
            "can-i",
            "patch",
            "deployments/status",
            &format!("--as={CONTROLLERS_USER}"),
        ])
    });
    assert_eq!(can_patch.stdout.trim(), "no", "{can_patch}");
    let path = tokio::task::block_in_place(|| kg.kubeconfig_for(CONTROLLERS_USER, &[], "24h"));
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A bare kgate with both controllers (as their own user) and the fake node running
/// in-process; the client is the admin's.
async fn cluster() -> (Kgate, Client, Vec<tokio::task::JoinHandle<()>>) {
    let kg = tokio::task::block_in_place(support::bare_kgate);
    let client = support::admin_client(&kg).await;
    let controllers = controllers_client(&kg).await;
    let tasks = vec![
        kgate_cluster::controllers::replicaset::spawn(controllers.clone()),
        kgate_cluster::controllers::deployment::spawn(controllers),
        fake_node(client.clone()),
    ];
    (kg, client, tasks)
}

fn stop(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.abort();
    }
}

/// The ReplicaSets the Deployment controls, by name.
async fn replicasets_of(client: &Client, deploy: &str) -> Vec<ReplicaSet> {
    let d: Deployment = Api::namespaced(client.clone(), "default")
        .get(deploy)
        .await
        .unwrap();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut list: Vec<ReplicaSet> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == d.metadata.uid.as_ref())
        })
        .collect();
    list.sort_by_key(ResourceExt::name_any);
    list
}

/// The active pods the ReplicaSet controls.
async fn pods_of(client: &Client, rs: &ReplicaSet) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| {
            let owned = p.owner_references().iter().any(|r| {
                r.controller == Some(true)
                    && r.block_owner_deletion == Some(true)
                    && r.kind == "ReplicaSet"
                    && Some(&r.uid) == rs.metadata.uid.as_ref()
            });
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            owned
                && p.metadata.deletion_timestamp.is_none()
                && !matches!(phase, Some("Failed" | "Succeeded"))
        })
        .collect()
}

fn revision(rs: &ReplicaSet) -> String {
    rs.annotations()
        .get("deployment.kubernetes.io/revision")
        .cloned()
        .unwrap_or_default()
}

fn image(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap_or_default()
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// Waits until the Deployment has exactly one ReplicaSet with replicas (`image`, `count` pods
/// all Running) and the others at zero; returns (the active set, all sets).
async fn settled(client: &Client, image_want: &str, count: usize) -> (ReplicaSet, Vec<ReplicaSet>) {
    eventually(
        &format!("web settles on {count} pods of {image_want}"),
        WITHIN,
        || async {
            let all = replicasets_of(client, "web").await;
            let active: Vec<&ReplicaSet> = all.iter().filter(|rs| replicas(rs) > 0).collect();
            let [rs] = active.as_slice() else {
                return Err(format!("{} active replica sets", active.len()));
            };
            if image(rs) != image_want {
                return Err(format!("active set runs {}", image(rs)));
            }
            let mut pods = Vec::new();
            for set in &all {
                pods.extend(pods_of(client, set).await);
            }
            let running = pods
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            if pods.len() != count || running != count {
                return Err(format!("{} pods, {running} running", pods.len()));
            }
            Ok(((*rs).clone(), all.clone()))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_heal_and_scale_with_kubectl() {
    let (kg, client, tasks) = cluster().await;
    create_web(&kg, 3);
    let (rs, all) = settled(&client, "nginx", 3).await;
    assert_eq!(all.len(), 1);
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(revision(&rs), "1");
    assert_eq!(
        rs.spec
            .as_ref()
            .unwrap()
            .selector
            .match_labels
            .as_ref()
            .unwrap()["pod-template-hash"],
        hash
    );
    let pods = pods_of(&client, &rs).await;
    assert!(pods.iter().all(|p| p.labels()["pod-template-hash"] == hash
        && p.name_any().starts_with(&format!("web-{hash}-"))));

    // A deleted pod is replaced.
    let victim = pods[0].name_any();
    kubectl(&kg, &["delete", "pod", &victim, "--wait=false"]);
    eventually("a replacement pod", WITHIN, || async {
        let pods = pods_of(&client, &rs).await;
        let names: Vec<String> = pods.iter().map(ResourceExt::name_any).collect();
        (pods.len() == 3 && !names.contains(&victim))
            .then_some(())
            .ok_or(format!("{names:?}"))
    })
    .await;

    // Restarted controllers find the same ReplicaSet (the hash is stable).
    let mut tasks = tasks;
    for t in tasks.drain(..2) {
        t.abort();
    }
    let controllers = controllers_client(&kg).await;
    tasks.push(kgate_cluster::controllers::replicaset::spawn(
        controllers.clone(),
    ));
    tasks.push(kgate_cluster::controllers::deployment::spawn(controllers));

    // kubectl scale, both ways, through the scale subresource.
    kubectl(&kg, &["scale", "deployment", "web", "--replicas=5"]);
    let (rs5, _) = settled(&client, "nginx", 5).await;
    assert_eq!(rs5.name_any(), rs.name_any());
    kubectl(&kg, &["scale", "deployment", "web", "--replicas=2"]);
    settled(&client, "nginx", 2).await;
    let out = rollout_status(&kg);
    assert!(out.contains("successfully rolled out"), "{out}");
    let d: Deployment = Api::namespaced(client.clone(), "default")
        .get("web")
        .await
        .unwrap();
    let status = d.status.unwrap();
    assert_eq!(
        (
            status.replicas,
            status.updated_replicas,
            status.ready_replicas,
            status.available_replicas
        ),
        (Some(2), Some(2), Some(2), Some(2))
    );
    assert_eq!(status.observed_generation, d.metadata.generation);
    let cond = |t: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t)
            .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
    };
    assert_eq!(
        cond("Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    assert_eq!(
        cond("Progressing"),
        Some(("True".into(), "NewReplicaSetAvailable".into()))
    );
    let rs_status = kubectl(&kg, &["get", "rs", &rs.name_any(), "-o", "jsonpath={.status.readyReplicas}/{.status.availableReplicas}/{.status.fullyLabeledReplicas}"]);
    assert_eq!(rs_status.trim(), "2/2/2");
    assert_eq!(replicasets_of(&client, "web").await.len(), 1);

    // Down to zero: no pod, and the counts are gone from the status, as kube omits them.
    kubectl(&kg, &["scale", "deployment", "web", "--replicas=0"]);
    eventually("web has no pod", WITHIN, || async {
        let pods = pods_of(&client, &rs).await;
        let d: Deployment = Api::namespaced(client.clone(), "default")
            .get("web")
            .await
            .unwrap();
        let s = d.status.clone().unwrap_or_default();
        (pods.is_empty()
            && s.observed_generation == d.metadata.generation
            && (s.replicas, s.available_replicas, s.updated_replicas) == (None, None, None))
            .then_some(())
            .ok_or(format!("{} pods, {s:?}", pods.len()))
    })
    .await;
    let out = rollout_status(&kg);
    assert!(out.contains("successfully rolled out"), "{out}");
    let describe = kubectl(&kg, &["describe", "rs", &rs.name_any()]);
    assert!(describe.contains("Created pod: "), "{describe}");
    assert!(describe.contains("Deleted pod: "), "{describe}");
    stop(tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollouts_with_kubectl() {
    let (kg, client, tasks) = cluster().await;
    create_web(&kg, 3);
    let (first, _) = settled(&client, "nginx", 3).await;

    // A new template rolls to a new ReplicaSet, revision 2, with the change cause.
    kubectl(
        &kg,
        &[
            "annotate",
            "deployment",
            "web",
            "kubernetes.io/change-cause=to 1.27",
        ],
    );
    kubectl(&kg, &["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    let out = rollout_status(&kg);
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
    let (second, all) = settled(&client, "nginx:1.27", 3).await;
    assert_ne!(second.name_any(), first.name_any());
    assert_eq!(revision(&second), "2");
    assert_eq!(all.len(), 2);

    let history = kubectl(&kg, &["rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["1", "2"], "{history}");
    assert!(
        history
            .lines()
            .any(|l| l.starts_with('2') && l.contains("to 1.27")),
        "{history}"
    );
    let second_rev = kubectl(
        &kg,
        &["rollout", "history", "deployment/web", "--revision=2"],
    );
    assert!(second_rev.contains("nginx:1.27"), "{second_rev}");

    // Undo returns to the first template: its ReplicaSet, as revision 3.
    let out = kubectl(&kg, &["rollout", "undo", "deployment/web"]);
    assert!(out.contains("rolled back"), "{out}");
    rollout_status(&kg);
    let (back, all) = settled(&client, "nginx", 3).await;
    assert_eq!(back.name_any(), first.name_any());
    assert_eq!(revision(&back), "3");
    assert_eq!(
        back.annotations()
            .get("deployment.kubernetes.io/revision-history")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(all.len(), 2);
    let history = kubectl(&kg, &["rollout", "history", "deployment/web"]);
    assert!(history.lines().any(|l| l.starts_with('3')), "{history}");
    assert!(!history.lines().any(|l| l.starts_with('1')), "{history}");

    // Restart: a new template annotation, so a new ReplicaSet.
    kubectl(&kg, &["rollout", "restart", "deployment/web"]);
    rollout_status(&kg);
    let (restarted, all) = settled(&client, "nginx", 3).await;
    assert_ne!(restarted.name_any(), first.name_any());
    assert_eq!(revision(&restarted), "4");
    assert!(restarted
        .spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()
        .contains_key("kubectl.kubernetes.io/restartedAt"));
    assert_eq!(all.len(), 3);

    // Paused: a template change makes no new ReplicaSet until resumed.
    kubectl(&kg, &["rollout", "pause", "deployment/web"]);
    kubectl(&kg, &["set", "image", "deployment/web", "nginx=nginx:1.28"]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    eventually("the paused deployment is observed", WITHIN, || async {
        let d = deployments.get("web").await.unwrap();
        let status = d.status.clone().unwrap_or_default();
        let reason = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Progressing")
            .and_then(|c| c.reason.clone());
        (status.observed_generation == d.metadata.generation
            && reason.as_deref() == Some("DeploymentPaused"))
        .then_some(())
        .ok_or(format!("{status:?}"))
    })
    .await;
    assert_eq!(replicasets_of(&client, "web").await.len(), 3);
    // Scaling still applies while paused, to the current set.
    kubectl(&kg, &["scale", "deployment", "web", "--replicas=4"]);
    let (scaled, _) = settled(&client, "nginx", 4).await;
    assert_eq!(scaled.name_any(), restarted.name_any());
    kubectl(&kg, &["rollout", "resume", "deployment/web"]);
    rollout_status(&kg);
    let (resumed, _) = settled(&client, "nginx:1.28", 4).await;
    assert_eq!(revision(&resumed), "5");
    let describe = kubectl(&kg, &["describe", "deployment", "web"]);
    assert!(
        describe.contains(&format!(
            "NewReplicaSet:   {} (4/4 replicas created)",
            resumed.name_any()
        )),
        "{describe}"
    );
    assert!(describe.contains("Scaled up replica set"), "{describe}");

    // revisionHistoryLimit prunes old sets at zero, lowest revision first.
    kubectl(
        &kg,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"revisionHistoryLimit":1}}"#,
        ],
    );
    eventually("old replica sets are pruned to one", WITHIN, || async {
        let all = replicasets_of(&client, "web").await;
        let mut revisions: Vec<String> = all.iter().map(revision).collect();
        revisions.sort();
        (revisions == ["4", "5"])
            .then_some(())
            .ok_or(format!("{revisions:?}"))
    })
    .await;
    stop(tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recreate_scales_old_to_zero_before_the_new() {
    let (kg, client, tasks) = cluster().await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let (first, _) = settled(&client, "nginx", 2).await;
    kubectl(&kg, &["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    rollout_status(&kg);
    let (second, all) = settled(&client, "nginx:1.27", 2).await;
    assert_ne!(first.name_any(), second.name_any());
    assert_eq!(all.len(), 2);
    // The old set went to zero before the new one was scaled up.
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut scaling: Vec<(u64, String)> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet"))
        .map(|e| {
            let rv = e.metadata.resource_version.clone().unwrap_or_default();
            (rv.parse().unwrap_or(0), e.message.unwrap_or_default())
        })
        .collect();
    scaling.sort();
    let messages: Vec<String> = scaling.into_iter().map(|(_, m)| m).collect();
    let down = format!("Scaled down replica set {} from 2 to 0", first.name_any());
    let up = format!("Scaled up replica set {} from 0 to 2", second.name_any());
    let at = |m: &str| messages.iter().position(|x| x == m);
    assert!(
        matches!((at(&down), at(&up)), (Some(d), Some(u)) if d < u),
        "{messages:#?}"
    );
    stop(tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicaset_adopts_releases_and_replaces_failed_pods() {
    let (_kg, client, tasks) = cluster().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "postgres"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "postgres"}]}}},
    }))
    .unwrap();
    let rs = sets.create(&PostParams::default(), &rs).await.unwrap();
    let owned = eventually(
        "the orphan is adopted and one pod added",
        WITHIN,
        || async {
            let owned = pods_of(&client, &rs).await;
            let names: Vec<String> = owned.iter().map(ResourceExt::name_any).collect();
            (owned.len() == 2 && names.contains(&"orphan".to_owned()))
                .then_some(owned)
                .ok_or(format!("{names:?}"))
        },
    )
    .await;
    let created = owned.iter().find(|p| p.name_any() != "orphan").unwrap();
    assert!(created.name_any().starts_with("db-"));

    // A pod that stops matching is released and replaced.
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    eventually(
        "the relabeled pod is released and replaced",
        WITHIN,
        || async {
            let released = pods.get("orphan").await.unwrap();
            let owned = pods_of(&client, &rs).await;
            (released.owner_references().is_empty() && owned.len() == 2)
                .then_some(())
                .ok_or(format!("{} owned", owned.len()))
        },
    )
    .await;

    // A Failed pod no longer counts.
    let failed = pods_of(&client, &rs).await[0].name_any();
    pods.patch_status(
        &failed,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Failed"}})),
    )
    .await
    .unwrap();
    eventually(
        "the failed pod is replaced and the status reports it",
        WITHIN,
        || async {
            let owned = pods_of(&client, &rs).await;
            let status = sets.get("db").await.unwrap().status.unwrap_or_default();
            let names: Vec<String> = owned.iter().map(ResourceExt::name_any).collect();
            (owned.len() == 2
                && !names.contains(&failed)
                && status.replicas == 2
                && status.ready_replicas == Some(2)
                && status.available_replicas == Some(2)
                && status.observed_generation == Some(1))
            .then_some(())
            .ok_or(format!("{names:?} {status:?}"))
        },
    )
    .await;

    // Scaled to zero through the scale subresource, every pod goes.
    sets.patch_scale(
        "db",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 0}})),
    )
    .await
    .unwrap();
    eventually("no pod is left", WITHIN, || async {
        let owned = pods_of(&client, &rs).await;
        let status = sets.get("db").await.unwrap().status.unwrap_or_default();
        (owned.is_empty() && status.replicas == 0 && status.observed_generation == Some(2))
            .then_some(())
            .ok_or(format!("{} owned, {status:?}", owned.len()))
    })
    .await;
    stop(tasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_rollout_is_bounded_and_scales_proportionally() {
    let (kg, client, tasks) = cluster().await;
    create_web(&kg, 10);
    let (old, _) = settled(&client, "nginx", 10).await;
    // kube's documented example: maxSurge 3, maxUnavailable 2.
    kubectl(
        &kg,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":3,"maxUnavailable":2}}}}"#,
        ],
    );
    let broken = format!("nginx={BROKEN}");
    kubectl(&kg, &["set", "image", "deployment/web", &broken]);
    // The new pods never get ready, so the rollout stops at 13 pods (10 + 3 surge) with 8
    // available (10 - 2): old 8, new 5.
    let sizes = |all: &[ReplicaSet]| {
        let mut v: Vec<(String, i32)> = all.iter().map(|rs| (image(rs), replicas(rs))).collect();
        v.sort();
        v
    };
    let want = |o: i32, n: i32| vec![(BROKEN.to_owned(), n), ("nginx".to_owned(), o)];
    eventually(
        "the rollout stops within surge and unavailability",
        WITHIN,
        || async {
            let all = replicasets_of(&client, "web").await;
            (sizes(&all) == want(8, 5))
                .then_some(())
                .ok_or(format!("{:?}", sizes(&all)))
        },
    )
    .await;
    let out = tokio::task::block_in_place(|| {
        kg.kubectl(&["rollout", "status", "deployment/web", "--timeout=2s"])
    });
    assert!(!out.success(), "{out}");
    assert!(
        out.stdout
            .contains("5 out of 10 new replicas have been updated"),
        "{out}"
    );
    // Scaling to 15 (+3 surge = 18) spreads the 5 new replicas by the sets' sizes: the old set
    // gets round(8*18/13)-8 = 3, the new one round(5*18/13)-5 = 2 (kube's documented 11/7).
    kubectl(&kg, &["scale", "deployment", "web", "--replicas=15"]);
    eventually("replicas are added proportionally", WITHIN, || async {
        let all = replicasets_of(&client, "web").await;
        (sizes(&all) == want(11, 7))
            .then_some(())
            .ok_or(format!("{:?}", sizes(&all)))
    })
    .await;
    // Undo to the working template: the old set takes everything back.
    kubectl(&kg, &["rollout", "undo", "deployment/web"]);
    let (back, _) = settled(&client, "nginx", 15).await;
    assert_eq!(back.name_any(), old.name_any());
    stop(tasks);
}
