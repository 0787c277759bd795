//! The query APIs through the public interface: `rules_for` (SelfSubjectRulesReview),
//! `who_can`, `explain`, and `PrivilegedGroups::rules_for`.

// Tests may unwrap: a panic there is a failing test.
#![allow(clippy::unwrap_used)]

use kgate_authz::objects::{PolicyRule, RoleRef, RoleRefKind, Subject, SubjectKind};
use kgate_authz::{
    bootstrap, BindingRef, Grant, PrivilegedGroups, RbacAuthorizer, RbacKind, SubjectRules,
};
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, UserInfo};
use serde_json::{json, Value};

fn s(items: &[&str]) -> Vec<String> {
    items.iter().map(|x| (*x).to_owned()).collect()
}

fn fixture() -> RbacAuthorizer {
    let rbac = RbacAuthorizer::new();
    let objects: Vec<Value> = vec![
        json!({"kind": "ClusterRole", "metadata": {"name": "pod-reader"},
               "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
                         {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
        json!({"kind": "ClusterRoleBinding", "metadata": {"name": "dev-pods"},
               "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
               "subjects": [{"kind": "Group", "name": "dev"}, {"kind": "User", "name": "alice"}]}),
        json!({"kind": "Role", "metadata": {"name": "cm", "namespace": "team"},
               "rules": [{"verbs": ["update"], "apiGroups": [""], "resources": ["configmaps"],
                          "resourceNames": ["app"]}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "alice-cm", "namespace": "team"},
               "roleRef": {"kind": "Role", "name": "cm"},
               "subjects": [{"kind": "User", "name": "alice"},
                            {"kind": "ServiceAccount", "name": "ci"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "ghost", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "missing"},
               "subjects": [{"kind": "Group", "name": "dev"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "view-pods", "namespace": "team"},
               "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
               "subjects": [{"kind": "User", "name": "bob"}]}),
        json!({"kind": "RoleBinding", "metadata": {"name": "elsewhere", "namespace": "other"},
               "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
               "subjects": [{"kind": "User", "name": "carol"}]}),
    ];
    for o in &objects {
        rbac.upsert(o).unwrap();
    }
    rbac
}

fn alice() -> UserInfo {
    UserInfo::new("alice").with_groups(["dev", "system:authenticated"])
}

fn pods_rule() -> PolicyRule {
    PolicyRule {
        verbs: s(&["get", "list"]),
        api_groups: s(&[""]),
        resources: s(&["pods"]),
        ..PolicyRule::default()
    }
}

fn healthz_rule() -> PolicyRule {
    PolicyRule {
        verbs: s(&["get"]),
        non_resource_urls: s(&["/healthz"]),
        ..PolicyRule::default()
    }
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let rbac = fixture();
    // Cluster-wide: one binding, reached through both the user and the group, counted once.
    let cluster = rbac.rules_for(&alice(), "");
    assert_eq!(
        cluster,
        SubjectRules {
            resource_rules: vec![pods_rule()],
            non_resource_rules: vec![healthz_rule()],
            incomplete: false,
            evaluation_error: String::new(),
        }
    );
    // In team: the Role's rule too, and the group's binding to a missing role.
    let team = rbac.rules_for(&alice(), "team");
    assert_eq!(team.resource_rules.len(), 2);
    assert!(team.resource_rules.contains(&PolicyRule {
        verbs: s(&["update"]),
        api_groups: s(&[""]),
        resources: s(&["configmaps"]),
        resource_names: s(&["app"]),
        non_resource_urls: Vec::new(),
    }));
    // Named in the error, not marked incomplete: kube's RBAC RulesFor (differential_rbac:
    // rules/*).
    assert!(!team.incomplete);
    assert_eq!(
        team.evaluation_error,
        r#"clusterrole.rbac.authorization.k8s.io "missing" not found"#
    );
    // The ServiceAccount subject without a namespace is the one in team.
    let ci = rbac.rules_for(&UserInfo::new("system:serviceaccount:team:ci"), "team");
    assert_eq!(ci.resource_rules.len(), 1);
    assert!(ci.non_resource_rules.is_empty());
    assert_eq!(
        rbac.rules_for(&UserInfo::new("nobody"), "team"),
        SubjectRules::default()
    );
}

#[test]
fn system_masters_gets_everything() {
    let rbac = RbacAuthorizer::new();
    for o in bootstrap::cluster_roles()
        .iter()
        .chain(&bootstrap::cluster_role_bindings())
    {
        rbac.upsert(o).unwrap();
    }
    let root = UserInfo::new("root").with_groups(["system:masters", "system:authenticated"]);
    let everything = SubjectRules::everything();
    assert_eq!(
        PrivilegedGroups::default().rules_for(&root),
        Some(everything.clone())
    );
    assert_eq!(PrivilegedGroups::default().rules_for(&alice()), None);
    // Through the bootstrap binding of cluster-admin, RBAC says the same (plus what every
    // authenticated user holds).
    let rules = rbac.rules_for(&root, "default");
    for r in everything.resource_rules {
        assert!(
            rules.resource_rules.contains(&r),
            "{:?}",
            rules.resource_rules
        );
    }
    for r in everything.non_resource_rules {
        assert!(rules.non_resource_rules.contains(&r));
    }
    assert!(!rules.incomplete);
}

fn subject(kind: SubjectKind, name: &str, ns: &str) -> Subject {
    Subject {
        kind,
        name: name.to_owned(),
        namespace: ns.to_owned(),
    }
}

#[test]
fn who_can_lists_every_subject_with_its_binding() {
    let rbac = fixture();
    let mut get_pod = Attributes::resource(UserInfo::default(), "get", "", "pods", "team");
    get_pod.name = "p".to_owned();
    let grants = rbac.who_can(&get_pod);
    let pod_reader = RoleRef {
        kind: RoleRefKind::ClusterRole,
        name: "pod-reader".to_owned(),
    };
    let crb = BindingRef {
        kind: RbacKind::ClusterRoleBinding,
        namespace: String::new(),
        name: "dev-pods".to_owned(),
    };
    assert_eq!(
        grants,
        vec![
            Grant {
                subject: subject(SubjectKind::Group, "dev", ""),
                binding: crb.clone(),
                role: pod_reader.clone(),
            },
            Grant {
                subject: subject(SubjectKind::User, "alice", ""),
                binding: crb,
                role: pod_reader.clone(),
            },
            Grant {
                subject: subject(SubjectKind::User, "bob", ""),
                binding: BindingRef {
                    kind: RbacKind::RoleBinding,
                    namespace: "team".to_owned(),
                    name: "view-pods".to_owned(),
                },
                role: pod_reader,
            },
        ]
    );
    assert_eq!(
        grants[2].binding.to_string(),
        r#"RoleBinding "view-pods/team""#
    );
    // Named configmap in team: the Role's binding, the ServiceAccount with its namespace.
    let mut update_cm =
        Attributes::resource(UserInfo::default(), "update", "", "configmaps", "team");
    update_cm.name = "app".to_owned();
    let who: Vec<Subject> = rbac
        .who_can(&update_cm)
        .into_iter()
        .map(|g| g.subject)
        .collect();
    assert_eq!(
        who,
        [
            subject(SubjectKind::User, "alice", ""),
            subject(SubjectKind::ServiceAccount, "ci", "team"),
        ]
    );
    update_cm.name.clear();
    assert!(rbac.who_can(&update_cm).is_empty());
    // Non-resource URLs: ClusterRoleBindings only, even though a RoleBinding binds the role.
    let health = Attributes::non_resource(UserInfo::default(), "get", "/healthz");
    assert_eq!(rbac.who_can(&health).len(), 2);
    // Every grant who_can lists is one the authorizer makes.
    for g in rbac.who_can(&get_pod) {
        if g.subject.kind == SubjectKind::User {
            let mut a = get_pod.clone();
            a.user = UserInfo::new(g.subject.name.clone());
            assert!(rbac.authorize(&a).is_allow());
        }
    }
}

#[test]
fn explain_shows_the_bindings_behind_a_decision() {
    let rbac = fixture();
    let mut a = Attributes::resource(alice(), "update", "", "configmaps", "team");
    a.name = "app".to_owned();
    let e = rbac.explain(&a);
    assert_eq!(e.decision, rbac.authorize(&a));
    assert!(e.decision.is_allow());
    let names: Vec<&str> = e.bindings.iter().map(|b| b.binding.name.as_str()).collect();
    assert_eq!(names, ["dev-pods", "alice-cm", "ghost"]);
    assert!(e.bindings[1].rules[0].matched);
    assert!(!e.bindings[0].rules.iter().any(|r| r.matched));
    assert!(!e.bindings[2].role_found);
    let report = e.to_string();
    let want = [
        r#"request:  User "alice" (groups=["dev" "system:authenticated"]) update resource "configmaps" in API group "" in the namespace "team", name "app""#,
        r#"decision: allowed: RBAC: allowed by RoleBinding "alice-cm/team" of Role "cm" to User "alice""#,
        "bindings naming the user or its groups: 3",
        r#"  ClusterRoleBinding "dev-pods" of ClusterRole "pod-reader" to Group "dev""#,
        r#"    no match {APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}"#,
        r#"    no match {NonResourceURLs:["/healthz"], Verbs:["get"]}"#,
        r#"  RoleBinding "alice-cm/team" of Role "cm" to User "alice""#,
        r#"    match    {APIGroups:[""], Resources:["configmaps"], ResourceNames:["app"], Verbs:["update"]}"#,
        r#"  RoleBinding "ghost/team" of ClusterRole "missing" to Group "dev""#,
        "    role not found: grants nothing",
    ];
    assert_eq!(report.lines().collect::<Vec<_>>(), want, "{report}");

    // A denial says that no rule allowed it, and why RBAC could not tell more.
    a.name = "other".to_owned();
    let report = rbac.explain(&a).to_string();
    assert!(
        report.contains(
            "decision: no RBAC rule allows it (denied unless another authorizer allows it); \
         RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found"
        ),
        "{report}"
    );
    let nobody = rbac.explain(&Attributes::non_resource(
        UserInfo::new("nobody"),
        "get",
        "/x",
    ));
    assert!(nobody.bindings.is_empty());
    assert_eq!(
        nobody.to_string(),
        "request:  User \"nobody\" (groups=[]) get path \"/x\"\n\
         decision: no RBAC rule allows it (denied unless another authorizer allows it)\n\
         bindings: none names the user or its groups\n"
    );
}
