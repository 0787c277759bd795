//! Tests of [`super`].

use super::*;
use crate::resources::lookup;
use serde_json::json;

fn pod(labels: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "ns", "labels": labels}})
}

#[test]
fn label_selector_table() {
    let obj = pod(json!({"app": "web", "tier": "front", "n": "5", "empty": ""}));
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app = web", true),
        ("app=db", false),
        ("app!=db", true),
        ("app!=web", false),
        ("missing!=x", true),
        ("app in (web,db)", true),
        ("app in (db)", false),
        ("missing in (x)", false),
        ("app notin (db)", true),
        ("app notin (web, db)", false),
        ("missing notin (x)", true),
        ("app", true),
        ("missing", false),
        ("!missing", true),
        ("!app", false),
        ("app=web,tier=front", true),
        ("app=web,tier=back", false),
        ("app=web, !missing, tier in (front)", true),
        ("n>4", true),
        ("n>5", false),
        ("n<6", true),
        ("app>1", false),
        ("empty=", true),
        ("empty in ()", true),
        ("empty in (x,)", true),
        ("example.com/app", false),
    ];
    for (sel, want) in cases {
        let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {}", e.message));
        assert_eq!(s.matches(&obj), *want, "{sel}");
    }
    assert!(LabelSelector::everything().matches(&json!({})));
    assert!(!LabelSelector::parse("a").expect("ok").matches(&json!({})));
}

#[test]
fn label_selector_errors() {
    let cases: &[(&str, &str)] = &[
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("-a=b", "unable to parse requirement: key: Invalid value: \"-a\": name part must consist of"),
        ("a/b/c", "unable to parse requirement: key: Invalid value: \"a/b/c\": a qualified name must consist of"),
        ("Foo.com/a", "unable to parse requirement: key: Invalid value: \"Foo.com/a\": prefix part a lowercase RFC 1123 subdomain"),
        ("a=-b", "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be"),
        ("a>x", "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"),
    ];
    for (sel, text) in cases {
        let err = LabelSelector::parse(sel).expect_err(sel);
        assert_eq!(err.code, 400, "{sel}");
        assert_eq!(err.reason, "BadRequest");
        assert!(err.message.starts_with(text), "{sel}: {}", err.message);
    }
    let long = format!("a={}", "x".repeat(64));
    assert!(LabelSelector::parse(&long)
        .expect_err("long")
        .message
        .contains("must be no more than 63 characters"));
}

fn def(kind: &str) -> &'static ResourceDef {
    crate::resources::RESOURCES
        .iter()
        .find(|d| d.kind == kind)
        .unwrap_or_else(|| panic!("{kind}"))
}

#[test]
fn field_selector_table() {
    let p = json!({
        "metadata": {"name": "web-1", "namespace": "team"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}
    });
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("metadata.name=web-1", true),
        ("metadata.name==web-1", true),
        ("metadata.name!=web-1", false),
        ("metadata.namespace=team", true),
        ("spec.nodeName=n1,status.phase=Running", true),
        ("spec.nodeName=", false),
        ("spec.schedulerName=", true),
        ("status.phase!=Pending", true),
        ("status.podIP=10.0.0.1", true),
        ("spec.hostNetwork=false", true),
    ];
    for (sel, want) in cases {
        let s = FieldSelector::parse(def("Pod"), sel)
            .unwrap_or_else(|e| panic!("{sel}: {}", e.message));
        assert_eq!(s.matches(&p), *want, "{sel}");
    }
    let node = json!({"metadata": {"name": "n1"}, "spec": {}});
    let s = FieldSelector::parse(def("Node"), "spec.unschedulable=false").expect("ok");
    assert!(s.matches(&node));
    let secret = json!({"metadata": {"name": "s"}, "type": "Opaque"});
    let s = FieldSelector::parse(def("Secret"), "type=Opaque").expect("ok");
    assert!(s.matches(&secret));
    let ev = json!({"involvedObject": {"kind": "Pod", "name": "web-1"}, "source": {"component": "kubelet"}, "reason": "Started"});
    let s = FieldSelector::parse(
        def("Event"),
        "involvedObject.kind=Pod,involvedObject.name=web-1,source=kubelet,reason=Started",
    )
    .expect("ok");
    assert!(s.matches(&ev));
    let rs = lookup("apps", "v1", "replicasets").expect("rs");
    assert!(FieldSelector::parse(rs, "status.replicas=0")
        .expect("ok")
        .matches(&json!({})));
    let escaped = FieldSelector::parse(def("ConfigMap"), r"metadata.name=a\,b").expect("ok");
    assert!(escaped.matches(&json!({"metadata": {"name": "a,b"}})));
    assert_eq!(
        FieldSelector::parse(def("Pod"), "metadata.name=x")
            .expect("ok")
            .required_name(),
        Some("x")
    );
}

/// ResourceSlices are selected by node and driver (what kubelets and the scheduler watch by),
/// and, as in resource.k8s.io/v1's conversion, not by namespace.
#[test]
fn resource_slices_and_replication_controllers_have_their_field_labels() {
    let slices = lookup("resource.k8s.io", "v1", "resourceslices").expect("slices");
    let slice = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n1", "driver": "d.io"}});
    let s = FieldSelector::parse(slices, "spec.nodeName=n1,spec.driver=d.io").expect("ok");
    assert!(s.matches(&slice));
    assert!(!FieldSelector::parse(slices, "spec.nodeName=n2")
        .expect("ok")
        .matches(&slice));
    let err = FieldSelector::parse(slices, "metadata.namespace=x").expect_err("no namespace");
    assert_eq!(
        err.message,
        "field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: metadata.namespace"
    );
    let rcs = lookup("", "v1", "replicationcontrollers").expect("rcs");
    assert!(FieldSelector::parse(rcs, "status.replicas=2")
        .expect("ok")
        .matches(&json!({"status": {"replicas": 2}})));
    let err = FieldSelector::parse(rcs, "spec.replicas=1").expect_err("not a label");
    assert_eq!(err.message, "field label not supported: spec.replicas");
}

#[test]
fn field_selector_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("Pod", "spec.foo=x", "field label not supported: spec.foo"),
        ("Node", "status.phase=x", "field label not supported: status.phase"),
        ("ConfigMap", "data.a=x", "\"data.a\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
        ("Pod", "metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("Pod", "metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        ("Pod", r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
        ("Pod", "metadata.name = x", "field label not supported: metadata.name "),
    ];
    for (kind, sel, text) in cases {
        let err = FieldSelector::parse(def(kind), sel).expect_err(sel);
        assert_eq!(err.code, 400);
        assert_eq!(&err.message, text, "{sel}");
    }
}

#[test]
fn selectors_print_in_kube_syntax_and_read_back() {
    for (text, printed) in [
        ("", ""),
        ("app==web", "app=web"),
        ("app = web, tier!=db", "app=web,tier!=db"),
        (
            "!a, b, c in (x, y), d notin (z,), n>4, m<5",
            "!a,b,c in (x,y),d notin (z,),n>4,m<5",
        ),
        ("empty=", "empty="),
        ("example.com/app in (,a)", "example.com/app in (,a)"),
    ] {
        let selector = LabelSelector::parse(text).expect(text);
        assert_eq!(selector.to_string(), printed, "{text}");
        assert_eq!(
            LabelSelector::parse(printed).expect(printed),
            selector,
            "{text}"
        );
    }
    for (text, printed) in [
        ("", ""),
        (
            "metadata.name==a,,spec.nodeName!=n1",
            "metadata.name=a,spec.nodeName!=n1",
        ),
        (r"metadata.name=a\,b\=c\\d", r"metadata.name=a\,b\=c\\d"),
        ("status.phase=", "status.phase="),
    ] {
        let selector = FieldSelector::parse(def("Pod"), text).expect(text);
        assert_eq!(selector.to_string(), printed, "{text}");
        assert_eq!(
            FieldSelector::parse(def("Pod"), printed).expect(printed),
            selector,
            "{text}"
        );
    }
}
