//! `kgate rbac who-can` and `kgate rbac explain` against a real kgate (objects listed over
//! HTTPS with the admin kubeconfig) and against the same objects exported to YAML files
//! (`--from`): the same questions get the same answers and exit codes (0 allowed, 1 denied,
//! 2 an error).

use kgate_e2e::{kgate_bin, run_bounded, Kgate, Run, CLIENT_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::Command;

const ALLOWED_REASON: &str =
    r#"RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice""#;

/// `kgate rbac ARGS...`, with no ambient kubeconfig.
fn kgate_rbac(kg: &Kgate, args: &[&str]) -> Run {
    let mut cmd = Command::new(kgate_bin());
    cmd.arg("rbac")
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", kg.root().join("home"));
    run_bounded(cmd, None, CLIENT_TIMEOUT)
}

#[track_caller]
fn exit_code(run: &Run, want: i32) {
    assert_eq!(run.status.code(), Some(want), "exit code:\n{run}");
}

/// The line of the who-can table for User alice, if any.
fn alice_row(stdout: &str) -> Option<&str> {
    stdout
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["User", "alice"]))
}

fn source_args(source: &Source) -> Vec<String> {
    match source {
        Source::Cluster(kubeconfig) => vec!["--kubeconfig".into(), path_arg(kubeconfig)],
        Source::Files(dir, extra) => {
            let mut args = vec!["--from".into(), path_arg(dir)];
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        }
    }
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 path").to_owned()
}

enum Source {
    Cluster(PathBuf),
    Files(PathBuf, Vec<&'static str>),
}

/// Asks the three questions of the brief against `source`; returns the three runs.
fn ask(kg: &Kgate, source: &Source) -> [Run; 3] {
    let with = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(source_args(source));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        kgate_rbac(kg, &refs)
    };
    let who = with(&["who-can", "list", "pods", "-n", "team"]);
    exit_code(&who, 0);
    let row = alice_row(&who.stdout).unwrap_or_else(|| panic!("no row for alice:\n{who}"));
    assert!(
        row.contains(r#"RoleBinding "alice-view/team""#) && row.contains(r#"ClusterRole "view""#),
        "{row}"
    );
    assert!(
        who.stdout.contains(r#"members of group "system:masters""#),
        "{who}"
    );

    let allowed = with(&[
        "explain",
        "--as",
        "alice",
        "--as-group",
        "dev",
        "list",
        "pods",
        "-n",
        "team",
    ]);
    exit_code(&allowed, 0);
    assert!(
        allowed
            .stdout
            .contains(&format!("result:   allowed: {ALLOWED_REASON}")),
        "{allowed}"
    );
    assert!(
        allowed
            .stdout
            .contains(r#"User "alice" (groups=["dev" "system:authenticated"])"#),
        "{allowed}"
    );

    let denied = with(&["explain", "--as", "alice", "delete", "pods", "-n", "team"]);
    exit_code(&denied, 1);
    assert!(
        denied.stdout.contains(
            r#"result:   denied: pods is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "team""#
        ),
        "{denied}"
    );
    [who, allowed, denied]
}

#[test]
fn who_can_and_explain_answer_from_the_cluster_and_from_its_files_alike() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "team"]);
    kg.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "team",
    ]);

    let from_cluster = ask(&kg, &Source::Cluster(kg.admin_kubeconfig()));

    // The same objects, exported as kubectl exports them, in a folder of two files.
    let export = kg.files().join("export");
    std::fs::create_dir_all(export.join("namespaced")).expect("mkdir");
    let cluster_scoped = kg.kubectl_ok(&["get", "clusterroles,clusterrolebindings", "-o", "yaml"]);
    let namespaced = kg.kubectl_ok(&["get", "roles,rolebindings", "-A", "-o", "yaml"]);
    std::fs::write(export.join("cluster.yaml"), cluster_scoped).expect("write");
    std::fs::write(export.join("namespaced/all.yaml"), namespaced).expect("write");
    let from_files = ask(&kg, &Source::Files(export, vec![]));
    for (cluster, files) in from_cluster.iter().zip(&from_files) {
        assert_eq!(cluster.stdout, files.stdout, "{cluster}\n{files}");
    }

    // A hand-written folder with alice's binding only, on the bootstrap policy.
    let hand = kg.files().join("hand");
    std::fs::create_dir_all(&hand).expect("mkdir");
    std::fs::write(
        hand.join("alice.yaml"),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
         metadata: {name: alice-view, namespace: team}\n\
         roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n\
         subjects: [{kind: User, name: alice}]\n",
    )
    .expect("write");
    ask(&kg, &Source::Files(hand.clone(), vec!["--with-bootstrap"]));
    // Without the bootstrap policy the view role is missing, and explain says so.
    let missing = kgate_rbac(
        &kg,
        &[
            "explain",
            "--as",
            "alice",
            "list",
            "pods",
            "-n",
            "team",
            "--from",
            &path_arg(&hand),
        ],
    );
    exit_code(&missing, 1);
    assert!(missing.stdout.contains("role not found"), "{missing}");

    // Non-resource URLs and system:masters.
    let health = kgate_rbac(
        &kg,
        &[
            "who-can",
            "get",
            "/healthz",
            "--kubeconfig",
            &path_arg(&kg.admin_kubeconfig()),
        ],
    );
    exit_code(&health, 0);
    assert!(
        health
            .stdout
            .contains(r#"ClusterRoleBinding "system:public-info-viewer""#),
        "{health}"
    );
    let admin = kgate_rbac(
        &kg,
        &[
            "explain",
            "--as",
            "kubernetes-admin",
            "--as-group",
            "system:masters",
            "delete",
            "nodes",
            "--kubeconfig",
            &path_arg(&kg.admin_kubeconfig()),
        ],
    );
    exit_code(&admin, 0);
    assert!(
        admin.stdout.contains(r#"is in group "system:masters""#),
        "{admin}"
    );
}

#[test]
fn bad_sources_are_errors_with_exit_code_2() {
    let kg = Kgate::up();

    let unreadable = kgate_rbac(
        &kg,
        &[
            "who-can",
            "list",
            "pods",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ],
    );
    exit_code(&unreadable, 2);
    unreadable.fails_with("error: cannot use the kubeconfig: cannot read /nonexistent/kubeconfig");

    // The admin kubeconfig pointed at a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let text = std::fs::read_to_string(kg.admin_kubeconfig()).expect("admin kubeconfig");
    let unreachable = kg.write_file(
        "unreachable.kubeconfig",
        &text.replace(&kg.url(), &format!("https://127.0.0.1:{closed}")),
    );
    let run = kgate_rbac(
        &kg,
        &[
            "who-can",
            "list",
            "pods",
            "--kubeconfig",
            &path_arg(&unreachable),
        ],
    );
    exit_code(&run, 2);
    run.fails_with("cannot list the RBAC objects of the cluster of context");
    run.fails_with(&format!("cannot connect to https://127.0.0.1:{closed}/"));

    // A user the cluster does not let list RBAC objects.
    let bob = kg.kubeconfig_for("bob", &["dev"], "1h");
    let run = kgate_rbac(
        &kg,
        &["who-can", "list", "pods", "--kubeconfig", &path_arg(&bob)],
    );
    exit_code(&run, 2);
    run.fails_with(r#"the server answered 403 Forbidden: clusterroles.rbac.authorization.k8s.io is forbidden: User "bob" cannot list resource "clusterroles""#);

    let bad = kg.files().join("bad");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(
        bad.join("rbac.yaml"),
        "kind: ClusterRole\nmetadata: {name: ok}\n---\nkind: RoleBinding\nmetadata: {name: x}\n",
    )
    .expect("write");
    let run = kgate_rbac(
        &kg,
        &[
            "explain",
            "--as",
            "alice",
            "get",
            "pods",
            "--from",
            &path_arg(&bad),
        ],
    );
    exit_code(&run, 2);
    run.fails_with(&format!(
        "{}: document 2: invalid RBAC object",
        bad.join("rbac.yaml").display()
    ));

    let usage = kgate_rbac(
        &kg,
        &["who-can", "get", "pods", "--from", "a", "--kubeconfig", "b"],
    );
    exit_code(&usage, 2);
}
