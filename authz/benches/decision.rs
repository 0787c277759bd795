//! How long one RBAC decision takes at 1,000 and 10,000 bindings: an allow (a RoleBinding to
//! view) and a deny (a verb view lacks), for a user with a typical set of groups. Each binding
//! names a distinct user in one of 100 namespaces, on top of the bootstrap policy.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kgate_authz::{bootstrap, RbacAuthorizer};
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, UserInfo};
use serde_json::json;
use std::hint::black_box;

fn authorizer(bindings: usize) -> RbacAuthorizer {
    let rbac = RbacAuthorizer::new();
    for o in bootstrap::cluster_roles()
        .iter()
        .chain(&bootstrap::cluster_role_bindings())
    {
        rbac.upsert(o).expect("bootstrap object");
    }
    for i in 0..bindings {
        rbac.upsert(&json!({
            "kind": "RoleBinding",
            "metadata": {"name": format!("user-{i}-view"), "namespace": format!("ns-{}", i % 100)},
            "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": format!("user-{i}")}]
        }))
        .expect("binding");
    }
    rbac
}

fn request(verb: &str, i: usize) -> Attributes {
    let user = UserInfo::new(format!("user-{i}")).with_groups(["dev", "system:authenticated"]);
    let mut a = Attributes::resource(user, verb, "", "pods", &format!("ns-{}", i % 100));
    a.name = "web".to_owned();
    a
}

fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("rbac_decision");
    for n in [1_000, 10_000] {
        let rbac = authorizer(n);
        let allow = request("get", n / 2);
        let deny = request("delete", n / 2);
        assert!(rbac.authorize(&allow).is_allow());
        assert!(!rbac.authorize(&deny).is_allow());
        group.bench_with_input(BenchmarkId::new("allow", n), &allow, |b, a| {
            b.iter(|| rbac.authorize(black_box(a)))
        });
        group.bench_with_input(BenchmarkId::new("deny", n), &deny, |b, a| {
            b.iter(|| rbac.authorize(black_box(a)))
        });
    }
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
