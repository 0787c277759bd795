//! Shared by the crate's tests: a real `kgate up` (the binary, on loopback, from the e2e
//! harness) with no built-in cluster components, and kube clients on its admin kubeconfig, so a
//! test runs exactly the component it tests in-process against the real API.
//!
//! Include with `mod support;` from a file in `cluster/tests/`.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use kgate_e2e::{Kgate, Options};

/// `kgate up` with no simulated nodes and no scheduler or controllers of its own.
pub fn bare_kgate() -> Kgate {
    Kgate::up_with(Options {
        gateway_args: vec![
            "--nodes=0".into(),
            "--controllers=".into(),
            // The eviction tests set their own tolerations; kube's default 300 s ones would
            // hold every other pod on a lost node for five minutes.
            "--default-not-ready-toleration-seconds=0".into(),
            "--default-unreachable-toleration-seconds=0".into(),
        ],
        ..Options::default()
    })
}

/// A client with the admin's identity (system:masters).
pub async fn admin_client(kg: &Kgate) -> kube::Client {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(kg.admin_kubeconfig()).expect("the admin kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("a client config");
    kube::Client::try_from(config).expect("a kube client")
}

/// Polls `check` every 100 ms until it returns `Ok`, or panics after `within` with its last
/// complaint.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`eventually`] for a check that has nothing to say while it waits (`None`).
pub async fn eventually_some<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually(what, within, || {
        let next = check();
        async move { next.await.ok_or_else(|| "not yet".to_owned()) }
    })
    .await
}

/// kubectl as the admin (blocking, off the async workers); its stdout.
pub fn kubectl(kg: &Kgate, args: &[&str]) -> String {
    tokio::task::block_in_place(|| kg.kubectl_ok(args))
}

/// kubectl `args -o json` as the admin, parsed.
pub fn kubectl_json(kg: &Kgate, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(kg, &all)).expect("kubectl prints JSON")
}
