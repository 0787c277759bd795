//! An independent verifier checks kgate's ServiceAccount tokens with nothing but the issuer's
//! discovery document and its JWKS: PyJWT (Debian's python3-jwt, installed by the test command)
//! in a separate process, before and after `kgate keys rotate`.

use kgate_e2e::{flows, poll, run_bounded, Kgate, CLIENT_TIMEOUT};
use std::process::Command;

/// Fetches the discovery document with `bearer`, follows its `jwks_uri`, and verifies `token`
/// (signature by kid, issuer from the document, audience) with PyJWT. Prints the claims' `sub`.
const VERIFIER: &str = r#"
import json, ssl, sys, urllib.request
import jwt

base, ca, bearer, token, audience = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)

def get(url):
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + bearer})
    with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
        return json.load(resp)

config = get(base + "/.well-known/openid-configuration")
jwks = jwt.PyJWKSet.from_dict(get(config["jwks_uri"]))
kid = jwt.get_unverified_header(token)["kid"]
key = next(k for k in jwks.keys if k.key_id == kid)
claims = jwt.decode(
    token,
    key.key,
    algorithms=config["id_token_signing_alg_values_supported"],
    audience=audience,
    issuer=config["issuer"],
)
print(claims["sub"])
"#;

fn verify(kg: &Kgate, bearer: &str, token: &str, audience: &str) -> String {
    let ca = kg.files().join("verifier-ca.crt");
    std::fs::write(
        &ca,
        kgate_e2e::kubeconfig_pem(&kg.admin_kubeconfig(), "certificate-authority-data"),
    )
    .expect("write the CA");
    // Debian's interpreter: python3-jwt installs into its dist-packages.
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("-c")
        .arg(VERIFIER)
        .arg(kg.url())
        .arg(&ca)
        .arg(bearer)
        .arg(token)
        .arg(audience);
    run_bounded(cmd, None, CLIENT_TIMEOUT)
        .ok()
        .trim()
        .to_owned()
}

fn jwks_kids(kg: &Kgate, bearer: &str) -> Vec<String> {
    let resp = kg
        .request("GET", "/openid/v1/jwks")
        .identity(kgate_e2e::Identity::Bearer(bearer.to_owned()))
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    let jwks: serde_json::Value = serde_json::from_str(&resp.body).expect("JWKS JSON");
    jwks["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pyjwt_verifies_tokens_from_discovery_before_and_after_rotation() {
    let kg = Kgate::up();
    kg.kubectl_ok(&["create", "namespace", "ci"]);
    kg.kubectl_ok(&["create", "serviceaccount", "jenkins", "-n", "ci"]);
    let audience = "https://verifier.example";
    let before = kg
        .kubectl_ok(&[
            "create",
            "token",
            "jenkins",
            "-n",
            "ci",
            "--audience",
            audience,
        ])
        .trim()
        .to_owned();
    // The verifier authenticates its fetches with an API-audience token (a ServiceAccount may
    // read the discovery documents, as in Kubernetes).
    let bearer = kg
        .kubectl_ok(&["create", "token", "jenkins", "-n", "ci"])
        .trim()
        .to_owned();
    assert_eq!(
        verify(&kg, &bearer, &before, audience),
        "system:serviceaccount:ci:jenkins"
    );
    let first_kids = jwks_kids(&kg, &bearer);
    assert_eq!(first_kids.len(), 1, "{first_kids:?}");

    let mut rotate = Command::new(kgate_e2e::kgate_bin());
    rotate
        .arg("keys")
        .arg("rotate")
        .arg("--data-dir")
        .arg(kg.data_dir());
    run_bounded(rotate, None, CLIENT_TIMEOUT).ok();
    poll(
        "the running kgate publishes the new key",
        flows::RBAC_PROPAGATION_BOUND,
        || {
            let kids = jwks_kids(&kg, &bearer);
            if kids.len() == 2 {
                Ok(kids)
            } else {
                Err(format!("{kids:?}"))
            }
        },
    );
    let after = kg
        .kubectl_ok(&[
            "create",
            "token",
            "jenkins",
            "-n",
            "ci",
            "--audience",
            audience,
        ])
        .trim()
        .to_owned();
    let kid = |token: &str| {
        let header = token.split('.').next().unwrap_or_default();
        let header =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .expect("base64url header");
        serde_json::from_slice::<serde_json::Value>(&header).expect("header")["kid"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_ne!(kid(&before), kid(&after), "the new token uses the new key");
    assert!(first_kids.contains(&kid(&before)));
    // Both verify independently, and kgate still accepts the one signed before the rotation.
    assert_eq!(
        verify(&kg, &bearer, &after, audience),
        "system:serviceaccount:ci:jenkins"
    );
    assert_eq!(
        verify(&kg, &bearer, &before, audience),
        "system:serviceaccount:ci:jenkins"
    );
    let still = kg
        .request("GET", "/api")
        .identity(kgate_e2e::Identity::Bearer(bearer.clone()))
        .send();
    assert_eq!(still.status, 200, "{still}");
}
