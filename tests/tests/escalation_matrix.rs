//! The escalation matrix: every way to write a Role, ClusterRole, RoleBinding or
//! ClusterRoleBinding (create, update, merge / strategic merge / JSON patch, and `kubectl apply`),
//! for every kind of change (rules, labels, aggregationRule, subjects, and the fields the garbage
//! collector writes), by four users who may all write RBAC objects: one who holds nothing else,
//! one who holds the rules the object grants, one with `escalate` and one with `bind`.
//!
//! Each expected answer is written from Kubernetes' registry code
//! (k8s.io/kubernetes v1.34 `pkg/registry/rbac/{role,clusterrole,rolebinding,clusterrolebinding}/
//! policybased/storage.go` and `pkg/registry/rbac/escalation_check.go`):
//!
//! - Role and ClusterRole: `escalate` on the role passes everything. Otherwise an update that
//!   changes only ownerReferences/finalizers passes (`IsOnlyMutatingGCFields`); any other write
//!   needs the new rules held (`ConfirmNoEscalation`); a ClusterRole with an aggregationRule on
//!   the new or old object needs `*` on `*.*` besides.
//! - RoleBinding and ClusterRoleBinding: a GC-only update passes; otherwise `bind` on the role
//!   referred to, or holding the role's rules.
//! - `kubectl apply` writes the last-applied-configuration annotation, so an apply is never a
//!   GC-only update.
//!
//! A refused write must be a 403 that changed nothing (the object's resourceVersion is the
//! same); an allowed one must have made the change.
//!
//! The matrix runs on kgate and on the real kube-apiserver (v1.34.2, `tests/kube-reference`) side
//! by side: the two are compared case by case (differential suite `escalation`), and both are
//! held to the written answers, so a written answer kube-apiserver disagrees with fails too.

use kgate_e2e::reference::{Differences, Reference};
use kgate_e2e::{note, poll, request, ApiServer, Identity, Kgate};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const NS: &str = "matrix";
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";

/// The four writers. All may create, get, list, update, patch and delete the four RBAC kinds
/// everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    /// Holds nothing more.
    Writer,
    /// Holds what the targets grant (delete and list secrets), not `*`.
    Holder,
    /// May `escalate` roles and clusterroles.
    Escalator,
    /// May `bind` roles and clusterroles.
    Binder,
}

const ACTORS: [Actor; 4] = [
    Actor::Writer,
    Actor::Holder,
    Actor::Escalator,
    Actor::Binder,
];

impl Actor {
    fn name(self) -> &'static str {
        match self {
            Actor::Writer => "writer",
            Actor::Holder => "holder",
            Actor::Escalator => "escalator",
            Actor::Binder => "binder",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Role `target` in `matrix`: delete secrets.
    Role,
    /// ClusterRole `target`: delete secrets.
    ClusterRole,
    /// ClusterRole `aggregated`: an aggregationRule that selects nothing, so no rules.
    AggregatedClusterRole,
    /// RoleBinding `target` in `matrix`: ClusterRole `secret-deleter` to user `someone`.
    RoleBinding,
    /// ClusterRoleBinding `target`: the same.
    ClusterRoleBinding,
}

const TARGETS: [Target; 5] = [
    Target::Role,
    Target::ClusterRole,
    Target::AggregatedClusterRole,
    Target::RoleBinding,
    Target::ClusterRoleBinding,
];

impl Target {
    fn resource(self) -> &'static str {
        match self {
            Target::Role => "roles",
            Target::ClusterRole | Target::AggregatedClusterRole => "clusterroles",
            Target::RoleBinding => "rolebindings",
            Target::ClusterRoleBinding => "clusterrolebindings",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Target::Role => "Role",
            Target::ClusterRole | Target::AggregatedClusterRole => "ClusterRole",
            Target::RoleBinding => "RoleBinding",
            Target::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }

    fn namespaced(self) -> bool {
        matches!(self, Target::Role | Target::RoleBinding)
    }

    fn name(self) -> &'static str {
        match self {
            Target::AggregatedClusterRole => "aggregated",
            _ => "target",
        }
    }

    fn collection(self) -> String {
        if self.namespaced() {
            format!("{RBAC}/namespaces/{NS}/{}", self.resource())
        } else {
            format!("{RBAC}/{}", self.resource())
        }
    }

    fn path(self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    /// The object as the admin keeps it between cases.
    fn object(self, name: &str) -> Value {
        let mut metadata = json!({ "name": name });
        if self.namespaced() {
            metadata["namespace"] = json!(NS);
        }
        let mut object = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": self.kind(),
            "metadata": metadata,
        });
        match self {
            Target::Role | Target::ClusterRole => {
                object["rules"] =
                    json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]);
            }
            Target::AggregatedClusterRole => {
                object["rules"] = json!([]);
                object["aggregationRule"] = aggregation_rule();
            }
            Target::RoleBinding | Target::ClusterRoleBinding => {
                object["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-deleter"});
                object["subjects"] = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone"}]);
            }
        }
        object
    }
}

/// Selects ClusterRoles labelled `matrix/aggregate=true`, of which there are none.
fn aggregation_rule() -> Value {
    json!({"clusterRoleSelectors": [{"matchLabels": {"matrix/aggregate": "true"}}]})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Roles: a second rule (list secrets), which the holder holds too.
    Rules,
    /// A new label.
    Labels,
    /// ClusterRole: an aggregationRule (and the empty rules the controller would compute).
    Aggregation,
    /// Bindings: a second subject.
    Subjects,
    /// A finalizer: a field the garbage collector writes.
    GcOnly,
}

impl Change {
    /// `object` with the change made.
    fn apply_to(self, object: &Value) -> Value {
        let mut changed = object.clone();
        match self {
            Change::Rules => {
                changed["rules"] = json!([
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]},
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
                ]);
            }
            Change::Labels => changed["metadata"]["labels"] = json!({"matrix/touched": "true"}),
            Change::Aggregation => {
                changed["rules"] = json!([]);
                changed["aggregationRule"] = aggregation_rule();
            }
            Change::Subjects => {
                changed["subjects"] = json!([
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "someone"},
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "other"},
                ]);
            }
            Change::GcOnly => changed["metadata"]["finalizers"] = json!(["matrix/hold"]),
        }
        changed
    }

    /// The change as a merge patch (and a strategic merge patch: the same document).
    fn merge_patch(self) -> Value {
        match self {
            Change::Rules => json!({"rules": Change::Rules.apply_to(&json!({}))["rules"]}),
            Change::Labels => json!({"metadata": {"labels": {"matrix/touched": "true"}}}),
            Change::Aggregation => json!({"rules": [], "aggregationRule": aggregation_rule()}),
            Change::Subjects => {
                json!({"subjects": Change::Subjects.apply_to(&json!({}))["subjects"]})
            }
            Change::GcOnly => json!({"metadata": {"finalizers": ["matrix/hold"]}}),
        }
    }

    /// The change as a JSON patch.
    fn json_patch(self) -> Value {
        match self {
            Change::Rules => json!([{"op": "add", "path": "/rules/-",
                "value": {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}}]),
            Change::Labels => json!([{"op": "add", "path": "/metadata/labels",
                "value": {"matrix/touched": "true"}}]),
            Change::Aggregation => json!([
                {"op": "replace", "path": "/rules", "value": []},
                {"op": "add", "path": "/aggregationRule", "value": aggregation_rule()},
            ]),
            Change::Subjects => json!([{"op": "add", "path": "/subjects/-",
                "value": {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "other"}}]),
            Change::GcOnly => json!([{"op": "add", "path": "/metadata/finalizers",
                "value": ["matrix/hold"]}]),
        }
    }

    /// Whether `object` shows the change.
    fn made_in(self, object: &Value) -> bool {
        match self {
            Change::Rules => object["rules"].as_array().is_some_and(|r| r.len() == 2),
            Change::Labels => object["metadata"]["labels"]["matrix/touched"] == "true",
            Change::Aggregation => object["aggregationRule"] == aggregation_rule(),
            Change::Subjects => object["subjects"].as_array().is_some_and(|s| s.len() == 2),
            Change::GcOnly => object["metadata"]["finalizers"] == json!(["matrix/hold"]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    /// POST of a new object (the target with `change` made, under a new name).
    Create,
    /// `kubectl apply` of a new object.
    ApplyCreate,
    /// PUT of the stored object with the change made.
    Update,
    MergePatch,
    StrategicPatch,
    JsonPatch,
    /// `kubectl apply` of the stored object with the change made.
    Apply,
}

const UPDATES: [Write; 5] = [
    Write::Update,
    Write::MergePatch,
    Write::StrategicPatch,
    Write::JsonPatch,
    Write::Apply,
];

/// Allowed or not, per actor (writer, holder, escalator, binder).
type Answers = [bool; 4];

const A: bool = true;
const F: bool = false;

/// Kubernetes' answers, from the registry code quoted in the module docs. For creates, the
/// change is made to the object created (`GcOnly`: the plain object).
fn kubernetes_answer(target: Target, write: Write, change: Change) -> Answers {
    let create = matches!(write, Write::Create | Write::ApplyCreate);
    // kubectl apply adds its annotation: never GC-only.
    let gc_only = change == Change::GcOnly && !create && write != Write::Apply;
    match target {
        Target::Role => {
            if gc_only {
                [A, A, A, A]
            } else {
                // The rules (delete, list secrets) are the holder's; escalate passes all.
                [F, A, A, F]
            }
        }
        Target::ClusterRole => {
            if gc_only {
                [A, A, A, A]
            } else if change == Change::Aggregation {
                // Full authority, which only escalate skips.
                [F, F, A, F]
            } else {
                [F, A, A, F]
            }
        }
        Target::AggregatedClusterRole => {
            if gc_only {
                [A, A, A, A]
            } else {
                // No rules to hold, but the old object's aggregationRule needs full authority.
                [F, F, A, F]
            }
        }
        Target::RoleBinding | Target::ClusterRoleBinding => {
            if gc_only {
                [A, A, A, A]
            } else {
                // bind, or hold the role's rules; escalate is about roles only.
                [F, A, F, A]
            }
        }
    }
}

/// The changes each target is put through.
fn changes(target: Target) -> &'static [Change] {
    match target {
        Target::Role => &[Change::Rules, Change::Labels, Change::GcOnly],
        Target::ClusterRole => &[
            Change::Rules,
            Change::Labels,
            Change::Aggregation,
            Change::GcOnly,
        ],
        Target::AggregatedClusterRole => &[Change::Labels, Change::GcOnly],
        Target::RoleBinding | Target::ClusterRoleBinding => {
            &[Change::Subjects, Change::Labels, Change::GcOnly]
        }
    }
}

/// The creates each target is put through (the change made to the object created).
fn creates(target: Target) -> &'static [Change] {
    match target {
        Target::ClusterRole => &[Change::GcOnly, Change::Aggregation],
        Target::AggregatedClusterRole => &[],
        _ => &[Change::GcOnly],
    }
}

struct Matrix<'a> {
    server: &'a dyn ApiServer,
    kubeconfigs: Vec<PathBuf>,
    /// Numbers the objects created and the files applied.
    created: AtomicUsize,
}

impl Matrix<'_> {
    fn kubeconfig(&self, actor: Actor) -> &PathBuf {
        &self.kubeconfigs[ACTORS.iter().position(|a| *a == actor).unwrap_or(0)]
    }

    fn get(&self, path: &str) -> Value {
        let response = request(self.server, "GET", path).send();
        assert_eq!(response.status, 200, "{response}");
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }

    /// Puts the target back as the admin keeps it; the stored object.
    fn reset(&self, target: Target) -> Value {
        let current = self.get(&target.path(target.name()));
        let mut object = target.object(target.name());
        object["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        let response = request(self.server, "PUT", &target.path(target.name()))
            .json(object.to_string())
            .send();
        assert_eq!(response.status, 200, "reset: {response}");
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }

    /// `kubectl apply` of `object` as `actor`: whether it succeeded; a failure must be a 403.
    fn kubectl_apply(&self, actor: Actor, object: &Value) -> bool {
        let n = self.created.fetch_add(1, Ordering::SeqCst);
        let file = self.server.files().join(format!("apply-{n}.json"));
        std::fs::write(&file, object.to_string()).expect("cannot write a file");
        let run = self.server.kubectl_as(
            self.kubeconfig(actor),
            &["apply", "-f", &file.display().to_string()],
        );
        if !run.success() {
            assert!(run.stderr.contains("(Forbidden)"), "{run}");
        }
        run.success()
    }

    /// A raw request as `actor`: whether it succeeded; a failure must be a 403 Status.
    fn send(
        &self,
        actor: Actor,
        method: &str,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> bool {
        let response = request(self.server, method, path)
            .identity(Identity::Kubeconfig(self.kubeconfig(actor).clone()))
            .body(content_type, body.to_string())
            .send();
        if (200..300).contains(&response.status) {
            return true;
        }
        let status = response.assert_status(403);
        assert_eq!(status["reason"], "Forbidden", "{response}");
        false
    }

    /// Every case of `target`: its id, whether this server allowed it, and the answer written
    /// from Kubernetes' code.
    fn run_target(&self, target: Target) -> Vec<(String, bool, bool)> {
        let mut plan: Vec<(Write, Change)> = Vec::new();
        for change in creates(target) {
            plan.push((Write::Create, *change));
            plan.push((Write::ApplyCreate, *change));
        }
        for change in changes(target) {
            for write in UPDATES {
                plan.push((write, *change));
            }
        }
        let mut cases = Vec::new();
        for (write, change) in plan {
            let expected = kubernetes_answer(target, write, change);
            for (actor, expected) in ACTORS.iter().zip(expected) {
                let allowed = self.run(target, write, change, *actor);
                let id = format!("{target:?}-{write:?}-{change:?}-{}", actor.name());
                cases.push((id, allowed, expected));
            }
        }
        cases
    }

    /// Runs one case; whether the write was allowed.
    fn run(&self, target: Target, write: Write, change: Change, actor: Actor) -> bool {
        if matches!(write, Write::Create | Write::ApplyCreate) {
            let name = format!("created-{}", self.created.fetch_add(1, Ordering::SeqCst));
            let object = if change == Change::GcOnly {
                target.object(&name)
            } else {
                change.apply_to(&target.object(&name))
            };
            let allowed = if write == Write::Create {
                self.send(
                    actor,
                    "POST",
                    &target.collection(),
                    "application/json",
                    &object,
                )
            } else {
                self.kubectl_apply(actor, &object)
            };
            let exists = request(self.server, "GET", &target.path(&name))
                .send()
                .status
                == 200;
            assert_eq!(
                exists, allowed,
                "{target:?} {write:?} {change:?} by {actor:?}"
            );
            return allowed;
        }
        let stored = self.reset(target);
        let path = target.path(target.name());
        let allowed = match write {
            Write::Update => self.send(
                actor,
                "PUT",
                &path,
                "application/json",
                &change.apply_to(&stored),
            ),
            Write::MergePatch => self.send(
                actor,
                "PATCH",
                &path,
                "application/merge-patch+json",
                &change.merge_patch(),
            ),
            Write::StrategicPatch => self.send(
                actor,
                "PATCH",
                &path,
                "application/strategic-merge-patch+json",
                &change.merge_patch(),
            ),
            Write::JsonPatch => self.send(
                actor,
                "PATCH",
                &path,
                "application/json-patch+json",
                &change.json_patch(),
            ),
            Write::Apply => {
                let desired = change.apply_to(&target.object(target.name()));
                self.kubectl_apply(actor, &desired)
            }
            Write::Create | Write::ApplyCreate => unreachable!("creates returned above"),
        };
        let after = self.get(&path);
        if allowed {
            assert!(
                change.made_in(&after),
                "{target:?} {write:?} {change:?} by {actor:?} was allowed but not made: {after}"
            );
        } else {
            assert_eq!(
                after["metadata"]["resourceVersion"], stored["metadata"]["resourceVersion"],
                "{target:?} {write:?} {change:?} by {actor:?} was refused but changed the object"
            );
        }
        allowed
    }
}

const SETUP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: matrix
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: matrix-rbac-writer
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, clusterroles, rolebindings, clusterrolebindings]
  verbs: [create, get, list, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: secret-deleter
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: matrix-holder
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [delete, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: matrix-escalator
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, clusterroles]
  verbs: [escalate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: matrix-binder
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, clusterroles]
  verbs: [bind]
"#;

fn cluster_role_binding(name: &str, role: &str, users: &[&str]) -> String {
    let subjects: Vec<String> = users
        .iter()
        .map(|u| format!("- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {u}"))
        .collect();
    format!(
        "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: {name}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: {role}\nsubjects:\n{}\n",
        subjects.join("\n")
    )
}

/// Makes the actors, the roles they hold and the targets on `server`, then runs every case;
/// per case: its id, whether `server` allowed it, and the written answer.
fn run_matrix(server: &dyn ApiServer) -> Vec<(String, bool, bool)> {
    let mut setup = SETUP.to_owned();
    setup.push_str(&cluster_role_binding(
        "matrix-rbac-writers",
        "matrix-rbac-writer",
        &["writer", "holder", "escalator", "binder"],
    ));
    setup.push_str(&cluster_role_binding(
        "matrix-holder",
        "matrix-holder",
        &["holder"],
    ));
    setup.push_str(&cluster_role_binding(
        "matrix-escalator",
        "matrix-escalator",
        &["escalator"],
    ));
    setup.push_str(&cluster_role_binding(
        "matrix-binder",
        "matrix-binder",
        &["binder"],
    ));
    let file = server.files().join("matrix-setup.yaml");
    std::fs::write(&file, &setup).expect("cannot write the setup");
    server.kubectl_ok(&["apply", "-f", &file.display().to_string()]);
    for target in TARGETS {
        let created = request(server, "POST", &target.collection())
            .json(target.object(target.name()).to_string())
            .send();
        assert_eq!(created.status, 201, "{}: {created}", server.name());
    }
    let kubeconfigs: Vec<PathBuf> = ACTORS
        .iter()
        .map(|a| server.kubeconfig_for(a.name(), &[], "24h"))
        .collect();
    // Every grant has reached the authorizer before the first case.
    for (actor, question) in [
        (
            Actor::Writer,
            ["create", "clusterroles.rbac.authorization.k8s.io"],
        ),
        (Actor::Holder, ["list", "secrets"]),
        (
            Actor::Escalator,
            ["escalate", "roles.rbac.authorization.k8s.io"],
        ),
        (
            Actor::Binder,
            ["bind", "clusterroles.rbac.authorization.k8s.io"],
        ),
    ] {
        let kubeconfig = &kubeconfigs[ACTORS.iter().position(|a| *a == actor).unwrap_or(0)];
        poll(
            &format!("{actor:?} may {question:?} on {}", server.name()),
            Duration::from_secs(10),
            || {
                let run = server.kubectl_as(
                    kubeconfig,
                    &["auth", "can-i", question[0], question[1], "-n", NS],
                );
                if run.stdout.trim() == "yes" {
                    Ok(())
                } else {
                    Err(run.to_string())
                }
            },
        );
    }

    let matrix = Matrix {
        server,
        kubeconfigs,
        created: AtomicUsize::new(0),
    };
    // The targets are independent objects: one thread each.
    std::thread::scope(|scope| {
        let workers: Vec<_> = TARGETS
            .iter()
            .map(|target| {
                let matrix = &matrix;
                scope.spawn(move || matrix.run_target(*target))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The cases where `server` answered otherwise than the written answer.
fn disagreements(server: &str, cases: &[(String, bool, bool)]) -> Vec<String> {
    let word = |allowed: bool| if allowed { "allowed" } else { "refused" };
    cases
        .iter()
        .filter(|(_, allowed, expected)| allowed != expected)
        .map(|(id, allowed, expected)| {
            format!(
                "{id}: {server} {}, written answer {}",
                word(*allowed),
                word(*expected)
            )
        })
        .collect()
}

/// The matrix on kgate and on the real kube-apiserver (v1.34.2): each case compared between
/// the two (suite `escalation`), and each server held to the answers written from Kubernetes'
/// code (where kube-apiserver disagrees with them, they are wrong).
#[test]
fn rbac_writes_are_answered_as_kubernetes_answers_them() {
    let (ours, theirs) = std::thread::scope(|scope| {
        let reference = scope.spawn(|| {
            let reference = Reference::up();
            run_matrix(&reference)
        });
        let kg = Kgate::up();
        let ours = run_matrix(&kg);
        let theirs = reference
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (ours, theirs)
    });
    let mut differences = Differences::new("escalation");
    let theirs: std::collections::BTreeMap<&str, bool> = theirs
        .iter()
        .map(|(id, allowed, _)| (id.as_str(), *allowed))
        .collect();
    assert_eq!(theirs.len(), ours.len(), "both ran every case");
    for (id, allowed, _) in &ours {
        let reference = theirs.get(id.as_str()).copied();
        let difference = (reference != Some(*allowed))
            .then(|| format!("kgate allowed: {allowed}, kube-apiserver allowed: {reference:?}"));
        differences.case(id, difference);
    }
    let reference_cases: Vec<(String, bool, bool)> = ours
        .iter()
        .map(|(id, _, expected)| (id.clone(), theirs[id.as_str()], *expected))
        .collect();
    let kgate_wrong = disagreements("kgate", &ours);
    let reference_wrong = disagreements("kube-apiserver", &reference_cases);
    note(&format!(
        "escalation matrix: kgate {} of {} cases as written from Kubernetes' code, kube-apiserver {}",
        ours.len() - kgate_wrong.len(),
        ours.len(),
        ours.len() - reference_wrong.len()
    ));
    differences.assert_only_known();
    assert!(
        reference_wrong.is_empty(),
        "the written answers are wrong where kube-apiserver differs:\n{}",
        reference_wrong.join("\n")
    );
    assert!(
        kgate_wrong.is_empty(),
        "{} of {} cases differ from Kubernetes:\n{}",
        kgate_wrong.len(),
        ours.len(),
        kgate_wrong.join("\n")
    );
}
