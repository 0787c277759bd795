//! Asking both servers and comparing their answers: self reviews, the reasons' shape, each
//! server's bindings, and the RBAC objects they hold.

use super::*;

/// The self reviews, as users with client certificates of each server (both add
/// system:authenticated): SelfSubjectRulesReviews in each namespace and a few
/// SelfSubjectAccessReviews and LocalSubjectAccessReviews.
pub(super) fn self_reviews(kg: &Kgate, reference: &Reference, rbac: &mut Differences) {
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
pub(super) fn answer(server: &dyn ApiServer, review: &Value) -> Value {
    answer_with_reason(server, review).0
}

/// [`answer`], and the reason as the server wrote it.
pub(super) fn answer_with_reason(server: &dyn ApiServer, review: &Value) -> (Value, String) {
    answer_full(server, None, SAR, review)
}

/// The bindings a server holds, as its reasons name them: `ClusterRoleBinding "x"` or
/// `RoleBinding "x/ns"` → (`ClusterRole "r"`, the subjects as `User "u"`, `Group "g"`,
/// `ServiceAccount "sa/ns"`, each with who it is).
pub(super) type Bindings = BTreeMap<String, (String, Vec<(String, Subject)>)>;

/// Who a binding subject is.
#[derive(Debug, Clone)]
pub(super) enum Subject {
    User(String),
    Group(String),
}

pub(super) fn bindings(server: &dyn ApiServer) -> Bindings {
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
pub(super) fn check_allowing_reason(
    bindings: &Bindings,
    reason: &str,
    review: &Value,
) -> Option<String> {
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
pub(super) fn answer_as(
    server: &dyn ApiServer,
    identity: Option<&std::path::Path>,
    path: &str,
    review: &Value,
) -> Value {
    answer_full(server, identity, path, review).0
}

/// [`answer_as`], and the reason as the server wrote it.
pub(super) fn answer_full(
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
pub(super) fn reason_shape(reason: &str) -> Value {
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
pub(super) fn error_set(text: &str) -> BTreeSet<&str> {
    let mut inner = text;
    while let Some(stripped) = inner.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        inner = stripped;
    }
    inner.split(", ").collect()
}

/// The RBAC objects of one kind (`clusterroles`, ...), by namespace/name, with the fields
/// compared.
pub(super) fn rbac_objects(server: &dyn ApiServer, resource: &str) -> BTreeMap<String, Value> {
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
pub(super) fn describe_object_difference(kgate: &Value, reference: &Value) -> Option<String> {
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
pub(super) fn start() -> (Kgate, Reference) {
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
pub(super) fn rules_of(server: &dyn ApiServer, name: &str) -> Value {
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
pub(super) fn canonical(value: &Value) -> String {
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

pub(super) fn rule_set(rules: &Value) -> BTreeSet<String> {
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
pub(super) fn converge(
    servers: [&dyn ApiServer; 2],
    expected: &[(&str, BTreeSet<String>, bool)],
) -> bool {
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
pub(super) fn poll_quietly(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
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
