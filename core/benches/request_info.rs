//! How long the request-info stage takes for the paths kubectl sends most.

use criterion::{criterion_group, criterion_main, Criterion};
use kgate_core::RequestInfo;
use std::hint::black_box;

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_info");
    for (name, method, path, query) in [
        (
            "get_pod",
            "GET",
            "/api/v1/namespaces/default/pods/web-1",
            None,
        ),
        (
            "list_pods",
            "GET",
            "/api/v1/namespaces/default/pods",
            Some("limit=500"),
        ),
        (
            "watch_deployments",
            "GET",
            "/apis/apps/v1/namespaces/default/deployments",
            Some("watch=true&resourceVersion=10"),
        ),
        ("non_resource", "GET", "/version", None),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| RequestInfo::parse(black_box(method), black_box(path), black_box(query)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
