//! `kgate login`, the kubectl exec credential plugin, against a real OpenID provider (npm
//! `oidc-provider`, see src/oidc.rs): the authorization-code flow through the `oidc-browser`
//! stand-in, the ExecCredential it prints, the token cache (a second run needs no browser), the
//! refresh once the cached ID token expires, the device flow, a confidential HS256 client whose
//! secret comes from a file or the environment (never the command line, nor the kubeconfig
//! `kgate kubeconfig oidc` writes), and the refusals (wrong password, non-interactive without a
//! token, a client secret on the command line). The plugin side only: the
//! gateway's verification of these tokens is tested elsewhere.
//!
//! Needs node and tests/oidc-provider/node_modules (scripts/test.sh) and the kgate binary
//! (`cargo build -p kgate-cli --bin kgate`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

use kgate_e2e::oidc::{jwt_claims, ClientSpec, IssuerSpec, OidcProvider, ProviderSpec, UserSpec};
use kgate_e2e::{kgate_bin, run_bounded, Run};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123456789";
const BROWSER: &str = env!("CARGO_BIN_EXE_oidc-browser");

fn provider() -> OidcProvider {
    OidcProvider::start(
        ProviderSpec::new().issuer(
            IssuerSpec::new("corp")
                .client(ClientSpec::public("kubectl"))
                .client(ClientSpec::public("short").id_token_ttl(3))
                .client(ClientSpec::confidential("hs", HS_SECRET).hs256())
                .user(
                    UserSpec::new("alice", "alice-pw")
                        .name("Alice Liddell")
                        .groups(&["dev", "ops"]),
                ),
        ),
    )
}

/// `kgate login` for `client`, its cache in `cache`, `browser` as the browser command (the
/// oidc-browser signs in as alice with `password`), plus `extra` flags.
fn login(
    op: &OidcProvider,
    client: &str,
    cache: &Path,
    browser: &str,
    password: &str,
    extra: &[&str],
) -> Run {
    let mut cmd = Command::new(kgate_bin());
    cmd.args([
        "login",
        "--issuer",
        &op.issuer_url("corp"),
        "--client-id",
        client,
    ])
    .arg("--certificate-authority")
    .arg(op.ca_pem_path())
    .arg("--cache-dir")
    .arg(cache)
    .args(["--browser", browser])
    .args(extra)
    .env("OIDC_BROWSER_USER", "alice")
    .env("OIDC_BROWSER_PASSWORD", password)
    .env("OIDC_BROWSER_CACERT", op.ca_pem_path())
    .env_remove("KUBERNETES_EXEC_INFO")
    .env_remove("BROWSER")
    .env_remove("KGATE_CACHE_DIR");
    run_bounded(cmd, None, Duration::from_secs(120))
}

/// Checks the ExecCredential's shape and returns its token and expiry text.
fn credential(run: &Run) -> (String, String) {
    let doc: Value = serde_json::from_str(run.ok().trim()).unwrap_or_else(|e| {
        panic!("stdout is not one JSON document ({e}):\n{run}");
    });
    assert_eq!(
        doc["apiVersion"], "client.authentication.k8s.io/v1",
        "{doc}"
    );
    assert_eq!(doc["kind"], "ExecCredential", "{doc}");
    let token = doc["status"]["token"].as_str().unwrap().to_owned();
    let expiry = doc["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token never reaches stderr.
    assert!(
        !run.stderr.contains(&token),
        "the token is on stderr:\n{run}"
    );
    (token, expiry)
}

/// RFC 3339 (UTC, seconds) of a Unix time.
fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn cache_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect()
}

#[test]
fn code_flow_prints_the_users_id_token_and_the_next_run_uses_the_cache() {
    let op = provider();
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");

    let first = login(&op, "kubectl", &cache, BROWSER, "alice-pw", &[]);
    let (token, expiry) = credential(&first);
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], op.issuer_url("corp").as_str());
    assert_eq!(claims["aud"], "kubectl");
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
    assert_eq!(expiry, rfc3339(claims["exp"].as_i64().unwrap()));

    // The cache: a private directory, one private file, no token in its name.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cache), 0o700);
    let files = cache_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&files[0]), 0o600);

    // A browser that would fail: the cached token is served without it.
    let second = login(&op, "kubectl", &cache, "false", "alice-pw", &[]);
    let (again, _) = credential(&second);
    assert_eq!(again, token);

    // --force logs in again, and a failing browser then fails the login.
    login(&op, "kubectl", &cache, "false", "alice-pw", &["--force"])
        .fails_with("browser command exited");
}

#[test]
fn an_expired_id_token_is_refreshed_without_the_browser() {
    let op = provider();
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    // The "short" client's ID tokens live 3 s: less than the 10 s kgate keeps in hand, so the
    // next run refreshes.
    let (first, _) = credential(&login(&op, "short", &cache, BROWSER, "alice-pw", &[]));
    let first_claims = jwt_claims(&first);
    assert_eq!(
        first_claims["exp"].as_i64().unwrap() - first_claims["iat"].as_i64().unwrap(),
        3
    );
    std::thread::sleep(Duration::from_millis(1100));
    let run = login(&op, "short", &cache, "false", "alice-pw", &[]);
    let (second, expiry) = credential(&run);
    assert_ne!(second, first);
    let claims = jwt_claims(&second);
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["aud"], "short");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
    assert!(
        claims["iat"].as_i64() > first_claims["iat"].as_i64(),
        "{claims}"
    );
    assert_eq!(expiry, rfc3339(claims["exp"].as_i64().unwrap()));
    // The refreshed login is cached in the same file.
    assert_eq!(cache_files(&cache).len(), 1);
}

#[test]
fn device_flow_and_a_confidential_hs256_client() {
    let op = provider();
    let root = tempfile::tempdir().unwrap();
    // The device flow: kgate shows the code and opens the complete verification URI, which the
    // oidc-browser confirms; kgate polls the token endpoint.
    let run = login(
        &op,
        "kubectl",
        &root.path().join("device"),
        BROWSER,
        "alice-pw",
        &["--grant", "device"],
    );
    let (token, _) = credential(&run);
    assert_eq!(jwt_claims(&token)["sub"], "alice-sub");
    assert!(run.stderr.contains("enter the code"), "{run}");

    // A confidential client whose ID tokens are signed with its secret, read from a file.
    let secret_file = root.path().join("client-secret");
    std::fs::write(&secret_file, format!("{HS_SECRET}\n")).unwrap();
    let run = login(
        &op,
        "hs",
        &root.path().join("hs"),
        BROWSER,
        "alice-pw",
        &["--client-secret-file", secret_file.to_str().unwrap()],
    );
    let (token, _) = credential(&run);
    assert_eq!(jwt_claims(&token)["aud"], "hs");
    assert!(!run.stderr.contains(HS_SECRET), "{run}");
}

#[test]
fn the_client_secret_never_travels_on_a_command_line() {
    let op = provider();
    let root = tempfile::tempdir().unwrap();

    // From the environment, as kubectl passes its own to the plugin.
    let mut cmd = Command::new(kgate_bin());
    cmd.args([
        "login",
        "--issuer",
        &op.issuer_url("corp"),
        "--client-id",
        "hs",
    ])
    .arg("--certificate-authority")
    .arg(op.ca_pem_path())
    .arg("--cache-dir")
    .arg(root.path().join("env"))
    .args(["--browser", BROWSER])
    .env("KGATE_OIDC_CLIENT_SECRET", HS_SECRET)
    .env("OIDC_BROWSER_USER", "alice")
    .env("OIDC_BROWSER_PASSWORD", "alice-pw")
    .env("OIDC_BROWSER_CACERT", op.ca_pem_path())
    .env_remove("KUBERNETES_EXEC_INFO")
    .env_remove("BROWSER")
    .env_remove("KGATE_CACHE_DIR");
    let run = run_bounded(cmd, None, Duration::from_secs(120));
    let (token, _) = credential(&run);
    assert_eq!(jwt_claims(&token)["aud"], "hs");

    // On the command line (where `ps` shows it to every local user): refused before any
    // network call, without echoing it.
    let run = login(
        &op,
        "hs",
        &root.path().join("argv"),
        BROWSER,
        "alice-pw",
        &["--client-secret", HS_SECRET],
    );
    run.fails_with("--client-secret-file");
    assert!(!run.stderr.contains(HS_SECRET), "{run}");
    assert!(run.stdout.trim().is_empty(), "{run}");

    // The kubeconfig kgate writes for such a client names the file: neither it nor the
    // plugin's arguments hold the secret, and the plugin run with those arguments (as kubectl
    // runs it) logs in.
    let data_dir = root.path().join("data");
    std::fs::create_dir_all(data_dir.join("pki")).unwrap();
    std::fs::write(data_dir.join("pki").join("ca.crt"), op.ca_pem()).unwrap();
    let secret_file = root.path().join("client-secret");
    std::fs::write(&secret_file, HS_SECRET).unwrap();
    let mut cmd = Command::new(kgate_bin());
    cmd.args(["kubeconfig", "oidc", "--issuer", &op.issuer_url("corp")])
        .args(["--client-id", "hs", "--server", "https://127.0.0.1:6443"])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .arg("--certificate-authority")
        .arg(op.ca_pem_path())
        .arg("--data-dir")
        .arg(&data_dir);
    let run = run_bounded(cmd, None, Duration::from_secs(30));
    let kubeconfig = run.ok();
    assert!(!kubeconfig.contains(HS_SECRET), "{kubeconfig}");
    let doc: serde_yaml::Value = serde_yaml::from_str(kubeconfig).unwrap();
    let exec = &doc["users"][0]["user"]["exec"];
    let args: Vec<String> = exec["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let at = args
        .iter()
        .position(|a| a == "--client-secret-file")
        .unwrap_or_else(|| panic!("no --client-secret-file in {args:?}"));
    assert_eq!(Path::new(&args[at + 1]), secret_file.as_path());
    let mut cmd = Command::new(exec["command"].as_str().unwrap());
    cmd.args(&args)
        .arg("--cache-dir")
        .arg(root.path().join("kubeconfig"))
        .args(["--browser", BROWSER])
        .env("OIDC_BROWSER_USER", "alice")
        .env("OIDC_BROWSER_PASSWORD", "alice-pw")
        .env("OIDC_BROWSER_CACERT", op.ca_pem_path())
        .env_remove("KGATE_OIDC_CLIENT_SECRET")
        .env_remove("KUBERNETES_EXEC_INFO")
        .env_remove("BROWSER")
        .env_remove("KGATE_CACHE_DIR");
    let (token, _) = credential(&run_bounded(cmd, None, Duration::from_secs(120)));
    assert_eq!(jwt_claims(&token)["aud"], "hs");
}

#[test]
fn refusals_are_clear_and_start_no_flow() {
    let op = provider();
    let root = tempfile::tempdir().unwrap();
    // A wrong password: the browser fails, and so does the login.
    login(
        &op,
        "kubectl",
        &root.path().join("a"),
        BROWSER,
        "wrong",
        &[],
    )
    .fails_with("browser command exited");

    // kubectl without a terminal, nothing cached and no browser: nobody could log in, so an
    // error at once, before any network call.
    let mut cmd = Command::new(kgate_bin());
    cmd.args(["login", "--issuer", &op.issuer_url("corp"), "--client-id", "kubectl"])
        .arg("--cache-dir")
        .arg(root.path().join("b"))
        .env_remove("BROWSER")
        .env(
            "KUBERNETES_EXEC_INFO",
            r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}}"#,
        );
    let run = run_bounded(cmd, None, Duration::from_secs(60));
    run.fails_with("non-interactively");
    assert!(run.stdout.trim().is_empty(), "{run}");
}
