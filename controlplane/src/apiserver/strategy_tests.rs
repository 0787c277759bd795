use serde_json::json;

use super::*;
use crate::resources::lookup;

fn pods() -> &'static ResourceDef {
    lookup("", "v1", "pods").expect("pods")
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "n"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": "Running"}})
}

#[test]
fn create_prepares_then_defaults_then_validates() {
    let strategy = for_resource(pods());
    // prepare drops the client's status; default (after it) gives the new pod kube's.
    let mut obj = pod("p");
    strategy.before_create(&mut obj).expect("valid");
    assert_eq!(obj["status"]["phase"], "Pending");
    assert!(obj["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty()));
    assert_eq!(obj["metadata"]["generation"], 1);
    // Default alone, before prepare, would be undone by prepare: the steps are not commutative.
    let mut reversed = pod("p");
    strategy.default(&mut reversed);
    strategy
        .prepare_for_create(&mut reversed)
        .expect("prepared");
    assert!(reversed.get("status").is_none());
    // validate sees the name prepare generated: a generateName prefix is validated as a name.
    let mut generated = pod("");
    generated["metadata"]["generateName"] = json!("web-");
    strategy.before_create(&mut generated).expect("valid");
    assert!(meta_str(&generated, "name").is_some_and(|n| n.starts_with("web-")));
    let mut bad = pod("");
    bad["metadata"]["generateName"] = json!("Web_");
    let status = strategy.before_create(&mut bad).expect_err("invalid name");
    assert_eq!(status.code, 422);
    // prepare refuses first: a resourceVersion on a create is 400 before any validation.
    let mut versioned = pod("Not_A_Name");
    versioned["metadata"]["resourceVersion"] = json!("5");
    let status = strategy.before_create(&mut versioned).expect_err("rv");
    assert_eq!(status.code, 400);
}

#[test]
fn update_compares_defaulted_specs_for_the_generation() {
    let strategy = for_resource(pods());
    let mut old = pod("p");
    strategy.before_create(&mut old).expect("valid");
    // The same pod as sent, without the defaults the stored one has: no spec change.
    let next = strategy
        .before_update(&old, pod("p"), StatusFrom::Old)
        .expect("valid");
    assert_eq!(next["metadata"]["generation"], 1);
    assert_eq!(next["status"], old["status"]);
    let mut changed = pod("p");
    changed["spec"]["containers"][0]["image"] = json!("nginx:2");
    // The pull policy defaults from the tag: kept as stored, since a pod's update may change
    // its images only (ValidatePodUpdate).
    changed["spec"]["containers"][0]["imagePullPolicy"] =
        old["spec"]["containers"][0]["imagePullPolicy"].clone();
    let next = strategy
        .before_update(&old, changed, StatusFrom::Old)
        .expect("valid");
    assert_eq!(next["metadata"]["generation"], 2);
}

#[test]
fn updates_keep_system_metadata_and_bump_generation() {
    let deploy = lookup("apps", "v1", "deployments").expect("deployments");
    let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "uid": "u1", "generation": 1,
            "creationTimestamp": "2024-01-01T00:00:00Z", "resourceVersion": "5"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
        "status": {"replicas": 1}});
    let mut old = old;
    defaults::apply(deploy, &mut old);
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(3);
    new["status"] = json!({"replicas": 7});
    new["metadata"]["creationTimestamp"] = json!("2030-01-01T00:00:00Z");
    let next = for_resource(deploy)
        .before_update(&old, new, StatusFrom::Old)
        .expect("valid");
    assert_eq!(next["metadata"]["generation"], 2);
    assert_eq!(next["status"]["replicas"], 1);
    assert_eq!(
        next["metadata"]["creationTimestamp"],
        "2024-01-01T00:00:00Z"
    );
    let mut bad = old.clone();
    bad["metadata"]["uid"] = json!("other");
    let s = for_resource(deploy)
        .before_update(&old, bad, StatusFrom::Old)
        .expect_err("uid");
    assert_eq!(s.code, 422);
}

/// Generation as each strategy keeps it: from 1 for a StatefulSet or a PodDisruptionBudget,
/// moved by spec changes; a CSIDriver's is set by its first spec change only; a
/// StorageClass has none.
#[test]
fn generation_follows_each_kinds_strategy() {
    let sts = for_resource(lookup("apps", "v1", "statefulsets").expect("sts"));
    let mut s = json!({"metadata": {"name": "s"}, "spec": {"serviceName": "s",
        "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    sts.before_create(&mut s).expect("valid");
    assert_eq!(s["metadata"]["generation"], 1);
    let mut scaled = s.clone();
    scaled["spec"]["replicas"] = json!(3);
    let scaled = sts
        .before_update(&s, scaled, StatusFrom::Old)
        .expect("valid");
    assert_eq!(scaled["metadata"]["generation"], 2);

    let drivers = for_resource(lookup("storage.k8s.io", "v1", "csidrivers").expect("drivers"));
    let mut d = json!({"metadata": {"name": "d.example.com"}, "spec": {}});
    drivers.before_create(&mut d).expect("valid");
    assert!(d["metadata"].get("generation").is_none(), "{d}");
    let mut labelled = d.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    let labelled = drivers
        .before_update(&d, labelled, StatusFrom::Old)
        .expect("valid");
    assert!(
        labelled["metadata"].get("generation").is_none(),
        "{labelled}"
    );
    let mut republish = labelled.clone();
    republish["spec"]["requiresRepublish"] = json!(true);
    let republish = drivers
        .before_update(&labelled, republish, StatusFrom::Old)
        .expect("valid");
    assert_eq!(republish["metadata"]["generation"], 1);

    let classes = for_resource(lookup("storage.k8s.io", "v1", "storageclasses").expect("sc"));
    let mut c = json!({"metadata": {"name": "c", "generation": 4}, "provisioner": "a.io/b"});
    classes.before_create(&mut c).expect("valid");
    assert!(c["metadata"].get("generation").is_none(), "{c}");
}

/// A webhook configuration has no spec: its generation moves with its webhooks, not with its
/// labels (kube's webhook configuration strategies).
#[test]
fn webhook_configurations_count_generations_by_their_webhooks() {
    let def = lookup(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
    )
    .expect("vwcs");
    let strategy = for_resource(def);
    let hook = |name: &str| {
        json!({"name": name, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://example.com/v"}})
    };
    let mut c = json!({"metadata": {"name": "c"}, "webhooks": [hook("a.example.com")]});
    strategy.before_create(&mut c).expect("valid");
    assert_eq!(c["metadata"]["generation"], 1);
    let mut labelled = c.clone();
    labelled["metadata"]["labels"] = json!({"a": "b"});
    let labelled = strategy
        .before_update(&c, labelled, StatusFrom::Old)
        .expect("valid");
    assert_eq!(labelled["metadata"]["generation"], 1);
    let mut more = labelled.clone();
    more["webhooks"] = json!([hook("a.example.com"), hook("b.example.com")]);
    let more = strategy
        .before_update(&labelled, more, StatusFrom::Old)
        .expect("valid");
    assert_eq!(more["metadata"]["generation"], 2);
}
