//! The OpenID provider harness (src/oidc.rs) against the real provider (npm `oidc-provider`):
//! several issuers on one process, the authorization-code flow with PKCE, claims in the ID
//! token, refresh, key rotation, a refused password, per-client ID token lifetime, HS256, the
//! device flow and the `oidc-browser` stand-in. Needs node and tests/oidc-provider/node_modules
//! (scripts/test.sh); does not need the kgate binary.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use kgate_e2e::oidc::{
    jwt_claims, jwt_header, ClientSpec, IssuerSpec, OidcProvider, ProviderSpec, UserSpec,
};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

const HS_SECRET: &str = "an-hs256-secret-that-is-long-enough-0123456789";
const SCOPES: &[&str] = &["openid", "email", "profile", "groups", "offline_access"];

fn provider() -> OidcProvider {
    OidcProvider::start(
        ProviderSpec::new()
            .issuer(
                IssuerSpec::new("corp")
                    .client(ClientSpec::public("kubectl"))
                    .client(ClientSpec::public("short").id_token_ttl(2))
                    .client(ClientSpec::confidential("hs", HS_SECRET).hs256())
                    .user(
                        UserSpec::new("alice", "alice-pw")
                            .name("Alice Liddell")
                            .groups(&["dev", "ops"]),
                    )
                    .user(UserSpec::new("bob", "bob-pw").email("bob@corp.example", false)),
            )
            .issuer(
                IssuerSpec::new("partner")
                    .client(ClientSpec::public("kubectl"))
                    .user(UserSpec::new("carol", "carol-pw")),
            ),
    )
}

#[test]
fn discovery_serves_each_issuer_at_its_path_on_one_port() {
    let op = provider();
    for name in ["corp", "partner"] {
        let doc = op.discovery(name);
        assert_eq!(doc["issuer"], op.issuer_url(name).as_str());
        assert!(
            doc["authorization_endpoint"]
                .as_str()
                .unwrap()
                .starts_with(&op.issuer_url(name)),
            "{doc}"
        );
    }
    assert_ne!(
        op.jwks("corp")["keys"][0]["kid"],
        op.jwks("partner")["keys"][0]["kid"]
    );
    let health = op.get(&format!("https://127.0.0.1:{}/healthz", op.port()));
    assert_eq!(health.status, 200);
    assert!(op.ca_pem().contains("BEGIN CERTIFICATE"));
}

#[test]
fn login_gives_an_id_token_with_the_user_claims_and_refresh_works() {
    let op = provider();
    let tokens = op.login("corp", "kubectl", "alice", "alice-pw", SCOPES);
    let header = jwt_header(&tokens.id_token);
    assert_eq!(header["alg"], "RS256");
    let claims = jwt_claims(&tokens.id_token);
    assert_eq!(claims["iss"], op.issuer_url("corp").as_str());
    assert_eq!(claims["aud"], "kubectl");
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
    assert!(claims["nonce"].is_string(), "{claims}");
    assert!(tokens.expires_in > 0);
    let refresh = tokens
        .refresh_token
        .clone()
        .expect("a refresh token for a client with the refresh_token grant");

    // A second later, so that the new ID token's iat differs.
    kgate_e2e::sleep(Duration::from_millis(1100));
    let again = op.refresh("corp", "kubectl", &refresh);
    let first_iat = jwt_claims(&tokens.id_token)["iat"].as_u64().unwrap();
    let claims = jwt_claims(&again.id_token);
    assert!(claims["iat"].as_u64().unwrap() > first_iat, "{claims}");
    assert!(
        again.refresh_token.is_some() && again.refresh_token != tokens.refresh_token,
        "a public client's refresh token rotates"
    );
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));

    // Unverified email, no groups; another issuer's user is unknown here.
    let bob = jwt_claims(
        &op.login("corp", "kubectl", "bob", "bob-pw", SCOPES)
            .id_token,
    );
    assert_eq!(bob["email_verified"], false);
    assert_eq!(bob["groups"], serde_json::json!([]));
    let carol = op.login("partner", "kubectl", "carol", "carol-pw", SCOPES);
    assert_eq!(
        jwt_claims(&carol.id_token)["iss"],
        op.issuer_url("partner").as_str()
    );
    assert!(op
        .try_login("corp", "kubectl", "carol", "carol-pw", SCOPES)
        .is_err());
}

#[test]
fn a_wrong_password_is_refused() {
    let op = provider();
    let err = op
        .try_login("corp", "kubectl", "alice", "not-her-password", SCOPES)
        .expect_err("a wrong password must not sign in");
    assert!(err.contains("invalid login or password"), "{err}");
    assert!(op.logs().contains("login refused"), "{}", op.logs());
}

#[test]
fn rotation_publishes_both_keys_and_signs_with_the_new_one_then_drops_the_old() {
    let op = provider();
    let before = jwt_header(
        &op.login("corp", "kubectl", "alice", "alice-pw", SCOPES)
            .id_token,
    )["kid"]
        .clone();
    let old_refresh = op
        .login("corp", "kubectl", "alice", "alice-pw", SCOPES)
        .refresh_token
        .unwrap();
    let kid = op.rotate("corp");
    assert_ne!(before, kid.as_str());
    let keys = op.jwks("corp")["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(keys[0]["kid"], kid.as_str());
    assert_eq!(keys[1]["kid"], before);

    let tokens = op.login("corp", "kubectl", "alice", "alice-pw", SCOPES);
    assert_eq!(jwt_header(&tokens.id_token)["kid"], kid.as_str());
    // Grants made before the rotation still refresh, signed with the new key.
    let refreshed = op.refresh("corp", "kubectl", &old_refresh);
    assert_eq!(jwt_header(&refreshed.id_token)["kid"], kid.as_str());
    // The other issuer is untouched.
    assert_eq!(op.jwks("partner")["keys"].as_array().unwrap().len(), 1);

    assert_eq!(op.drop_old_keys("corp"), kid);
    let keys = op.jwks("corp")["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], kid.as_str());
}

#[test]
fn per_client_id_token_ttl_and_hs256() {
    let op = provider();
    let short = jwt_claims(
        &op.login("corp", "short", "alice", "alice-pw", SCOPES)
            .id_token,
    );
    assert_eq!(
        short["exp"].as_u64().unwrap() - short["iat"].as_u64().unwrap(),
        2
    );
    let normal = jwt_claims(
        &op.login("corp", "kubectl", "alice", "alice-pw", SCOPES)
            .id_token,
    );
    assert_eq!(
        normal["exp"].as_u64().unwrap() - normal["iat"].as_u64().unwrap(),
        600
    );

    let hs = op.login("corp", "hs", "alice", "alice-pw", SCOPES);
    assert_eq!(jwt_header(&hs.id_token)["alg"], "HS256");
    assert_eq!(jwt_claims(&hs.id_token)["aud"], "hs");
    // Signed with the client secret.
    let (signed, signature) = hs.id_token.rsplit_once('.').unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HS_SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref()),
        signature
    );
}

#[test]
fn restart_keeps_the_port_the_keys_and_the_refresh_tokens() {
    let mut op = provider();
    let tokens = op.login("corp", "kubectl", "alice", "alice-pw", SCOPES);
    let kid = jwt_header(&tokens.id_token)["kid"].clone();
    let issuer = op.issuer_url("corp");
    op.stop();
    assert!(!op.is_running());
    op.restart();
    assert_eq!(op.issuer_url("corp"), issuer);
    assert_eq!(op.discovery("corp")["issuer"], issuer.as_str());
    assert_eq!(op.jwks("corp")["keys"][0]["kid"], kid);
    let again = op.refresh("corp", "kubectl", tokens.refresh_token.as_deref().unwrap());
    assert_eq!(jwt_header(&again.id_token)["kid"], kid);
}

/// One HTTP request on a loopback listener, answered 200; returns its request line.
fn serve_one(listener: TcpListener) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
        }
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            .unwrap();
        request_line
    })
}

#[test]
fn answer_login_does_not_fetch_the_redirect_and_the_browser_delivers_it() {
    let op = provider();
    // answer_login alone: the redirect is returned, not fetched.
    let request = op.authorization_request("corp", "kubectl", SCOPES);
    let redirect = op.answer_login(&request.url, "alice", "alice-pw");
    assert!(
        redirect.starts_with("http://127.0.0.1/callback?"),
        "{redirect}"
    );
    assert!(redirect.contains("code="));

    // The oidc-browser binary, as kgate login would run it: the code reaches the listener.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = serve_one(listener);
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let request = op.authorization_request_to("corp", "kubectl", &redirect_uri, SCOPES);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oidc-browser"));
    cmd.arg(&request.url)
        .env("OIDC_BROWSER_USER", "alice")
        .env("OIDC_BROWSER_PASSWORD", "alice-pw")
        .env("OIDC_BROWSER_CACERT", op.ca_pem_path());
    let run = kgate_e2e::run_bounded(cmd, None, Duration::from_secs(60));
    run.ok();
    let line = server.join().unwrap();
    assert!(line.starts_with("GET /callback?code="), "{line}");
    assert!(line.contains(&format!("state={}", request.state)), "{line}");
    let code = line
        .split(['?', '&', ' '])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap();
    let tokens = op.exchange_code(
        "corp",
        "kubectl",
        &redirect_uri,
        code,
        &request.pkce.verifier,
    );
    assert_eq!(jwt_claims(&tokens.id_token)["sub"], "alice-sub");

    // A wrong password: the browser fails with a clear message.
    let request = op.authorization_request_to("corp", "kubectl", &redirect_uri, SCOPES);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oidc-browser"));
    cmd.arg(&request.url)
        .env("OIDC_BROWSER_USER", "alice")
        .env("OIDC_BROWSER_PASSWORD", "wrong")
        .env("OIDC_BROWSER_CACERT", op.ca_pem_path());
    kgate_e2e::run_bounded(cmd, None, Duration::from_secs(60))
        .fails_with("invalid login or password");
}

#[test]
fn device_flow_through_the_browser() {
    let op = provider();
    let device = op.device_authorization("corp", "kubectl", SCOPES);
    let device_code = device["device_code"].as_str().unwrap().to_owned();
    // Before anyone confirms: authorization_pending.
    let err = op
        .token_request(
            "corp",
            "kubectl",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device_code),
            ],
        )
        .expect_err("pending");
    assert!(err.contains("authorization_pending"), "{err}");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oidc-browser"));
    cmd.arg(device["verification_uri_complete"].as_str().unwrap())
        .env("OIDC_BROWSER_USER", "alice")
        .env("OIDC_BROWSER_PASSWORD", "alice-pw")
        .env("OIDC_BROWSER_CACERT", op.ca_pem_path());
    let run = kgate_e2e::run_bounded(cmd, None, Duration::from_secs(60));
    assert!(run.success(), "{run}\n{}", op.logs());

    let tokens = op
        .token_request(
            "corp",
            "kubectl",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device_code),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", op.logs()));
    let claims = jwt_claims(&tokens.id_token);
    assert_eq!(claims["sub"], "alice-sub");
    assert_eq!(claims["groups"], serde_json::json!(["dev", "ops"]));
}
