//! Shared by the crate's tests: a real `kgate up` (the binary, on loopback, from the e2e
//! harness) with no built-in cluster components, and kube clients on its admin kubeconfig, so a
//! test runs exactly the component it tests in-process against the real API.
//!
//! Include with `mod support;` from a file in `cluster/tests/`.

#![allow(dead_code)]

use kgate_e2e::{Kgate, Options};

/// `kgate up` with no simulated nodes and no scheduler or controllers of its own.
pub fn bare_kgate() -> Kgate {
    Kgate::up_with(Options {
        gateway_args: vec!["--nodes=0".into(), "--controllers=".into()],
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
