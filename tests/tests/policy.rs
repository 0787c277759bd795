//! The casbin policy layer (`--authorization-policy-file`) end to end, with the real kubectl:
//! a deny line beats system:masters, an allow line needs no RBAC binding, edits apply without a
//! restart, a bad file stops kgate at start, and a bad edit keeps the last good policy.

use kgate_e2e::{kgate_bin, poll, run_bounded, Kgate, Options, CLIENT_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The reload polls every second; allow for a busy machine.
const RELOAD_BOUND: Duration = Duration::from_secs(15);

const HEADER: &str = "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n";

/// Only SREs delete namespaces (line 5); ci-bot lists pods in `ci` without RBAC (line 7).
const ADMIN_DENY: &str = r#"apiVersion: kgate.io/v1alpha1
kind: AuthorizationPolicy
policies:
  # Nobody outside group sre deletes a namespace, cluster-admins included.
  - p, deny, *, !sre, delete, "", namespaces, *, *, *
  # The CI bot may list pods in namespace ci, with no RBAC binding at all.
  - p, allow, ci-bot, *, list, "", pods, ci, *, *
"#;

/// Writes `text` to `path` by renaming a finished file over it, as careful tools do, so the
/// reload never sees half a file.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("cannot write the policy");
    std::fs::rename(&tmp, path).expect("cannot replace the policy");
}

fn policy_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("policy.yaml");
    replace(&path, text);
    path
}

fn with_policy(path: &Path) -> Options {
    Options {
        authorization_policy_file: Some(path.to_owned()),
        ..Options::default()
    }
}

#[test]
fn a_deny_line_beats_cluster_admin_and_an_allow_line_needs_no_binding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = policy_file(&dir, ADMIN_DENY);
    let kg = Kgate::up_with(with_policy(&path));
    kg.kubectl_ok(&["create", "namespace", "doomed"]);
    kg.kubectl_ok(&["create", "namespace", "ci"]);

    // The admin is in system:masters; the deny line is asked first.
    let line = format!(
        r#"policy: denied by line 5 of {}: "p, deny, *, !sre, delete, "", namespaces, *, *, *""#,
        path.display()
    );
    kg.kubectl(&["delete", "namespace", "doomed"])
        .fails_with(&format!(
            r#"Error from server (Forbidden): namespaces "doomed" is forbidden: User "kubernetes-admin" cannot delete resource "namespaces" in API group "" in the namespace "doomed": {line}"#
        ));
    let status = kg
        .request("DELETE", "/api/v1/namespaces/doomed")
        .send()
        .assert_status(403);
    assert_eq!(status["reason"], "Forbidden");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.ends_with(&line)),
        "{status}"
    );
    // Access reviews ask the same chain.
    let can_i = kg.kubectl(&["auth", "can-i", "delete", "namespaces"]);
    assert!(
        can_i.stdout.starts_with("no - policy: denied by line 5 of"),
        "{can_i}"
    );
    // Everything else the admin may still do.
    let names = kg.kubectl_ok(&["get", "namespace", "doomed", "-o", "name"]);
    assert_eq!(names.trim(), "namespace/doomed");
    // An SRE with the same powers may delete it: the line exempts group sre.
    let sam = kg.kubeconfig_for("sam", &["system:masters", "sre"], "1h");
    kg.kubectl_as(&sam, &["delete", "namespace", "doomed", "--wait=false"])
        .ok();

    // ci-bot has no binding: RBAC has no opinion, the allow line allows `list` in ci only.
    let bot = kg.kubeconfig_for("ci-bot", &[], "1h");
    kg.kubectl_as(&bot, &["get", "pods", "-n", "ci"]).ok();
    kg.kubectl_as(&bot, &["get", "pods", "-n", "default"])
        .fails_with(r#"pods is forbidden: User "ci-bot" cannot list resource "pods" in API group "" in the namespace "default""#);
    kg.kubectl_as(&bot, &["get", "configmaps", "-n", "ci"])
        .fails_with("(Forbidden)");
}

#[test]
fn edits_apply_without_a_restart_and_a_bad_edit_keeps_the_last_good_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = policy_file(&dir, ADMIN_DENY);
    // The split mode: the flag on `kgate gateway`.
    let kg = Kgate::split_with(with_policy(&path));
    kg.kubectl_ok(&["create", "namespace", "team"]);
    kg.kubectl_ok(&["create", "configmap", "settings", "-n", "team"]);
    kg.kubectl_ok(&["create", "namespace", "scratch"]);
    kg.kubectl(&["delete", "namespace", "scratch"])
        .fails_with("policy: denied by line 5 of");

    // A new policy: configmaps in team are off limits outside sre; namespaces are not.
    let team_line = r#"p, deny, *, !sre, *, "", configmaps, team, *, *"#;
    replace(&path, &format!("{HEADER}  - {team_line}\n"));
    let reason = format!(
        r#"policy: denied by line 4 of {}: "{team_line}""#,
        path.display()
    );
    poll("the edited policy applies", RELOAD_BOUND, || {
        let run = kg.kubectl(&["get", "configmap", "settings", "-n", "team"]);
        if !run.success() && run.stderr.contains(&reason) {
            Ok(())
        } else {
            Err(run.to_string())
        }
    });
    kg.kubectl_ok(&["delete", "namespace", "scratch", "--wait=false"]);

    // A bad edit: a line with too few fields. The last good policy stays, and the log says so.
    replace(&path, &format!("{HEADER}  - p, deny, *, !sre, get\n"));
    let logs = poll("the bad edit is reported", RELOAD_BOUND, || {
        let logs = kg.logs();
        if logs.contains("keeping the last good policy") {
            Ok(logs)
        } else {
            Err(logs)
        }
    });
    let warning = logs
        .lines()
        .find(|l| l.contains("keeping the last good policy"))
        .unwrap_or_default();
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    assert!(
        warning.contains("line 4: 4 fields after p, the model's policy_definition has 9"),
        "{warning}"
    );
    kg.kubectl(&["get", "configmap", "settings", "-n", "team"])
        .fails_with(&reason);

    // The next change is tried again: an empty policy lets the admin read the configmap.
    replace(&path, HEADER);
    poll("the fixed policy applies", RELOAD_BOUND, || {
        let run = kg.kubectl(&["get", "configmap", "settings", "-n", "team", "-o", "name"]);
        if run.success() {
            Ok(())
        } else {
            Err(run.to_string())
        }
    });
}

#[test]
fn a_malformed_policy_file_stops_kgate_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "bad-yaml.yaml",
            format!("{HEADER}  - [unclosed\n"),
            &[
                "not a valid AuthorizationPolicy document",
                "policies[0]: invalid type: sequence, expected a string at line 4",
            ][..],
        ),
        (
            "bad-line.yaml",
            format!("{HEADER}  - p, permit, *, *, get, *, *, *, *, *\n"),
            &[r#"line 4: the effect is "permit"; it must be deny or allow"#][..],
        ),
        (
            "bad-model.yaml",
            "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\nmodel: |\n  [matchers]\n  m = true\n".to_owned(),
            &["the model is invalid: [request_definition] `r = ...` is missing"][..],
        ),
    ];
    for (name, text, problems) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("cannot write the policy");
        for mode in ["up", "gateway"] {
            let mut cmd = Command::new(kgate_bin());
            cmd.arg(mode)
                .arg("--data-dir")
                .arg(dir.path().join(format!("data-{mode}")))
                .args(["--listen", "127.0.0.1:0", "--authorization-policy-file"])
                .arg(&path)
                .env("KGATE_LOG", "info")
                .env("RUST_BACKTRACE", "0");
            if mode == "gateway" {
                // Never reached: the policy is checked first.
                cmd.args(["--upstream", "https://127.0.0.1:9"]);
            }
            let run = run_bounded(cmd, None, CLIENT_TIMEOUT);
            let expected = format!(
                "the authorization policy file {} is invalid",
                path.display()
            );
            assert!(
                !run.success()
                    && run.stderr.contains(&expected)
                    && problems.iter().all(|p| run.stderr.contains(p)),
                "kgate {mode} should have refused {name} with {expected:?} and {problems:?}:\n{run}"
            );
            assert!(!run.stdout.contains("kgate is ready"), "{run}");
        }
    }
}

/// `delegate` may bind any ClusterRole in team and write Roles with `escalate` (RBAC), but two
/// deny lines take binding `admin` and escalating Roles named `locked` from her.
const DELEGATION_DENY: &str = r#"apiVersion: kgate.io/v1alpha1
kind: AuthorizationPolicy
policies:
  - p, deny, delegate, *, bind, rbac.authorization.k8s.io, clusterroles, *, admin, *
  - p, deny, delegate, *, escalate, rbac.authorization.k8s.io, roles, team, locked, *
"#;

/// Review finding 4: the escalation and bind checks of RBAC writes ask the same authorizer
/// chain as requests, deny lines first, so a deny line on `bind` or `escalate` holds there.
fn deny_lines_hold_for_bind_and_escalate(kg: &Kgate, policy: &Path) {
    kg.kubectl_ok(&["create", "namespace", "team"]);
    let delegator = kg.write_file(
        "delegator.yaml",
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: delegator
rules:
- apiGroups: [rbac.authorization.k8s.io]
  resources: [clusterroles, roles]
  verbs: [bind, escalate]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [create, get, list, update, patch]
"#,
    );
    kg.kubectl_ok(&["apply", "-f", &delegator.display().to_string()]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "delegate-delegator",
        "-n",
        "team",
        "--clusterrole=delegator",
        "--user=delegate",
    ]);
    let delegate = kg.kubeconfig_for("delegate", &[], "24h");
    // RBAC's `bind` lets her bind what she does not hold...
    kg.kubectl_as_eventually(
        &delegate,
        &[
            "create",
            "rolebinding",
            "bob-edit",
            "-n",
            "team",
            "--clusterrole=edit",
            "--user=bob",
        ],
    );
    // ...but not admin, which a deny line names.
    kg.kubectl_as(
        &delegate,
        &[
            "create",
            "rolebinding",
            "bob-admin",
            "-n",
            "team",
            "--clusterrole=admin",
            "--user=bob",
        ],
    )
    .fails_with(r#"rolebindings.rbac.authorization.k8s.io "bob-admin" is forbidden: user "delegate" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#);
    kg.kubectl(&["get", "rolebinding", "bob-admin", "-n", "team"])
        .fails_with("NotFound");
    // The access review asks the same chain.
    let can_i = kg.kubectl_as(
        &delegate,
        &[
            "auth",
            "can-i",
            "bind",
            "clusterroles.rbac.authorization.k8s.io/admin",
            "-n",
            "team",
        ],
    );
    let line = format!(
        r#"no - policy: denied by line 4 of {}: "p, deny, delegate, *, bind, rbac.authorization.k8s.io, clusterroles, *, admin, *""#,
        policy.display()
    );
    assert_eq!(can_i.stdout.trim(), line, "{can_i}");

    // `escalate` lets her write a Role granting what she lacks, except the one denied.
    kg.kubectl_as_eventually(
        &delegate,
        &[
            "create",
            "role",
            "open",
            "-n",
            "team",
            "--verb=delete",
            "--resource=secrets",
        ],
    );
    kg.kubectl_ok(&[
        "create",
        "role",
        "locked",
        "-n",
        "team",
        "--verb=get",
        "--resource=secrets",
    ]);
    kg.kubectl_as(
        &delegate,
        &[
            "patch",
            "role",
            "locked",
            "-n",
            "team",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/0/verbs/-","value":"delete"}]"#,
        ],
    )
    .fails_with(r#"roles.rbac.authorization.k8s.io "locked" is forbidden: user "delegate" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#);
    let verbs = kg.kubectl_ok(&[
        "get",
        "role",
        "locked",
        "-n",
        "team",
        "-o",
        "jsonpath={.rules[0].verbs}",
    ]);
    assert_eq!(verbs.trim(), r#"["get"]"#);
}

#[test]
fn deny_lines_hold_for_bind_and_escalate_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = policy_file(&dir, DELEGATION_DENY);
    let kg = Kgate::up_with(with_policy(&path));
    deny_lines_hold_for_bind_and_escalate(&kg, &path);
}

#[test]
fn deny_lines_hold_for_bind_and_escalate_checks_in_the_split_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = policy_file(&dir, DELEGATION_DENY);
    let kg = Kgate::split_with(with_policy(&path));
    deny_lines_hold_for_bind_and_escalate(&kg, &path);
}
