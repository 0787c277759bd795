use super::*;
use serde_json::json;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/src/apiserver/testdata/protobuf/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).expect("fixture");
    decode(&bytes).expect("decodes")
}

#[test]
fn the_table_loads_and_covers_the_served_kinds() {
    assert!(TABLE.len() > 200, "{} messages", TABLE.len());
    for kind in ["Namespace", "Pod", "Secret", "ConfigMap", "Service", "Node"] {
        let name = crate::schema::definition_name_for_kind("", "v1", kind).expect("definition");
        assert!(TABLE.contains_key(name), "{name}");
    }
}

#[test]
fn kubectl_create_namespace() {
    assert_eq!(
        fixture("namespace.pb"),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}, "spec": {}, "status": {}})
    );
}

#[test]
fn kubectl_create_rolebinding() {
    assert_eq!(
        fixture("rolebinding.pb"),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice-view", "namespace": "team"},
            "subjects": [
                {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
                {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "dev"}
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
        })
    );
}

#[test]
fn kubectl_create_deployment() {
    let d = fixture("deployment.pb");
    assert_eq!(
        d["metadata"],
        json!({"name": "web", "namespace": "team", "labels": {"app": "web"}})
    );
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "nginx");
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["ports"], json!([{"containerPort": 80}]));
    // Go's zero values of non-pointer fields are not carried over as JSON.
    assert!(container.get("stdin").is_none(), "{container}");
    assert!(d["spec"]["template"]["metadata"]
        .get("creationTimestamp")
        .is_none());
}

#[test]
fn an_explicit_zero_of_a_pointer_field_is_kept() {
    let d = fixture("deployment-zero-replicas.pb");
    assert_eq!(d["spec"]["replicas"], 0);
}

#[test]
fn secret_bytes_are_base64_and_empty_values_kept() {
    let s = fixture("secret.pb");
    assert_eq!(s["data"], json!({"password": "aHVudGVyMg==", "empty": ""}));
}

#[test]
fn configmap_serviceaccount_service() {
    assert_eq!(fixture("configmap.pb")["data"], json!({"a": "b"}));
    assert_eq!(
        fixture("serviceaccount.pb")["metadata"],
        json!({"name": "jenkins", "namespace": "ci"})
    );
    let svc = fixture("service.pb");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}])
    );
}

#[test]
fn bad_bodies_are_400_never_a_panic() {
    let good = std::fs::read(format!(
        "{}/src/apiserver/testdata/protobuf/deployment.pb",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{\"kind\":\"Namespace\"}".to_vec(),
        b"k8s\0".to_vec(),
        b"k8s\0\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        good[..good.len() / 2].to_vec(),
    ];
    for body in bodies {
        let err = decode(&body).expect_err("refused");
        assert_eq!(err.code, 400, "{body:?}: {err:?}");
    }
    // Every truncation and every single-byte corruption: an answer, never a panic.
    for cut in 0..good.len() {
        let _ = decode(&good[..cut]);
        let mut flipped = good.clone();
        flipped[cut] ^= 0x5a;
        let _ = decode(&flipped);
    }
}

#[test]
fn an_unknown_kind_is_refused_by_name() {
    // runtime.Unknown{typeMeta{apiVersion "v1", kind "Nope"}}
    let body = b"k8s\0\x0a\x0a\x0a\x02v1\x12\x04Nope";
    let err = decode(body).expect_err("unknown kind");
    assert_eq!(err.code, 400);
    assert!(err.message.contains("\"Nope\""), "{}", err.message);
}

/// An inline struct that embeds another (a policy's NamedRuleWithOperations embeds
/// RuleWithOperations, which embeds Rule) is flattened at both levels, as JSON has it.
#[test]
fn an_embedded_struct_inside_an_embedded_struct_is_flattened() {
    let named = &TABLE["io.k8s.api.admissionregistration.v1.NamedRuleWithOperations"];
    let inline = &named[&2];
    assert_eq!(
        (inline.json_name.as_str(), inline.type_name.as_str()),
        ("", "io.k8s.api.admissionregistration.v1.RuleWithOperations")
    );
    let with_operations = &TABLE["io.k8s.api.admissionregistration.v1.RuleWithOperations"];
    assert_eq!(with_operations[&2].json_name, "");
}
