//! The scheduler's decision for one pod (every filter, scoring, the pick) over 100 and 1,000
//! nodes, in memory with no API: the bound on how many pods per second the scheduler can place.
//!
//! `cargo bench -p kgate-cluster --bench scheduler`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use k8s_openapi::api::core::v1::{Node, Pod};
use kgate_cluster::scheduler::{schedule_one, Cache, PodInfo};
use serde_json::json;

fn node(i: usize) -> Node {
    let mut spec = json!({});
    if i % 10 == 9 {
        spec = json!({"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]});
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("node-{i:04}"),
            "labels": {"kubernetes.io/hostname": format!("node-{i:04}"),
                "zone": format!("zone-{}", i % 3), "disk": if i.is_multiple_of(2) { "ssd" } else { "hdd" }}},
        "spec": spec,
        "status": {"allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]}}))
    .expect("a node")
}

fn pod(name: &str, owner: &str, cpu: &str, memory: &str) -> PodInfo {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "bench", "uid": name,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                "uid": owner, "controller": true}]},
        "spec": {"containers": [{"name": "c",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 300}]}}))
    .expect("a pod");
    PodInfo::from_pod(&pod)
}

/// A cluster of `n` nodes, each running 10 pods of varied sizes from 20 workloads.
fn cluster(n: usize) -> Cache {
    let mut cache = Cache::new();
    for i in 0..n {
        cache.upsert_node(&node(i));
        for j in 0..10 {
            let p = pod(
                &format!("p-{i}-{j}"),
                &format!("rs-{}", (i + j) % 20),
                &format!("{}m", 100 + 50 * ((i * 7 + j) % 9)),
                &format!("{}Mi", 128 + 64 * ((i + j * 3) % 7)),
            );
            cache.assume(&p, &format!("node-{i:04}"));
        }
    }
    cache
}

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule_one");
    for n in [100usize, 1000] {
        let cache = cluster(n);
        let plain = pod("new", "rs-3", "250m", "256Mi");
        let mut selective = pod("sel", "rs-4", "250m", "256Mi");
        selective.node_selector = vec![("disk".to_owned(), "ssd".to_owned())];
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("pod", n), &n, |b, _| {
            let mut rr = 0;
            b.iter(|| black_box(schedule_one(&cache, black_box(&plain), &mut rr)));
        });
        group.bench_with_input(BenchmarkId::new("pod_with_node_selector", n), &n, |b, _| {
            let mut rr = 0;
            b.iter(|| black_box(schedule_one(&cache, black_box(&selective), &mut rr)));
        });
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
