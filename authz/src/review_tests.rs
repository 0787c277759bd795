use super::*;
use crate::objects::PolicyRule;
use serde_json::json;

/// Allows `get` of anything to alice, denies `delete`, no opinion otherwise; the reason names
/// the user it decided for, so a test sees whose question was answered.
struct Fixed;

impl Authorizer for Fixed {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn authorize(&self, a: &Attributes) -> Decision {
        match (a.user.name.as_str(), a.verb.as_str()) {
            ("alice", "get") => Decision::allow(format!(
                "allowed {} {}/{} in {:?}",
                a.user.name, a.resource, a.subresource, a.namespace
            )),
            (_, "delete") => Decision::deny(format!("denied {}", a.user.name)),
            _ => Decision::no_opinion(""),
        }
    }
}

fn no_rules(_: &UserInfo, _: &str) -> SubjectRules {
    SubjectRules::default()
}

fn ask(
    kind: ReviewKind,
    body: Value,
    ns: &str,
    requester: &UserInfo,
) -> Result<Value, ReviewError> {
    answer(kind, &body, ns, requester, &Fixed, &no_rules)
}

fn bob() -> UserInfo {
    UserInfo::new("bob").with_groups(["dev", "system:authenticated"])
}

#[test]
fn a_subject_access_review_asks_about_the_spec_user_not_the_requester() {
    let body = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "alice", "groups": ["dev"],
                 "resourceAttributes": {"verb": "get", "resource": "pods", "subresource": "log", "namespace": "team"}}
    });
    let out = ask(ReviewKind::SubjectAccessReview, body, "", &bob()).unwrap();
    assert_eq!(out["status"]["allowed"], true);
    assert_eq!(
        out["status"]["reason"],
        "allowed alice pods/log in \"team\""
    );
    assert!(out["status"].get("denied").is_none());
    assert_eq!(out["spec"]["user"], "alice", "the spec is echoed");
    assert_eq!(out["kind"], "SubjectAccessReview");
}

#[test]
fn a_deny_is_reported_as_denied_and_no_opinion_as_not_allowed() {
    let denied = ask(
        ReviewKind::SubjectAccessReview,
        json!({"spec": {"user": "alice", "resourceAttributes": {"verb": "delete", "resource": "pods"}}}),
        "",
        &bob(),
    )
    .unwrap();
    assert_eq!(
        denied["status"],
        json!({"allowed": false, "denied": true, "reason": "denied alice"})
    );
    let unknown = ask(
        ReviewKind::SubjectAccessReview,
        json!({"spec": {"groups": ["x"], "resourceAttributes": {"verb": "list", "resource": "pods"}}}),
        "",
        &bob(),
    )
    .unwrap();
    assert_eq!(unknown["status"], json!({"allowed": false}));
}

#[test]
fn non_resource_attributes_become_a_non_resource_request() {
    struct Paths;
    impl Authorizer for Paths {
        fn name(&self) -> &'static str {
            "paths"
        }
        fn authorize(&self, a: &Attributes) -> Decision {
            if !a.resource_request && a.path == "/healthz" && a.verb == "get" {
                Decision::allow("path")
            } else {
                Decision::no_opinion("")
            }
        }
    }
    let body = json!({"spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}});
    let out = answer(
        ReviewKind::SelfSubjectAccessReview,
        &body,
        "",
        &bob(),
        &Paths,
        &no_rules,
    )
    .unwrap();
    assert_eq!(out["status"]["allowed"], true);
}

#[test]
fn a_review_without_attributes_or_with_both_is_refused() {
    for spec in [
        json!({"user": "alice"}),
        json!({"user": "alice", "resourceAttributes": null, "nonResourceAttributes": null}),
    ] {
        let err = ask(
            ReviewKind::SubjectAccessReview,
            json!({"spec": spec}),
            "",
            &bob(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "SubjectAccessReview is invalid: spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"
        );
    }
    // Every error at once, in kube's order, each as kube's field.Invalid prints it.
    let err = ask(
        ReviewKind::SubjectAccessReview,
        json!({"spec": {"resourceAttributes": {"verb": "get"},
            "nonResourceAttributes": {"verb": "get", "path": "/a<b"}}}),
        "",
        &bob(),
    )
    .unwrap_err();
    let ReviewError::Rejected { errors, .. } = err else {
        panic!("not rejected: {err:?}");
    };
    let messages: Vec<(&str, String)> = errors.iter().map(|e| (e.field, e.message())).collect();
    assert_eq!(
        messages,
        [
            (
                "spec.nonResourceAttributes",
                r#"Invalid value: {"Path":"/a\u003cb","Verb":"get"}: cannot be specified in combination with resourceAttributes"#.to_owned()
            ),
            (
                "spec.user",
                r#"Invalid value: "": at least one of user or group must be specified"#.to_owned()
            ),
        ]
    );
    let both = json!({"spec": {"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get", "path": "/"}}});
    let err = ask(ReviewKind::SelfSubjectAccessReview, both, "", &bob()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot be specified in combination"),
        "{err}"
    );
}

#[test]
fn a_subject_access_review_needs_a_user_or_a_group() {
    let body = json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}});
    let err = ask(ReviewKind::SubjectAccessReview, body, "", &bob()).unwrap_err();
    assert!(
        err.to_string().contains("at least one of user or group"),
        "{err}"
    );
}

#[test]
fn malformed_fields_are_refused_not_guessed() {
    for spec in [
        json!({"user": 7, "resourceAttributes": {"verb": "get"}}),
        json!({"user": "a", "groups": "dev", "resourceAttributes": {"verb": "get"}}),
        json!({"user": "a", "extra": {"k": "v"}, "resourceAttributes": {"verb": "get"}}),
        json!({"user": "a", "resourceAttributes": {"verb": ["get"]}}),
        json!({"user": "a", "resourceAttributes": "pods"}),
    ] {
        let result = ask(
            ReviewKind::SubjectAccessReview,
            json!({"spec": spec.clone()}),
            "",
            &bob(),
        );
        assert!(
            matches!(result, Err(ReviewError::Invalid { .. })),
            "{spec}: {result:?}"
        );
    }
    let err = ask(
        ReviewKind::SubjectAccessReview,
        json!({"spec": []}),
        "",
        &bob(),
    )
    .unwrap_err();
    assert!(matches!(err, ReviewError::Invalid { field: "spec", .. }));
}

#[test]
fn the_body_must_be_the_kind_the_url_serves() {
    let body =
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {}});
    let err = ask(ReviewKind::SelfSubjectAccessReview, body, "", &bob()).unwrap_err();
    assert!(matches!(err, ReviewError::WrongKind { .. }), "{err:?}");
    let body = json!({"apiVersion": "authorization.k8s.io/v1beta1", "kind": "SelfSubjectAccessReview", "spec": {}});
    assert!(ask(ReviewKind::SelfSubjectAccessReview, body, "", &bob()).is_err());
    assert!(ask(ReviewKind::SelfSubjectAccessReview, json!("x"), "", &bob()).is_err());
}

#[test]
fn a_self_subject_access_review_asks_about_the_requester() {
    let body = json!({"spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "team"}}});
    let as_bob = ask(
        ReviewKind::SelfSubjectAccessReview,
        body.clone(),
        "",
        &bob(),
    )
    .unwrap();
    assert_eq!(as_bob["status"]["allowed"], false);
    let as_alice = ask(
        ReviewKind::SelfSubjectAccessReview,
        body,
        "",
        &UserInfo::new("alice"),
    )
    .unwrap();
    assert_eq!(as_alice["status"]["allowed"], true);
}

#[test]
fn a_local_review_is_about_the_url_namespace_only() {
    let spec = json!({"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "team"}});
    let out = ask(
        ReviewKind::LocalSubjectAccessReview,
        json!({"spec": spec}),
        "team",
        &bob(),
    )
    .unwrap();
    assert_eq!(out["status"]["reason"], "allowed alice pods/ in \"team\"");

    // kube's ValidateLocalSubjectAccessReview: the attributes' namespace is the review's, an
    // empty one too.
    for (namespace, quoted) in [("prod", r#""prod""#), ("", r#""""#)] {
        let other = json!({"spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": namespace}}});
        let err = ask(ReviewKind::LocalSubjectAccessReview, other, "team", &bob()).unwrap_err();
        assert!(
            err.to_string().ends_with(&format!(
                "spec.resourceAttributes.namespace: Invalid value: {quoted}: must match metadata.namespace"
            )),
            "{err}"
        );
        assert!(matches!(err, ReviewError::Rejected { .. }), "{err}");
    }

    let meta = json!({"metadata": {"namespace": "prod"}, "spec": {"user": "alice", "resourceAttributes": {"verb": "get"}}});
    assert!(ask(ReviewKind::LocalSubjectAccessReview, meta, "team", &bob()).is_err());

    let non_resource =
        json!({"spec": {"user": "alice", "nonResourceAttributes": {"verb": "get", "path": "/"}}});
    let err = ask(
        ReviewKind::LocalSubjectAccessReview,
        non_resource,
        "team",
        &bob(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("disallowed on this kind of request"),
        "{err}"
    );
}

#[test]
fn a_rules_review_lists_the_requesters_rules_in_the_namespace() {
    let rules_for = |user: &UserInfo, ns: &str| SubjectRules {
        resource_rules: vec![PolicyRule {
            verbs: vec!["get".into()],
            api_groups: vec!["".into()],
            resources: vec![format!("pods-of-{}-in-{ns}", user.name)],
            resource_names: vec!["web".into()],
            non_resource_urls: vec![],
        }],
        non_resource_rules: vec![PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz".into()],
            ..PolicyRule::default()
        }],
        incomplete: true,
        evaluation_error: "role \"gone\" not found".into(),
    };
    let body = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "team"}});
    let out = answer(
        ReviewKind::SelfSubjectRulesReview,
        &body,
        "",
        &bob(),
        &Fixed,
        &rules_for,
    )
    .unwrap();
    assert_eq!(
        out["status"],
        json!({
            "resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods-of-bob-in-team"], "resourceNames": ["web"]}],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            "incomplete": true,
            "evaluationError": "role \"gone\" not found"
        })
    );
}

#[test]
fn a_self_subject_review_returns_who_asked() {
    let mut user = bob();
    user.uid = "u-1".into();
    user.extra.insert("scopes".into(), vec!["a".into()]);
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let out = ask(ReviewKind::SelfSubjectReview, body, "", &user).unwrap();
    assert_eq!(
        out["status"]["userInfo"],
        json!({"username": "bob", "uid": "u-1", "groups": ["dev", "system:authenticated"], "extra": {"scopes": ["a"]}})
    );
    assert_eq!(out["apiVersion"], "authentication.k8s.io/v1");
    let bare = ask(
        ReviewKind::SelfSubjectReview,
        json!({}),
        "",
        &UserInfo::new("x"),
    )
    .unwrap();
    assert_eq!(bare["status"]["userInfo"], json!({"username": "x"}));
}

#[test]
fn review_kinds_are_found_by_group_and_resource() {
    assert_eq!(
        ReviewKind::from_resource("authorization.k8s.io", "selfsubjectaccessreviews"),
        Some(ReviewKind::SelfSubjectAccessReview)
    );
    assert_eq!(
        ReviewKind::from_resource("authentication.k8s.io", "selfsubjectreviews"),
        Some(ReviewKind::SelfSubjectReview)
    );
    assert_eq!(ReviewKind::from_resource("", "pods"), None);
    assert_eq!(
        ReviewKind::from_resource("authorization.k8s.io", "pods"),
        None
    );
}
