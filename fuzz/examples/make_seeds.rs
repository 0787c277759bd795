//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/` (each folder is
//! replaced whole): `cargo run -p kgate-fuzz --example make_seeds [TARGET...]` (all targets
//! without arguments; the token seeds are signed with new keys each time).
//!
//! Seeds are realistic inputs, each a few hundred bytes: kubectl's request paths, real
//! ServiceAccount tokens from kgate's own issuer and their claims, OIDC claims for the
//! configured issuers, certificate chains of the fuzz PKI, selectors and patches of the shapes
//! kubectl sends, and a few inputs each target must refuse. Tokens are signed with keys made
//! here, so the raw ones fail the targets' signature checks (the signed modes reach past it);
//! certificates are deterministic (see `x509_chain`).

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use kgate_controlplane::resources::RESOURCES;
use kgate_fuzz::jose::Signer;
use kgate_fuzz::x509_chain::{self, pki};
use kgate_fuzz::{jwt_oidc, jwt_serviceaccount};
use kgate_tokens::{
    Algorithm, BoundKind, BoundObject, IssuerConfig, KeySet, SharedKeys, TokenIssuer,
    TokenRequestSpec,
};
use rcgen::{
    date_time_ymd, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let targets: [(&str, MakeSeeds); 9] = [
        ("request_info", request_info),
        ("bearer", bearer),
        ("jwt_serviceaccount", jwt_serviceaccount),
        ("jwt_oidc", jwt_oidc),
        ("x509_chain", x509_chain),
        ("selectors", selectors),
        ("patch", patch),
        ("stored_object", stored_object),
        ("quantity", quantity),
    ];
    for (name, seeds) in targets {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            write(&root, name, seeds());
        }
    }
}

/// Quantities kube accepts in every form (suffixes, exponents, fractions, signs, spaces) and
/// text it refuses.
fn quantity() -> Seeds {
    [
        ("binary", "1.5Gi"),
        ("decimal", "2000"),
        ("milli", "0.5"),
        ("exponent", "2e3"),
        ("big-exponent", "12E-3"),
        ("signed", "+100m"),
        ("negative", "-1Ki"),
        ("spaced", " 1Gi "),
        ("huge", "99999999999999999999999999999999999999999Ei"),
        ("tiny", "0.000000000001"),
        ("bad-suffix", "1Gb"),
        ("bad-grammar", "1.2.3"),
        ("empty", ""),
        ("unicode", "1\u{ff11}Mi"),
        // Found by the fuzzer: forms past 10^38 that did not read back as themselves.
        ("beyond-i128", "9999999999999994.90Ei"),
        (
            "beyond-i128-exponent",
            "61111111111111111111111111111111111100e3",
        ),
    ]
    .into_iter()
    .map(|(name, text)| (name, text.as_bytes().to_vec()))
    .collect()
}

/// Stored values: what encode_object writes for a few kinds, values whose strings hold braces,
/// quotes and escapes, and damage.
fn stored_object() -> Seeds {
    let objects = [
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns", "uid": "0c6f", "labels": {"app": "web"},
                "annotations": {"x": "}{\"]\\", "ctl": "\u{1}\t"}},
            "data": {"metadata": "{\"resourceVersion\":\"1\"}"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "team", "generation": 2,
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u"}]},
            "spec": {"replicas": 3, "template": {"metadata": {}, "spec": {"containers": [
                {"name": "c", "image": "nginx", "resources": {"limits": {"cpu": 0.5}}}]}}}}),
        json!({"kind": "X", "metadata": {}}),
    ];
    let mut seeds: Seeds = vec![
        (
            "no-metadata",
            br#"{"kind":"X","spec":{"a":[1,2]}}"#.to_vec(),
        ),
        ("metadata-text", br#"{"metadata":"m"}"#.to_vec()),
        (
            "kept-rv",
            br#"{"metadata":{"name":"a","resourceVersion":"9"}}"#.to_vec(),
        ),
        ("spaces", br#" { "metadata" : { "name" : "a" } } "#.to_vec()),
        (
            "escapes",
            br#"{"metadata":{"name":"a"\/"},"n":1E2}"#.to_vec(),
        ),
        ("truncated", br#"{"metadata":{"name":"a"}"#.to_vec()),
        ("trailing", br#"{"metadata":{"name":"a"}}}"#.to_vec()),
        ("array", b"[1,2]".to_vec()),
        ("open-string", br#"{"metadata":{"name":"a"#.to_vec()),
    ];
    for (name, object) in ["configmap", "deployment", "empty-metadata"]
        .into_iter()
        .zip(objects)
    {
        seeds.push((name, serde_json::to_vec(&object).unwrap()));
    }
    seeds
}

type Seeds = Vec<(&'static str, Vec<u8>)>;

/// A target's seed maker.
type MakeSeeds = fn() -> Seeds;

fn write(root: &Path, target: &str, seeds: Seeds) {
    let dir: PathBuf = root.join(target);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in &seeds {
        std::fs::write(dir.join(name), data).unwrap();
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
}

/// `mode` followed by `rest`.
fn moded(mode: u8, rest: impl AsRef<[u8]>) -> Vec<u8> {
    [&[mode][..], rest.as_ref()].concat()
}

fn text(seeds: &[(&'static str, &str)]) -> Seeds {
    seeds
        .iter()
        .map(|(name, s)| (*name, s.as_bytes().to_vec()))
        .collect()
}

fn request_info() -> Seeds {
    text(&[
        ("list-pods", "GET /api/v1/namespaces/default/pods?limit=500"),
        ("watch-pods", "GET /api/v1/namespaces/default/pods?watch=true&resourceVersion=10&allowWatchBookmarks=true"),
        ("get-by-field", "GET /api/v1/namespaces/team/pods?fieldSelector=metadata.name%3Dweb-1"),
        ("create-deployment", "POST /apis/apps/v1/namespaces/default/deployments?fieldManager=kubectl-client-side-apply"),
        ("patch-scale", "PATCH /apis/apps/v1/namespaces/default/deployments/web/scale"),
        ("deletecollection", "DELETE /api/v1/namespaces/default/configmaps?labelSelector=app%3Dweb"),
        ("watch-one", "GET /api/v1/watch/namespaces/default/pods/web-1"),
        ("log", "GET /api/v1/namespaces/default/pods/web-1/log?follow=true&container=app"),
        ("token-request", "POST /api/v1/namespaces/ci/serviceaccounts/jenkins/token"),
        ("proxy-verb", "GET /api/v1/proxy/namespaces/default/services/web:80/healthz"),
        ("proxy-subresource", "GET /api/v1/namespaces/default/pods/web-1/proxy/a/b"),
        ("finalize", "PUT /api/v1/namespaces/team/finalize"),
        ("rbac", "GET /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admin"),
        ("encoded-name", "GET /api/v1/namespaces/team/configmaps/a%20b"),
        ("options", "OPTIONS /api/v1/nodes/n1/status"),
        ("openapi", "GET /openapi/v3/apis/apps/v1?hash=abc"),
        ("well-known", "GET /.well-known/openid-configuration"),
        ("healthz", "GET /healthz?verbose"),
        ("dot-dot", "GET /api/v1/namespaces/a/../b/pods"),
        ("encoded-slash", "GET /api/v1/namespaces/a%2Fb/pods"),
        ("double-slash", "GET /api//v1/pods"),
        ("not-utf8", "GET /api/v1/pods/%ff"),
        ("encoded-dots", "GET /api/v1/namespaces/%2e%2e/pods"),
        ("bare-watch", "GET /api/v1/watch"),
        ("relative", "GET api/v1/pods"),
    ])
}

fn bearer() -> Seeds {
    text(&[
        ("bearer", "Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln\nAccept: application/json"),
        ("lower-case-with-identity", "authorization: bearer token-1\nX-Remote-User: admin\nX-Remote-Group: system:masters\nX-Forwarded-For: 10.0.0.1\nX-Remote-Extra-Scopes: all"),
        ("impersonation", "Authorization: BEARER abc\nImpersonate-User: bob\nImpersonate-Group: dev\nImpersonate-Extra-Scopes: view"),
        ("basic", "Authorization: Basic dXNlcjpwYXNz"),
        ("two", "Authorization: Bearer a\nAuthorization: Bearer b"),
        ("two-spaces", "Authorization: Bearer  abc"),
        ("no-token", "Authorization: Bearer"),
        ("tab", "Authorization: Bearer a\tb"),
        ("none", "Content-Type: application/json\nUser-Agent: kubectl/v1.33.1 (linux/amd64)"),
    ])
}

fn b64_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn jwt_serviceaccount() -> Seeds {
    let dir = std::env::temp_dir().join(format!("kgate-seeds-{}", std::process::id()));
    let keys = KeySet::load_or_create(&dir, Algorithm::Es256).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let issuer = TokenIssuer::new(
        SharedKeys::new(keys),
        IssuerConfig::new(jwt_serviceaccount::ISSUER),
    );
    let now = UNIX_EPOCH + Duration::from_secs(jwt_serviceaccount::NOW as u64);
    let spec = |bound: Option<BoundObject>| TokenRequestSpec {
        namespace: "ci".into(),
        service_account_name: "jenkins".into(),
        service_account_uid: "uid-jenkins".into(),
        audiences: vec![],
        expiration_seconds: 3600,
        bound,
        pod_node: None,
    };
    let pod = BoundObject {
        kind: BoundKind::Pod,
        name: "runner".into(),
        uid: "uid-runner".into(),
    };
    let mut pod_on_node = spec(Some(pod));
    pod_on_node.pod_node = Some(("n1".into(), "uid-n1".into()));
    let bound = issuer.issue(&spec(None), now).unwrap().token;
    let pod_bound = issuer.issue(&pod_on_node, now).unwrap().token;
    let legacy = issuer
        .issue_legacy("ci", "jenkins", "uid-jenkins", "jenkins-token")
        .unwrap();

    let claims_of = |token: &str| b64_json(token.split('.').nth(1).unwrap());
    let header_of = |token: &str| token.split('.').next().unwrap().to_owned();
    let signed =
        |mode: u8, header: &str, claims: &Value| moded(mode, format!("{header}\n{claims}"));
    let es256 = r#"{"alg":"ES256","typ":"JWT"}"#;
    let bound_claims = claims_of(&bound);
    let mut expired = bound_claims.clone();
    expired["exp"] = json!(jwt_serviceaccount::NOW - 3600);
    let mut wrong_sub = bound_claims.clone();
    wrong_sub["sub"] = json!("system:serviceaccount:ci:admin");
    let mut gone = claims_of(&pod_bound);
    gone["kubernetes.io"]["pod"]["name"] = json!("gone-runner");
    let real_header =
        String::from_utf8(URL_SAFE_NO_PAD.decode(header_of(&bound)).unwrap()).unwrap();
    vec![
        ("raw-bound", moded(0, &bound)),
        ("raw-pod-bound", moded(0, &pod_bound)),
        ("raw-legacy", moded(0, &legacy)),
        ("raw-garbage", moded(0, "a.b.c")),
        (
            "raw-alg-none",
            moded(
                0,
                format!("eyJhbGciOiJub25lIn0.{}.", bound.split('.').nth(1).unwrap()),
            ),
        ),
        ("signed-bound", signed(1, es256, &bound_claims)),
        (
            "signed-bound-with-kid",
            signed(3, &real_header, &bound_claims),
        ),
        ("signed-pod-bound", signed(1, es256, &claims_of(&pod_bound))),
        ("signed-legacy", signed(1, es256, &claims_of(&legacy))),
        (
            "signed-claims-only",
            moded(1, claims_of(&bound).to_string()),
        ),
        ("signed-expired", signed(1, es256, &expired)),
        ("signed-wrong-subject", signed(1, es256, &wrong_sub)),
        ("signed-gone-pod", signed(1, es256, &gone)),
        (
            "signed-rs256-header",
            signed(1, r#"{"alg":"RS256"}"#, &bound_claims),
        ),
        (
            "signed-hs256-header",
            signed(1, r#"{"alg":"HS256","typ":"JWT"}"#, &bound_claims),
        ),
    ]
}

fn jwt_oidc() -> Seeds {
    let now = jwt_oidc::NOW;
    let idp = json!({
        "iss": "https://idp.fuzz", "aud": "kgate", "sub": "alice", "hd": "example.com",
        "groups": ["dev", "ops"], "iat": now, "nbf": now, "exp": now + 3600,
    });
    let cel = json!({
        "iss": "https://cel.fuzz", "aud": ["other", "x"], "sub": "bob", "email": "bob@example.com",
        "email_verified": true, "groups": ["dev"], "tenant": "t1", "iat": now, "exp": now as f64 + 600.5,
    });
    let mut admin = cel.clone();
    admin["email"] = json!("admin@example.com");
    let mut banned = cel.clone();
    banned["banned"] = json!(true);
    let mut expired = idp.clone();
    expired["exp"] = json!(now - 1);
    let mut wrong_aud = idp.clone();
    wrong_aud["aud"] = json!(["nobody"]);
    let mut no_hd = idp.clone();
    no_hd.as_object_mut().unwrap().remove("hd");
    let header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid, "typ": "JWT"}).to_string();
    let signed =
        |mode: u8, header: &str, claims: &Value| moded(mode, format!("{header}\n{claims}"));
    let es256 = header("ES256", jwt_oidc::KID);
    // Raw tokens are signed by a key of their own: they fail the signature check.
    let other = Signer::generate();
    let raw = |claims: &Value| other.token(es256.as_bytes(), claims.to_string().as_bytes());
    vec![
        ("raw-idp", moded(0, raw(&idp))),
        ("raw-cel", moded(4, raw(&cel))),
        ("raw-garbage", moded(0, "eyJ.eyJ.")),
        ("signed-idp", signed(1, &es256, &idp)),
        ("signed-idp-claims-only", moded(1, idp.to_string())),
        ("signed-cel", signed(5, &es256, &cel)),
        ("signed-cel-no-kid", signed(5, r#"{"alg":"ES256"}"#, &cel)),
        ("signed-admin", signed(5, &es256, &admin)),
        ("signed-banned", signed(5, &es256, &banned)),
        ("signed-expired", signed(1, &es256, &expired)),
        ("signed-wrong-audience", signed(1, &es256, &wrong_aud)),
        ("signed-missing-hd", signed(1, &es256, &no_hd)),
        ("signed-wrong-issuer", signed(5, &es256, &idp)),
        ("signed-alg-none", signed(1, r#"{"alg":"none"}"#, &idp)),
        ("signed-crit", signed(1, r#"{"alg":"ES256","kid":"fuzz","crit":["exp"]}"#, &idp)),
        ("signed-unknown-kid", signed(1, &header("ES256", "other"), &idp)),
        ("signed-rs256-on-ec-key", signed(1, &header("RS256", jwt_oidc::KID), &idp)),
        ("jwks", moded(2, json!({"keys": [other.jwk("a"), {
            "kty": "RSA", "kid": "r", "use": "sig", "alg": "RS256", "e": "AQAB",
            "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"}]}).to_string())),
        ("jwks-empty", moded(2, r#"{"keys":[]}"#)),
        ("jwks-not-json", moded(6, "{\"keys\":")),
    ]
}

fn leaf(cn: Option<&str>, orgs: &[&str], eku: &[ExtendedKeyUsagePurpose]) -> CertificateParams {
    let mut params = CertificateParams::default();
    // rcgen's default subject is CN "rcgen self signed cert".
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    for org in orgs {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *org);
    }
    params.extended_key_usages = eku.to_vec();
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    params.is_ca = IsCa::ExplicitNoCa;
    params
}

fn x509_chain() -> Seeds {
    let (_, root) = pki::ca();
    let (intermediate, via) = pki::intermediate();
    let key = pki::key(pki::LEAF_SEED);
    let client = [ExtendedKeyUsagePurpose::ClientAuth];
    let alice = leaf(Some("alice"), &["dev", "ops"], &client);
    let by_root =
        |params: &CertificateParams| params.signed_by(&key, &root).unwrap().der().to_vec();
    let by_intermediate =
        |params: &CertificateParams| params.signed_by(&key, &via).unwrap().der().to_vec();
    let chain = |leaf: Vec<u8>| moded(0, [leaf, intermediate.clone()].concat());
    let tbs = |mode: u8, cert: &[u8]| moded(mode, x509_chain::tbs_of(cert).unwrap());

    let mut expired = alice.clone();
    expired.not_after = date_time_ymd(2021, 1, 1);
    let mut as_ca = pki::ca_params("alice");
    as_ca.extended_key_usages = client.to_vec();
    let server = leaf(Some("kgate"), &[], &[ExtendedKeyUsagePurpose::ServerAuth]);
    let no_eku = leaf(Some("bob"), &["system:masters"], &[]);
    let no_cn = leaf(None, &["dev"], &client);
    vec![
        ("chain-alice", chain(by_intermediate(&alice))),
        ("root-signed-alice", moded(0, by_root(&alice))),
        ("no-eku", moded(0, by_root(&no_eku))),
        ("server-eku", chain(by_intermediate(&server))),
        ("expired", chain(by_intermediate(&expired))),
        ("ca-as-leaf", moded(0, by_root(&as_ca))),
        ("no-cn", moded(0, by_root(&no_cn))),
        ("without-intermediate", moded(0, by_intermediate(&alice))),
        ("garbage", moded(0, [0x30, 0x82, 0x01, 0x00, 0x30, 0x03])),
        ("signed-by-root", tbs(1, &by_root(&alice))),
        ("signed-by-root-no-eku", tbs(1, &by_root(&no_eku))),
        ("signed-by-intermediate", tbs(3, &by_intermediate(&alice))),
        ("signed-server", tbs(3, &by_intermediate(&server))),
    ]
}

/// The index of a kind among the served resources.
fn resource(kind: &str) -> u8 {
    u8::try_from(RESOURCES.iter().position(|d| d.kind == kind).unwrap()).unwrap()
}

fn selectors() -> Seeds {
    let field = |kind: &str| 2 * resource(kind) + 1;
    vec![
        ("label-equality", moded(0, "app=web,tier!=db")),
        (
            "label-sets",
            moded(0, "environment in (production, qa),tier notin (frontend,)"),
        ),
        ("label-exists", moded(0, "!canary,example.com/owner")),
        ("label-numbers", moded(0, "replicas>4,priority<10")),
        ("label-empty-values", moded(0, "a=,b in (,x)")),
        ("label-trailing-comma", moded(0, "app=web,")),
        ("label-open-set", moded(0, "app in (a")),
        ("label-bad-key", moded(0, "-app=web")),
        (
            "field-pod",
            moded(
                field("Pod"),
                "metadata.name=web-1,spec.nodeName!=n1,status.phase=Running",
            ),
        ),
        (
            "field-event",
            moded(
                field("Event"),
                "involvedObject.kind=Pod,involvedObject.name=web-1,source=kubelet",
            ),
        ),
        (
            "field-escaped",
            moded(
                field("ConfigMap"),
                r"metadata.name=a\,b\=c,metadata.namespace!=kube-system",
            ),
        ),
        (
            "field-node",
            moded(field("Node"), "spec.unschedulable=false"),
        ),
        ("field-unsupported", moded(field("Pod"), "spec.foo=x")),
        ("field-bad-escape", moded(field("Secret"), r"type=a\x")),
    ]
}

fn patch() -> Seeds {
    let (json_patch, merge, strategic) = (0, 1, 2);
    let mode = |kind: &str, patch_type: u8| 3 * resource(kind) + patch_type;
    let with = |current: &Value, patch: &str| {
        [current.to_string().as_bytes(), b"\0", patch.as_bytes()].concat()
    };
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [
                    {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                     "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "busybox", "args": ["sleep", "inf"]}],
                "volumes": [{"name": "data", "emptyDir": {}}]}}},
    });
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}], "tolerations": [{"key": "k", "operator": "Exists"}]},
    });
    let configmap = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    vec![
        (
            "strategic-image",
            moded(
                mode("Deployment", strategic),
                with(
                    &deployment,
                    r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}"#,
                ),
            ),
        ),
        (
            "strategic-delete-container",
            moded(
                mode("Deployment", strategic),
                with(
                    &deployment,
                    r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
                ),
            ),
        ),
        (
            "strategic-element-order",
            moded(
                mode("Deployment", strategic),
                with(
                    &deployment,
                    r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"sidecar"},{"name":"app"}],"containers":[{"name":"app","env":[{"name":"B","value":"2"}]}]}}}}"#,
                ),
            ),
        ),
        (
            "strategic-retain-keys",
            moded(
                mode("Deployment", strategic),
                with(
                    &deployment,
                    r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
                ),
            ),
        ),
        (
            "strategic-finalizers",
            moded(
                mode("Deployment", strategic),
                with(
                    &deployment,
                    r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["c"]}}"#,
                ),
            ),
        ),
        (
            "strategic-replace",
            moded(
                mode("Pod", strategic),
                with(
                    &pod,
                    r#"{"spec":{"tolerations":[{"key":"x","operator":"Equal","value":"y"}],"$patch":"replace"}}"#,
                ),
            ),
        ),
        (
            "strategic-map-only",
            moded(
                mode("Deployment", strategic),
                with(
                    &deployment,
                    r#"{"metadata":{"labels":{"app":null,"tier":"front"}},"spec":{"replicas":3}}"#,
                ),
            ),
        ),
        (
            "strategic-bad-directive",
            moded(
                mode("Pod", strategic),
                with(&pod, r#"{"$patch":"explode"}"#),
            ),
        ),
        (
            "merge-data",
            moded(
                mode("ConfigMap", merge),
                with(&configmap, r#"{"data":{"a":null,"c":"3"}}"#),
            ),
        ),
        (
            "merge-default",
            moded(
                mode("Secret", merge),
                r#"{"metadata":{"labels":{"app":null,"x":"y"}},"type":"Opaque"}"#,
            ),
        ),
        (
            "json-ops",
            moded(
                mode("Pod", json_patch),
                with(
                    &pod,
                    r#"[
            {"op":"add","path":"/metadata/labels/x","value":"y"},
            {"op":"replace","path":"/spec/containers/0/image","value":"busybox"},
            {"op":"remove","path":"/metadata/labels/app"},
            {"op":"test","path":"/kind","value":"Pod"},
            {"op":"move","from":"/metadata/labels/x","path":"/metadata/labels/z"},
            {"op":"copy","from":"/metadata/name","path":"/metadata/labels/name"},
            {"op":"add","path":"/spec/containers/-","value":{"name":"b","image":"b"}}]"#,
                ),
            ),
        ),
        (
            "json-test-only",
            moded(
                mode("Pod", json_patch),
                with(
                    &pod,
                    r#"[{"op":"test","path":"/metadata/name","value":"p"}]"#,
                ),
            ),
        ),
        (
            "json-missing-path",
            moded(
                mode("Pod", json_patch),
                with(&pod, r#"[{"op":"remove","path":"/spec/nothing"}]"#),
            ),
        ),
        ("not-json", moded(mode("Pod", merge), with(&pod, "{"))),
    ]
}
