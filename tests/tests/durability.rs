//! Nothing acknowledged is lost: configmaps are created one after another through the API while
//! kgate is killed with SIGKILL; after a restart on the same data directory every create that
//! got 201 is there, with the resourceVersion it was acknowledged with.

use kgate_e2e::{sleep, Kgate};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"{name}"}}}}"#
    )
}

/// Every configmap in default: name → resourceVersion.
fn stored(kg: &Kgate) -> BTreeMap<String, String> {
    let resp = kg.request("GET", CM_PATH).send();
    assert_eq!(resp.status, 200, "{resp}");
    let list: serde_json::Value = serde_json::from_str(&resp.body).expect("a JSON list");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| {
            (
                o["metadata"]["name"].as_str().unwrap_or("?").to_owned(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_acknowledged_create_survives_sigkill() {
    let mut kg = Kgate::up();
    let acked_count = AtomicUsize::new(0);
    let acked: BTreeMap<String, String> = thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut acked = BTreeMap::new();
            for i in 0..5000 {
                let name = format!("cm-{i:05}");
                let resp = kg.request("POST", CM_PATH).json(configmap(&name)).send();
                match resp.status {
                    201 => {
                        let object: serde_json::Value =
                            serde_json::from_str(&resp.body).expect("the created object");
                        let rv = object["metadata"]["resourceVersion"]
                            .as_str()
                            .expect("a resourceVersion")
                            .to_owned();
                        acked.insert(name, rv);
                        acked_count.fetch_add(1, Ordering::SeqCst);
                    }
                    // No answer: the server is gone. Whatever was in flight is not acknowledged.
                    0 => break,
                    other => panic!("create {name} answered {other} before the crash:\n{resp}"),
                }
            }
            acked
        });
        // Kill in the middle of the stream, with creates in flight.
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked_count.load(Ordering::SeqCst) < 40 {
            assert!(Instant::now() < deadline, "the creates do not progress");
            sleep(Duration::from_millis(5));
        }
        kg.kill_hard();
        writer.join().expect("the writer thread")
    });
    assert!(
        acked.len() >= 40,
        "only {} creates acknowledged",
        acked.len()
    );

    kg.start_after_crash();
    let after = stored(&kg);
    let lost: Vec<&String> = acked.keys().filter(|n| !after.contains_key(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates are lost after SIGKILL: {lost:?}",
        lost.len(),
        acked.len()
    );
    for (name, rv) in &acked {
        assert_eq!(&after[name], rv, "{name} changed its resourceVersion");
    }
    // The store keeps working after the crash.
    let resp = kg
        .request("POST", CM_PATH)
        .json(configmap("after-crash"))
        .send();
    assert_eq!(resp.status, 201, "{resp}");
}

/// `kgate up` on `data_dir`, expected to refuse to start: its stderr.
fn refused_start(data_dir: &std::path::Path) -> String {
    let mut cmd = std::process::Command::new(kgate_e2e::kgate_bin());
    cmd.args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("KGATE_LOG", "info");
    let run = kgate_e2e::run_bounded(cmd, None, Duration::from_secs(60));
    assert!(
        !run.success(),
        "kgate started on a broken data directory:\n{run}"
    );
    run.stderr
}

#[test]
fn a_corrupt_or_unusable_store_stops_the_start_with_a_clear_error() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "precious"]);
    let data_dir = kg.data_dir();
    let store = data_dir.join("store").join("kgate.redb");
    kg.kill_hard();

    // Damaged pages (one byte in every 4 KiB page after the header; damage in free space alone
    // would be harmless): the checksums say so at open.
    let mut bytes = std::fs::read(&store).expect("the store file");
    for offset in (4096 + 100..bytes.len()).step_by(4096) {
        bytes[offset] ^= 0xa5;
    }
    std::fs::write(&store, &bytes).expect("damage the store");
    let stderr = refused_start(&data_dir);
    assert!(
        stderr.contains("cannot open the store") && stderr.contains("kgate.redb"),
        "the error does not name the store:\n{stderr}"
    );
    assert!(
        stderr.contains("corrupt") || stderr.contains("damaged"),
        "the error does not say the store is damaged:\n{stderr}"
    );

    // Not a database at all.
    std::fs::write(&store, b"this is not a redb file, it is a note").expect("overwrite");
    let stderr = refused_start(&data_dir);
    assert!(stderr.contains("kgate.redb"), "{stderr}");

    // Unusable: the store path is a directory.
    std::fs::remove_file(&store).expect("remove");
    std::fs::create_dir(&store).expect("a directory in its place");
    let stderr = refused_start(&data_dir);
    assert!(stderr.contains("kgate.redb"), "{stderr}");
}
