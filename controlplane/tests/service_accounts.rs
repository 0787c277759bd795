//! ServiceAccount tokens through the API server's router: the `default` account of every
//! namespace, the TokenRequest subresource (JSON and protobuf bodies, defaults, validation,
//! bound objects), and legacy token Secrets. Tokens come from a real `kgate_tokens` issuer with
//! keys in a temporary directory, and are checked against its JWKS.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::*;
use http::Method;
use kgate_tokens::{Algorithm, IssuerConfig, KeySet, SharedKeys, TokenIssuer};
use serde_json::{json, Value};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const ACCOUNTS: &str = "/api/v1/namespaces/default/serviceaccounts";
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBkgate-test-ca\n-----END CERTIFICATE-----\n";

/// An issuer with fresh keys, and its JWKS (the keys live as long as the returned directory).
fn issuer(algorithm: Algorithm) -> (tempfile::TempDir, Arc<TokenIssuer>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeySet::load_or_create(&dir.path().join("sa-keys"), algorithm).unwrap();
    let jwks = keys.jwks();
    let issuer = TokenIssuer::new(
        SharedKeys::new(keys),
        IssuerConfig {
            issuer: ISSUER.to_owned(),
            api_audiences: vec![ISSUER.to_owned()],
            max_expiration: Duration::from_secs(48 * 3600),
        },
    );
    (dir, Arc::new(issuer), jwks)
}

/// A server with TokenRequest enabled.
async fn api_with_tokens() -> (Api, tempfile::TempDir, Value) {
    let api = Api::new().await;
    let (dir, issuer, jwks) = issuer(Algorithm::Es256);
    api.server.enable_token_requests(issuer);
    (api, dir, jwks)
}

async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not reached in 5 s");
}

fn account(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
}

fn token_request(spec: Value) -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
}

/// The claims of a JWT whose signature verifies against `jwks`.
fn verified_claims(token: &str, jwks: &Value) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS compact serialization");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is in the JWKS");
    let signed = format!("{}.{}", parts[0], parts[1]);
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let b64 = |field: &str| {
        URL_SAFE_NO_PAD
            .decode(key[field].as_str().unwrap())
            .unwrap()
    };
    match header["alg"].as_str().unwrap() {
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(b64("x"));
            point.extend(b64("y"));
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                point,
            )
            .verify(signed.as_bytes(), &signature)
            .expect("the ES256 signature verifies");
        }
        "RS256" => {
            ring::signature::RsaPublicKeyComponents {
                n: b64("n"),
                e: b64("e"),
            }
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                signed.as_bytes(),
                &signature,
            )
            .expect("the RS256 signature verifies");
        }
        other => panic!("unexpected alg {other}"),
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

fn audiences(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("aud {other}"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn unix_of(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn every_namespace_has_a_default_account_that_comes_back() {
    let api = Api::new().await;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let sa = api
            .get(&format!("/api/v1/namespaces/{ns}/serviceaccounts/default"))
            .await;
        assert_eq!(sa.code(), 200, "{ns}: {:?}", sa.body);
    }
    let created = api
        .post(
            "/api/v1/namespaces",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        )
        .await;
    assert_eq!(created.code(), 201);
    let path = "/api/v1/namespaces/team/serviceaccounts/default";
    wait_until(|| async { api.get(path).await.code() == 200 }).await;
    let first = api.get(path).await;
    assert_eq!(first.body["kind"], "ServiceAccount");
    assert_eq!(first.body["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(first.body["metadata"]["creationTimestamp"].is_string());
    assert!(!first.rv().is_empty());

    assert_eq!(api.delete(path).await.code(), 200);
    wait_until(|| async {
        let again = api.get(path).await;
        again.code() == 200 && again.body["metadata"]["uid"] != first.body["metadata"]["uid"]
    })
    .await;

    // A deleted namespace loses its account for good, and then itself.
    assert_eq!(api.delete("/api/v1/namespaces/team").await.code(), 200);
    wait_until(|| async { api.get("/api/v1/namespaces/team").await.code() == 404 }).await;
    assert_eq!(api.get(path).await.code(), 404);
}

#[tokio::test]
async fn token_request_returns_a_signed_token_for_the_account() {
    let (api, _keys, jwks) = api_with_tokens().await;
    let sa = api.post(ACCOUNTS, &account("jenkins")).await;
    assert_eq!(sa.code(), 201);
    let sa_uid = sa.body["metadata"]["uid"].as_str().unwrap().to_owned();

    let before = unix_now();
    let answer = api
        .post(
            &format!("{ACCOUNTS}/jenkins/token"),
            &token_request(
                json!({"audiences": ["https://ci.example.com"], "expirationSeconds": 1200}),
            ),
        )
        .await;
    assert_eq!(answer.code(), 201, "{:?}", answer.body);
    let body = &answer.body;
    assert_eq!(body["kind"], "TokenRequest");
    assert_eq!(body["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(body["metadata"]["name"], "jenkins");
    assert_eq!(body["metadata"]["namespace"], "default");
    assert_eq!(body["spec"]["audiences"], json!(["https://ci.example.com"]));
    assert_eq!(body["spec"]["expirationSeconds"], 1200);
    let expires = unix_of(body["status"]["expirationTimestamp"].as_str().unwrap());

    let claims = verified_claims(body["status"]["token"].as_str().unwrap(), &jwks);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:default:jenkins");
    assert_eq!(audiences(&claims), vec!["https://ci.example.com"]);
    assert_eq!(claims["exp"].as_i64().unwrap(), expires);
    assert!((before + 1200..=unix_now() + 1200).contains(&expires));
    let k8s = &claims["kubernetes.io"];
    assert_eq!(k8s["namespace"], "default");
    assert_eq!(k8s["serviceaccount"]["name"], "jenkins");
    assert_eq!(k8s["serviceaccount"]["uid"], sa_uid.as_str());
}

#[tokio::test]
async fn token_request_defaults_and_caps() {
    let (api, _keys, jwks) = api_with_tokens().await;
    // No spec at all: the API audiences, an hour.
    let answer = api
        .post(
            &format!("{ACCOUNTS}/default/token"),
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}),
        )
        .await;
    assert_eq!(answer.code(), 201, "{:?}", answer.body);
    assert_eq!(answer.body["spec"]["audiences"], json!([ISSUER]));
    assert_eq!(answer.body["spec"]["expirationSeconds"], 3600);
    let claims = verified_claims(answer.body["status"]["token"].as_str().unwrap(), &jwks);
    assert_eq!(audiences(&claims), vec![ISSUER]);
    assert!((3599..=3601).contains(&(claims["exp"].as_i64().unwrap() - unix_now())));

    // Longer than the maximum: shortened, with kube's warning.
    let long = api
        .post(
            &format!("{ACCOUNTS}/default/token"),
            &token_request(json!({"expirationSeconds": 10 * 24 * 3600})),
        )
        .await;
    assert_eq!(long.code(), 201);
    assert_eq!(long.body["spec"]["expirationSeconds"], 48 * 3600);
    let warning = long.headers["warning"].to_str().unwrap();
    assert_eq!(
        warning,
        r#"299 - "requested expiration of 864000 seconds shortened to 172800 seconds""#
    );
}

#[tokio::test]
async fn token_request_refusals_use_kubes_words() {
    let (api, _keys, _) = api_with_tokens().await;
    let short = api
        .post(
            &format!("{ACCOUNTS}/default/token"),
            &token_request(json!({"expirationSeconds": 599})),
        )
        .await;
    assert_eq!(short.code(), 422);
    assert_eq!(short.body["reason"], "Invalid");
    assert_eq!(
        short.message(),
        r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"#
    );

    let missing = api
        .post(&format!("{ACCOUNTS}/nope/token"), &token_request(json!({})))
        .await;
    assert_eq!(missing.code(), 404);
    assert_eq!(missing.message(), r#"serviceaccounts "nope" not found"#);

    let renamed = api
        .post(
            &format!("{ACCOUNTS}/default/token"),
            &json!({"kind": "TokenRequest", "metadata": {"name": "other"}}),
        )
        .await;
    assert_eq!(renamed.code(), 422);
    assert!(
        renamed
            .message()
            .contains("must match the service account name"),
        "{}",
        renamed.message()
    );

    let wrong_kind = api
        .post(
            &format!("{ACCOUNTS}/default/token"),
            &json!({"apiVersion": "v1", "kind": "ConfigMap"}),
        )
        .await;
    assert_eq!(wrong_kind.code(), 400);

    // Reads and writes of the subresource other than create are not served.
    let get = api.get(&format!("{ACCOUNTS}/default/token")).await;
    assert_eq!(get.code(), 405);
}

#[tokio::test]
async fn token_request_without_an_issuer_is_not_found() {
    let api = Api::new().await;
    let answer = api
        .post(
            &format!("{ACCOUNTS}/default/token"),
            &token_request(json!({})),
        )
        .await;
    assert_eq!(answer.code(), 404);
    assert!(
        answer.message().contains("no ServiceAccount token issuer"),
        "{}",
        answer.message()
    );
}

#[tokio::test]
async fn bound_tokens_name_their_object_which_must_exist() {
    let (api, _keys, jwks) = api_with_tokens().await;
    let node = api
        .post(
            "/api/v1/nodes",
            &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
        )
        .await;
    assert_eq!(node.code(), 201, "{:?}", node.body);
    let node_uid = node.body["metadata"]["uid"].as_str().unwrap().to_owned();
    let mut p = pod("web");
    p["spec"]["nodeName"] = json!("n1");
    let created = api.post("/api/v1/namespaces/default/pods", &p).await;
    assert_eq!(created.code(), 201, "{:?}", created.body);
    let pod_uid = created.body["metadata"]["uid"].as_str().unwrap().to_owned();
    let path = format!("{ACCOUNTS}/default/token");
    let bound = |kind: &str, name: &str, uid: &str| {
        token_request(
            json!({"boundObjectRef": {"kind": kind, "apiVersion": "v1", "name": name, "uid": uid}}),
        )
    };

    let answer = api.post(&path, &bound("Pod", "web", &pod_uid)).await;
    assert_eq!(answer.code(), 201, "{:?}", answer.body);
    assert_eq!(answer.body["spec"]["boundObjectRef"]["name"], "web");
    let claims = verified_claims(answer.body["status"]["token"].as_str().unwrap(), &jwks);
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "web");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], pod_uid.as_str());
    assert_eq!(claims["kubernetes.io"]["node"]["name"], "n1");
    assert_eq!(claims["kubernetes.io"]["node"]["uid"], node_uid.as_str());

    let missing = api.post(&path, &bound("Pod", "gone", "")).await;
    assert_eq!(missing.code(), 404);
    assert_eq!(missing.message(), r#"pods "gone" not found"#);

    let stale = api.post(&path, &bound("Pod", "web", "0000")).await;
    assert_eq!(stale.code(), 409);
    assert_eq!(stale.body["reason"], "Conflict");
    assert_eq!(
        stale.message(),
        r#"Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (0000) does not match the UID in record. The object might have been deleted and then recreated"#
    );

    let secret = api
        .post(
            "/api/v1/namespaces/default/secrets",
            &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
        )
        .await;
    let secret_uid = secret.body["metadata"]["uid"].as_str().unwrap().to_owned();
    let answer = api.post(&path, &bound("Secret", "s", "")).await;
    assert_eq!(answer.code(), 201, "{:?}", answer.body);
    let claims = verified_claims(answer.body["status"]["token"].as_str().unwrap(), &jwks);
    assert_eq!(
        claims["kubernetes.io"]["secret"]["uid"],
        secret_uid.as_str()
    );

    let answer = api.post(&path, &bound("Node", "n1", &node_uid)).await;
    assert_eq!(answer.code(), 201, "{:?}", answer.body);
    assert_eq!(api.post(&path, &bound("Node", "n2", "")).await.code(), 404);

    let other = api.post(&path, &bound("ConfigMap", "c", "")).await;
    assert_eq!(other.code(), 400);
    assert_eq!(
        other.message(),
        "cannot bind token to object of type /v1, Kind=ConfigMap"
    );
    // A pod of another account cannot carry this account's token.
    assert_eq!(api.post(ACCOUNTS, &account("ci")).await.code(), 201);
    let foreign = api
        .post(&format!("{ACCOUNTS}/ci/token"), &bound("Pod", "web", ""))
        .await;
    assert_eq!(foreign.code(), 400);
}

/// A protobuf field: its key, then its bytes (length-delimited) or value (varint).
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
    varint(tag << 3 | 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn varint_field(tag: u64, v: u64, out: &mut Vec<u8>) {
    varint(tag << 3, out);
    varint(v, out);
}

/// The body `kubectl create token builder --audience a --duration 20m` sends.
fn protobuf_token_request() -> Vec<u8> {
    let mut spec = Vec::new();
    bytes_field(1, b"https://a.example.com", &mut spec);
    varint_field(4, 1200, &mut spec);
    // Go writes the zero status too: an empty token and the zero time (year 1).
    let mut time = Vec::new();
    varint_field(1, (-62_135_596_800_i64) as u64, &mut time);
    varint_field(2, 0, &mut time);
    let mut status = Vec::new();
    bytes_field(1, b"", &mut status);
    bytes_field(2, &time, &mut status);
    let mut object = Vec::new();
    bytes_field(1, b"", &mut object);
    bytes_field(2, &spec, &mut object);
    bytes_field(3, &status, &mut object);
    let mut type_meta = Vec::new();
    bytes_field(1, b"authentication.k8s.io/v1", &mut type_meta);
    bytes_field(2, b"TokenRequest", &mut type_meta);
    let mut body = b"k8s\0".to_vec();
    bytes_field(1, &type_meta, &mut body);
    bytes_field(2, &object, &mut body);
    bytes_field(3, b"", &mut body);
    bytes_field(4, b"", &mut body);
    body
}

#[tokio::test]
async fn a_protobuf_token_request_is_understood() {
    let (api, _keys, jwks) = api_with_tokens().await;
    assert_eq!(api.post(ACCOUNTS, &account("builder")).await.code(), 201);
    let answer = api
        .raw(
            Method::POST,
            &format!("{ACCOUNTS}/builder/token"),
            Some("application/vnd.kubernetes.protobuf"),
            protobuf_token_request(),
            Some("application/vnd.kubernetes.protobuf, application/json"),
        )
        .await;
    assert_eq!(answer.code(), 201, "{:?}", answer.body);
    assert_eq!(answer.body["spec"]["expirationSeconds"], 1200);
    assert_eq!(
        answer.body["spec"]["audiences"],
        json!(["https://a.example.com"])
    );
    let claims = verified_claims(answer.body["status"]["token"].as_str().unwrap(), &jwks);
    assert_eq!(claims["sub"], "system:serviceaccount:default:builder");
    assert_eq!(audiences(&claims), vec!["https://a.example.com"]);
}

#[tokio::test]
async fn discovery_lists_the_token_subresource() {
    let api = Api::new().await;
    let v1 = api.get("/api/v1").await;
    let token = v1.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .cloned()
        .expect("serviceaccounts/token is listed");
    assert_eq!(token["verbs"], json!(["create"]));
    assert_eq!(token["kind"], "TokenRequest");
    assert_eq!(token["group"], "authentication.k8s.io");
}

fn data(secret: &Value, key: &str) -> Vec<u8> {
    STANDARD
        .decode(secret["data"][key].as_str().unwrap_or(""))
        .unwrap()
}

fn token_secret(name: &str, account: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": name,
            "annotations": {"kubernetes.io/service-account.name": account}}})
}

#[tokio::test]
async fn legacy_token_secrets_are_filled_and_follow_their_account() {
    let api = Api::new().await;
    let (_keys, issuer, jwks) = issuer(Algorithm::Rs256);
    api.server
        .enable_token_secrets(issuer, CA_PEM.to_owned())
        .await;
    let sa = api.post(ACCOUNTS, &account("builder")).await;
    let sa_uid = sa.body["metadata"]["uid"].as_str().unwrap().to_owned();
    let secrets = "/api/v1/namespaces/default/secrets";
    let created = api
        .post(secrets, &token_secret("builder-token", "builder"))
        .await;
    assert_eq!(created.code(), 201, "{:?}", created.body);
    let path = format!("{secrets}/builder-token");
    wait_until(|| async { !data(&api.get(&path).await.body, "token").is_empty() }).await;
    let filled = api.get(&path).await.body;
    assert_eq!(data(&filled, "ca.crt"), CA_PEM.as_bytes());
    assert_eq!(data(&filled, "namespace"), b"default");
    assert_eq!(
        filled["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        sa_uid.as_str()
    );
    let token = String::from_utf8(data(&filled, "token")).unwrap();
    let claims = verified_claims(&token, &jwks);
    assert_eq!(claims["sub"], "system:serviceaccount:default:builder");
    assert!(claims.get("exp").is_none(), "legacy tokens do not expire");
    // Filling is done once: the stored token stays.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        api.get(&path).await.rv(),
        filled["metadata"]["resourceVersion"]
    );

    // A token Secret of an account that does not exist goes, as kube's token controller does.
    let orphan = api.post(secrets, &token_secret("orphan", "nobody")).await;
    assert_eq!(orphan.code(), 201);
    wait_until(|| async { api.get(&format!("{secrets}/orphan")).await.code() == 404 }).await;
    // Other Secrets are not touched.
    let plain = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "plain",
        "annotations": {"kubernetes.io/service-account.name": "nobody"}}});
    assert_eq!(api.post(secrets, &plain).await.code(), 201);

    // Deleting the account takes its token Secret along.
    assert_eq!(api.delete(&format!("{ACCOUNTS}/builder")).await.code(), 200);
    wait_until(|| async { api.get(&path).await.code() == 404 }).await;
    let plain = api.get(&format!("{secrets}/plain")).await;
    assert_eq!(plain.code(), 200);
    assert!(plain.body.get("data").is_none());
}
