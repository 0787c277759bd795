use super::history::{compute_hash, equal_ignore_hash, set_new_rs_annotations};
use super::progress::{new_condition, set_condition};
use super::util::{
    max_surge, max_unavailable, new_rs_new_replicas, proportion, scaled_value, selector_string,
};
use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::{json, Value};

fn deployment(value: Value) -> Deployment {
    serde_json::from_value(value).unwrap()
}

fn web(replicas: i32, strategy: Value) -> Deployment {
    deployment(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "d1", "generation": 1},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy,
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}},
    }))
}

#[test]
fn percentages_round_surge_up_and_unavailable_down() {
    let pct = |s: &str| IntOrString::String(s.into());
    assert_eq!(scaled_value(&pct("25%"), 3, true), 1);
    assert_eq!(scaled_value(&pct("25%"), 3, false), 0);
    assert_eq!(scaled_value(&pct("25%"), 10, true), 3);
    assert_eq!(scaled_value(&pct("25%"), 10, false), 2);
    assert_eq!(scaled_value(&IntOrString::Int(2), 10, true), 2);
    // Defaults (an empty strategy) are 25%/25%.
    let d = web(3, json!({}));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
    let d = web(
        4,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}),
    );
    assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 1));
    let d = web(4, json!({"type": "Recreate"}));
    assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
}

#[test]
fn the_hash_is_stable_and_follows_the_template() {
    let d = web(3, json!({}));
    let t = d.spec.as_ref().unwrap().template.clone();
    let h = compute_hash(&t, None);
    assert_eq!(h, compute_hash(&t.clone(), None));
    assert!(!h.is_empty() && h.len() <= 10);
    assert!(h
        .bytes()
        .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
    let mut other = t.clone();
    other.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.27".into());
    assert_ne!(h, compute_hash(&other, None));
    assert_ne!(h, compute_hash(&t, Some(1)));
    // The template with the hash label is the same template.
    let mut labeled = t.clone();
    labeled
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert(POD_TEMPLATE_HASH_LABEL.into(), h);
    assert!(equal_ignore_hash(&labeled, &t));
    assert!(!equal_ignore_hash(&other, &t));
}

fn rs(name: &str, replicas: i32, available: i32, annotations: Value) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"replicas": replicas, "availableReplicas": available},
    }))
    .unwrap()
}

#[test]
fn new_replica_set_grows_within_the_surge() {
    let d = web(10, json!({}));
    let old = rs("old", 10, 10, json!({}));
    let new = rs("new", 0, 0, json!({}));
    // 10 + 3 surge: 3 more may exist.
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
    let new = rs("new", 3, 0, json!({}));
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
}

#[test]
fn scaling_is_proportional_to_the_last_max_replicas() {
    // Was 10 (+3 surge = 13), now 20 (+5 = 25): a set of 8 grows to round(8*25/13)=15.
    let d = web(20, json!({}));
    let a = rs("a", 8, 8, json!({MAX_REPLICAS_ANNOTATION: "13"}));
    assert_eq!(proportion(&d, &a, 12, 0), 7);
    assert_eq!(proportion(&d, &a, 12, 10), 2);
}

#[test]
fn conditions_keep_their_transition_time_for_the_same_status() {
    let mut status = DeploymentStatus::default();
    let mut first = new_condition("Progressing", "True", NEW_RS_REASON, "a".into());
    first.last_transition_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        Timestamp::from_second(1000).unwrap(),
    ));
    set_condition(&mut status, first.clone());
    set_condition(
        &mut status,
        new_condition("Progressing", "True", NEW_RS_REASON, "b".into()),
    );
    assert_eq!(
        get_condition(&status, "Progressing")
            .unwrap()
            .message
            .as_deref(),
        Some("a")
    );
    set_condition(
        &mut status,
        new_condition("Progressing", "True", NEW_RS_AVAILABLE_REASON, "c".into()),
    );
    let c = get_condition(&status, "Progressing").unwrap();
    assert_eq!(c.message.as_deref(), Some("c"));
    assert_eq!(c.last_transition_time, first.last_transition_time);
}

#[test]
fn a_reused_replica_set_gets_the_next_revision() {
    let d = web(3, json!({}));
    let mut old = rs("web-1", 0, 0, json!({REVISION_ANNOTATION: "1"}));
    assert!(set_new_rs_annotations(&d, &mut old, 3, true));
    let a = old.metadata.annotations.unwrap();
    assert_eq!(a[REVISION_ANNOTATION], "3");
    assert_eq!(a[REVISION_HISTORY_ANNOTATION], "1");
}

#[test]
fn selectors_render_as_queries() {
    let sel: LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
    }))
    .unwrap();
    assert_eq!(selector_string(&sel), "app=web,tier in (a,b)");
}
