//! Bad input: each is a clear 4xx `Status`, nothing is stored, and the server keeps serving.

use kgate_e2e::{kubeconfig_with_user_from, sleep, Identity, Kgate, Options};
use std::time::Duration;

/// The server still answers the admin, both through kubectl and raw.
fn still_serves(kg: &mut Kgate) {
    kg.assert_running();
    kg.kubectl_ok(&["get", "ns", "default", "-o", "name"]);
    let resp = kg.request("GET", "/api/v1/namespaces/default").send();
    assert_eq!(resp.status, 200, "{resp}");
}

#[track_caller]
fn not_stored(kg: &Kgate, args: &[&str]) {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    kg.kubectl(&all).fails_with("NotFound");
}

/// What kubectl prints for a 401 (client-go words it so, whatever the Status says).
const LOGGED_OUT: &str = "You must be logged in to the server";

const CM_PATH: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"k":"v"}}}}"#
    )
}

#[test]
fn bad_credentials_are_401_status() {
    let mut kg = Kgate::up();

    // Expired: a certificate valid for one second, used after it ran out.
    let expired = kg.kubeconfig_for("eve", &["system:masters"], "1s");
    sleep(Duration::from_secs(2));
    kg.kubectl_as(&expired, &["get", "ns"])
        .fails_with(LOGGED_OUT);
    kg.request("POST", CM_PATH)
        .identity(Identity::Kubeconfig(expired.clone()))
        .json(configmap("by-expired"))
        .send()
        .assert_status(401);
    not_stored(&kg, &["cm", "by-expired"]);

    // Another CA: the admin certificate of a second kgate, even with system:masters.
    let other = Kgate::up();
    let foreign = kg.files().join("foreign.kubeconfig");
    kubeconfig_with_user_from(&kg.admin_kubeconfig(), &other.admin_kubeconfig(), &foreign);
    drop(other);
    kg.kubectl_as(&foreign, &["get", "ns"])
        .fails_with(LOGGED_OUT);
    kg.request("POST", CM_PATH)
        .identity(Identity::Kubeconfig(foreign))
        .json(configmap("by-foreign"))
        .send()
        .assert_status(401);
    not_stored(&kg, &["cm", "by-foreign"]);

    // A garbage bearer token is 401, never anonymous.
    kg.request("GET", "/api/v1/namespaces")
        .identity(Identity::Bearer("garbage.not-a.jwt".to_owned()))
        .send()
        .assert_status(401);
    kg.request("POST", CM_PATH)
        .identity(Identity::Bearer("garbage".to_owned()))
        .json(configmap("by-garbage"))
        .send()
        .assert_status(401);
    not_stored(&kg, &["cm", "by-garbage"]);

    // No credential at all: 401 (anonymous is off by default).
    kg.request("GET", "/api/v1/namespaces")
        .identity(Identity::None)
        .send()
        .assert_status(401);

    still_serves(&mut kg);
}

#[test]
fn non_canonical_paths_are_400_status() {
    let mut kg = Kgate::up();
    kg.kubectl_ok(&["create", "secret", "generic", "s", "--from-literal=a=b"]);
    for path in [
        "/api/v1/namespaces/default/configmaps/../secrets",
        "/api/v1/namespaces/default/configmaps/x/../../secrets/s",
        "/api/v1/namespaces/default/../kube-system/secrets",
        "/api/v1/namespaces/default/secrets/..",
        "/api/v1/namespaces/default%2Fsecrets",
        "/api/v1/namespaces/default/configmaps/a%2Fb",
        "/api/v1/namespaces/default/configmaps/a%2fb",
        "/api//v1/namespaces",
    ] {
        kg.request("GET", path).send().assert_status(400);
    }
    // A write through a non-canonical path stores nothing.
    kg.request("POST", "/api/v1/namespaces/default/secrets/../configmaps")
        .json(configmap("dotdot"))
        .send()
        .assert_status(400);
    not_stored(&kg, &["cm", "dotdot"]);
    // Rejected before authentication: no credential still gets the 400.
    kg.request("GET", "/api/v1/namespaces/default/configmaps/../secrets")
        .identity(Identity::None)
        .send()
        .assert_status(400);
    still_serves(&mut kg);
}

#[test]
fn headers_and_bodies_over_the_limits_are_refused() {
    let mut kg = Kgate::up_with(Options {
        max_request_bytes: Some(64 * 1024),
        max_header_bytes: Some(8 * 1024),
        ..Options::default()
    });

    // Headers over --max-header-bytes: 431, over HTTP/2 (curl's default) and HTTP/1.1.
    let filler = format!("X-Filler: {}", "a".repeat(16 * 1024));
    let resp = kg
        .request("GET", "/api/v1/namespaces")
        .header(&filler)
        .send();
    resp.assert_status(431);
    let resp = kg
        .request("GET", "/api/v1/namespaces")
        .header(&filler)
        .http1()
        .send();
    resp.assert_status(431);
    // Just under the limit is fine.
    let small = format!("X-Filler: {}", "a".repeat(2 * 1024));
    let resp = kg
        .request("GET", "/api/v1/namespaces")
        .header(&small)
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    // Many small header fields under the size limit are served over HTTP/1.1 too (kube-apiserver
    // limits the size of the block, not the count of its fields).
    let mut request = kg.request("GET", "/api/v1/namespaces").http1();
    for i in 0..150 {
        request = request.header(&format!("X-Field-{i}: v"));
    }
    let resp = request.send();
    assert_eq!(resp.status, 200, "{resp}");
    still_serves(&mut kg);

    // A body over --max-request-bytes: 413, with a Content-Length or chunked.
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    kg.request("POST", CM_PATH)
        .json(big.clone())
        .send()
        .assert_status(413);
    kg.request("POST", CM_PATH)
        .json(big.clone())
        .http1()
        .send()
        .assert_status(413);
    kg.request("POST", CM_PATH)
        .json(big.clone())
        .chunked()
        .send()
        .assert_status(413);
    not_stored(&kg, &["cm", "big"]);
    // Through kubectl as well: it shows the server's refusal.
    let file = kg.write_file("big.json", &big);
    let run = kg.kubectl(&["create", "-f", &file.to_string_lossy()]);
    assert!(!run.success(), "a body over the limit was accepted:\n{run}");
    not_stored(&kg, &["cm", "big"]);
    // Under the limit is fine.
    let resp = kg.request("POST", CM_PATH).json(configmap("small")).send();
    assert_eq!(resp.status, 201, "{resp}");
    still_serves(&mut kg);
}

#[test]
fn malformed_and_mismatched_bodies_are_400_status() {
    let mut kg = Kgate::up();

    // Malformed JSON.
    let status = kg
        .request("POST", CM_PATH)
        .json(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"broken""#)
        .send()
        .assert_status(400);
    assert_eq!(status["reason"], "BadRequest", "{status}");
    not_stored(&kg, &["cm", "broken"]);
    kg.request("PUT", "/api/v1/namespaces/default/configmaps/broken")
        .json("not json at all")
        .send()
        .assert_status(400);
    not_stored(&kg, &["cm", "broken"]);

    // A Secret posted to the configmaps URL.
    let status = kg
        .request("POST", CM_PATH)
        .json(r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"mismatch"},"stringData":{"a":"b"}}"#)
        .send()
        .assert_status(400);
    assert_eq!(status["reason"], "BadRequest", "{status}");
    not_stored(&kg, &["cm", "mismatch"]);
    not_stored(&kg, &["secret", "mismatch"]);
    // A Deployment posted to the core group's pods URL (group and kind both wrong).
    kg.request("POST", "/api/v1/namespaces/default/pods")
        .json(r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"mismatch"}}"#)
        .send()
        .assert_status(400);
    not_stored(&kg, &["pod", "mismatch"]);
    not_stored(&kg, &["deploy", "mismatch"]);
    // A body naming another namespace than the URL.
    kg.request("POST", CM_PATH)
        .json(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"elsewhere","namespace":"kube-system"}}"#)
        .send()
        .assert_status(400);
    not_stored(&kg, &["cm", "elsewhere", "-n", "kube-system"]);
    not_stored(&kg, &["cm", "elsewhere"]);

    // The same object, well formed, is accepted afterwards.
    let resp = kg.request("POST", CM_PATH).json(configmap("fine")).send();
    assert_eq!(resp.status, 201, "{resp}");
    still_serves(&mut kg);
}

/// `{"f:a": {"f:a": ... "x"}}`, `levels` deep, as JSON text.
fn nested(levels: usize) -> String {
    format!("{}\"x\"{}", r#"{"f:a":"#.repeat(levels), "}".repeat(levels))
}

/// A JSON patch puts a value at the end of its path however deep that is, so a few shallow
/// operations can build an object deeper than JSON parsers read back (serde_json stops at
/// 128 levels). Stored, that object failed every list of its resource with a 500. Objects are
/// held to 100 levels; the patch is a 422 and the list keeps working.
#[test]
fn no_patch_nests_an_object_too_deep_to_read_back() {
    let mut kg = Kgate::up();
    let created = kg.request("POST", CM_PATH).json(configmap("deep")).send();
    assert_eq!(created.status, 201, "{created}");
    // managedFields[].fieldsV1 takes any JSON: 94 levels in all.
    let managed = format!(
        r#"{{"metadata":{{"managedFields":[{{"manager":"m","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{}}}]}}}}"#,
        nested(90)
    );
    let resp = kg
        .request("PATCH", &format!("{CM_PATH}/deep"))
        .body("application/merge-patch+json", managed)
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    let version = kg.resource_version(&["configmap", "deep"]);
    // Ninety levels more at the end of a path.
    let path = format!("/metadata/managedFields/0/fieldsV1{}", "/f:a".repeat(89));
    let deeper = format!(
        r#"[{{"op":"replace","path":"{path}","value":{}}}]"#,
        nested(90)
    );
    let status = kg
        .request("PATCH", &format!("{CM_PATH}/deep"))
        .body("application/json-patch+json", deeper)
        .send()
        .assert_status(422);
    assert_eq!(
        status["message"], "the object is nested more than 100 levels deep",
        "{status}"
    );
    assert_eq!(kg.resource_version(&["configmap", "deep"]), version);
    let listed = kg.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    assert!(listed.contains("configmap/deep"), "{listed}");
    still_serves(&mut kg);
}
