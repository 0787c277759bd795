//! Builders for the case tables: RBAC objects as the API stores them, users and requests in a
//! compact notation, and the runner that checks every case and reports all failures at once.

use kgate_authz::RbacAuthorizer;
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, UserInfo};
use serde_json::{json, Value};

/// A rule on resources.
pub fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

/// A rule on resources restricted to some names.
pub fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

/// A rule on non-resource URLs.
pub fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

pub fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name}, "rules": rules})
}

pub fn role(ns: &str, name: &str, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

pub fn crb(name: &str, cluster_role: &str, subjects: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
           "subjects": subjects})
}

/// A RoleBinding; `role_ref` is (`Role` or `ClusterRole`, name).
pub fn rb(ns: &str, name: &str, role_ref: (&str, &str), subjects: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_ref.0, "name": role_ref.1},
           "subjects": subjects})
}

pub fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

pub fn group(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

/// A ServiceAccount subject; an empty `ns` leaves the namespace out.
pub fn sa(ns: &str, name: &str) -> Value {
    if ns.is_empty() {
        json!({"kind": "ServiceAccount", "name": name})
    } else {
        json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
    }
}

/// ClusterRole `r` with `rules`, bound to User alice by ClusterRoleBinding `b`.
pub fn alice_cluster(rules: Vec<Value>) -> Vec<Value> {
    vec![cluster_role("r", rules), crb("b", "r", vec![user("alice")])]
}

/// ClusterRole `r` with `rules`, bound to User alice in `ns` by RoleBinding `b`.
pub fn alice_in(ns: &str, rules: Vec<Value>) -> Vec<Value> {
    vec![
        cluster_role("r", rules),
        rb(ns, "b", ("ClusterRole", "r"), vec![user("alice")]),
    ]
}

pub const ALICE_CLUSTER: &str =
    r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "alice""#;

/// `name|group|group`; `system:anonymous` is the anonymous user with its group. Groups are
/// exactly those written (the authenticator's job is not repeated here).
pub fn who(spec: &str) -> UserInfo {
    let mut parts = spec.split('|');
    let name = parts.next().unwrap_or_default();
    if name == "system:anonymous" {
        return UserInfo::anonymous();
    }
    UserInfo::new(name).with_groups(parts)
}

/// `verb group resource[/sub] namespace [name]` (`core` is the group "", `-` no namespace), or
/// `verb /path` for a non-resource request.
pub fn request(user: UserInfo, spec: &str) -> Attributes {
    let f: Vec<&str> = spec.split_whitespace().collect();
    if f[1].starts_with('/') {
        return Attributes::non_resource(user, f[0], f[1]);
    }
    let group = if f[1] == "core" { "" } else { f[1] };
    let (resource, sub) = f[2].split_once('/').unwrap_or((f[2], ""));
    let ns = f.get(3).map_or("", |n| if *n == "-" { "" } else { n });
    let mut a = Attributes::resource(user, f[0], group, resource, ns);
    a.subresource = sub.to_owned();
    a.name = f.get(4).map_or(String::new(), |n| (*n).to_owned());
    a
}

#[derive(Debug)]
pub enum Want {
    Allow,
    /// Allowed, with exactly this reason.
    AllowBy(&'static str),
    /// No opinion with an empty reason.
    Deny,
    /// No opinion with exactly this reason.
    DenyWith(&'static str),
}

pub struct Case {
    pub name: &'static str,
    pub objects: Vec<Value>,
    pub who: &'static str,
    pub request: &'static str,
    pub want: Want,
}

pub fn case(
    name: &'static str,
    objects: Vec<Value>,
    who: &'static str,
    request: &'static str,
    want: Want,
) -> Case {
    Case {
        name,
        objects,
        who,
        request,
        want,
    }
}

/// Runs every case on a fresh authorizer holding its objects; panics listing every failure.
pub fn run(cases: &[Case]) {
    let mut failures = Vec::new();
    for c in cases {
        let rbac = RbacAuthorizer::new();
        for o in &c.objects {
            rbac.upsert(o)
                .unwrap_or_else(|e| panic!("{}: object refused: {e}", c.name));
        }
        let got = rbac.authorize(&request(who(c.who), c.request));
        let ok = match &c.want {
            Want::Allow => got.is_allow(),
            Want::AllowBy(reason) => got.is_allow() && got.reason() == *reason,
            Want::Deny => !got.is_allow() && got.reason().is_empty(),
            Want::DenyWith(reason) => !got.is_allow() && got.reason() == *reason,
        };
        if !ok {
            failures.push(format!(
                "{}: {} {}: want {:?}, got {got:?}",
                c.name, c.who, c.request, c.want
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
