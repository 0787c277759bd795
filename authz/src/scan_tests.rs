//! A property test: the indexed authorizer agrees with a plain scan of every binding, written
//! straight from Kubernetes' `RuleAllows` and `appliesTo`, over random policies and requests.

use crate::objects::{Binding, PolicyRule, RbacObject, Role, RoleRefKind, SubjectKind};
use crate::RbacAuthorizer;
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, UserInfo};
use proptest::prelude::*;
use serde_json::{json, Value};

fn has(list: &[String], x: &str) -> bool {
    list.iter().any(|l| l == x)
}

fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    let verb = has(&rule.verbs, "*") || has(&rule.verbs, &a.verb);
    if !a.resource_request {
        return verb
            && rule.non_resource_urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || (u.ends_with('*') && a.path.starts_with(u.trim_end_matches('*')))
            });
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource = rule.resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
    });
    verb && (has(&rule.api_groups, "*") || has(&rule.api_groups, &a.api_group))
        && resource
        && (rule.resource_names.is_empty() || has(&rule.resource_names, &a.name))
}

/// Every reason a plain scan could give for allowing `a` (empty: not allowed).
fn scan(objects: &[RbacObject], a: &Attributes) -> Vec<String> {
    let find_role = |kind: RoleRefKind, ns: &str, name: &str| -> Option<&Role> {
        objects.iter().find_map(|o| match (o, kind) {
            (RbacObject::ClusterRole(r), RoleRefKind::ClusterRole) if r.name == name => Some(r),
            (RbacObject::Role(r), RoleRefKind::Role) if r.name == name && r.namespace == ns => {
                Some(r)
            }
            _ => None,
        })
    };
    let mut reasons = Vec::new();
    let mut consider = |b: &Binding, what: String| {
        let subject = b.subjects.iter().find(|s| match s.kind {
            SubjectKind::User => s.name == a.user.name,
            SubjectKind::Group => a.user.in_group(&s.name),
            SubjectKind::ServiceAccount => {
                let ns = if s.namespace.is_empty() {
                    &b.namespace
                } else {
                    &s.namespace
                };
                a.user.name == format!("system:serviceaccount:{ns}:{}", s.name)
            }
        });
        let (Some(s), Some(role)) = (
            subject,
            find_role(b.role_ref.kind, &b.namespace, &b.role_ref.name),
        ) else {
            return;
        };
        if role.rules.iter().any(|r| rule_allows(r, a)) {
            let described = if s.kind == SubjectKind::ServiceAccount {
                let ns = if s.namespace.is_empty() {
                    &b.namespace
                } else {
                    &s.namespace
                };
                format!("{}/{ns}", s.name)
            } else {
                s.name.clone()
            };
            reasons.push(format!(
                "RBAC: allowed by {what} of {} \"{}\" to {} \"{described}\"",
                b.role_ref.kind.as_str(),
                b.role_ref.name,
                s.kind.as_str()
            ));
        }
    };
    for o in objects {
        match o {
            RbacObject::ClusterRoleBinding(b) => {
                consider(b, format!("ClusterRoleBinding \"{}\"", b.name))
            }
            RbacObject::RoleBinding(b) if b.namespace == a.namespace => {
                consider(b, format!("RoleBinding \"{}/{}\"", b.name, b.namespace))
            }
            _ => {}
        }
    }
    reasons
}

fn pick(options: &'static [&'static str]) -> proptest::sample::Select<&'static str> {
    proptest::sample::select(options)
}

fn names(options: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(pick(options), 0..=max)
}

const NAMESPACES: &[&str] = &["n0", "n1"];
const ROLES: &[&str] = &["r0", "r1"];

fn rule() -> impl Strategy<Value = Value> {
    (
        names(&["get", "list", "create", "*"], 2),
        names(&["", "apps", "*"], 2),
        names(
            &[
                "pods",
                "pods/log",
                "*",
                "*/scale",
                "deployments",
                "deployments/scale",
            ],
            3,
        ),
        names(&["a", "b"], 1),
        names(&["/api", "/api/*", "*", "/healthz"], 2),
    )
        .prop_map(|(verbs, groups, resources, rnames, urls)| {
            json!({"verbs": verbs, "apiGroups": groups, "resources": resources,
                   "resourceNames": rnames, "nonResourceURLs": urls})
        })
}

fn subject() -> impl Strategy<Value = Value> {
    (
        pick(&["User", "Group", "ServiceAccount"]),
        pick(&["u0", "g0", "sa"]),
        pick(&["", "n0", "n1"]),
    )
        .prop_map(|(kind, name, ns)| json!({"kind": kind, "name": name, "namespace": ns}))
}

fn object() -> impl Strategy<Value = Value> {
    prop_oneof![
        (pick(ROLES), proptest::collection::vec(rule(), 0..3)).prop_map(|(name, rules)| {
            json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
        }),
        (
            pick(NAMESPACES),
            pick(ROLES),
            proptest::collection::vec(rule(), 0..3)
        )
            .prop_map(|(ns, name, rules)| {
                json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
            }),
        (
            pick(&["b0", "b1", "b2"]),
            pick(ROLES),
            proptest::collection::vec(subject(), 0..3)
        )
            .prop_map(|(name, role, subjects)| {
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": name},
                       "roleRef": {"kind": "ClusterRole", "name": role}, "subjects": subjects})
            }),
        (
            pick(NAMESPACES),
            pick(&["b0", "b1"]),
            pick(&["Role", "ClusterRole"]),
            pick(ROLES),
            proptest::collection::vec(subject(), 0..3)
        )
            .prop_map(|(ns, name, kind, role, subjects)| {
                json!({"kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
                       "roleRef": {"kind": kind, "name": role}, "subjects": subjects})
            }),
    ]
}

fn attributes() -> impl Strategy<Value = Attributes> {
    (
        pick(&[
            "u0",
            "u1",
            "system:serviceaccount:n0:sa",
            "system:serviceaccount:n1:sa",
        ]),
        names(&["g0", "g1"], 2),
        pick(&["get", "list", "create", "delete"]),
        pick(&["", "apps", "x.io"]),
        pick(&["pods", "deployments", "*"]),
        pick(&["", "log", "scale"]),
        pick(&["", "n0", "n1"]),
        pick(&["", "a", "b"]),
        // Mostly resource requests.
        pick(&["", "", "", "", "", "/api", "/api/v1", "/healthz", "/apis"]),
    )
        .prop_map(
            |(name, groups, verb, group, resource, sub, ns, obj, path)| {
                let user = UserInfo::new(name).with_groups(groups);
                if path.is_empty() {
                    let mut a = Attributes::resource(user, verb, group, resource, ns);
                    a.subresource = sub.to_owned();
                    a.name = obj.to_owned();
                    a
                } else {
                    Attributes::non_resource(user, verb, path)
                }
            },
        )
}

proptest! {
    #[test]
    fn indexed_agrees_with_a_plain_scan(
        // Each event is an upsert, or a delete of what the object names.
        events in proptest::collection::vec((object(), proptest::bool::weighted(0.2)), 0..40),
        requests in proptest::collection::vec(attributes(), 1..40),
    ) {
        let rbac = RbacAuthorizer::new();
        let mut live: Vec<RbacObject> = Vec::new();
        for (value, delete) in &events {
            let Ok(parsed) = RbacObject::from_value(value) else { continue };
            let key = |o: &RbacObject| match o {
                RbacObject::Role(r) | RbacObject::ClusterRole(r) => (o.kind(), r.namespace.clone(), r.name.clone()),
                RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b) => (o.kind(), b.namespace.clone(), b.name.clone()),
            };
            let k = key(&parsed);
            live.retain(|o| key(o) != k);
            if *delete {
                rbac.remove(k.0.as_str(), &k.1, &k.2);
            } else {
                rbac.upsert(value).unwrap();
                live.push(parsed);
            }
        }
        for a in &requests {
            let got = rbac.authorize(a);
            let allowed_by = scan(&live, a);
            prop_assert_eq!(got.is_allow(), !allowed_by.is_empty(), "{:?}: {:?} vs {:?}", a, got, allowed_by);
            if got.is_allow() {
                prop_assert!(allowed_by.iter().any(|r| r == got.reason()), "{:?} not in {:?}", got, allowed_by);
            }
        }
    }
}
