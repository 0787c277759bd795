//! Hand-picked SubjectAccessReviews: the edges of RBAC's matching (wildcards, resourceNames,
//! subresources, nonResourceURLs, ServiceAccount groups, node identities, invalid reviews).

use super::*;

/// Hand-picked reviews: the edges of rule matching, the bootstrap policy, node identities, and
/// invalid reviews.
pub(super) fn edge_reviews() -> Vec<(String, Value)> {
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
