//! RBAC, kgate against the real kube-apiserver (v1.34.2, with the real kube-controller-manager
//! for ClusterRole aggregation): the same RBAC world is made on both, and the same
//! SubjectAccessReviews are answered by both.
//!
//! - Suite `bootstrap`: every ClusterRole, ClusterRoleBinding, Role and RoleBinding both servers
//!   start with (labels, annotations, rules, aggregationRule, roleRef, subjects), once the
//!   reference's controller manager has aggregated admin/edit/view.
//! - Suite `rbac`: the generated world's aggregated ClusterRoles (their rules, once both
//!   converged), then at least 300 SubjectAccessReviews from a seeded generator (written here:
//!   the same world and questions on every run) and hand-picked edge cases, including node
//!   identities (the reference runs the Node authorizer before RBAC; kgate has none); then, as
//!   users with client certificates of each server, SelfSubjectRulesReviews in every namespace,
//!   SelfSubjectAccessReviews, and the same questions as LocalSubjectAccessReviews.
//!
//! A review's answer is compared whole (`allowed`, `denied`, `evaluationError`, and an invalid
//! review's Status) except the allowing binding's name: kube-apiserver names the first binding
//! that allows, in its informer's (map) order, so when several allow, the one named is chosen at
//! random (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `VisitRulesFor` in
//! `pkg/registry/rbac/validation/rule.go`). The reason is compared as its shape there: which kind
//! of binding allowed (ClusterRoleBindings are visited first on both), and a denial's list of
//! missing roles as a set (the same random order). Each server's allowing reason must besides
//! name a binding that server holds, of the role it names, to a subject the review's user is.

use kgate_e2e::reference::{Differences, Reference, ReferenceOptions};
use kgate_e2e::{poll, request, ApiServer, Kgate};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const SAR: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// How long both servers get to aggregate ClusterRoles and see the world.
const CONVERGE: Duration = Duration::from_secs(60);

mod compare;
mod edge;
mod world;

use compare::*;
use edge::*;
use world::*;

#[test]
fn rbac_decisions_agree_with_kube_apiserver() {
    let (kg, reference) = start();
    let servers: [&dyn ApiServer; 2] = [&kg, &reference];

    // The bootstrap policy, once the reference's controller manager has aggregated it.
    let bootstrap_aggregated: Vec<(&str, BTreeSet<String>, bool)> = ["admin", "edit", "view"]
        .into_iter()
        .map(|name| (name, BTreeSet::new(), false))
        .collect();
    assert!(
        converge(servers, &bootstrap_aggregated),
        "admin, edit and view were not aggregated"
    );
    let mut bootstrap = Differences::new("bootstrap");
    for (resource, kind) in [
        ("clusterroles", "clusterrole"),
        ("clusterrolebindings", "clusterrolebinding"),
        ("roles", "role"),
        ("rolebindings", "rolebinding"),
    ] {
        let ours = rbac_objects(&kg, resource);
        let theirs = rbac_objects(&reference, resource);
        let names: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        for name in names {
            let difference = match (ours.get(name), theirs.get(name)) {
                (Some(a), Some(b)) => describe_object_difference(a, b),
                (Some(_), None) => Some("only kgate has it".to_owned()),
                (None, Some(_)) => Some("only kube-apiserver has it".to_owned()),
                (None, None) => unreachable!("a name of one of them"),
            };
            bootstrap.case(&format!("{kind}/{name}"), difference);
        }
    }

    // The generated world, made on both.
    let (objects, aggregated) = world(16_0003);
    for server in servers {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let file = server
            .files()
            .join(format!("world-{}.json", server.next_seq()));
        std::fs::write(&file, list.to_string()).expect("cannot write the world");
        server.kubectl_ok(&[
            "create",
            "--validate=false",
            "-f",
            &file.display().to_string(),
        ]);
    }
    // Each server's authorizer has seen the last object; aggregation has converged.
    let sentinel = review(
        "sentinel",
        &[],
        json!({"path": "/diff-sentinel", "verb": "get"}),
    );
    for server in servers {
        poll(
            &format!("{} allows the sentinel", server.name()),
            CONVERGE,
            || {
                let answer = answer(server, &sentinel);
                if answer["status"]["allowed"] == true {
                    Ok(())
                } else {
                    Err(answer.to_string())
                }
            },
        );
    }
    let mut rbac = Differences::new("rbac");
    let mut expected: Vec<(&str, BTreeSet<String>, bool)> = aggregated
        .iter()
        .map(|name| (name.as_str(), selected_rules(&objects, name), true))
        .collect();
    // The world's roles labelled aggregate-to-view reach view, and through it edit and admin.
    let to_view = selected_rules(&objects, "view");
    assert!(
        !to_view.is_empty(),
        "the world aggregates nothing into view"
    );
    for name in ["admin", "edit", "view"] {
        expected.push((name, to_view.clone(), false));
    }
    let converged = converge(servers, &expected);
    for (name, _, _) in &expected {
        let (a, b) = (rules_of(&kg, name), rules_of(&reference, name));
        let mut difference =
            describe_object_difference(&json!({ "rules": a }), &json!({ "rules": b }));
        if !converged && difference.is_none() {
            difference = Some("both, but not as the world's labels select".to_owned());
        }
        rbac.case(&format!("aggregated/{name}"), difference);
    }

    // The reviews, answered by both (four clients per server).
    let mut reviews = generated_reviews(16_0016, 340);
    reviews.extend(edge_reviews());
    let answers: Vec<((Value, String), (Value, String))> = std::thread::scope(|scope| {
        let workers: Vec<_> = reviews
            .chunks(reviews.len().div_ceil(4))
            .map(|chunk| {
                let (kg, reference) = (&kg, &reference);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(_, review)| {
                            (
                                answer_with_reason(kg, review),
                                answer_with_reason(reference, review),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // The binding an allowing reason names is compared by kind only (see the module docs), and
    // each server's reason must name a binding it holds, of the role it says, to a subject the
    // review's user is (kgate holds bindings of its own: see the bootstrap suite).
    let (our_bindings, their_bindings) = (bindings(&kg), bindings(&reference));
    let mut allowed = 0;
    let mut named = 0;
    for ((id, review), ((ours, our_reason), (theirs, their_reason))) in reviews.iter().zip(&answers)
    {
        if theirs["status"]["allowed"] == true {
            allowed += 1;
        }
        if let Some(wrong) = check_allowing_reason(&their_bindings, their_reason, review) {
            panic!(
                "{id}: kube-apiserver's reason {their_reason:?}: {wrong} (the test misreads it)"
            );
        }
        if our_reason != their_reason && our_reason.starts_with("RBAC: allowed by ") {
            named += 1;
        }
        let difference = if ours != theirs {
            Some(format!(
                "{}: kgate {ours}, kube-apiserver {theirs}",
                review["spec"]
            ))
        } else {
            check_allowing_reason(&our_bindings, our_reason, review)
                .map(|wrong| format!("kgate's reason {our_reason:?}: {wrong}"))
        };
        rbac.case(id, difference);
    }
    kgate_e2e::note(&format!(
        "{named} allowed reviews name another binding on kgate than on kube-apiserver (several allow)"
    ));
    self_reviews(&kg, &reference, &mut rbac);
    kgate_e2e::note(&format!(
        "{} reviews, {allowed} allowed by kube-apiserver",
        reviews.len()
    ));
    // The generator asks questions both ways, not only ones everybody is refused.
    assert!(
        allowed * 10 > reviews.len() && allowed * 10 < reviews.len() * 9,
        "{allowed} of {} reviews allowed",
        reviews.len()
    );
    // Both suites print their counts before either fails.
    let bootstrap = std::panic::catch_unwind(|| bootstrap.assert_only_known());
    rbac.assert_only_known();
    if let Err(panic) = bootstrap {
        std::panic::resume_unwind(panic);
    }
}
