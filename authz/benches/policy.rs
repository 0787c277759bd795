//! What the casbin policy layer costs per decision, with the README's example lines plus filler
//! lines up to 10 and 100:
//!
//! - `typical`: `get pods` by a developer, which no line's verb and resource admit; the
//!   pre-filter answers and casbin is not asked. Both layers (the chain asks the allow layer
//!   only when RBAC had no opinion, so this is the worst case for such a request).
//! - `one_candidate`: `create pods/exec` in namespace `team`; one line passes the pre-filter and
//!   casbin evaluates it (no match). Deny layer.
//! - `deny`: the same in `kube-system`: casbin matches the first line. Deny layer.
//! - `no_prefilter`: the `typical` request against the same lines under a custom model (the
//!   default matcher reordered), so casbin evaluates every line: what the pre-filter saves.
//! - `parse`: loading the whole file (what a reload costs).
//!
//! Run: `cargo bench -p kgate-authz --bench policy`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kgate_authz::policy::DEFAULT_MODEL;
use kgate_authz::Policy;
use kgate_core::{Attributes, UserInfo};
use std::hint::black_box;

const EXAMPLES: [&str; 5] = [
    r#"p, deny, *, !sre, *, "", pods/exec|pods/attach|pods/portforward, kube-system, *, *"#,
    "p, deny, *, !sre, delete, *, namespaces, *, *, *",
    "p, deny, *, interns, create|update|patch|delete|deletecollection, *, *, *, *, *",
    r#"p, allow, ci-bot, *, get|list|watch, "", pods, ci, *, *"#,
    "p, deny, *, !monitoring, get, *, *, *, *, /metrics",
];

fn text(lines: usize, model: Option<&str>) -> String {
    let mut text = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\n".to_owned();
    if let Some(model) = model {
        text.push_str("model: |\n");
        for l in model.lines() {
            text.push_str(&format!("  {l}\n"));
        }
    }
    text.push_str("policies:\n");
    for line in EXAMPLES {
        text.push_str(&format!("  - {line}\n"));
    }
    for i in EXAMPLES.len()..lines {
        let effect = if i % 2 == 0 { "deny" } else { "allow" };
        text.push_str(&format!(
            "  - p, {effect}, user-{i}, *, delete, example.com, widgets-{i}, *, *, *\n"
        ));
    }
    text
}

fn developer() -> UserInfo {
    UserInfo::new("alice").with_groups(["dev", "system:authenticated"])
}

fn exec_in(namespace: &str) -> Attributes {
    let mut a = Attributes::resource(developer(), "create", "", "pods", namespace);
    a.subresource = "exec".to_owned();
    a.name = "web".to_owned();
    a
}

fn policy(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_decision");
    let mut typical = Attributes::resource(developer(), "get", "", "pods", "team");
    typical.name = "web".to_owned();
    let reordered = DEFAULT_MODEL.replace(
        "m = kgateMatch(r.user, p.user) && kgateMatchAny(r.groups, p.groups)",
        "m = kgateMatchAny(r.groups, p.groups) && kgateMatch(r.user, p.user)",
    );
    for n in [10, 100] {
        let p = Policy::parse("bench.yaml", &text(n, None)).expect("policy");
        let unfiltered = Policy::parse("bench.yaml", &text(n, Some(&reordered))).expect("policy");
        let (team, kube_system) = (exec_in("team"), exec_in("kube-system"));
        assert!(!p.deny_decision(&typical).is_allow());
        assert!(matches!(
            p.deny_decision(&kube_system),
            kgate_core::Decision::Deny { .. }
        ));
        assert!(p.deny_decision(&team).reason().is_empty());
        group.bench_with_input(BenchmarkId::new("typical", n), &typical, |b, a| {
            b.iter(|| {
                (
                    p.deny_decision(black_box(a)),
                    p.allow_decision(black_box(a)),
                )
            })
        });
        group.bench_with_input(BenchmarkId::new("one_candidate", n), &team, |b, a| {
            b.iter(|| p.deny_decision(black_box(a)))
        });
        group.bench_with_input(BenchmarkId::new("deny", n), &kube_system, |b, a| {
            b.iter(|| p.deny_decision(black_box(a)))
        });
        group.bench_with_input(BenchmarkId::new("no_prefilter", n), &typical, |b, a| {
            b.iter(|| {
                (
                    unfiltered.deny_decision(black_box(a)),
                    unfiltered.allow_decision(black_box(a)),
                )
            })
        });
        let source = text(n, None);
        group.bench_with_input(BenchmarkId::new("parse", n), &source, |b, s| {
            b.iter(|| Policy::parse("bench.yaml", black_box(s)).expect("policy"))
        });
    }
    group.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
