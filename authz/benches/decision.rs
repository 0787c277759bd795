//! How long one RBAC decision takes, kgate's indexed evaluator beside a port of Kubernetes'
//! linear scan (`support/kube_scan.rs`), at 100 to 100,000 bindings (`support/workload.rs`:
//! half ClusterRoleBindings, half RoleBindings over 100 namespaces, each naming its own user):
//! an allow ("get pods" by a user bound to `view` in its namespace) and a deny ("delete pods"
//! by the same user, which `view` lacks); and at 10,000 the other shape, RoleBindings only,
//! where the scan walks one namespace's share. Then the time to apply one binding update (a
//! watch event: parse, compile, re-index) to an authorizer holding 10,000 bindings.

#[path = "support/kube_scan.rs"]
mod kube_scan;
#[path = "support/workload.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kgate_authz::RbacAuthorizer;
use kgate_core::authz::Authorizer;
use serde_json::Value;
use std::hint::black_box;
use std::time::Duration;

fn indexed(n: usize) -> RbacAuthorizer {
    let rbac = RbacAuthorizer::new();
    for o in workload::bootstrap_objects()
        .iter()
        .chain(&workload::bindings(n))
    {
        rbac.upsert(o).expect("workload object");
    }
    rbac
}

fn decision(c: &mut Criterion) {
    compare(
        c,
        "rbac_decision",
        &[100, 1_000, 10_000, 100_000],
        workload::bindings,
    );
    compare(
        c,
        "rbac_decision_role_bindings_only",
        &[10_000],
        workload::role_bindings_only,
    );
}

/// Both evaluators, allow and deny, at each size of a workload.
fn compare(c: &mut Criterion, name: &str, sizes: &[usize], bindings: fn(usize) -> Vec<Value>) {
    let mut group = c.benchmark_group(name);
    for &n in sizes {
        let objects: Vec<_> = workload::bootstrap_objects()
            .into_iter()
            .chain(bindings(n))
            .collect();
        let rbac = RbacAuthorizer::new();
        for o in &objects {
            rbac.upsert(o).expect("workload object");
        }
        let scan = kube_scan::KubeScan::new(&objects);
        drop(objects);
        let i = workload::subject_index(n);
        let allow = workload::request("get", i);
        let deny = workload::request("delete", i);
        // Both evaluators agree, reasons included.
        assert!(rbac.authorize(&allow).is_allow());
        assert_eq!(rbac.authorize(&allow), scan.authorize(&allow));
        assert_eq!(rbac.authorize(&deny), scan.authorize(&deny));
        assert!(!rbac.authorize(&deny).is_allow());

        group.sample_size(100);
        group.bench_with_input(BenchmarkId::new("indexed_allow", n), &allow, |b, a| {
            b.iter(|| rbac.authorize(black_box(a)))
        });
        group.bench_with_input(BenchmarkId::new("indexed_deny", n), &deny, |b, a| {
            b.iter(|| rbac.authorize(black_box(a)))
        });
        // The scan at 100,000 takes milliseconds a decision: fewer samples keep the run short.
        group.sample_size(if n >= 100_000 { 20 } else { 100 });
        group.bench_with_input(BenchmarkId::new("scan_allow", n), &allow, |b, a| {
            b.iter(|| scan.authorize(black_box(a)))
        });
        group.bench_with_input(BenchmarkId::new("scan_deny", n), &deny, |b, a| {
            b.iter(|| scan.authorize(black_box(a)))
        });
    }
    group.finish();
}

fn update(c: &mut Criterion) {
    let n = 10_000;
    let rbac = indexed(n);
    let mut group = c.benchmark_group("rbac_update");
    // Alternate two versions of one binding, so every upsert really changes its subject.
    for (label, i) in [
        ("rolebinding", workload::subject_index(n)),
        ("clusterrolebinding", (n / 2) & !1),
    ] {
        let versions = [workload::binding(i, 0), workload::binding(i, 1)];
        let mut generation = 0usize;
        group.bench_function(BenchmarkId::new(label, n), |b| {
            b.iter(|| {
                generation += 1;
                rbac.upsert(black_box(&versions[generation % 2]))
            })
        });
        rbac.upsert(&versions[0]).expect("binding");
    }
    group.finish();
    let bindings = rbac.object_count(kgate_authz::RbacKind::RoleBinding)
        + rbac.object_count(kgate_authz::RbacKind::ClusterRoleBinding);
    assert_eq!(
        bindings,
        n + kgate_authz::bootstrap::cluster_role_bindings().len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = decision, update
}
criterion_main!(benches);
