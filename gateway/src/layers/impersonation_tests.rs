//! Tests of the impersonation stage, apart so the stage itself stays short.

use super::*;
use crate::layers::testing::Recorder;
use kgate_core::authn::{AuthenticatorUnion, AuthnFuture, AuthnResponse, Credentials};
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, Decision, UserInfo};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt;

const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// Allows `impersonate` on exactly the listed `(group, resource[/subresource], namespace, name)`.
struct AllowList(Vec<(&'static str, &'static str, &'static str, &'static str)>);

impl Authorizer for AllowList {
    fn name(&self) -> &'static str {
        "allow-list"
    }
    fn authorize(&self, a: &Attributes) -> Decision {
        let wanted = (
            a.api_group.as_str(),
            a.resource_with_subresource(),
            a.namespace.as_str(),
            a.name.as_str(),
        );
        let allowed = a.verb == "impersonate"
            && a.user.name == "alice"
            && self
                .0
                .iter()
                .any(|(g, r, ns, n)| (*g, r.to_string(), *ns, *n) == wanted);
        if allowed {
            Decision::allow("listed")
        } else {
            Decision::no_opinion("")
        }
    }
}

fn stage(recorder: &Recorder) -> Impersonation<Recorder> {
    let authorizer = AuthorizerChain::new(vec![Arc::new(AllowList(vec![
        ("", "users", "", "bob"),
        ("", "serviceaccounts", "ci", "jenkins"),
        ("", "groups", "", "dev"),
        (AUTHENTICATION_GROUP, "userextras/scopes", "", "view"),
        (AUTHENTICATION_GROUP, "uids", "", "42"),
    ]))]);
    ImpersonationLayer::new(authorizer).layer(recorder.clone())
}

/// The proof for alice, made the only way there is: through an authenticator union.
async fn alice() -> Option<Authenticated> {
    struct Alice;
    impl kgate_core::authn::Authenticator for Alice {
        fn name(&self) -> &'static str {
            "test"
        }
        fn authenticate<'a>(&'a self, _: &'a Credentials) -> AuthnFuture<'a> {
            Box::pin(async {
                Ok(Some(AuthnResponse {
                    user: UserInfo::new("alice").with_groups(["admins"]),
                }))
            })
        }
    }
    AuthenticatorUnion::new(vec![Arc::new(Alice)])
        .authenticate(&Credentials::default())
        .await
        .ok()
}

async fn run(
    headers: &[(&'static str, &'static str)],
) -> (
    Result<Response<Body>, GatewayError>,
    Option<super::super::testing::Seen>,
) {
    let mut builder = Request::get("/api/v1/namespaces/ci/pods");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder
        .body(Body::empty())
        .unwrap_or_else(|_| Request::new(Body::empty()));
    if let Some(proof) = alice().await {
        request.extensions_mut().insert(proof);
    }
    let recorder = Recorder::default();
    let result = stage(&recorder).oneshot(request).await;
    (result, recorder.seen())
}

fn user_of(seen: &Option<super::super::testing::Seen>) -> Option<UserInfo> {
    seen.as_ref()?
        .extensions
        .as_ref()?
        .get::<Authenticated>()
        .map(|a| a.user().clone())
}

fn forbidden_message(result: Result<Response<Body>, GatewayError>) -> String {
    match result {
        Err(GatewayError::Forbidden(denied)) => {
            kgate_core::Status::forbidden(&denied.attributes, &denied.reason).message
        }
        other => format!("not a 403: {other:?}"),
    }
}

#[tokio::test]
async fn without_headers_the_user_is_unchanged() {
    let (result, seen) = run(&[]).await;
    assert!(result.is_ok());
    assert_eq!(user_of(&seen).map(|u| u.name), Some("alice".to_owned()));
}

#[tokio::test]
async fn an_allowed_user_impersonation_replaces_the_user_and_the_headers_go() {
    let (result, seen) = run(&[
        ("impersonate-user", "bob"),
        ("impersonate-group", "dev"),
        ("impersonate-extra-scopes", "view"),
        ("impersonate-uid", "42"),
    ])
    .await;
    assert!(result.is_ok(), "{result:?}");
    let user = user_of(&seen).unwrap_or_default();
    assert_eq!(user.name, "bob");
    assert_eq!(user.groups, ["dev", "system:authenticated"]);
    assert_eq!(user.uid, "42");
    assert_eq!(
        user.extra,
        BTreeMap::from([("scopes".to_owned(), vec!["view".to_owned()])])
    );
    let headers = seen.map(|s| s.headers).unwrap_or_default();
    assert!(headers
        .keys()
        .all(|n| !n.as_str().starts_with("impersonate-")));
}

#[tokio::test]
async fn a_service_account_is_checked_in_its_namespace_and_gets_its_groups() {
    let (result, seen) = run(&[("impersonate-user", "system:serviceaccount:ci:jenkins")]).await;
    assert!(result.is_ok(), "{result:?}");
    let user = user_of(&seen).unwrap_or_default();
    assert_eq!(user.name, "system:serviceaccount:ci:jenkins");
    assert_eq!(
        user.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:ci",
            "system:authenticated"
        ]
    );
    let (result, _) = run(&[("impersonate-user", "system:serviceaccount:other:jenkins")]).await;
    assert_eq!(
        forbidden_message(result),
        r#"serviceaccounts "jenkins" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "other""#
    );
}

#[tokio::test]
async fn refusals_are_403_in_kube_words_and_nothing_reaches_the_handler() {
    let (result, seen) = run(&[("impersonate-user", "carol")]).await;
    assert!(seen.is_none());
    assert_eq!(
        forbidden_message(result),
        r#"users "carol" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    let (result, _) = run(&[("impersonate-user", "bob"), ("impersonate-group", "ops")]).await;
    assert_eq!(
        forbidden_message(result),
        r#"groups "ops" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope"#
    );
    let (result, _) = run(&[
        ("impersonate-user", "bob"),
        ("impersonate-extra-scopes", "admin"),
    ])
    .await;
    assert_eq!(
        forbidden_message(result),
        r#"userextras.authentication.k8s.io "admin" is forbidden: User "alice" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope"#
    );
}

#[tokio::test]
async fn groups_without_a_user_or_two_users_are_400() {
    for headers in [
        &[("impersonate-group", "dev")][..],
        &[("impersonate-user", "bob"), ("impersonate-user", "bob")][..],
    ] {
        let (result, seen) = run(headers).await;
        assert!(
            matches!(result, Err(GatewayError::BadRequest(_))),
            "{headers:?}: {result:?}"
        );
        assert!(seen.is_none());
    }
}

#[tokio::test]
async fn without_an_authenticated_proof_it_is_a_wiring_bug() {
    let request = Request::get("/api/v1/pods")
        .header("impersonate-user", "bob")
        .body(Body::empty())
        .unwrap_or_else(|_| Request::new(Body::empty()));
    let result = stage(&Recorder::default()).oneshot(request).await;
    assert!(matches!(result, Err(GatewayError::MissingProof { .. })));
}
