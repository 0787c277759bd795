//! Which bindings apply: scope (ClusterRoleBinding, RoleBinding, RoleBinding to a ClusterRole),
//! subjects (User, Group, ServiceAccount, the system groups), missing roles, and the reasons
//! Kubernetes gives, from the Kubernetes RBAC documentation
//! (https://kubernetes.io/docs/reference/access-authn-authz/rbac/, "RoleBinding and
//! ClusterRoleBinding", "Referring to subjects", "Default roles and role bindings").

use crate::support::Want::{Allow, AllowBy, Deny, DenyWith};
use crate::support::*;

const SA_IN_CI: &str =
    r#"RBAC: allowed by RoleBinding "b/ci" of ClusterRole "r" to ServiceAccount "deployer/ci""#;

pub fn cases() -> Vec<Case> {
    let read_pods = || vec![rule(&["get", "list"], &[""], &["pods"])];
    let pod_reader = || cluster_role("r", read_pods());
    // One ClusterRole `r` bound by RoleBinding `b` in `ns` to `subjects`.
    let bound_in = |ns: &str, subjects: Vec<serde_json::Value>| {
        vec![pod_reader(), rb(ns, "b", ("ClusterRole", "r"), subjects)]
    };
    // One ClusterRole `r` bound cluster-wide by `b` to `subjects`.
    let bound = |subjects: Vec<serde_json::Value>| vec![pod_reader(), crb("b", "r", subjects)];
    vec![
        // A RoleBinding grants in its namespace only, whether to a Role or a ClusterRole.
        case(
            "rb to clusterrole, its namespace",
            alice_in("team", read_pods()),
            "alice",
            "get core pods team p",
            AllowBy(r#"RBAC: allowed by RoleBinding "b/team" of ClusterRole "r" to User "alice""#),
        ),
        case(
            "rb to clusterrole, other namespace",
            alice_in("team", read_pods()),
            "alice",
            "get core pods other p",
            Deny,
        ),
        case(
            "rb to clusterrole, all namespaces",
            alice_in("team", read_pods()),
            "alice",
            "list core pods -",
            Deny,
        ),
        case(
            "rb grants no cluster-scoped resource",
            alice_in("team", vec![rule(&["get"], &[""], &["nodes"])]),
            "alice",
            "get core nodes - n1",
            Deny,
        ),
        case(
            "rb grants no non-resource url",
            alice_in("team", vec![urls(&["get"], &["/healthz"])]),
            "alice",
            "get /healthz",
            Deny,
        ),
        case(
            "rb with wildcard role grants no url",
            alice_in(
                "team",
                vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
            ),
            "alice",
            "get /metrics",
            Deny,
        ),
        case(
            "rb to role",
            vec![
                role("team", "reader", read_pods()),
                rb("team", "b", ("Role", "reader"), vec![user("alice")]),
            ],
            "alice",
            "list core pods team",
            AllowBy(r#"RBAC: allowed by RoleBinding "b/team" of Role "reader" to User "alice""#),
        ),
        case(
            "rb to role in another namespace",
            vec![
                role("other", "reader", read_pods()),
                rb("team", "b", ("Role", "reader"), vec![user("alice")]),
            ],
            "alice",
            "list core pods team",
            DenyWith(r#"RBAC: role.rbac.authorization.k8s.io "reader" not found"#),
        ),
        case(
            "role's own namespace only",
            vec![
                role("team", "reader", read_pods()),
                rb("team", "b", ("Role", "reader"), vec![user("alice")]),
            ],
            "alice",
            "list core pods other",
            Deny,
        ),
        // A ClusterRoleBinding grants everywhere, and at the cluster scope.
        case(
            "crb in any namespace",
            bound(vec![user("alice")]),
            "alice",
            "get core pods anywhere p",
            AllowBy(ALICE_CLUSTER),
        ),
        case(
            "crb across namespaces",
            bound(vec![user("alice")]),
            "alice",
            "list core pods -",
            Allow,
        ),
        case(
            "crb cluster-scoped",
            alice_cluster(vec![rule(&["get"], &[""], &["nodes"])]),
            "alice",
            "get core nodes - n1",
            Allow,
        ),
        case(
            "crb non-resource",
            alice_cluster(vec![urls(&["get"], &["/healthz"])]),
            "alice",
            "get /healthz",
            Allow,
        ),
        // Users: exact names.
        case(
            "user exact",
            bound(vec![user("alice")]),
            "alice",
            "get core pods ns p",
            Allow,
        ),
        case(
            "user case matters",
            bound(vec![user("Alice")]),
            "alice",
            "get core pods ns p",
            Deny,
        ),
        case(
            "other user",
            bound(vec![user("alice")]),
            "bob",
            "get core pods ns p",
            Deny,
        ),
        case(
            "user subject is not a group",
            bound(vec![user("dev")]),
            "bob|dev",
            "get core pods ns p",
            Deny,
        ),
        case(
            "an email user name",
            bound(vec![user("alice@example.com")]),
            "alice@example.com",
            "get core pods ns p",
            Allow,
        ),
        // Groups.
        case(
            "group",
            bound(vec![group("dev")]),
            "bob|dev",
            "get core pods ns p",
            AllowBy(r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "dev""#),
        ),
        case(
            "group among several",
            bound(vec![group("dev")]),
            "bob|qa|dev|ops",
            "get core pods ns p",
            Allow,
        ),
        case(
            "group subject is not a user",
            bound(vec![group("bob")]),
            "bob",
            "get core pods ns p",
            Deny,
        ),
        case(
            "not in the group",
            bound(vec![group("dev")]),
            "bob|qa",
            "get core pods ns p",
            Deny,
        ),
        case(
            "system:authenticated",
            bound(vec![group("system:authenticated")]),
            "bob|system:authenticated",
            "get core pods ns p",
            Allow,
        ),
        case(
            "system:authenticated excludes anonymous",
            bound(vec![group("system:authenticated")]),
            "system:anonymous",
            "get core pods ns p",
            Deny,
        ),
        case(
            "system:unauthenticated",
            bound(vec![group("system:unauthenticated")]),
            "system:anonymous",
            "get core pods ns p",
            AllowBy(
                r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "system:unauthenticated""#,
            ),
        ),
        case(
            "system:anonymous as a user",
            bound(vec![user("system:anonymous")]),
            "system:anonymous",
            "get core pods ns p",
            Allow,
        ),
        case(
            "all service accounts",
            bound(vec![group("system:serviceaccounts")]),
            "system:serviceaccount:ci:x|system:serviceaccounts|system:serviceaccounts:ci",
            "get core pods ns p",
            Allow,
        ),
        case(
            "service accounts of one namespace",
            bound_in("ci", vec![group("system:serviceaccounts:ci")]),
            "system:serviceaccount:ci:x|system:serviceaccounts|system:serviceaccounts:ci",
            "get core pods ci p",
            Allow,
        ),
        case(
            "service accounts of another namespace",
            bound(vec![group("system:serviceaccounts:qa")]),
            "system:serviceaccount:ci:x|system:serviceaccounts|system:serviceaccounts:ci",
            "get core pods ci p",
            Deny,
        ),
        // ServiceAccounts: the user `system:serviceaccount:NS:NAME`.
        case(
            "sa with namespace",
            bound_in("ci", vec![sa("ci", "deployer")]),
            "system:serviceaccount:ci:deployer",
            "get core pods ci p",
            AllowBy(SA_IN_CI),
        ),
        case(
            "sa without namespace: the binding's",
            bound_in("ci", vec![sa("", "deployer")]),
            "system:serviceaccount:ci:deployer",
            "get core pods ci p",
            AllowBy(SA_IN_CI),
        ),
        case(
            "sa without namespace: not another's",
            bound_in("ci", vec![sa("", "deployer")]),
            "system:serviceaccount:qa:deployer",
            "get core pods ci p",
            Deny,
        ),
        case(
            "sa of another namespace bound here",
            bound_in("team", vec![sa("ci", "deployer")]),
            "system:serviceaccount:ci:deployer",
            "get core pods team p",
            AllowBy(
                r#"RBAC: allowed by RoleBinding "b/team" of ClusterRole "r" to ServiceAccount "deployer/ci""#,
            ),
        ),
        case(
            "sa grant stays in the binding's namespace",
            bound_in("team", vec![sa("ci", "deployer")]),
            "system:serviceaccount:ci:deployer",
            "get core pods ci p",
            Deny,
        ),
        case(
            "sa in a crb",
            bound(vec![sa("ci", "deployer")]),
            "system:serviceaccount:ci:deployer",
            "list core pods -",
            AllowBy(
                r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to ServiceAccount "deployer/ci""#,
            ),
        ),
        case(
            "sa name is not a user name",
            bound(vec![sa("ci", "deployer")]),
            "deployer",
            "get core pods ns p",
            Deny,
        ),
        case(
            "sa user needs the full prefix",
            bound(vec![sa("ci", "deployer")]),
            "system:serviceaccounts:ci:deployer",
            "get core pods ns p",
            Deny,
        ),
        case(
            "user subject with an sa's name",
            bound(vec![user("system:serviceaccount:ci:deployer")]),
            "system:serviceaccount:ci:deployer",
            "get core pods ns p",
            AllowBy(
                r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "system:serviceaccount:ci:deployer""#,
            ),
        ),
        // The first subject that applies is the one the reason names.
        case(
            "first applying subject named",
            bound(vec![user("carol"), group("dev"), user("bob")]),
            "bob|dev",
            "get core pods ns p",
            AllowBy(r#"RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to Group "dev""#),
        ),
        // A binding whose role does not exist grants nothing, and says so.
        case(
            "missing clusterrole",
            vec![crb("b", "absent", vec![user("alice")])],
            "alice",
            "get core pods ns p",
            DenyWith(r#"RBAC: clusterrole.rbac.authorization.k8s.io "absent" not found"#),
        ),
        case(
            "missing role",
            vec![rb("team", "b", ("Role", "absent"), vec![user("alice")])],
            "alice",
            "get core pods team p",
            DenyWith(r#"RBAC: role.rbac.authorization.k8s.io "absent" not found"#),
        ),
        case(
            "two missing roles",
            vec![
                crb("b1", "gone", vec![user("alice")]),
                rb("team", "b2", ("Role", "absent"), vec![group("dev")]),
            ],
            "alice|dev",
            "get core pods team p",
            DenyWith(
                r#"RBAC: [clusterrole.rbac.authorization.k8s.io "gone" not found, role.rbac.authorization.k8s.io "absent" not found]"#,
            ),
        ),
        case(
            "missing role of another user is silent",
            vec![crb("b", "absent", vec![user("bob")])],
            "alice",
            "get core pods ns p",
            Deny,
        ),
        case(
            "missing role beside a grant",
            vec![
                crb("a", "absent", vec![user("alice")]),
                pod_reader(),
                crb("b", "r", vec![user("alice")]),
            ],
            "alice",
            "get core pods ns p",
            AllowBy(ALICE_CLUSTER),
        ),
        case(
            "clusterrole is not a role",
            vec![
                pod_reader(),
                rb("team", "b", ("Role", "r"), vec![user("alice")]),
            ],
            "alice",
            "get core pods team p",
            DenyWith(r#"RBAC: role.rbac.authorization.k8s.io "r" not found"#),
        ),
        // A binding with no subjects binds no one.
        case(
            "no subjects",
            bound(vec![]),
            "alice",
            "get core pods ns p",
            Deny,
        ),
    ]
}
