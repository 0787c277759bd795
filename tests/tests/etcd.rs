//! `kgate up --etcd-servers` against a real etcd: the admin's kubectl session, objects that live
//! in etcd (a second kgate with an empty data directory sees them), and an etcd outage in the
//! middle of a stream of creates: never a false success, nothing acknowledged lost, and a watch
//! resumed from a revision taken before the outage misses nothing.

use kgate_e2e::etcd::Etcd;
use kgate_e2e::{flows, sleep, Kgate, Options};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str) -> String {
    format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#)
}

fn with_etcd(etcd: &Etcd) -> Options {
    Options {
        etcd_servers: Some(etcd.endpoint()),
        ..Options::default()
    }
}

fn etcd_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kgate-e2e-etcd-")
        .tempdir()
        .expect("a temporary folder for etcd")
}

#[test]
fn kubectl_session_over_etcd_and_the_objects_live_in_etcd() {
    let dir = etcd_dir();
    let etcd = Etcd::start(dir.path());
    let kg = Kgate::up_with(with_etcd(&etcd));
    flows::admin_flow(&kg);
    kg.kubectl_ok(&["create", "namespace", "kept-in-etcd"]);
    let rv = kg.resource_version(&["namespace", "kept-in-etcd"]);

    // Another kgate, its own (empty) data directory and CA, the same etcd.
    let second = Kgate::up_with(with_etcd(&etcd));
    assert_eq!(
        second.resource_version(&["namespace", "kept-in-etcd"]),
        rv,
        "the second kgate does not see the first one's namespace at the same resourceVersion"
    );
    drop(kg);
    drop(second);
    drop(etcd);
}

#[test]
fn split_mode_control_plane_over_etcd() {
    let dir = etcd_dir();
    let etcd = Etcd::start(dir.path());
    let kg = Kgate::split_with(with_etcd(&etcd));
    flows::admin_flow(&kg);
    kg.kubectl_ok(&["create", "namespace", "split-in-etcd"]);
    let rv = kg.resource_version(&["namespace", "split-in-etcd"]);
    // `kgate up` on the same etcd sees what the split control plane wrote.
    let up = Kgate::up_with(with_etcd(&etcd));
    assert_eq!(up.resource_version(&["namespace", "split-in-etcd"]), rv);
    drop(kg);
    drop(up);
    drop(etcd);
}

/// One create and what came of it.
struct Attempt {
    name: String,
    status: u16,
    started: Instant,
    ended: Instant,
}

#[test]
fn an_etcd_outage_never_acknowledges_a_lost_write() {
    let dir = etcd_dir();
    let mut etcd = Etcd::start(dir.path());
    let kg = Kgate::up_with(with_etcd(&etcd));
    let before = {
        let resp = kg.request("GET", CM_PATH).send();
        assert_eq!(resp.status, 200, "{resp}");
        let list: serde_json::Value = serde_json::from_str(&resp.body).expect("a list");
        list["metadata"]["resourceVersion"]
            .as_str()
            .expect("a list resourceVersion")
            .to_owned()
    };

    let stop = AtomicBool::new(false);
    let created = AtomicUsize::new(0);
    let attempts = Mutex::new(Vec::<Attempt>::new());
    let (down_from, down_until) = thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let name = format!("cm-{i:05}");
                let started = Instant::now();
                let resp = kg.request("POST", CM_PATH).json(configmap(&name)).send();
                let ended = Instant::now();
                if resp.status == 201 {
                    created.fetch_add(1, Ordering::SeqCst);
                } else if resp.status != 503 && resp.status != 504 {
                    panic!("create {name} answered {}:\n{resp}", resp.status);
                } else {
                    resp.assert_status(resp.status);
                }
                if let Ok(mut attempts) = attempts.lock() {
                    attempts.push(Attempt {
                        name,
                        status: resp.status,
                        started,
                        ended,
                    });
                }
                // Keep the request rate modest while etcd is away.
                if resp.status != 201 {
                    sleep(Duration::from_millis(50));
                }
            }
        });
        let wait_for = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while created.load(Ordering::SeqCst) < n {
                assert!(Instant::now() < deadline, "creates do not progress");
                sleep(Duration::from_millis(5));
            }
        };
        wait_for(20);
        etcd.kill();
        let down_from = Instant::now();
        sleep(Duration::from_secs(3));
        let down_until = Instant::now();
        etcd.resume();
        let resumed_at = created.load(Ordering::SeqCst);
        wait_for(resumed_at + 20);
        stop.store(true, Ordering::SeqCst);
        (down_from, down_until)
    });
    let attempts = attempts.into_inner().expect("attempts");

    // While etcd was down: errors, never a 201.
    let during: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.started >= down_from && a.ended <= down_until)
        .collect();
    assert!(
        !during.is_empty(),
        "no create was attempted during the outage"
    );
    for attempt in &during {
        assert_ne!(
            attempt.status, 201,
            "{} was acknowledged while etcd was down",
            attempt.name
        );
    }

    // Every acknowledged create is there.
    let resp = kg.request("GET", CM_PATH).send();
    assert_eq!(resp.status, 200, "{resp}");
    let list: serde_json::Value = serde_json::from_str(&resp.body).expect("a list");
    let stored: BTreeSet<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let acked: Vec<&Attempt> = attempts.iter().filter(|a| a.status == 201).collect();
    for attempt in &acked {
        assert!(
            stored.contains(&attempt.name),
            "{} got 201 but is not stored",
            attempt.name
        );
    }

    // A watch resumed from before the outage sees every acknowledged create: no gap.
    let watch = kg
        .request(
            "GET",
            &format!("{CM_PATH}?watch=true&resourceVersion={before}&timeoutSeconds=3"),
        )
        .send();
    assert_eq!(watch.status, 200, "{watch}");
    let added: BTreeSet<String> = watch
        .body
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["type"] == "ADDED")
        .filter_map(|event| {
            event["object"]["metadata"]["name"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    for attempt in &acked {
        assert!(
            added.contains(&attempt.name),
            "the resumed watch misses {}",
            attempt.name
        );
    }
    drop(kg);
    drop(etcd);
}
