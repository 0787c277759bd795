//! A property test: the indexed authorizer agrees with a plain scan of every binding, written
//! straight from Kubernetes' `RuleAllows` and `appliesTo`, over random policies and requests:
//! subresources (`*/scale`, `pods/*`), resourceNames, nonResourceURLs with `*` and prefixes,
//! ServiceAccount subjects with and without a namespace, users named like ServiceAccounts,
//! groups, RoleBindings to ClusterRoles, missing roles, updates, deletes and refused objects.
//! The query APIs are held to the same scan: `rules_for`, `who_can` and `explain` must agree
//! with the decisions.

use crate::objects::{Binding, PolicyRule, RbacKind, RbacObject, Role, RoleRefKind, SubjectKind};
use crate::RbacAuthorizer;
use kgate_core::authz::Authorizer;
use kgate_core::{Attributes, UserInfo};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

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

/// What a plain scan finds for `a`.
#[derive(Debug, Default)]
struct Scan {
    /// Every reason an allow could give (empty: not allowed).
    allowed_by: Vec<String>,
    /// The not-found errors of bindings that name the user, in scope.
    missing: BTreeSet<String>,
}

fn sa_namespace<'a>(b: &'a Binding, subject_namespace: &'a str) -> &'a str {
    if subject_namespace.is_empty() {
        &b.namespace
    } else {
        subject_namespace
    }
}

fn scan(objects: &[RbacObject], a: &Attributes) -> Scan {
    let find_role = |kind: RoleRefKind, ns: &str, name: &str| -> Option<&Role> {
        objects.iter().find_map(|o| match (o, kind) {
            (RbacObject::ClusterRole(r), RoleRefKind::ClusterRole) if r.name == name => Some(r),
            (RbacObject::Role(r), RoleRefKind::Role) if r.name == name && r.namespace == ns => {
                Some(r)
            }
            _ => None,
        })
    };
    let mut out = Scan::default();
    let mut consider = |b: &Binding, what: String| {
        let subject = b.subjects.iter().find(|s| match s.kind {
            SubjectKind::User => s.name == a.user.name,
            SubjectKind::Group => a.user.in_group(&s.name),
            SubjectKind::ServiceAccount => {
                let ns = sa_namespace(b, &s.namespace);
                !ns.is_empty() && a.user.name == format!("system:serviceaccount:{ns}:{}", s.name)
            }
        });
        let Some(s) = subject else { return };
        let Some(role) = find_role(b.role_ref.kind, &b.namespace, &b.role_ref.name) else {
            let resource = match b.role_ref.kind {
                RoleRefKind::Role => "role",
                RoleRefKind::ClusterRole => "clusterrole",
            };
            out.missing.insert(format!(
                "{resource}.rbac.authorization.k8s.io \"{}\" not found",
                b.role_ref.name
            ));
            return;
        };
        if role.rules.iter().any(|r| rule_allows(r, a)) {
            let described = if s.kind == SubjectKind::ServiceAccount {
                format!("{}/{}", s.name, sa_namespace(b, &s.namespace))
            } else {
                s.name.clone()
            };
            out.allowed_by.push(format!(
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
            // RoleBindings of the request's namespace, and never for a non-resource URL.
            RbacObject::RoleBinding(b)
                if a.resource_request && !a.namespace.is_empty() && b.namespace == a.namespace =>
            {
                consider(b, format!("RoleBinding \"{}/{}\"", b.name, b.namespace))
            }
            _ => {}
        }
    }
    out
}

/// The errors of a NoOpinion reason: `RBAC: e` or `RBAC: [e1, e2]`.
fn reason_errors(reason: &str) -> BTreeSet<String> {
    let Some(rest) = reason.strip_prefix("RBAC: ") else {
        return BTreeSet::new();
    };
    let rest = rest
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(rest);
    rest.split(", ").map(str::to_owned).collect()
}

fn pick(options: &'static [&'static str]) -> proptest::sample::Select<&'static str> {
    proptest::sample::select(options)
}

fn names(options: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(pick(options), 0..=max)
}

const NAMESPACES: &[&str] = &["n0", "n1"];
/// r2 is never defined by the generator below as often: bindings to it test missing roles.
const ROLES: &[&str] = &["r0", "r1", "r2"];
const DEFINED_ROLES: &[&str] = &["r0", "r0", "r1", "r1", "r2"];

fn some(options: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(pick(options), 1..=max)
}

/// Mostly resource rules, some non-resource rules, a few with both (valid for the authorizer,
/// which evaluates what is stored). Wildcards are frequent so that allows are too.
fn rule() -> impl Strategy<Value = Value> {
    let verbs = || some(&["get", "list", "*", "*", "create", "escalate", "frob"], 2);
    let resource_rule = (
        verbs(),
        some(&["", "", "apps", "*", "*"], 2),
        some(
            &[
                "pods",
                "pods/log",
                "pods/*",
                "*",
                "*",
                "*/scale",
                "deployments",
                "deployments/scale",
                "deployments/status",
            ],
            3,
        ),
        prop_oneof![3 => Just(Vec::new()), 1 => some(&["a", "b"], 2)],
    )
        .prop_map(|(verbs, groups, resources, rnames)| {
            json!({"verbs": verbs, "apiGroups": groups, "resources": resources,
                   "resourceNames": rnames})
        });
    let url_rule = (
        verbs(),
        some(
            &[
                "/api", "/api/*", "*", "/healthz", "/ap*", "/logs**", "/apis",
            ],
            2,
        ),
    )
        .prop_map(|(verbs, urls)| json!({"verbs": verbs, "nonResourceURLs": urls}));
    let mixed = (
        verbs(),
        names(&["", "*"], 1),
        names(&["pods", "*"], 1),
        names(&["/api", "*"], 1),
    )
        .prop_map(|(verbs, groups, resources, urls)| {
            json!({"verbs": verbs, "apiGroups": groups, "resources": resources,
                   "nonResourceURLs": urls})
        });
    prop_oneof![6 => resource_rule, 3 => url_rule, 1 => mixed]
}

fn subject() -> impl Strategy<Value = Value> {
    prop_oneof![
        pick(&["u0", "u0", "u1", "system:serviceaccount:n0:sa"])
            .prop_map(|name| json!({"kind": "User", "name": name})),
        pick(&[
            "g0",
            "g1",
            "system:serviceaccounts",
            "system:serviceaccounts:n0",
            "system:authenticated"
        ])
        .prop_map(|name| json!({"kind": "Group", "name": name})),
        // An empty namespace: the binding's (refused in a ClusterRoleBinding).
        (pick(&["sa", "sb"]), pick(&["", "n0", "n1"])).prop_map(|(name, ns)| {
            json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
        }),
    ]
}

fn object() -> impl Strategy<Value = Value> {
    prop_oneof![
        (pick(DEFINED_ROLES), proptest::collection::vec(rule(), 0..3)).prop_map(|(name, rules)| {
            json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
        }),
        (
            pick(NAMESPACES),
            pick(DEFINED_ROLES),
            proptest::collection::vec(rule(), 0..3)
        )
            .prop_map(|(ns, name, rules)| {
                json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
            }),
        (
            pick(&["b0", "b1", "b2"]),
            pick(ROLES),
            proptest::collection::vec(subject(), 0..4)
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
            proptest::collection::vec(subject(), 0..4)
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
            "u0",
            "u1",
            "system:serviceaccount:n0:sa",
            "system:serviceaccount:n0:sa",
            "system:serviceaccount:n1:sa",
            "system:serviceaccount:n0:sb",
        ]),
        names(
            &[
                "g0",
                "g1",
                "system:serviceaccounts",
                "system:serviceaccounts:n0",
                "system:authenticated",
            ],
            3,
        ),
        pick(&[
            "get", "get", "list", "create", "delete", "escalate", "frob", "Get",
        ]),
        pick(&["", "", "apps", "x.io"]),
        pick(&["pods", "pods", "deployments", "*"]),
        pick(&["", "", "log", "scale", "status", "*"]),
        pick(&["", "n0", "n0", "n1"]),
        pick(&["", "a", "b"]),
        // Mostly resource requests; some non-resource ones carry a stray namespace.
        pick(&[
            "", "", "", "", "", "/api", "/api/v1", "/healthz", "/apis", "/logs", "/apx",
        ]),
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
                    let mut a = Attributes::non_resource(user, verb, path);
                    a.namespace = ns.to_owned();
                    a
                }
            },
        )
}

/// (kind, namespace, name) of an object, to track the live set.
fn key(o: &RbacObject) -> (RbacKind, String, String) {
    match o {
        RbacObject::Role(r) | RbacObject::ClusterRole(r) => {
            (o.kind(), r.namespace.clone(), r.name.clone())
        }
        RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b) => {
            (o.kind(), b.namespace.clone(), b.name.clone())
        }
    }
}

/// The same key read from JSON that does not parse.
fn raw_key(value: &Value) -> Option<(RbacKind, String, String)> {
    let kind = RbacKind::from_kind(value["kind"].as_str()?)?;
    let ns = if kind.is_namespaced() {
        value["metadata"]["namespace"].as_str()?.to_owned()
    } else {
        String::new()
    };
    Some((kind, ns, value["metadata"]["name"].as_str()?.to_owned()))
}

/// Requests aimed at what the live bindings grant, so that allows are common: for each subject
/// of each binding and each rule of its role, a user that subject names and a request built
/// from the rule's first verb, group, resource, name or URL (wildcards made concrete).
fn aimed_requests(live: &[RbacObject]) -> Vec<Attributes> {
    let concrete = |list: &[String], star: &str, fallback: &str| -> String {
        match list.first().map(String::as_str) {
            None => fallback.to_owned(),
            Some("*") => star.to_owned(),
            Some(x) => x.to_owned(),
        }
    };
    let mut out = Vec::new();
    for o in live {
        let (RbacObject::RoleBinding(b) | RbacObject::ClusterRoleBinding(b)) = o else {
            continue;
        };
        let rules: Vec<&PolicyRule> = live
            .iter()
            .filter_map(|r| match (r, b.role_ref.kind) {
                (RbacObject::ClusterRole(r), RoleRefKind::ClusterRole) => Some(r),
                (RbacObject::Role(r), RoleRefKind::Role) if r.namespace == b.namespace => Some(r),
                _ => None,
            })
            .filter(|r| r.name == b.role_ref.name)
            .flat_map(|r| &r.rules)
            .collect();
        for s in &b.subjects {
            let user = match s.kind {
                SubjectKind::User => UserInfo::new(s.name.clone()),
                SubjectKind::Group => UserInfo::new("someone").with_groups([s.name.clone()]),
                SubjectKind::ServiceAccount => UserInfo::new(format!(
                    "system:serviceaccount:{}:{}",
                    sa_namespace(b, &s.namespace),
                    s.name
                )),
            };
            for rule in &rules {
                let verb = concrete(&rule.verbs, "delete", "get");
                let ns = if b.namespace.is_empty() {
                    "n1"
                } else {
                    &b.namespace
                };
                let resource = concrete(&rule.resources, "pods", "pods");
                let (resource, sub) = match resource.split_once('/') {
                    Some(("*", sub)) => ("deployments".to_owned(), sub.to_owned()),
                    Some((r, sub)) => (r.to_owned(), sub.to_owned()),
                    None => (resource, String::new()),
                };
                let mut a = Attributes::resource(
                    user.clone(),
                    &verb,
                    &concrete(&rule.api_groups, "x.io", ""),
                    &resource,
                    ns,
                );
                a.subresource = sub;
                a.name = concrete(&rule.resource_names, "*", "a");
                out.push(a);
                let path = concrete(&rule.non_resource_urls, "/any", "/api");
                out.push(Attributes::non_resource(
                    user.clone(),
                    &verb,
                    path.trim_end_matches('*'),
                ));
            }
        }
    }
    out
}

fn check_queries(
    rbac: &RbacAuthorizer,
    a: &Attributes,
    allowed: bool,
) -> Result<(), TestCaseError> {
    // rules_for: the decision is what the listed rules allow (resource rules in the request's
    // namespace; non-resource rules cluster-wide only).
    let by_rules = if a.resource_request {
        rbac.rules_for(&a.user, &a.namespace)
            .resource_rules
            .iter()
            .any(|r| rule_allows(r, a))
    } else {
        rbac.rules_for(&a.user, "")
            .non_resource_rules
            .iter()
            .any(|r| rule_allows(r, a))
    };
    prop_assert_eq!(by_rules, allowed, "rules_for disagrees on {:?}", a);
    // who_can: the user is allowed iff a listed subject is the user or one of its groups.
    let listed = rbac.who_can(a).iter().any(|g| match g.subject.kind {
        SubjectKind::User => g.subject.name == a.user.name,
        SubjectKind::Group => a.user.in_group(&g.subject.name),
        SubjectKind::ServiceAccount => {
            a.user.name
                == format!(
                    "system:serviceaccount:{}:{}",
                    g.subject.namespace, g.subject.name
                )
        }
    });
    prop_assert_eq!(listed, allowed, "who_can disagrees on {:?}", a);
    // explain: the same decision, and a matching rule exactly when allowed.
    let e = rbac.explain(a);
    prop_assert_eq!(e.decision.is_allow(), allowed);
    let matched = e.bindings.iter().any(|b| b.rules.iter().any(|r| r.matched));
    prop_assert_eq!(matched, allowed, "explain disagrees on {:?}", a);
    Ok(())
}

proptest! {
    #[test]
    fn indexed_agrees_with_a_plain_scan(
        // Each event is an upsert, or a delete of what the object names.
        events in proptest::collection::vec((object(), proptest::bool::weighted(0.15)), 4..40),
        requests in proptest::collection::vec(attributes(), 1..40),
    ) {
        let rbac = RbacAuthorizer::new();
        let mut live: Vec<RbacObject> = Vec::new();
        for (value, delete) in &events {
            match RbacObject::from_value(value) {
                Ok(parsed) => {
                    let k = key(&parsed);
                    live.retain(|o| key(o) != k);
                    if *delete {
                        rbac.remove(k.0.as_str(), &k.1, &k.2);
                    } else {
                        rbac.upsert(value).unwrap();
                        live.push(parsed);
                    }
                }
                // Refused: the previous version is dropped too (RBAC fails closed).
                Err(_) => {
                    prop_assert!(rbac.upsert(value).is_err());
                    if let Some(k) = raw_key(value) {
                        live.retain(|o| key(o) != k);
                    }
                }
            }
        }
        for a in requests.iter().chain(&aimed_requests(&live)) {
            let got = rbac.authorize(a);
            let scanned = scan(&live, a);
            let allowed = !scanned.allowed_by.is_empty();
            prop_assert_eq!(got.is_allow(), allowed, "{:?}: {:?} vs {:?}", a, got, scanned);
            if got.is_allow() {
                prop_assert!(scanned.allowed_by.iter().any(|r| r == got.reason()), "{:?} not in {:?}", got, scanned);
            } else {
                prop_assert_eq!(reason_errors(got.reason()), scanned.missing.clone(), "{:?}", a);
            }
            check_queries(&rbac, a, allowed)?;
        }
        // Deleting everything leaves nothing behind, role slots included.
        for o in &live {
            let (kind, ns, name) = key(o);
            rbac.remove(kind.as_str(), &ns, &name);
        }
        for kind in RbacKind::ALL {
            prop_assert_eq!(rbac.object_count(kind), 0);
        }
        prop_assert_eq!(rbac.read().role_slots_in_use(), 0);
    }
}
