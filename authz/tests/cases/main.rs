//! Table tests of RBAC decisions, each case a policy, a request and the expected decision (with
//! the expected reason for a sample), written from the Kubernetes RBAC documentation.

// Tests may unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

mod bindings;
mod rules;
mod support;

#[test]
fn rule_matching() {
    let cases = rules::cases();
    assert!(cases.len() >= 50, "{}", cases.len());
    support::run(&cases);
}

#[test]
fn binding_scope_and_subjects() {
    let cases = bindings::cases();
    assert!(cases.len() >= 40, "{}", cases.len());
    support::run(&cases);
}

#[test]
fn there_are_enough_cases() {
    assert!(rules::cases().len() + bindings::cases().len() >= 100);
}
