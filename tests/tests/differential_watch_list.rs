//! Differential: client-go's watch-list (a watch with `sendInitialEvents`, the default of
//! client-go 1.34's informers: kube-controller-manager's informers sync on it) sent to kgate and
//! to the real kube-apiserver, compared event by event: the initial ADDED events, the BOOKMARK
//! annotated `k8s.io/initial-events-end` that ends them (only for a client that allows
//! bookmarks), and the 422 of `validateWatchOptions` for the combinations kube refuses.

use kgate_e2e::reference::{Differences, Reference};
use kgate_e2e::{request, ApiServer, Kgate, Response};
use serde_json::{json, Value};

/// What a watch answered, comparable across servers: the status code and Status of a refusal,
/// else the events in order as (type, name) — a BOOKMARK as its annotations, periodic ones
/// (timing, not semantics) left out.
fn summary(resp: &Response) -> Value {
    if resp.status != 200 {
        let status: Value = serde_json::from_str(&resp.body).unwrap_or(Value::Null);
        return json!({
            "code": resp.status,
            "reason": status["reason"],
            "message": status["message"],
            "causes": status["details"]["causes"],
        });
    }
    let events: Vec<Value> = resp
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|e| match e["type"].as_str() {
            Some("BOOKMARK") => {
                let annotations = &e["object"]["metadata"]["annotations"];
                (!annotations.is_null()).then(|| json!(["BOOKMARK", annotations]))
            }
            Some(t) => Some(json!([t, e["object"]["metadata"]["name"]])),
            None => None,
        })
        .collect();
    json!({"code": 200, "events": events})
}

#[test]
fn watch_list_is_answered_as_kube_apiserver_answers_it() {
    let (kg, reference) = std::thread::scope(|s| {
        let kg = s.spawn(Kgate::up);
        let reference = s.spawn(Reference::up);
        (
            kg.join().expect("kgate starts"),
            reference.join().expect("the reference starts"),
        )
    });
    let cases = [
        (
            "initial-events-then-end-bookmark",
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ),
        (
            "initial-events-without-bookmarks",
            "sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        ),
        (
            "no-initial-events",
            "sendInitialEvents=false&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ),
        (
            "initial-events-need-not-older-than",
            "sendInitialEvents=true&allowWatchBookmarks=true",
        ),
        (
            "not-older-than-needs-initial-events",
            "resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
        ),
        (
            "exact-is-not-supported",
            "sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true",
        ),
    ];
    let mut differences = Differences::new("watch-list");
    for (id, query) in cases {
        // The system namespaces, the same four in both.
        let path = format!("/api/v1/namespaces?watch=true&timeoutSeconds=1&{query}");
        let servers: [&dyn ApiServer; 2] = [&kg, &reference];
        let [ours, theirs] = servers.map(|server| summary(&request(server, "GET", &path).send()));
        differences.case(
            id,
            (ours != theirs).then(|| format!("kgate {ours}\nkube-apiserver {theirs}")),
        );
    }
    differences.assert_only_known();
}
