//! The admin's kubectl session against `kgate up`, with the default kubectl and with kubectl
//! 1.29 and 1.33. (1.27 and 1.28 fetch `/openapi/v2` as protobuf before `apply`, which kgate
//! does not serve yet; 1.29 and later use OpenAPI v3.)

use kgate_e2e::{flows, Kgate};

#[test]
fn admin_session_with_the_default_kubectl() {
    let kg = Kgate::up();
    flows::admin_flow(&kg);
}

#[test]
fn core_flow_with_kubectl_1_29_and_1_33() {
    let kg = Kgate::up();
    for (minor, ns) in [("1.29", "old-kubectl"), ("1.33", "new-kubectl")] {
        let bin = kgate_e2e::versioned_kubectl(minor);
        flows::core_flow(&kg, &bin, ns);
    }
}
