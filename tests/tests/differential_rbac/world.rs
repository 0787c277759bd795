//! The generated RBAC world and the SubjectAccessReviews asked of it: a seeded PRNG, the
//! objects, and the generated questions.

use super::*;

/// splitmix64: a seeded, portable PRNG (no dependency), so the world and the questions are the
/// same on every run.
pub(super) struct Prng(pub(super) u64);

impl Prng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// One to `max` distinct items, in the slice's order.
    pub(super) fn some<T: Clone>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let want = 1 + self.below(max.min(items.len()));
        let mut chosen = BTreeSet::new();
        while chosen.len() < want {
            chosen.insert(self.below(items.len()));
        }
        chosen.into_iter().map(|i| items[i].clone()).collect()
    }
}

pub(super) const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];
pub(super) const USERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
pub(super) const GROUPS: [&str; 3] = ["dev", "ops", "qa"];
/// (namespace, name) of the service accounts subjects and reviews name.
pub(super) const SERVICE_ACCOUNTS: [(&str, &str); 3] = [
    ("alpha", "builder"),
    ("beta", "deployer"),
    ("gamma", "default"),
];
pub(super) const VERBS: [&str; 12] = [
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
pub(super) const RULE_RESOURCES: [(&str, &str); 18] = [
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
pub(super) const RESOURCE_NAMES: [&str; 3] = ["web", "db", "cache"];
pub(super) const NON_RESOURCE_URLS: [&str; 7] = [
    "/healthz",
    "/metrics",
    "/logs/*",
    "/apis/*",
    "*",
    "/version",
    "/custom/path",
];
/// Labels the generated ClusterRoles may carry, and the aggregated ClusterRoles select on.
pub(super) const AGGREGATE_LABELS: [(&str, &str); 4] = [
    ("diff.kgate.io/aggregate-to-one", "true"),
    ("diff.kgate.io/tier", "gold"),
    ("diff.kgate.io/tier", "silver"),
    ("rbac.authorization.k8s.io/aggregate-to-view", "true"),
];

/// One generated rule.
pub(super) fn resource_rule(rng: &mut Prng) -> Value {
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

pub(super) fn non_resource_rule(rng: &mut Prng) -> Value {
    let verbs = if rng.chance(15) {
        vec!["*"]
    } else {
        rng.some(&["get", "post", "put"], 2)
    };
    json!({"nonResourceURLs": rng.some(&NON_RESOURCE_URLS, 2), "verbs": verbs})
}

pub(super) fn meta(name: &str, namespace: Option<&str>) -> Value {
    match namespace {
        Some(ns) => json!({"name": name, "namespace": ns}),
        None => json!({"name": name}),
    }
}

/// A binding subject, from every kind Kubernetes matches.
pub(super) fn subject(rng: &mut Prng, in_namespace: bool) -> Value {
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
pub(super) fn world(seed: u64) -> (Vec<Value>, Vec<String>) {
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
pub(super) fn selected_rules(objects: &[Value], aggregated: &str) -> BTreeSet<String> {
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
pub(super) fn review(user: &str, groups: &[&str], attributes: Value) -> Value {
    let mut spec = json!({"user": user, "groups": groups});
    if attributes.get("path").is_some() {
        spec["nonResourceAttributes"] = attributes;
    } else {
        spec["resourceAttributes"] = attributes;
    }
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
}

/// (apiGroup, resource, subresource) a review may ask about.
pub(super) const ASKED: [(&str, &str, &str); 17] = [
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
pub(super) fn generated_reviews(seed: u64, count: usize) -> Vec<(String, Value)> {
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
