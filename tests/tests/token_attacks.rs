//! Forged and broken bearer tokens against a running kgate: each is 401 Unauthorized, and
//! nothing of any token reaches kgate's logs. The forgeries start from a real token minted by
//! `kubectl create token`, so only the attacked part differs.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use kgate_e2e::{Identity, Kgate};
use serde_json::{json, Value};

/// A JWT taken apart: header, claims, signature (decoded).
struct Jwt {
    header: Value,
    claims: Value,
    signature: Vec<u8>,
}

impl Jwt {
    fn parse(token: &str) -> Jwt {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "not a JWT");
        let part = |i: usize| B64.decode(parts[i]).expect("base64url");
        Jwt {
            header: serde_json::from_slice(&part(0)).expect("header JSON"),
            claims: serde_json::from_slice(&part(1)).expect("claims JSON"),
            signature: part(2),
        }
    }

    fn signing_input(&self) -> String {
        format!(
            "{}.{}",
            B64.encode(self.header.to_string()),
            B64.encode(self.claims.to_string())
        )
    }

    /// Re-encoded with the original signature (valid only if nothing changed).
    fn encode(&self) -> String {
        format!("{}.{}", self.signing_input(), B64.encode(&self.signature))
    }

    fn encode_with_signature(&self, signature: &[u8]) -> String {
        format!("{}.{}", self.signing_input(), B64.encode(signature))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, data).as_ref().to_vec()
}

#[test]
fn forged_and_broken_tokens_are_401_and_never_logged() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "ci"]);
    kg.kubectl_ok(&["create", "namespace", "prod"]);
    kg.kubectl_ok(&["create", "serviceaccount", "jenkins", "-n", "ci"]);
    kg.kubectl_ok(&["create", "serviceaccount", "deployer", "-n", "prod"]);
    kg.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "prod-deployer-admin",
        "--clusterrole=cluster-admin",
        "--serviceaccount=prod:deployer",
    ]);
    let token = kg
        .kubectl_ok(&["create", "token", "jenkins", "-n", "ci"])
        .trim()
        .to_owned();
    let good = Jwt::parse(&token);
    let jwks = kg.request("GET", "/openid/v1/jwks").send();
    assert_eq!(jwks.status, 200, "{jwks}");

    let mut attacks: Vec<(&str, String)> = Vec::new();
    {
        let mut t = Jwt::parse(&token);
        t.header = json!({"alg": "none", "typ": "JWT"});
        attacks.push(("alg none, no signature", format!("{}.", t.signing_input())));
        attacks.push(("alg none, old signature", t.encode()));
    }
    {
        let mut t = Jwt::parse(&token);
        t.header["alg"] = json!("HS256");
        // The classic confusion: HMAC keyed with the verifier's public key material.
        let signature = hmac_sha256(jwks.body.as_bytes(), t.signing_input().as_bytes());
        attacks.push((
            "HS256 keyed with the JWKS",
            t.encode_with_signature(&signature),
        ));
        let n = serde_json::from_str::<Value>(&jwks.body).expect("jwks")["keys"][0]["n"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let signature = hmac_sha256(n.as_bytes(), t.signing_input().as_bytes());
        attacks.push((
            "HS256 keyed with the modulus",
            t.encode_with_signature(&signature),
        ));
    }
    {
        let mut t = Jwt::parse(&token);
        t.header["kid"] = json!("not-a-key-we-have");
        attacks.push(("unknown kid", t.encode()));
    }
    {
        let mut t = Jwt::parse(&token);
        t.claims["exp"] = json!(now() - 3600);
        attacks.push(("expired (re-dated, old signature)", t.encode()));
        let mut t = Jwt::parse(&token);
        t.claims["nbf"] = json!(now() + 3600);
        attacks.push(("nbf in the future", t.encode()));
        let mut t = Jwt::parse(&token);
        t.claims["aud"] = json!(["https://elsewhere.example"]);
        attacks.push(("wrong audience", t.encode()));
        let mut t = Jwt::parse(&token);
        t.claims["iss"] = json!("https://evil.example");
        attacks.push(("wrong issuer", t.encode()));
    }
    {
        // Tampered payload: jenkins claims to be prod's deployer (a cluster-admin).
        let mut t = Jwt::parse(&token);
        t.claims["sub"] = json!("system:serviceaccount:prod:deployer");
        attacks.push(("forged sub, replayed signature", t.encode()));
        let mut t = Jwt::parse(&token);
        t.claims["kubernetes.io"]["namespace"] = json!("prod");
        t.claims["kubernetes.io"]["serviceaccount"]["name"] = json!("deployer");
        t.claims["sub"] = json!("system:serviceaccount:prod:deployer");
        attacks.push(("forged namespace and sub", t.encode()));
    }
    {
        let mut sig = good.signature.clone();
        sig[0] ^= 1;
        attacks.push((
            "one flipped signature bit",
            good.encode_with_signature(&sig),
        ));
    }
    attacks.push((
        "over 16 KiB",
        format!(
            "{}.{}.{}",
            "a".repeat(6000),
            "b".repeat(6000),
            "c".repeat(6000)
        ),
    ));
    attacks.push(("garbage", "this-is-not-a-token".to_owned()));
    attacks.push(("garbage with dots", "a.b.c".to_owned()));

    for (what, forged) in &attacks {
        let resp = kg
            .request("GET", "/api/v1/namespaces/ci/pods")
            .identity(Identity::Bearer(forged.clone()))
            .send();
        assert_eq!(resp.status, 401, "{what}: {resp}");
        let status = resp.assert_status(401);
        assert_eq!(status["reason"], "Unauthorized", "{what}");
    }
    // The genuine token still works (the forgeries poisoned nothing).
    let genuine = kg
        .request("GET", "/api/v1/namespaces/ci/serviceaccounts")
        .identity(Identity::Bearer(token.clone()))
        .send();
    assert_eq!(genuine.status, 403, "jenkins has no RBAC here: {genuine}");

    let logs = kg.output();
    for (what, forged) in &attacks {
        if forged.len() < 24 {
            continue; // too short to tell apart from ordinary words
        }
        let tail = &forged[forged.len() - 24..];
        assert!(!logs.contains(tail), "{what}: the token reached the logs");
    }
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        !logs.contains(signature),
        "the genuine token reached the logs"
    );
}
