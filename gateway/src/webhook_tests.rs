//! The webhook's answers, called as kube-apiserver calls it (the TLS layer's peer extensions
//! set by hand): who may call, TokenReview and SubjectAccessReview in both versions, bad input.

use super::*;
use crate::pki::{Pki, Validity};
use kgate_authz::{Policy, PolicyAuthorizer, PolicyHandle};
use kgate_tokens::machine::{MachineTokenFiles, MachineTokenIssuer, MachineTokenSpec};
use kgate_tokens::{Algorithm, KeySet, SharedKeys};
use std::time::Duration;
use tower::ServiceExt as _;

struct Fixture {
    _dir: tempfile::TempDir,
    pki: Pki,
    other_pki: Pki,
    service: WebhookService,
    issuer: MachineTokenIssuer,
    files: MachineTokenFiles,
}

const POLICY: &str = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n  \
- p, deny, alice, *, delete, \"\", namespaces, *, *, *\n  \
- p, allow, *, auditors, get, \"\", pods, *, *, *\n";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&dir.path().join("a")).unwrap();
    let other_pki = Pki::load_or_create(&dir.path().join("b")).unwrap();
    let keys = SharedKeys::new(
        KeySet::load_or_create(&dir.path().join("machine-keys"), Algorithm::Rs256).unwrap(),
    );
    let files = MachineTokenFiles::new(dir.path().join("machine-tokens"));
    let policy = PolicyHandle::new(Policy::parse("policy.yaml", POLICY).unwrap());
    let authorizer = AuthorizerChain::new(vec![
        Arc::new(PolicyAuthorizer::deny(policy.clone())),
        Arc::new(PolicyAuthorizer::allow(policy)),
    ]);
    let service = WebhookService::new(WebhookConfig {
        clients: X509Authenticator::new(vec![pki.ca.cert_der().to_vec()]).unwrap(),
        allowed_client_names: vec!["kube-apiserver".into()],
        machine_tokens: Arc::new(MachineTokenVerifier::new(keys.clone(), &files)),
        oidc: None,
        authorizer,
        readiness: Readiness::default(),
    });
    Fixture {
        _dir: dir,
        pki,
        other_pki,
        service,
        issuer: MachineTokenIssuer::new(keys),
        files,
    }
}

fn chain(pki: &Pki, name: &str) -> Vec<Vec<u8>> {
    let cert = pki
        .ca
        .issue_client_cert(name, &[], Validity::from_now(time::Duration::hours(1)))
        .unwrap();
    vec![cert.cert_der]
}

impl Fixture {
    async fn call(&self, path: &str, client: Option<Vec<Vec<u8>>>, body: &str) -> (u16, Value) {
        let mut request = Request::post(path)
            .body(Body::from(body.to_owned()))
            .unwrap();
        if let Some(chain) = client {
            request
                .extensions_mut()
                .insert(PeerCertificates(Arc::new(chain)));
        }
        let response = self.service.clone().oneshot(request).await.unwrap();
        let code = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn as_apiserver(&self, path: &str, body: &str) -> (u16, Value) {
        self.call(path, Some(chain(&self.pki, "kube-apiserver")), body)
            .await
    }

    fn token(&self, audiences: &[&str]) -> (String, String) {
        let issued = self
            .issuer
            .issue(
                &MachineTokenSpec {
                    user: "jenkins".into(),
                    groups: vec!["ci".into()],
                    audiences: audiences.iter().map(|a| a.to_string()).collect(),
                    lifetime: Duration::from_secs(600),
                },
                std::time::SystemTime::now(),
            )
            .unwrap();
        (issued.token, issued.record.id)
    }
}

fn token_review(version: &str, token: &str, audiences: &[&str]) -> String {
    json!({"apiVersion": format!("authentication.k8s.io/{version}"), "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences}})
    .to_string()
}

#[tokio::test]
async fn only_the_allowed_client_of_the_client_ca_may_call() {
    let f = fixture();
    let body = token_review("v1", "x", &[]);
    assert_eq!(f.call("/authenticate", None, &body).await.0, 401);
    let foreign = chain(&f.other_pki, "kube-apiserver");
    assert_eq!(f.call("/authenticate", Some(foreign), &body).await.0, 401);
    let (code, status) = f
        .call("/authorize", Some(chain(&f.pki, "mallory")), &body)
        .await;
    assert_eq!(code, 403);
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(f.as_apiserver("/authenticate", &body).await.0, 200);
    // Probes are open.
    let response = f
        .service
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_machine_token_authenticates_in_the_version_asked_and_revocation_is_immediate() {
    let f = fixture();
    let (token, id) = f.token(&["https://kube"]);
    for version in ["v1", "v1beta1"] {
        let (code, review) = f
            .as_apiserver(
                "/authenticate",
                &token_review(version, &token, &["https://kube", "other"]),
            )
            .await;
        assert_eq!(code, 200);
        assert_eq!(
            review["apiVersion"],
            format!("authentication.k8s.io/{version}")
        );
        assert_eq!(review["status"]["authenticated"], true, "{review}");
        assert_eq!(review["status"]["user"]["username"], "jenkins");
        assert_eq!(review["status"]["user"]["groups"], json!(["ci"]));
        assert_eq!(review["status"]["audiences"], json!(["https://kube"]));
        // The token is never echoed.
        assert!(!review.to_string().contains(&token));
    }
    // Meant for another audience.
    let (_, review) = f
        .as_apiserver("/authenticate", &token_review("v1", &token, &["elsewhere"]))
        .await;
    assert_eq!(review["status"]["authenticated"], false);
    f.files.revoke(&id).unwrap();
    let (_, review) = f
        .as_apiserver(
            "/authenticate",
            &token_review("v1", &token, &["https://kube"]),
        )
        .await;
    assert_eq!(review["status"]["authenticated"], false);
    assert_eq!(review["status"]["error"], "token has been revoked");
    assert!(!review.to_string().contains(&token));
}

#[tokio::test]
async fn an_unknown_or_forged_token_is_refused_without_echoing_it() {
    let f = fixture();
    let (token, _) = f.token(&[]);
    let forged = format!("{}x", &token[..token.len() - 1]);
    for bad in ["not-a-token", forged.as_str()] {
        let (code, review) = f
            .as_apiserver("/authenticate", &token_review("v1", bad, &[]))
            .await;
        assert_eq!(code, 200);
        assert_eq!(review["status"]["authenticated"], false);
        assert!(review["status"]["error"]
            .as_str()
            .is_some_and(|e| !e.contains(bad)));
    }
}

fn access_review(version: &str, user: &str, groups: &[&str], verb: &str, resource: &str) -> String {
    let groups_field = if version == "v1beta1" {
        "group"
    } else {
        "groups"
    };
    json!({"apiVersion": format!("authorization.k8s.io/{version}"), "kind": "SubjectAccessReview",
        "spec": {"user": user, groups_field: groups,
            "resourceAttributes": {"verb": verb, "resource": resource, "version": "v1"}}})
    .to_string()
}

#[tokio::test]
async fn deny_lines_deny_allow_lines_allow_and_the_rest_has_no_opinion() {
    let f = fixture();
    for version in ["v1", "v1beta1"] {
        let (code, review) = f
            .as_apiserver(
                "/authorize",
                &access_review(version, "alice", &["dev"], "delete", "namespaces"),
            )
            .await;
        assert_eq!(code, 200);
        assert_eq!(
            review["apiVersion"],
            format!("authorization.k8s.io/{version}")
        );
        assert_eq!(review["status"]["allowed"], false);
        assert_eq!(review["status"]["denied"], true);
        assert!(
            review["status"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("line")),
            "{review}"
        );
        let (_, review) = f
            .as_apiserver(
                "/authorize",
                &access_review(version, "bob", &["auditors"], "get", "pods"),
            )
            .await;
        assert_eq!(review["status"]["allowed"], true, "{review}");
        if version == "v1beta1" {
            assert_eq!(review["spec"]["group"], json!(["auditors"]));
        }
        let (_, review) = f
            .as_apiserver(
                "/authorize",
                &access_review(version, "alice", &["dev"], "list", "pods"),
            )
            .await;
        assert_eq!(review["status"]["allowed"], false);
        assert!(review["status"].get("denied").is_none(), "{review}");
    }
}

#[tokio::test]
async fn malformed_reviews_get_a_status_and_the_webhook_keeps_serving() {
    let f = fixture();
    let too_big = format!(
        "{{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenReview\",\"spec\":{{\"token\":\"{}\"}}}}",
        "a".repeat(MAX_REVIEW_BYTES)
    );
    let cases = [
        ("/authenticate", "{not json".to_owned(), 400),
        ("/authenticate", "[]".to_owned(), 400),
        (
            "/authenticate",
            json!({"apiVersion": "authentication.k8s.io/v2", "kind": "TokenReview",
                "spec": {"token": "x"}})
            .to_string(),
            400,
        ),
        (
            "/authenticate",
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {}})
                .to_string(),
            400,
        ),
        ("/authenticate", too_big, 413),
        (
            "/authorize",
            access_review("v1", "alice", &[], "get", "pods").replace("SubjectAccessReview", "Pod"),
            400,
        ),
        (
            "/authorize",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": "alice"}})
            .to_string(),
            422,
        ),
    ];
    for (path, body, code) in cases {
        let (got, status) = f.as_apiserver(path, &body).await;
        assert_eq!(got, code, "{path} {status}");
        assert_eq!(status["kind"], "Status");
    }
    let (code, _) = f
        .as_apiserver(
            "/authorize",
            &access_review("v1", "bob", &["auditors"], "get", "pods"),
        )
        .await;
    assert_eq!(code, 200);
    let response = f
        .service
        .clone()
        .oneshot(Request::get("/authorize").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn a_review_with_field_and_label_selectors_is_answered() {
    // kube-apiserver 1.34 sends the selectors of a list or watch (AuthorizeWithSelectors); the
    // policy layer has no selector column, so they change nothing, but they must not break it.
    let f = fixture();
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "bob", "groups": ["auditors"], "resourceAttributes": {
            "verb": "get", "resource": "pods", "version": "v1", "namespace": "team",
            "fieldSelector": {"requirements": [
                {"key": "spec.nodeName", "operator": "In", "values": ["node-1"]}]},
            "labelSelector": {"rawSelector": "app=web"}}}})
    .to_string();
    let (code, review) = f.as_apiserver("/authorize", &body).await;
    assert_eq!(code, 200, "{review}");
    assert_eq!(review["status"]["allowed"], true, "{review}");
    assert_eq!(
        review["spec"]["resourceAttributes"]["labelSelector"]["rawSelector"],
        "app=web"
    );
}

#[tokio::test]
async fn non_resource_and_subresource_reviews_are_judged_by_the_policy() {
    let f = fixture();
    // No line names a path or pods/exec: no opinion, the cluster's RBAC decides.
    for attributes in [
        json!({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}),
        json!({"resourceAttributes": {"verb": "create", "resource": "pods",
            "subresource": "exec", "name": "web", "namespace": "team", "version": "v1"}}),
    ] {
        let mut spec = json!({"user": "alice", "groups": ["dev"]});
        spec.as_object_mut()
            .unwrap()
            .extend(attributes.as_object().unwrap().clone());
        let body = json!({"apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview", "spec": spec})
        .to_string();
        let (code, review) = f.as_apiserver("/authorize", &body).await;
        assert_eq!(code, 200, "{review}");
        assert_eq!(review["status"]["allowed"], false, "{review}");
        assert!(review["status"].get("denied").is_none(), "{review}");
    }
    // Both kinds of attribute at once is kube's 422.
    let both = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice",
            "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
            "resourceAttributes": {"verb": "get", "resource": "pods"}}})
    .to_string();
    assert_eq!(f.as_apiserver("/authorize", &both).await.0, 422);
}
