//! RBAC, kgate against the real kube-apiserver (v1.34.2, with the real kube-controller-manager
//! for ClusterRole aggregation): the same RBAC world is made on both, and the same
//! SubjectAccessReviews are answered by both.
//!
//! - Suite `bootstrap`: every ClusterRole, ClusterRoleBinding, Role and RoleBinding both servers
//!   start with (labels, annotations, rules, aggregationRule, roleRef, subjects), once the
//!   reference's controller manager has aggregated admin/edit/view.
//! - Suite `rbac`: the generated world's aggregated ClusterRoles (their rules, once both
//!   converged), then at least 300 SubjectAccessReviews from a seeded generator (written here:
//!   the same world and questions on every run) and hand-picked edge cases, including node
//!   identities (the reference runs the Node authorizer before RBAC; kgate has none); then, as
//!   users with client certificates of each server, SelfSubjectRulesReviews in every namespace,
//!   SelfSubjectAccessReviews, and the same questions as LocalSubjectAccessReviews.
//!
//! A review's answer is compared whole (`allowed`, `denied`, `evaluationError`, and an invalid
//! review's Status) except the allowing binding's name: kube-apiserver names the first binding
//! that allows, in its informer's (map) order, so when several allow, the one named is chosen at
//! random (`plugin/pkg/auth/authorizer/rbac/rbac.go`, `VisitRulesFor` in
//! `pkg/registry/rbac/validation/rule.go`). The reason is compared as its shape there: which kind
//! of binding allowed (ClusterRoleBindings are visited first on both), and a denial's list of
//! missing roles as a set (the same random order). Each server's allowing reason must besides
//! name a binding that server holds, of the role it names, to a subject the review's user is.

use kgate_e2e::reference::{Differences, Reference, ReferenceOptions};
use kgate_e2e::{poll, request, ApiServer, Kgate};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const SAR: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// How long both servers get to aggregate ClusterRoles and see the world.
const CONVERGE: Duration = Duration::from_secs(60);

/// splitmix64: a seeded, portable PRNG (no dependency), so the world and the questions are the
/// same on every run.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One to `max` distinct items, in the slice's order.
    fn some<T: Clone>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let want = 1 + self.below(max.min(items.len()));
        let mut chosen = BTreeSet::new();
        while chosen.len() < want {
            chosen.insert(self.below(items.len()));
        }
        chosen.into_iter().map(|i| items[i].clone()).collect()
    }
}

const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];
const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const GROUPS: [&str; 3] = ["dev", "ops", "qa"];
/// (namespace, name) of the service accounts subjects and reviews name.
const SERVICE_ACCOUNTS: [(&str, &str); 3] = [
    ("alpha", "builder"),
    ("beta", "deployer"),
    ("gamma", "default"),
];
const VERBS: [&str; 12] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "*",
    "impersonate",
    "bind",
    "escalate",
];
/// (apiGroup, resource) a rule may name: plain, subresources, wildcards, and `pods/*`, which
/// Kubernetes takes literally (only `*/SUB` is a pattern).
const RULE_RESOURCES: [(&str, &str); 18] = [
    ("", "pods"),
    ("", "pods/log"),
    ("", "pods/exec"),
    ("", "pods/*"),
    ("", "secrets"),
    ("", "configmaps"),
    ("", "services"),
    ("", "nodes"),
    ("", "namespaces"),
    ("", "*"),
    ("apps", "deployments"),
    ("apps", "deployments/scale"),
    ("apps", "*"),
    ("*", "*/scale"),
    ("*", "*"),
    ("batch", "jobs"),
    ("rbac.authorization.k8s.io", "roles"),
    ("*", "secrets"),
];
const RESOURCE_NAMES: [&str; 3] = ["web", "db", "cache"];
const NON_RESOURCE_URLS: [&str; 7] = [
    "/healthz",
    "/metrics",
    "/logs/*",
    "/apis/*",
    "*",
    "/version",
    "/custom/path",
];
/// Labels the generated ClusterRoles may carry, and the aggregated ClusterRoles select on.
const AGGREGATE_LABELS: [(&str, &str); 4] = [
    ("diff.kgate.io/aggregate-to-one", "true"),
    ("diff.kgate.io/tier", "gold"),
    ("diff.kgate.io/tier", "silver"),
    ("rbac.authorization.k8s.io/aggregate-to-view", "true"),
];

/// One generated rule.
fn resource_rule(rng: &mut Prng) -> Value {
    let verbs = if rng.chance(10) {
        vec!["*"]
    } else {
        rng.some(&VERBS[..8], 3)
    };
    let (group, resource) = *rng.pick(&RULE_RESOURCES);
    let mut groups = vec![group];
    if group != "*" && rng.chance(20) {
        groups.push(if group.is_empty() { "apps" } else { "" });
    }
    let mut resources = vec![resource];
    if rng.chance(25) {
        let (_, other) = *rng.pick(&RULE_RESOURCES);
        if other != resource {
            resources.push(other);
        }
    }
    let mut rule = json!({"apiGroups": groups, "resources": resources, "verbs": verbs});
    if rng.chance(25) {
        rule["resourceNames"] = json!(rng.some(&RESOURCE_NAMES, 2));
    }
    rule
}

fn non_resource_rule(rng: &mut Prng) -> Value {
    let verbs = if rng.chance(15) {
        vec!["*"]
    } else {
        rng.some(&["get", "post", "put"], 2)
    };
    json!({"nonResourceURLs": rng.some(&NON_RESOURCE_URLS, 2), "verbs": verbs})
}

fn meta(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({"name": name, "namespace": ns}),
        None => json!({"name": name}),
    }
}

/// A binding subject, from every kind Kubernetes matches.
fn subject(rng: &mut Prng, in_namespace: bool) -> Value {
    let user =
        |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name});
    let group = |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": name});
    match rng.below(12) {
        0..=3 => {
            let name = *rng.pick(&USERS);
            user(name)
        }
        4..=5 => {
            let name = *rng.pick(&GROUPS);
            group(name)
        }
        6 | 7 => {
            let (ns, name) = *rng.pick(&SERVICE_ACCOUNTS);
            // In a RoleBinding an unqualified ServiceAccount is one of the binding's namespace.
            if in_namespace && rng.chance(30) {
                json!({"kind": "ServiceAccount", "name": name})
            } else {
                json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
            }
        }
        8 => group("system:authenticated"),
        9 => group("system:unauthenticated"),
        10 => group("system:serviceaccounts"),
        _ => group(&format!("system:serviceaccounts:{}", rng.pick(&NAMESPACES))),
    }
}

/// The generated world, in creation order (namespaces, roles, then bindings), and the names of
/// its aggregated ClusterRoles.
fn world(seed: u64) -> (Vec<Value>, Vec<String>) {
    let mut rng = Prng(seed);
    let mut objects: Vec<Value> = NAMESPACES
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    let mut cluster_roles = Vec::new();
    for i in 0..14 {
        let name = format!("diff-cr-{i}");
        let mut rules = Vec::new();
        for _ in 0..1 + rng.below(3) {
            rules.push(if rng.chance(20) {
                non_resource_rule(&mut rng)
            } else {
                resource_rule(&mut rng)
            });
        }
        let mut metadata = meta(&name, None);
        if rng.chance(50) {
            let (key, value) = *rng.pick(&AGGREGATE_LABELS);
            metadata["labels"] = json!({ key: value });
        }
        objects.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": metadata, "rules": rules}),
        );
        cluster_roles.push(name);
    }
    // Aggregated ClusterRoles: matchLabels, matchExpressions, two selectors, and one that
    // selects nothing.
    let aggregated = [
        (
            "diff-agg-one",
            json!([{"matchLabels": {"diff.kgate.io/aggregate-to-one": "true"}}]),
        ),
        (
            "diff-agg-tiers",
            json!([{"matchExpressions": [{"key": "diff.kgate.io/tier", "operator": "In",
                "values": ["gold", "silver"]}]}]),
        ),
        (
            "diff-agg-both",
            json!([{"matchLabels": {"diff.kgate.io/tier": "gold"}},
                   {"matchLabels": {"diff.kgate.io/aggregate-to-one": "true"}}]),
        ),
        (
            "diff-agg-none",
            json!([{"matchLabels": {"diff.kgate.io/nothing": "true"}}]),
        ),
    ];
    for (name, selectors) in &aggregated {
        objects.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name}, "aggregationRule": {"clusterRoleSelectors": selectors}}),
        );
        cluster_roles.push((*name).to_owned());
    }
    let mut roles: Vec<(String, String)> = Vec::new();
    for i in 0..9 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        let name = format!("diff-role-{i}");
        let rules: Vec<Value> = (0..1 + rng.below(2))
            .map(|_| resource_rule(&mut rng))
            .collect();
        objects.push(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": meta(&name, Some(ns)), "rules": rules}),
        );
        roles.push((ns.to_owned(), name));
    }
    let role_ref = |kind: &str, name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
    // Bootstrap roles bound too, so that their rules meet the generated questions.
    let bootstrap = [
        "view",
        "edit",
        "admin",
        "system:basic-user",
        "system:discovery",
    ];
    for i in 0..16 {
        let name = format!("diff-crb-{i}");
        let target = match rng.below(10) {
            0 => "diff-missing-cr".to_owned(),
            1 => (*rng.pick(&bootstrap)).to_owned(),
            _ => rng.pick(&cluster_roles).clone(),
        };
        let subjects: Vec<Value> = (0..1 + rng.below(3))
            .map(|_| subject(&mut rng, false))
            .collect();
        objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding", "metadata": meta(&name, None),
            "roleRef": role_ref("ClusterRole", &target), "subjects": subjects}));
    }
    for i in 0..22 {
        let ns = *rng.pick(&NAMESPACES);
        let name = format!("diff-rb-{i}");
        let reference = match rng.below(10) {
            0 => role_ref("Role", "diff-missing-role"),
            1 => role_ref("ClusterRole", "diff-missing-cr"),
            2 | 3 => {
                let name = *rng.pick(&bootstrap);
                role_ref("ClusterRole", name)
            }
            4..=6 => role_ref("ClusterRole", rng.pick(&cluster_roles).as_str()),
            _ => {
                // A Role of this namespace, or (when it lives in another namespace) a Role
                // this namespace does not have.
                let (_, role) = rng.pick(&roles).clone();
                role_ref("Role", &role)
            }
        };
        let subjects: Vec<Value> = (0..1 + rng.below(3))
            .map(|_| subject(&mut rng, true))
            .collect();
        objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding", "metadata": meta(&name, Some(ns)),
            "roleRef": reference, "subjects": subjects}));
    }
    // Last: the sentinel that tells when a server's authorizer has seen the whole world.
    objects.push(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "diff-sentinel"},
        "rules": [{"nonResourceURLs": ["/diff-sentinel"], "verbs": ["get"]}]}),
    );
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "diff-sentinel"}, "roleRef": role_ref("ClusterRole", "diff-sentinel"),
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sentinel"}]}));
    let aggregated = aggregated.iter().map(|(n, _)| (*n).to_owned()).collect();
    (objects, aggregated)
}

/// The rules of the world's ClusterRoles that `aggregated`'s selectors pick: the world's own
/// aggregationRule, or for `view` the bootstrap one (`aggregate-to-view`). Selectors with
/// `matchLabels` and `In` expressions, all the world uses.
fn selected_rules(objects: &[Value], aggregated: &str) -> BTreeSet<String> {
    let selectors = if aggregated == "view" {
        json!([{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}])
    } else {
        objects
            .iter()
            .find(|o| o["metadata"]["name"] == aggregated && o["kind"] == "ClusterRole")
            .map(|o| o["aggregationRule"]["clusterRoleSelectors"].clone())
            .unwrap_or_default()
    };
    let matches = |selector: &Value, labels: &Value| {
        let by_labels = selector["matchLabels"]
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| labels[k.as_str()] == *v);
        let by_expressions = selector["matchExpressions"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| {
                assert_eq!(e["operator"], "In", "the world uses In only");
                let values = e["values"].as_array().cloned().unwrap_or_default();
                values.contains(&labels[e["key"].as_str().unwrap_or("")])
            });
        by_labels && by_expressions
    };
    let mut rules = BTreeSet::new();
    for object in objects {
        if object["kind"] != "ClusterRole" || object["metadata"]["name"] == aggregated {
            continue;
        }
        let labels = &object["metadata"]["labels"];
        let selected = selectors
            .as_array()
            .into_iter()
            .flatten()
            .any(|selector| matches(selector, labels));
        if selected {
            rules.extend(rule_set(&object["rules"]));
        }
    }
    rules
}

/// A SubjectAccessReview's spec: a user (with groups) and a question.
fn review(user: &str, groups: &[&str], attributes: Value) -> Value {
    let mut spec = json!({"user": user, "groups": groups});
    if attributes.get("path").is_some() {
        spec["nonResourceAttributes"] = attributes;
    } else {
        spec["resourceAttributes"] = attributes;
    }
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
}

/// (apiGroup, resource, subresource) a review may ask about.
const ASKED: [(&str, &str, &str); 17] = [
    ("", "pods", ""),
    ("", "pods", "log"),
    ("", "pods", "exec"),
    ("", "pods", "status"),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "services", ""),
    ("", "nodes", ""),
    ("", "namespaces", ""),
    ("apps", "deployments", ""),
    ("apps", "deployments", "scale"),
    ("apps", "replicasets", "scale"),
    ("extensions", "deployments", "scale"),
    ("batch", "jobs", ""),
    ("rbac.authorization.k8s.io", "roles", ""),
    ("", "serviceaccounts", "token"),
    ("authorization.k8s.io", "selfsubjectaccessreviews", ""),
];

/// The generated reviews, each with its case id.
fn generated_reviews(seed: u64, count: usize) -> Vec<(String, Value)> {
    let mut rng = Prng(seed);
    let mut reviews = Vec::new();
    for i in 0..count {
        let (user, groups): (String, Vec<String>) = match rng.below(10) {
            0..=4 => {
                let mut groups: Vec<String> = if rng.chance(60) {
                    rng.some(&GROUPS, 2).iter().map(|g| g.to_string()).collect()
                } else {
                    Vec::new()
                };
                if rng.chance(70) {
                    groups.push("system:authenticated".to_owned());
                }
                ((*rng.pick(&USERS)).to_owned(), groups)
            }
            5..=6 => {
                let (ns, name) = *rng.pick(&SERVICE_ACCOUNTS);
                (
                    format!("system:serviceaccount:{ns}:{name}"),
                    vec![
                        "system:serviceaccounts".to_owned(),
                        format!("system:serviceaccounts:{ns}"),
                        "system:authenticated".to_owned(),
                    ],
                )
            }
            7 => (
                "system:anonymous".to_owned(),
                vec!["system:unauthenticated".to_owned()],
            ),
            8 => (
                "mallory".to_owned(),
                vec!["system:authenticated".to_owned()],
            ),
            _ => ((*rng.pick(&USERS)).to_owned(), Vec::new()),
        };
        let attributes = if rng.chance(15) {
            let path = *rng.pick(&[
                "/healthz",
                "/healthz/etcd",
                "/metrics",
                "/logs",
                "/logs/kube-apiserver.log",
                "/apis",
                "/apis/apps/v1",
                "/api",
                "/version",
                "/custom/path",
                "/livez",
                "/openapi/v2",
            ]);
            json!({"path": path, "verb": rng.pick(&["get", "post", "put"])})
        } else {
            let (group, resource, sub) = *rng.pick(&ASKED);
            let mut a = json!({"verb": rng.pick(&VERBS[..8]), "group": group,
                "resource": resource});
            if !sub.is_empty() {
                a["subresource"] = json!(sub);
            }
            if rng.chance(80) {
                a["namespace"] = json!(rng.pick(&NAMESPACES));
            }
            if rng.chance(40) {
                a["name"] = json!(rng.pick(&["web", "db", "other"]));
            }
            a
        };
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        reviews.push((format!("sar-{i:03}"), review(&user, &groups, attributes)));
    }
    reviews
}

/// Hand-picked reviews: the edges of rule matching, the bootstrap policy, node identities, and
/// invalid reviews.
fn edge_reviews() -> Vec<(String, Value)> {
    let auth = ["system:authenticated"];
    let unauth = ["system:unauthenticated"];
    let nodes = ["system:nodes", "system:authenticated"];
    let res = |verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str| {
        let mut a = json!({"verb": verb, "group": group, "resource": resource});
        for (key, value) in [("subresource", sub), ("namespace", ns), ("name", name)] {
            if !value.is_empty() {
                a[key] = json!(value);
            }
        }
        a
    };
    let url = |verb: &str, path: &str| json!({"path": path, "verb": verb});
    let mut cases = vec![
        // system:discovery, system:public-info-viewer, system:basic-user.
        (
            "discovery-api-anonymous",
            review("system:anonymous", &unauth, url("get", "/api")),
        ),
        (
            "discovery-apis-group",
            review("alice", &auth, url("get", "/apis/apps")),
        ),
        (
            "discovery-version-anonymous",
            review("system:anonymous", &unauth, url("get", "/version")),
        ),
        (
            "discovery-healthz-anonymous",
            review("system:anonymous", &unauth, url("get", "/healthz")),
        ),
        (
            "discovery-livez-sub",
            review("system:anonymous", &unauth, url("get", "/livez/ping")),
        ),
        (
            "discovery-openapi-v3",
            review("alice", &auth, url("get", "/openapi/v3/apis/apps/v1")),
        ),
        (
            "discovery-post-api",
            review("alice", &auth, url("post", "/api")),
        ),
        (
            "discovery-without-group",
            review("alice", &[], url("get", "/api")),
        ),
        (
            "basic-user-ssar",
            review(
                "alice",
                &auth,
                res(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    "",
                    "",
                ),
            ),
        ),
        (
            "basic-user-ssrr",
            review(
                "alice",
                &auth,
                res(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectrulesreviews",
                    "",
                    "",
                    "",
                ),
            ),
        ),
        (
            "basic-user-ssr",
            review(
                "alice",
                &auth,
                res(
                    "create",
                    "authentication.k8s.io",
                    "selfsubjectreviews",
                    "",
                    "",
                    "",
                ),
            ),
        ),
        (
            "basic-user-ssar-get",
            review(
                "alice",
                &auth,
                res(
                    "get",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    "",
                    "",
                ),
            ),
        ),
        (
            "anonymous-ssar",
            review(
                "system:anonymous",
                &unauth,
                res(
                    "create",
                    "authorization.k8s.io",
                    "selfsubjectaccessreviews",
                    "",
                    "",
                    "",
                ),
            ),
        ),
        // system:masters, and names that only look privileged.
        (
            "masters",
            review(
                "root",
                &["system:masters"],
                res("delete", "", "nodes", "", "", "n1"),
            ),
        ),
        (
            "masters-nonresource",
            review("root", &["system:masters"], url("get", "/anything")),
        ),
        (
            "user-named-admin",
            review("admin", &[], res("get", "", "pods", "", "alpha", "")),
        ),
        (
            "group-named-cluster-admin",
            review(
                "x",
                &["cluster-admin"],
                res("get", "", "pods", "", "alpha", ""),
            ),
        ),
        // The bootstrap controllers' and components' identities.
        (
            "scheduler-bind",
            review(
                "system:kube-scheduler",
                &auth,
                res("create", "", "pods", "binding", "alpha", "web"),
            ),
        ),
        (
            "scheduler-list-pods",
            review(
                "system:kube-scheduler",
                &auth,
                res("list", "", "pods", "", "", ""),
            ),
        ),
        (
            "scheduler-lease-get",
            review(
                "system:kube-scheduler",
                &auth,
                res(
                    "get",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-system",
                    "kube-scheduler",
                ),
            ),
        ),
        (
            "scheduler-lease-watch",
            review(
                "system:kube-scheduler",
                &auth,
                res(
                    "watch",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-system",
                    "kube-scheduler",
                ),
            ),
        ),
        (
            "scheduler-lease-other",
            review(
                "system:kube-scheduler",
                &auth,
                res(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-system",
                    "other",
                ),
            ),
        ),
        (
            "scheduler-secrets",
            review(
                "system:kube-scheduler",
                &auth,
                res("get", "", "secrets", "", "alpha", ""),
            ),
        ),
        (
            "controller-manager-secrets",
            review(
                "system:kube-controller-manager",
                &auth,
                res("get", "", "secrets", "", "alpha", ""),
            ),
        ),
        (
            "controller-sa-replicaset",
            review(
                "system:serviceaccount:kube-system:replicaset-controller",
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
                res("create", "", "pods", "", "alpha", ""),
            ),
        ),
        (
            "controller-sa-replicaset-secrets",
            review(
                "system:serviceaccount:kube-system:replicaset-controller",
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
                res("get", "", "secrets", "", "alpha", ""),
            ),
        ),
        (
            "kube-proxy-endpointslices",
            review(
                "system:kube-proxy",
                &auth,
                res("list", "discovery.k8s.io", "endpointslices", "", "", ""),
            ),
        ),
        (
            "bootstrap-role-kube-system",
            review(
                "system:kube-controller-manager",
                &auth,
                res(
                    "get",
                    "",
                    "secrets",
                    "",
                    "kube-system",
                    "kube-controller-manager",
                ),
            ),
        ),
        (
            "bootstrapper-csr",
            review(
                "x",
                &["system:bootstrappers"],
                res(
                    "create",
                    "certificates.k8s.io",
                    "certificatesigningrequests",
                    "",
                    "",
                    "",
                ),
            ),
        ),
        (
            "sa-issuer-discovery",
            review(
                "system:serviceaccount:alpha:builder",
                &[
                    "system:serviceaccounts",
                    "system:serviceaccounts:alpha",
                    "system:authenticated",
                ],
                url("get", "/openid/v1/jwks"),
            ),
        ),
        (
            "monitoring-metrics",
            review("x", &["system:monitoring"], url("get", "/metrics/slis")),
        ),
        // Node identities: the reference's Node authorizer answers before RBAC.
        (
            "node-get-own-node",
            review(
                "system:node:n1",
                &nodes,
                res("get", "", "nodes", "", "", "n1"),
            ),
        ),
        (
            "node-update-own-status",
            review(
                "system:node:n1",
                &nodes,
                res("patch", "", "nodes", "status", "", "n1"),
            ),
        ),
        (
            "node-update-other-status",
            review(
                "system:node:n1",
                &nodes,
                res("patch", "", "nodes", "status", "", "n2"),
            ),
        ),
        (
            "node-get-secret",
            review(
                "system:node:n1",
                &nodes,
                res("get", "", "secrets", "", "alpha", "web"),
            ),
        ),
        (
            "node-list-pods",
            review(
                "system:node:n1",
                &nodes,
                res("list", "", "pods", "", "", ""),
            ),
        ),
        (
            "node-create-event",
            review(
                "system:node:n1",
                &nodes,
                res("create", "", "events", "", "alpha", ""),
            ),
        ),
        (
            "node-without-group",
            review(
                "system:node:n1",
                &auth,
                res("get", "", "nodes", "", "", "n1"),
            ),
        ),
        (
            "node-group-only",
            review("someone", &nodes, res("get", "", "nodes", "", "", "n1")),
        ),
        // Matching edges: a requested `*` is literal, resourceNames need a name, pods/* is not a
        // pattern, */scale is, and case matters.
        (
            "request-verb-star",
            review("alice", &auth, res("*", "", "pods", "", "alpha", "")),
        ),
        (
            "request-resource-star",
            review("alice", &auth, res("get", "", "*", "", "alpha", "")),
        ),
        (
            "request-group-star",
            review("alice", &auth, res("get", "*", "pods", "", "alpha", "")),
        ),
        (
            "capital-resource",
            review("alice", &auth, res("get", "", "Pods", "", "alpha", "")),
        ),
        (
            "empty-verb-and-resource",
            review("alice", &auth, json!({"namespace": "alpha"})),
        ),
        (
            "subresource-only",
            review("alice", &auth, res("get", "", "", "log", "alpha", "")),
        ),
        (
            "selectors-ignored-by-rbac",
            review(
                "alice",
                &auth,
                json!({"verb": "list", "resource": "pods", "namespace": "alpha",
            "fieldSelector": {"rawSelector": "spec.nodeName=n1"}, "labelSelector": {"rawSelector": "app=web"}}),
            ),
        ),
        (
            "nonresource-trailing-slash",
            review("alice", &auth, url("get", "/healthz/")),
        ),
        (
            "nonresource-empty-path",
            review("alice", &auth, url("get", "")),
        ),
        (
            "extra-and-uid",
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "alice", "uid": "u-1", "groups": ["system:authenticated"], "extra": {"scopes": ["a", "b"]},
                "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "alpha"}}}),
        ),
        (
            "service-account-user-without-groups",
            review(
                "system:serviceaccount:alpha:builder",
                &[],
                res("get", "", "pods", "", "alpha", "web"),
            ),
        ),
        (
            "service-account-other-namespace",
            review(
                "system:serviceaccount:beta:builder",
                &["system:serviceaccounts", "system:serviceaccounts:beta"],
                res("get", "", "pods", "", "alpha", "web"),
            ),
        ),
        (
            "group-only",
            review("", &["dev"], res("get", "", "pods", "", "alpha", "")),
        ),
        // The verbs no generated rule names but `*` grants: impersonate, bind, escalate.
        (
            "impersonate-user",
            review(
                "alice",
                &["dev", "system:authenticated"],
                res("impersonate", "", "users", "", "", "bob"),
            ),
        ),
        (
            "impersonate-group",
            review(
                "bob",
                &["ops", "system:authenticated"],
                res("impersonate", "", "groups", "", "", "system:masters"),
            ),
        ),
        (
            "impersonate-uid",
            review(
                "carol",
                &["qa", "system:authenticated"],
                res("impersonate", "authentication.k8s.io", "uids", "", "", "1"),
            ),
        ),
        (
            "impersonate-extra",
            review(
                "dave",
                &["dev", "system:authenticated"],
                res(
                    "impersonate",
                    "authentication.k8s.io",
                    "userextras",
                    "scopes",
                    "",
                    "view",
                ),
            ),
        ),
        (
            "bind-clusterrole",
            review(
                "erin",
                &["ops", "system:authenticated"],
                res(
                    "bind",
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    "",
                    "",
                    "admin",
                ),
            ),
        ),
        (
            "escalate-role",
            review(
                "alice",
                &["ops", "system:authenticated"],
                res(
                    "escalate",
                    "rbac.authorization.k8s.io",
                    "roles",
                    "",
                    "beta",
                    "x",
                ),
            ),
        ),
        (
            "approve-signer",
            review(
                "bob",
                &["dev", "system:authenticated"],
                res(
                    "approve",
                    "certificates.k8s.io",
                    "signers",
                    "",
                    "",
                    "kubernetes.io/kube-apiserver-client",
                ),
            ),
        ),
        (
            "sentinel",
            review("sentinel", &[], url("get", "/diff-sentinel")),
        ),
        (
            "sentinel-other-verb",
            review("sentinel", &[], url("post", "/diff-sentinel")),
        ),
    ];
    // Invalid reviews: the Status is compared.
    cases.push((
        "invalid-no-user-no-group",
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}}),
    ));
    cases.push((
        "invalid-no-attributes",
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "alice"}}),
    ));
    cases.push((
        "invalid-both-attributes",
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods"},
                "nonResourceAttributes": {"path": "/api", "verb": "get"}}}),
    ));
    cases
        .into_iter()
        .map(|(id, review)| (id.to_owned(), review))
        .collect()
}

/// The self reviews, as users with client certificates of each server (both add
/// system:authenticated): SelfSubjectRulesReviews in each namespace and a few
/// SelfSubjectAccessReviews and LocalSubjectAccessReviews.
fn self_reviews(kg: &Kgate, reference: &Reference, rbac: &mut Differences) {
    const IDENTITIES: [(&str, &[&str]); 6] = [
        ("alice", &["dev"]),
        ("bob", &["ops", "qa"]),
        ("carol", &[]),
        ("dave", &["qa"]),
        ("erin", &[]),
        ("mallory", &["dev", "ops", "qa"]),
    ];
    let kubeconfigs = |server: &dyn ApiServer| -> Vec<std::path::PathBuf> {
        IDENTITIES
            .iter()
            .map(|(user, groups)| server.kubeconfig_for(user, groups, "1h"))
            .collect()
    };
    let ours = kubeconfigs(kg);
    let theirs = kubeconfigs(reference);
    let mut rng = Prng(16_0030);
    for (i, (user, _)) in IDENTITIES.iter().enumerate() {
        let mut cases: Vec<(String, String, Value)> = Vec::new();
        for ns in NAMESPACES {
            cases.push((
                format!("rules/{user}/{ns}"),
                "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews".to_owned(),
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
                    "spec": {"namespace": ns}}),
            ));
        }
        for k in 0..4 {
            let (group, resource, sub) = *rng.pick(&ASKED);
            let ns = *rng.pick(&NAMESPACES);
            let attributes = json!({"verb": rng.pick(&VERBS[..8]), "group": group,
                "resource": resource, "subresource": sub, "namespace": ns});
            cases.push((
                format!("self/{user}/{k}"),
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews".to_owned(),
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attributes.clone()}}),
            ));
            // The same question about the same user, as the admin, in the namespace.
            let mut groups: Vec<&str> = IDENTITIES[i].1.to_vec();
            groups.push("system:authenticated");
            cases.push((
                format!("local/{user}/{k}"),
                format!("/apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews"),
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                    "metadata": {"namespace": ns},
                    "spec": {"user": user, "groups": groups, "resourceAttributes": attributes}}),
            ));
        }
        for (id, path, review) in cases {
            let local = id.starts_with("local/");
            let (a, b) = if local {
                (
                    answer_as(kg, None, &path, &review),
                    answer_as(reference, None, &path, &review),
                )
            } else {
                (
                    answer_as(kg, Some(&ours[i]), &path, &review),
                    answer_as(reference, Some(&theirs[i]), &path, &review),
                )
            };
            let difference = (a != b).then(|| format!("{review}: kgate {a}, kube-apiserver {b}"));
            rbac.case(&id, difference);
        }
    }
}

/// One server's answer to a review, in the form compared: the HTTP status, and the status (or
/// the error Status) with the reason reduced to its shape (see the module docs).
fn answer(server: &dyn ApiServer, review: &Value) -> Value {
    answer_with_reason(server, review).0
}

/// [`answer`], and the reason as the server wrote it.
fn answer_with_reason(server: &dyn ApiServer, review: &Value) -> (Value, String) {
    answer_full(server, None, SAR, review)
}

/// The bindings a server holds, as its reasons name them: `ClusterRoleBinding "x"` or
/// `RoleBinding "x/ns"` → (`ClusterRole "r"`, the subjects as `User "u"`, `Group "g"`,
/// `ServiceAccount "sa/ns"`, each with who it is).
type Bindings = BTreeMap<String, (String, Vec<(String, Subject)>)>;

/// Who a binding subject is.
#[derive(Debug, Clone)]
enum Subject {
    User(String),
    Group(String),
}

fn bindings(server: &dyn ApiServer) -> Bindings {
    let mut out = Bindings::new();
    for (resource, kind) in [
        ("clusterrolebindings", "ClusterRoleBinding"),
        ("rolebindings", "RoleBinding"),
    ] {
        let response = request(server, "GET", &format!("{RBAC}/{resource}")).send();
        assert_eq!(response.status, 200, "{response}");
        let list: Value = serde_json::from_str(&response.body).expect("a list");
        for b in list["items"].as_array().into_iter().flatten() {
            let ns = b["metadata"]["namespace"].as_str().unwrap_or("");
            let name = b["metadata"]["name"].as_str().unwrap_or("");
            let shown = if ns.is_empty() {
                name.to_owned()
            } else {
                format!("{name}/{ns}")
            };
            let role = format!(
                "{} {:?}",
                b["roleRef"]["kind"].as_str().unwrap_or(""),
                b["roleRef"]["name"].as_str().unwrap_or("")
            );
            let subjects = b["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let kind = s["kind"].as_str().unwrap_or("");
                    let name = s["name"].as_str().unwrap_or("");
                    match kind {
                        "ServiceAccount" => {
                            let sa_ns = s["namespace"]
                                .as_str()
                                .filter(|n| !n.is_empty())
                                .unwrap_or(ns);
                            (
                                format!("{kind} {:?}", format!("{name}/{sa_ns}")),
                                Subject::User(format!("system:serviceaccount:{sa_ns}:{name}")),
                            )
                        }
                        "Group" => (format!("{kind} {name:?}"), Subject::Group(name.to_owned())),
                        _ => (format!("{kind} {name:?}"), Subject::User(name.to_owned())),
                    }
                })
                .collect();
            out.insert(format!("{kind} {shown:?}"), (role, subjects));
        }
    }
    out
}

/// Whether an allowing reason (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "r" to
/// Group "g"`) names a binding of `bindings` with that role and subject, and a subject that
/// is the review's user. `None` if it does (or the reason is no such reason); else what is
/// wrong.
fn check_allowing_reason(bindings: &Bindings, reason: &str, review: &Value) -> Option<String> {
    let rest = reason.strip_prefix("RBAC: allowed by ")?;
    let Some((binding, rest)) = rest.split_once(" of ") else {
        return Some(format!("cannot read {reason:?}"));
    };
    let Some((role, subject)) = rest.split_once(" to ") else {
        return Some(format!("cannot read {reason:?}"));
    };
    let Some((bound_role, subjects)) = bindings.get(binding) else {
        return Some(format!("{binding} does not exist"));
    };
    if bound_role != role {
        return Some(format!("{binding} binds {bound_role}, not {role}"));
    }
    let Some((_, who)) = subjects.iter().find(|(shown, _)| shown == subject) else {
        return Some(format!("{binding} has no subject {subject}"));
    };
    let spec = &review["spec"];
    let applies = match who {
        Subject::User(name) => spec["user"] == name.as_str(),
        Subject::Group(name) => spec["groups"]
            .as_array()
            .is_some_and(|g| g.iter().any(|x| x == name.as_str())),
    };
    (!applies).then(|| format!("{subject} is not the review's user"))
}

/// [`answer`] for any review at `path`, as `identity` (the admin if `None`). A
/// SelfSubjectRulesReview's rules are compared as sets (kube-apiserver lists them in its
/// informer's order), its evaluationError as the set of errors.
fn answer_as(
    server: &dyn ApiServer,
    identity: Option<&std::path::Path>,
    path: &str,
    review: &Value,
) -> Value {
    answer_full(server, identity, path, review).0
}

/// [`answer_as`], and the reason as the server wrote it.
fn answer_full(
    server: &dyn ApiServer,
    identity: Option<&std::path::Path>,
    path: &str,
    review: &Value,
) -> (Value, String) {
    let mut request = request(server, "POST", path).json(review.to_string());
    if let Some(kubeconfig) = identity {
        request = request.identity(kgate_e2e::Identity::Kubeconfig(kubeconfig.to_owned()));
    }
    let response = request.send();
    let body: Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|e| panic!("{}: {e}: {response}", server.name()));
    if response.status != 201 {
        let status = json!({"code": response.status, "reason": body["reason"],
            "message": body["message"], "details": body["details"]});
        return (status, String::new());
    }
    let mut status = body["status"].clone();
    let reason = status["reason"].as_str().unwrap_or("").to_owned();
    let raw_reason = reason.clone();
    if !reason.is_empty() {
        status["reason"] = reason_shape(&reason);
    }
    for rules in ["resourceRules", "nonResourceRules"] {
        if !status[rules].is_null() {
            status[rules] = json!(rule_set(&status[rules]));
        }
    }
    if let Some(error) = status["evaluationError"].as_str() {
        status["evaluationError"] = json!(error_set(error));
    }
    (json!({"code": 201, "status": status}), raw_reason)
}

/// `RBAC: allowed by ClusterRoleBinding "x" of ...` → the kind of binding; `RBAC: [e1, e2]` (an
/// aggregate of errors, in the informer's order) → the set of errors; anything else (the Node
/// authorizer's words) as it is.
fn reason_shape(reason: &str) -> Value {
    if let Some(rest) = reason.strip_prefix("RBAC: allowed by ") {
        let kind = rest.split(' ').next().unwrap_or("");
        return json!({ "allowed by": kind });
    }
    if let Some(rest) = reason.strip_prefix("RBAC: ") {
        return json!({ "RBAC errors": error_set(rest) });
    }
    json!(reason)
}

/// The errors of a Go `utilerrors.Aggregate`'s text (`a` or `[a, b]`, brackets nested when an
/// aggregate holds one aggregate), as a set.
fn error_set(text: &str) -> BTreeSet<&str> {
    let mut inner = text;
    while let Some(stripped) = inner.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        inner = stripped;
    }
    inner.split(", ").collect()
}

/// The RBAC objects of one kind (`clusterroles`, ...), by namespace/name, with the fields
/// compared.
fn rbac_objects(server: &dyn ApiServer, resource: &str) -> BTreeMap<String, Value> {
    let response = request(server, "GET", &format!("{RBAC}/{resource}")).send();
    assert_eq!(response.status, 200, "{}: {response}", server.name());
    let list: Value = serde_json::from_str(&response.body).expect("a list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            let m = &o["metadata"];
            let key = match m["namespace"].as_str() {
                Some(ns) => format!("{ns}/{}", m["name"].as_str().unwrap_or("")),
                None => m["name"].as_str().unwrap_or("").to_owned(),
            };
            let mut compared = json!({});
            for field in ["rules", "aggregationRule", "roleRef", "subjects"] {
                if !o[field].is_null() {
                    compared[field] = o[field].clone();
                }
            }
            for field in ["labels", "annotations"] {
                if !m[field].is_null() {
                    compared[field] = m[field].clone();
                }
            }
            (key, compared)
        })
        .collect()
}

/// Where two objects' compared fields differ, in words: `rules: kgate 40, kube-apiserver 42
/// (rules only in kube-apiserver: ...)`.
fn describe_object_difference(kgate: &Value, reference: &Value) -> Option<String> {
    if canonical(kgate) == canonical(reference) {
        return None;
    }
    let mut parts = Vec::new();
    let fields: BTreeSet<&String> = kgate
        .as_object()
        .into_iter()
        .chain(reference.as_object())
        .flat_map(|m| m.keys())
        .collect();
    for field in fields {
        let (a, b) = (&kgate[field.as_str()], &reference[field.as_str()]);
        if canonical(a) == canonical(b) {
            continue;
        }
        if field == "rules" || field == "subjects" {
            let set = |v: &Value| -> BTreeSet<String> {
                v.as_array().into_iter().flatten().map(canonical).collect()
            };
            let (sa, sb) = (set(a), set(b));
            if sa == sb {
                parts.push(format!("{field}: the same, in another order"));
            } else {
                parts.push(format!(
                    "{field}: only in kgate {:?}; only in kube-apiserver {:?}",
                    sa.difference(&sb).collect::<Vec<_>>(),
                    sb.difference(&sa).collect::<Vec<_>>()
                ));
            }
        } else {
            parts.push(format!("{field}: kgate {a}, kube-apiserver {b}"));
        }
    }
    Some(parts.join("; "))
}

/// Both servers, started side by side.
fn start() -> (Kgate, Reference) {
    std::thread::scope(|scope| {
        let reference = scope.spawn(|| {
            Reference::up_with(ReferenceOptions {
                controllers: true,
                ..ReferenceOptions::default()
            })
        });
        let kgate = Kgate::up();
        let reference = reference
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (kgate, reference)
    })
}

/// The rules of ClusterRole `name` (`[]` for none).
fn rules_of(server: &dyn ApiServer, name: &str) -> Value {
    let response = request(server, "GET", &format!("{RBAC}/clusterroles/{name}")).send();
    assert_eq!(response.status, 200, "{}: {response}", server.name());
    let role: Value = serde_json::from_str(&response.body).expect("a ClusterRole");
    match &role["rules"] {
        Value::Null => json!([]),
        rules => rules.clone(),
    }
}

/// A rule as text with its keys sorted (the two servers write a rule's fields in different
/// orders), empty lists left out (as Kubernetes' semantic equality treats them).
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, String> = map
                .iter()
                .filter(|(_, v)| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)))
                .map(|(k, v)| (k, canonical(v)))
                .collect();
            let fields: Vec<String> = sorted.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

fn rule_set(rules: &Value) -> BTreeSet<String> {
    rules
        .as_array()
        .into_iter()
        .flatten()
        .map(canonical)
        .collect()
}

/// Waits until each server has aggregated: every ClusterRole of `expected` holds exactly
/// (`exact`) or at least the rules given (as sets: each server's own aggregation, judged
/// against the world the test made, not against the other server). Whether both got there.
fn converge(servers: [&dyn ApiServer; 2], expected: &[(&str, BTreeSet<String>, bool)]) -> bool {
    poll_quietly(CONVERGE, || {
        servers.iter().all(|server| {
            expected.iter().all(|(name, want, exact)| {
                let have = rule_set(&rules_of(*server, name));
                if *exact {
                    have == *want
                } else {
                    !have.is_empty() && have.is_superset(want)
                }
            })
        })
    })
}

/// Polls `check` every 200 ms until it holds or `timeout` passes; whether it held.
fn poll_quietly(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn rbac_decisions_agree_with_kube_apiserver() {
    let (kg, reference) = start();
    let servers: [&dyn ApiServer; 2] = [&kg, &reference];

    // The bootstrap policy, once the reference's controller manager has aggregated it.
    let bootstrap_aggregated: Vec<(&str, BTreeSet<String>, bool)> = ["admin", "edit", "view"]
        .into_iter()
        .map(|name| (name, BTreeSet::new(), false))
        .collect();
    assert!(
        converge(servers, &bootstrap_aggregated),
        "admin, edit and view were not aggregated"
    );
    let mut bootstrap = Differences::new("bootstrap");
    for (resource, kind) in [
        ("clusterroles", "clusterrole"),
        ("clusterrolebindings", "clusterrolebinding"),
        ("roles", "role"),
        ("rolebindings", "rolebinding"),
    ] {
        let ours = rbac_objects(&kg, resource);
        let theirs = rbac_objects(&reference, resource);
        let names: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        for name in names {
            let difference = match (ours.get(name), theirs.get(name)) {
                (Some(a), Some(b)) => describe_object_difference(a, b),
                (Some(_), None) => Some("only kgate has it".to_owned()),
                (None, Some(_)) => Some("only kube-apiserver has it".to_owned()),
                (None, None) => unreachable!("a name of one of them"),
            };
            bootstrap.case(&format!("{kind}/{name}"), difference);
        }
    }

    // The generated world, made on both.
    let (objects, aggregated) = world(16_0003);
    for server in servers {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let file = server
            .files()
            .join(format!("world-{}.json", server.next_seq()));
        std::fs::write(&file, list.to_string()).expect("cannot write the world");
        server.kubectl_ok(&[
            "create",
            "--validate=false",
            "-f",
            &file.display().to_string(),
        ]);
    }
    // Each server's authorizer has seen the last object; aggregation has converged.
    let sentinel = review(
        "sentinel",
        &[],
        json!({"path": "/diff-sentinel", "verb": "get"}),
    );
    for server in servers {
        poll(
            &format!("{} allows the sentinel", server.name()),
            CONVERGE,
            || {
                let answer = answer(server, &sentinel);
                if answer["status"]["allowed"] == true {
                    Ok(())
                } else {
                    Err(answer.to_string())
                }
            },
        );
    }
    let mut rbac = Differences::new("rbac");
    let mut expected: Vec<(&str, BTreeSet<String>, bool)> = aggregated
        .iter()
        .map(|name| (name.as_str(), selected_rules(&objects, name), true))
        .collect();
    // The world's roles labelled aggregate-to-view reach view, and through it edit and admin.
    let to_view = selected_rules(&objects, "view");
    assert!(
        !to_view.is_empty(),
        "the world aggregates nothing into view"
    );
    for name in ["admin", "edit", "view"] {
        expected.push((name, to_view.clone(), false));
    }
    let converged = converge(servers, &expected);
    for (name, _, _) in &expected {
        let (a, b) = (rules_of(&kg, name), rules_of(&reference, name));
        let mut difference =
            describe_object_difference(&json!({ "rules": a }), &json!({ "rules": b }));
        if !converged && difference.is_none() {
            difference = Some("both, but not as the world's labels select".to_owned());
        }
        rbac.case(&format!("aggregated/{name}"), difference);
    }

    // The reviews, answered by both (four clients per server).
    let mut reviews = generated_reviews(16_0016, 340);
    reviews.extend(edge_reviews());
    let answers: Vec<((Value, String), (Value, String))> = std::thread::scope(|scope| {
        let workers: Vec<_> = reviews
            .chunks(reviews.len().div_ceil(4))
            .map(|chunk| {
                let (kg, reference) = (&kg, &reference);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(_, review)| {
                            (
                                answer_with_reason(kg, review),
                                answer_with_reason(reference, review),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    // The binding an allowing reason names is compared by kind only (see the module docs), and
    // each server's reason must name a binding it holds, of the role it says, to a subject the
    // review's user is (kgate holds bindings of its own: see the bootstrap suite).
    let (our_bindings, their_bindings) = (bindings(&kg), bindings(&reference));
    let mut allowed = 0;
    let mut named = 0;
    for ((id, review), ((ours, our_reason), (theirs, their_reason))) in reviews.iter().zip(&answers)
    {
        if theirs["status"]["allowed"] == true {
            allowed += 1;
        }
        if let Some(wrong) = check_allowing_reason(&their_bindings, their_reason, review) {
            panic!(
                "{id}: kube-apiserver's reason {their_reason:?}: {wrong} (the test misreads it)"
            );
        }
        if our_reason != their_reason && our_reason.starts_with("RBAC: allowed by ") {
            named += 1;
        }
        let difference = if ours != theirs {
            Some(format!(
                "{}: kgate {ours}, kube-apiserver {theirs}",
                review["spec"]
            ))
        } else {
            check_allowing_reason(&our_bindings, our_reason, review)
                .map(|wrong| format!("kgate's reason {our_reason:?}: {wrong}"))
        };
        rbac.case(id, difference);
    }
    kgate_e2e::note(&format!(
        "{named} allowed reviews name another binding on kgate than on kube-apiserver (several allow)"
    ));
    self_reviews(&kg, &reference, &mut rbac);
    kgate_e2e::note(&format!(
        "{} reviews, {allowed} allowed by kube-apiserver",
        reviews.len()
    ));
    // The generator asks questions both ways, not only ones everybody is refused.
    assert!(
        allowed * 10 > reviews.len() && allowed * 10 < reviews.len() * 9,
        "{allowed} of {} reviews allowed",
        reviews.len()
    );
    // Both suites print their counts before either fails.
    let bootstrap = std::panic::catch_unwind(|| bootstrap.assert_only_known());
    rbac.assert_only_known();
    if let Err(panic) = bootstrap {
        std::panic::resume_unwind(panic);
    }
}
