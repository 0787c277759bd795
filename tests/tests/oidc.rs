//! OIDC users end to end, against the real `oidc-provider` from npm on loopback HTTPS (see
//! `kgate_e2e::oidc`): a login driven through the `kgate login` exec plugin by the real kubectl
//! with the user's groups bound by RBAC; two issuers at once with their own mappings; the
//! provider's key rotation followed without a restart; every refusal a 401 with its reason in
//! the log and nothing of the token; a provider down at start; the configuration file reloaded;
//! the legacy `--oidc-*` flags; names in Kubernetes' `system:` namespace refused unless the
//! operator lets an issuer assert them.

use kgate_e2e::oidc::{ClientSpec, IssuerSpec, OidcProvider, ProviderSpec, UserSpec};
use kgate_e2e::{poll, run_bounded, Identity, Kgate, Options, Run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SCOPES: &[&str] = &["openid", "email", "profile", "groups"];
const WHOAMI: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const WHOAMI_BODY: &str = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;

/// The corp issuer: kubectl's client, a second client (another audience), a client whose ID
/// tokens live 2 s, one whose ID tokens are HS256, and users for each refusal.
fn corp() -> IssuerSpec {
    IssuerSpec::new("corp")
        .client(ClientSpec::public("kgate"))
        .client(ClientSpec::public("other-app"))
        .client(ClientSpec::public("short").id_token_ttl(2))
        .client(ClientSpec::confidential("hs", "a-secret-of-at-least-32-characters!!").hs256())
        .user(UserSpec::new("alice", "alice-pw").groups(&["dev"]))
        .user(UserSpec::new("bob", "bob-pw").email("bob@example.com", false))
        .user(UserSpec::new("mallory", "mallory-pw").email("system:admin", true))
}

/// The partner issuer: its own client and users.
fn partner() -> IssuerSpec {
    IssuerSpec::new("partner")
        .client(ClientSpec::public("partner-kgate"))
        .client(ClientSpec::public("kgate"))
        .user(UserSpec::new("carol", "carol-pw").groups(&["contractors"]))
}

/// An AuthenticationConfiguration for the corp issuer (emails as user names, groups prefixed
/// `corp:`, verified emails only) and, if given, the partner one (`partner:` + sub).
fn authentication_config(op: &OidcProvider, with_partner: bool) -> String {
    let ca = indent(&op.ca_pem(), 8);
    let mut text = format!(
        r#"apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
  - issuer:
      url: {corp}
      audiences: [kgate, short]
      audienceMatchPolicy: MatchAny
      certificateAuthority: |
{ca}
    claimValidationRules:
      - expression: "claims.email_verified == true"
        message: the email address must be verified
    claimMappings:
      username:
        claim: email
        prefix: ""
      groups:
        claim: groups
        prefix: "corp:"
"#,
        corp = op.issuer_url("corp"),
    );
    if with_partner {
        text.push_str(&format!(
            r#"  - issuer:
      url: {partner}
      audiences: [partner-kgate]
      certificateAuthority: |
{ca}
    claimMappings:
      username:
        expression: "'partner:' + claims.sub"
      groups:
        expression: "claims.groups.map(g, 'partner:' + g)"
      extra:
        - key: example.com/issuer
          valueExpression: "'partner'"
"#,
            partner = op.issuer_url("partner"),
        ));
    }
    text
}

fn indent(text: &str, spaces: usize) -> String {
    let pad = " ".repeat(spaces);
    text.lines()
        .map(|line| format!("{pad}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// kgate up with `--authentication-config` written from `config`.
fn kgate_with_config(config: &str, allow_unready: bool) -> (Kgate, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.keep().join("authentication-config.yaml");
    std::fs::write(&path, config).expect("write the authentication config");
    let kg = Kgate::up_with(Options {
        gateway_args: vec!["--authentication-config".into(), path.display().to_string()],
        allow_unready,
        ..Options::default()
    });
    (kg, path)
}

/// The user kgate sees for `token` (SelfSubjectReview), or the failed response's status.
fn whoami(kg: &Kgate, token: &str) -> Result<Value, u16> {
    let response = kg
        .request("POST", WHOAMI)
        .identity(Identity::Bearer(token.to_owned()))
        .json(WHOAMI_BODY)
        .send();
    if response.status != 201 && response.status != 200 {
        return Err(response.status);
    }
    let review: Value = serde_json::from_str(&response.body).expect("a SelfSubjectReview");
    Ok(review["status"]["userInfo"].clone())
}

fn groups(user: &Value) -> Vec<String> {
    user["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts 401 for `token`, a log line naming `reason`, and none of the token in the logs.
fn assert_refused(kg: &Kgate, token: &str, reason: &str) {
    assert_eq!(whoami(kg, token), Err(401), "expected 401 ({reason})");
    let logs = poll("the refusal in the log", Duration::from_secs(5), || {
        let logs = kg.logs();
        if logs.contains(reason) {
            Ok(logs)
        } else {
            Err(format!("no {reason:?} in the log"))
        }
    });
    let signature = token.rsplit('.').next().unwrap_or(token);
    assert!(
        !logs.contains(token) && !logs.contains(signature),
        "the token reached the log"
    );
}

/// kubectl with the kubeconfig `kgate kubeconfig oidc` wrote; `browser`: the stand-in for a
/// person's browser that answers the provider's login form as alice.
fn kubectl_oidc(
    kg: &Kgate,
    op: &OidcProvider,
    kubeconfig: &Path,
    browser: bool,
    args: &[&str],
) -> Run {
    let mut cmd = kg.kubectl_command(&kgate_e2e::default_kubectl(), kubeconfig);
    cmd.args(args)
        .env("KGATE_CACHE_DIR", kg.files().join("oidc-cache"));
    if browser {
        cmd.env("BROWSER", env!("CARGO_BIN_EXE_oidc-browser"))
            .env("OIDC_BROWSER_USER", "alice")
            .env("OIDC_BROWSER_PASSWORD", "alice-pw")
            .env("OIDC_BROWSER_CACERT", op.ca_pem_path());
    } else {
        cmd.env_remove("BROWSER");
    }
    run_bounded(cmd, None, Duration::from_secs(60))
}

#[test]
fn kubectl_logs_in_through_the_exec_plugin_and_rbac_binds_the_users_group() {
    let op = OidcProvider::start(ProviderSpec::new().issuer(corp()));
    let (kg, _) = kgate_with_config(&authentication_config(&op, false), false);
    kg.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "corp-devs-view",
        "--clusterrole=view",
        "--group=corp:dev",
    ]);
    let kubeconfig = kg.files().join("oidc.kubeconfig");
    let mut cmd = Command::new(kgate_e2e::kgate_bin());
    cmd.args(["kubeconfig", "oidc", "--issuer", &op.issuer_url("corp")])
        .args(["--client-id", "kgate", "--certificate-authority"])
        .arg(op.ca_pem_path())
        .arg("--data-dir")
        .arg(kg.data_dir())
        .arg("--output")
        .arg(&kubeconfig);
    run_bounded(cmd, None, Duration::from_secs(30)).ok();

    // kubectl without a terminal and no browser: nobody could log in; the plugin says so at once.
    kubectl_oidc(&kg, &op, &kubeconfig, false, &["get", "pods"]).fails_with("non-interactively");

    // With a browser, the plugin runs the authorization-code flow (PKCE, loopback redirect).
    let run = kubectl_oidc(
        &kg,
        &op,
        &kubeconfig,
        true,
        &["auth", "whoami", "-o", "json"],
    );
    let review: Value = serde_json::from_str(run.ok()).expect("a SelfSubjectReview");
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "alice@example.com");
    assert_eq!(groups(user), ["corp:dev", "system:authenticated"]);

    // The cached ID token serves the next calls (no browser); RBAC binds alice's group to view.
    kubectl_oidc(
        &kg,
        &op,
        &kubeconfig,
        false,
        &["get", "pods", "-n", "default"],
    )
    .ok();
    kubectl_oidc(&kg, &op, &kubeconfig, false, &["create", "configmap", "x"])
        .fails_with(r#"User "alice@example.com" cannot create resource "configmaps""#);
}

#[test]
fn two_issuers_each_with_their_own_mappings_and_audience() {
    let op = OidcProvider::start(ProviderSpec::new().issuer(corp()).issuer(partner()));
    let (kg, _) = kgate_with_config(&authentication_config(&op, true), false);

    let alice = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    let user = whoami(&kg, &alice.id_token).expect("alice is accepted");
    assert_eq!(user["username"], "alice@example.com");
    assert_eq!(groups(&user), ["corp:dev", "system:authenticated"]);

    let carol = op.login("partner", "partner-kgate", "carol", "carol-pw", SCOPES);
    let user = whoami(&kg, &carol.id_token).expect("carol is accepted");
    assert_eq!(user["username"], "partner:carol-sub");
    assert_eq!(
        groups(&user),
        ["partner:contractors", "system:authenticated"]
    );
    assert_eq!(user["extra"]["example.com/issuer"][0], "partner");

    // TokenReview (as the admin asks, e.g. for a webhook client) answers for OIDC tokens too.
    let review = kg
        .request("POST", "/apis/authentication.k8s.io/v1/tokenreviews")
        .json(format!(
            r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{{"token":"{}"}}}}"#,
            alice.id_token
        ))
        .send();
    assert_eq!(review.status, 201, "{review}");
    let review: Value = serde_json::from_str(&review.body).expect("a TokenReview");
    assert_eq!(review["status"]["authenticated"], true);
    assert_eq!(review["status"]["user"]["username"], "alice@example.com");

    // A partner token issued to kgate's corp audience is not accepted under partner's.
    let crossed = op.login("partner", "kgate", "carol", "carol-pw", SCOPES);
    assert_refused(&kg, &crossed.id_token, "audience");
}

#[test]
fn refusals_are_401_with_their_reason_logged_and_never_the_token() {
    let op = OidcProvider::start(
        ProviderSpec::new().issuer(corp()).issuer(
            IssuerSpec::new("rogue")
                .client(ClientSpec::public("kgate"))
                .user(UserSpec::new("alice", "alice-pw")),
        ),
    );
    let (kg, _) = kgate_with_config(&authentication_config(&op, false), false);

    let other = op.login("corp", "other-app", "alice", "alice-pw", SCOPES);
    assert_refused(&kg, &other.id_token, "audience");

    let short = op.login("corp", "short", "alice", "alice-pw", SCOPES);
    assert!(
        whoami(&kg, &short.id_token).is_ok(),
        "valid before it expires"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_refused(&kg, &short.id_token, "expired");

    let rogue = op.login("rogue", "kgate", "alice", "alice-pw", SCOPES);
    assert_refused(&kg, &rogue.id_token, "not trusted");

    let hs = op.login("corp", "hs", "alice", "alice-pw", SCOPES);
    assert_eq!(kgate_e2e::oidc::jwt_header(&hs.id_token)["alg"], "HS256");
    assert_refused(&kg, &hs.id_token, "HS256");

    let bob = op.login("corp", "kgate", "bob", "bob-pw", SCOPES);
    assert_refused(&kg, &bob.id_token, "the email address must be verified");

    let mallory = op.login("corp", "kgate", "mallory", "mallory-pw", SCOPES);
    assert_refused(&kg, &mallory.id_token, "system:");

    // And the accepted path still works after all that.
    let alice = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    assert!(whoami(&kg, &alice.id_token).is_ok());
}

#[test]
fn a_provider_key_rotation_is_followed_at_the_first_request() {
    let op = OidcProvider::start(ProviderSpec::new().issuer(corp()));
    let (kg, _) = kgate_with_config(&authentication_config(&op, false), false);
    let before = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    assert!(whoami(&kg, &before.id_token).is_ok());

    let new_kid = op.rotate("corp");
    let after = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    assert_eq!(kgate_e2e::oidc::jwt_header(&after.id_token)["kid"], new_kid);
    // One request: kgate does not know the kid, refetches the JWKS and accepts.
    assert!(
        whoami(&kg, &after.id_token).is_ok(),
        "a token of the new key is refused\n{}",
        kg.logs()
    );
    // Tokens of the old key keep working while the provider publishes it.
    assert!(whoami(&kg, &before.id_token).is_ok());
}

#[test]
fn a_provider_down_at_start_does_not_stop_kgate_and_readyz_names_only_the_check() {
    let mut op = OidcProvider::start(ProviderSpec::new().issuer(corp()));
    let config = authentication_config(&op, false);
    op.stop();
    let (kg, _) = kgate_with_config(&config, true);

    // Certificates work meanwhile; /readyz names the failing check to anyone, but neither the
    // issuer's URL nor why (kube-apiserver's "reason withheld"): those are in the log.
    kg.kubectl_ok(&["get", "namespaces"]);
    let issuer = op.issuer_url("corp");
    let ready = kg.request("GET", "/readyz").identity(Identity::None).send();
    assert_eq!(ready.status, 503, "{ready}");
    assert!(
        ready
            .body
            .contains("[-]oidc:jwt[0] failed: reason withheld\n"),
        "{}",
        ready.body
    );
    assert!(
        !ready.body.contains(&issuer) && !ready.body.contains("127.0.0.1"),
        "/readyz shows the issuer: {}",
        ready.body
    );
    let logs = kg.logs();
    assert!(
        logs.contains("oidc:jwt[0]") && logs.contains(&issuer),
        "the log does not say which issuer the check stands for"
    );

    op.restart();
    poll(
        "kgate ready once the provider is up",
        Duration::from_secs(30),
        || {
            let ready = kg.request("GET", "/readyz").identity(Identity::None).send();
            if ready.status == 200 {
                Ok(())
            } else {
                Err(ready.body)
            }
        },
    );
    let alice = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    assert!(whoami(&kg, &alice.id_token).is_ok());
}

#[test]
fn an_edited_configuration_applies_without_restart_and_a_bad_one_is_ignored() {
    let op = OidcProvider::start(ProviderSpec::new().issuer(corp()));
    let config = authentication_config(&op, false);
    let (kg, path) = kgate_with_config(&config, false);
    let alice = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    assert_eq!(
        groups(&whoami(&kg, &alice.id_token).expect("alice")),
        ["corp:dev", "system:authenticated"]
    );

    std::fs::write(
        &path,
        config.replace("prefix: \"corp:\"", "prefix: \"sso:\""),
    )
    .expect("edit");
    poll("the new group prefix", Duration::from_secs(10), || {
        let user = whoami(&kg, &alice.id_token).map_err(|s| s.to_string())?;
        let groups = groups(&user);
        if groups.contains(&"sso:dev".to_owned()) {
            Ok(())
        } else {
            Err(format!("{groups:?}"))
        }
    });

    std::fs::write(
        &path,
        config.replace("claim: email", "claim: email\n        expression: x"),
    )
    .expect("edit");
    poll("the warning", Duration::from_secs(10), || {
        if kg.logs().contains("keeping the last good configuration") {
            Ok(())
        } else {
            Err("no warning yet".to_owned())
        }
    });
    assert!(
        kg.logs().contains("jwt[0].claimMappings.username"),
        "the warning names the field"
    );
    let user = whoami(&kg, &alice.id_token).expect("the last good configuration serves");
    assert!(groups(&user).contains(&"sso:dev".to_owned()));
}

#[test]
fn the_legacy_oidc_flags_work_as_kube_apiservers() {
    let op = OidcProvider::start(ProviderSpec::new().issuer(corp()));
    let issuer = op.issuer_url("corp");
    let kg = Kgate::up_with(Options {
        gateway_args: vec![
            format!("--oidc-issuer-url={issuer}"),
            "--oidc-client-id=kgate".into(),
            format!("--oidc-ca-file={}", op.ca_pem_path().display()),
            "--oidc-groups-claim=groups".into(),
            "--oidc-groups-prefix=oidc:".into(),
        ],
        ..Options::default()
    });
    let alice = op.login("corp", "kgate", "alice", "alice-pw", SCOPES);
    let user = whoami(&kg, &alice.id_token).expect("alice is accepted");
    // The default user name claim is sub, prefixed with the issuer URL and '#'.
    assert_eq!(user["username"], format!("{issuer}#alice-sub"));
    assert_eq!(groups(&user), ["oidc:dev", "system:authenticated"]);
}

/// An issuer whose users name their own groups: eve says she is in `system:masters`, root's
/// email is `system:admin`, dave is an ordinary user.
fn self_service(name: &str) -> IssuerSpec {
    IssuerSpec::new(name)
        .client(ClientSpec::public("kgate"))
        .user(UserSpec::new("eve", "eve-pw").groups(&["dev", "system:masters"]))
        .user(UserSpec::new("root", "root-pw").email("system:admin", true))
        .user(UserSpec::new("dave", "dave-pw").groups(&["dev"]))
}

/// The issuers mapped as a careless configuration would: emails as user names and groups, both
/// without a prefix (the default groups prefix is empty).
fn unprefixed_config(op: &OidcProvider, issuers: &[&str]) -> String {
    let ca = indent(&op.ca_pem(), 8);
    let mut text =
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n"
            .to_owned();
    for name in issuers {
        text.push_str(&format!(
            r#"  - issuer:
      url: {url}
      audiences: [kgate]
      certificateAuthority: |
{ca}
    claimMappings:
      username:
        claim: email
        prefix: ""
      groups:
        claim: groups
        prefix: ""
"#,
            url = op.issuer_url(name),
        ));
    }
    text
}

/// A kubeconfig whose user is the bearer `token` (kubectl sends it as is).
fn bearer_kubeconfig(kg: &Kgate, name: &str, token: &str) -> PathBuf {
    use base64::Engine as _;
    let ca = kgate_e2e::kubeconfig_pem(&kg.admin_kubeconfig(), "certificate-authority-data");
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    kg.write_file(
        name,
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kgate\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: oidc\n  user:\n    token: {token}\ncontexts:\n- name: oidc\n  context: {{cluster: kgate, user: oidc}}\ncurrent-context: oidc\n",
            kg.url()
        ),
    )
}

/// kubectl as the holder of `token` is refused with 401; the log names the issuer and the
/// claim, and holds nothing of the token.
fn assert_kubectl_refused(kg: &Kgate, token: &str, issuer: &str, claim: &str) {
    let kubeconfig = bearer_kubeconfig(kg, "refused.kubeconfig", token);
    kg.kubectl_as(&kubeconfig, &["get", "secrets", "-A"])
        .fails_with("You must be logged in to the server");
    let want = format!("token of issuer {issuer}: ");
    let logs = poll("the refusal in the log", Duration::from_secs(5), || {
        let logs = kg.logs();
        let line = logs
            .lines()
            .find(|l| l.contains(&want) && l.contains(claim) && l.contains("\"system:\""));
        match line {
            Some(_) => Ok(logs.clone()),
            None => Err(format!("no refusal naming {issuer} and {claim} in the log")),
        }
    });
    let signature = token.rsplit('.').next().unwrap_or(token);
    assert!(
        !logs.contains(token) && !logs.contains(signature),
        "the token reached the log"
    );
}

#[test]
fn system_groups_and_names_from_id_tokens_are_refused_unless_the_issuer_is_trusted_with_them() {
    let op = OidcProvider::start(
        ProviderSpec::new()
            .issuer(self_service("idp"))
            .issuer(self_service("directory")),
    );
    let config = unprefixed_config(&op, &["idp", "directory"]);
    let idp = op.issuer_url("idp");

    // By default no issuer may assert a system: identity: eve's group and root's name are 401.
    let (kg, _) = kgate_with_config(&config, false);
    let eve = op.login("idp", "kgate", "eve", "eve-pw", SCOPES);
    assert_kubectl_refused(&kg, &eve.id_token, &idp, r#"claim "groups""#);
    let root = op.login("idp", "kgate", "root", "root-pw", SCOPES);
    assert_kubectl_refused(&kg, &root.id_token, &idp, r#"claim "email""#);
    // An ordinary user of the same issuer is accepted.
    let dave = op.login("idp", "kgate", "dave", "dave-pw", SCOPES);
    let user = whoami(&kg, &dave.id_token).expect("dave is accepted");
    assert_eq!(groups(&user), ["dev", "system:authenticated"]);
    drop(kg);

    // The operator trusts the directory (and only it) with such names.
    let path = tempfile::tempdir()
        .expect("a temporary folder")
        .keep()
        .join("authentication-config.yaml");
    std::fs::write(&path, &config).expect("write the authentication config");
    let directory = op.issuer_url("directory");
    let kg = Kgate::up_with(Options {
        gateway_args: vec![
            "--authentication-config".into(),
            path.display().to_string(),
            format!("--dangerous-oidc-system-identities={directory}"),
        ],
        ..Options::default()
    });
    let eve = op.login("directory", "kgate", "eve", "eve-pw", SCOPES);
    let kubeconfig = bearer_kubeconfig(&kg, "eve.kubeconfig", &eve.id_token);
    let run = kg.kubectl_as(&kubeconfig, &["auth", "whoami", "-o", "json"]);
    let review: Value = serde_json::from_str(run.ok()).expect("a SelfSubjectReview");
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "eve@example.com");
    assert_eq!(
        groups(user),
        ["dev", "system:masters", "system:authenticated"]
    );
    kg.kubectl_as(&kubeconfig, &["get", "secrets", "-A"]).ok();
    let root = op.login("directory", "kgate", "root", "root-pw", SCOPES);
    assert_eq!(
        whoami(&kg, &root.id_token).expect("root is accepted")["username"],
        "system:admin"
    );
    // The other issuer is still refused them.
    let eve = op.login("idp", "kgate", "eve", "eve-pw", SCOPES);
    assert_kubectl_refused(&kg, &eve.id_token, &idp, r#"claim "groups""#);
}
