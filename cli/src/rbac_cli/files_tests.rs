#![allow(clippy::unwrap_used)]

use super::*;
use kgate_core::{Attributes, UserInfo};
use std::fs;

const ROLES_YAML: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pod-reader
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list"]
---
# an empty document, as editors leave them
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: team
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: alice-read
  namespace: team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pod-reader
subjects:
- kind: User
  name: alice
"#;

/// `kubectl get rolebindings -o json` shape: a typed list whose items omit kind.
const BINDINGS_JSON: &str = r#"{
  "apiVersion": "rbac.authorization.k8s.io/v1",
  "kind": "RoleBindingList",
  "items": [
    {"metadata": {"name": "ci-read", "namespace": "team"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
     "subjects": [{"kind": "ServiceAccount", "name": "ci"}]}
  ]
}"#;

const LIST_YAML: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata:
    name: ops-read
  roleRef:
    apiGroup: rbac.authorization.k8s.io
    kind: ClusterRole
    name: pod-reader
  subjects:
  - kind: Group
    name: ops
    apiGroup: rbac.authorization.k8s.io
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: unrelated
"#;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

fn no_warnings() -> impl FnMut(String) {
    |w| panic!("unexpected warning: {w}")
}

fn who_can(authorizer: &RbacAuthorizer, verb: &str, resource: &str, ns: &str) -> Vec<String> {
    authorizer
        .who_can(&Attributes::resource(
            UserInfo::default(),
            verb,
            "",
            resource,
            ns,
        ))
        .iter()
        .map(|g| {
            format!(
                "{} {} by {}",
                g.subject.kind.as_str(),
                g.subject.name,
                g.binding
            )
        })
        .collect()
}

#[test]
fn a_folder_is_read_recursively_with_lists_and_other_kinds_ignored() {
    let dir = folder(&[
        ("roles.yaml", ROLES_YAML),
        ("nested/deeper/bindings.json", BINDINGS_JSON),
        ("nested/list.yml", LIST_YAML),
        ("notes.txt", "kind: ClusterRole\nnot: read"),
        (".git/config.yaml", "this is not: [valid"),
        ("values.yaml", "replicas: 3\n"),
    ]);
    let (authorizer, summary) = load(dir.path(), false, &mut no_warnings()).unwrap();
    assert_eq!(
        summary,
        Summary {
            files: 4,
            objects: 4,
            // The Deployment, the ConfigMap and values.yaml's document.
            ignored: 3,
        }
    );
    assert_eq!(
        who_can(&authorizer, "list", "pods", "team"),
        [
            r#"Group ops by ClusterRoleBinding "ops-read""#,
            r#"User alice by RoleBinding "alice-read/team""#,
            r#"ServiceAccount ci by RoleBinding "ci-read/team""#,
        ]
    );
    assert_eq!(
        who_can(&authorizer, "list", "pods", "default"),
        [r#"Group ops by ClusterRoleBinding "ops-read""#]
    );
    assert!(who_can(&authorizer, "delete", "pods", "team").is_empty());
}

#[test]
fn a_single_file_is_read_whatever_its_name() {
    let dir = folder(&[("policy.txt", ROLES_YAML)]);
    let (authorizer, summary) =
        load(&dir.path().join("policy.txt"), false, &mut no_warnings()).unwrap();
    assert_eq!(summary.objects, 2);
    assert_eq!(
        who_can(&authorizer, "get", "pods", "team"),
        [r#"User alice by RoleBinding "alice-read/team""#]
    );
}

#[test]
fn later_files_replace_earlier_objects_of_the_same_name() {
    let replaced = ROLES_YAML.replace(r#"verbs: ["get", "list"]"#, r#"verbs: ["delete"]"#);
    let dir = folder(&[("a.yaml", ROLES_YAML), ("b.yaml", &replaced)]);
    let (authorizer, _) = load(dir.path(), false, &mut no_warnings()).unwrap();
    assert!(who_can(&authorizer, "list", "pods", "team").is_empty());
    assert_eq!(who_can(&authorizer, "delete", "pods", "team").len(), 1);
}

fn load_error(files: &[(&str, &str)]) -> String {
    let dir = folder(files);
    let error = load(dir.path(), false, &mut no_warnings()).err().unwrap();
    // The whole chain, as main prints it, with the folder left out.
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn bad_files_are_named_with_the_document() {
    let bad_yaml = format!("{ROLES_YAML}\n---\nkind: Role\nmetadata: [oops\n");
    let text = load_error(&[("good.yaml", ROLES_YAML), ("z-bad.yaml", &bad_yaml)]);
    assert!(
        text.starts_with("z-bad.yaml: document 5: invalid document: "),
        "{text}"
    );

    let no_role_ref = "kind: ClusterRole\nmetadata: {name: x}\n---\n\
        apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
        metadata: {name: b, namespace: team}\nsubjects: [{kind: User, name: alice}]\n";
    let text = load_error(&[("rb.yaml", no_role_ref)]);
    assert!(
        text.starts_with("rb.yaml: document 2: invalid RBAC object: "),
        "{text}"
    );
    assert!(text.contains("roleRef"), "{text}");

    let bad_item = BINDINGS_JSON.replace(
        r#""name": "ci-read", "namespace": "team""#,
        r#""name": "ci-read""#,
    );
    let text = load_error(&[("list.json", &bad_item)]);
    assert!(
        text.starts_with("list.json: document 1, item 1: invalid RBAC object: "),
        "{text}"
    );

    let text = load_error(&[("broken.json", "{\"kind\": ")]);
    assert!(
        text.starts_with("broken.json: document 1: invalid document"),
        "{text}"
    );

    let text = load_error(&[(
        "typo.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBindng\nmetadata: {name: x}\n",
    )]);
    assert!(text.contains("ClusterRoleBindng"), "{text}");

    let text = load_error(&[("scalar.yaml", "just text\n")]);
    assert!(text.contains("not an object"), "{text}");
}

#[test]
fn a_folder_without_rbac_objects_is_an_error() {
    let text = load_error(&[("values.yaml", "replicas: 3\n")]);
    assert!(
        text.starts_with("no Role, ClusterRole, RoleBinding or ClusterRoleBinding in "),
        "{text}"
    );
    let missing = load(
        Path::new("/nonexistent/kgate-rbac"),
        false,
        &mut no_warnings(),
    )
    .err()
    .unwrap();
    assert!(matches!(missing, RbacCliError::Read { .. }), "{missing:?}");
}

#[test]
fn roles_of_another_api_group_are_not_rbac() {
    let other = "apiVersion: iam.example.com/v1\nkind: Role\nmetadata: {name: x}\nspec: {}\n";
    let dir = folder(&[("roles.yaml", ROLES_YAML), ("iam.yaml", other)]);
    let (_, summary) = load(dir.path(), false, &mut no_warnings()).unwrap();
    assert_eq!(summary.objects, 2);
    assert_eq!(summary.ignored, 2);
}

#[test]
fn the_bootstrap_policy_is_added_on_request_and_aggregation_applied() {
    // A ClusterRole aggregated into view (and so edit and admin) by its label.
    let widgets = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widgets-view
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
- apiGroups: ["example.com"]
  resources: ["widgets"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-view, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: alice}]
"#;
    let dir = folder(&[("widgets.yaml", widgets)]);
    let alice = UserInfo::new("alice").with_groups(["system:authenticated"]);
    let widgets_request =
        Attributes::resource(alice.clone(), "list", "example.com", "widgets", "team");

    let (without, _) = load(dir.path(), false, &mut no_warnings()).unwrap();
    assert!(
        without.who_can(&widgets_request).is_empty(),
        "view is missing"
    );

    let (with, _) = load(dir.path(), true, &mut no_warnings()).unwrap();
    let decision = kgate_core::authz::Authorizer::authorize(&with, &widgets_request);
    assert_eq!(
        decision.reason(),
        r#"RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice""#
    );
    // cluster-admin to system:masters comes from the bootstrap policy.
    let all = with.who_can(&Attributes::resource(alice, "delete", "", "nodes", ""));
    assert!(
        all.iter().any(
            |g| g.binding.to_string() == r#"ClusterRoleBinding "cluster-admin""#
                && g.subject.name == "system:masters"
        ),
        "{all:?}"
    );
}
