#![allow(clippy::unwrap_used)]

use super::*;
use kgate_gateway::pki::Pki;
use std::fs;

struct Fixture {
    dir: tempfile::TempDir,
    pki: Pki,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(&dir.path().join("data")).unwrap();
    Fixture { dir, pki }
}

impl Fixture {
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// A kubeconfig as `kgate kubeconfig` writes it.
    fn inline(&self, server: &str) -> PathBuf {
        let text = crate::kubeconfig::Kubeconfig::new(
            server,
            self.pki.ca.cert_pem(),
            "admin",
            self.pki.admin.clone(),
        )
        .to_yaml()
        .unwrap();
        self.write("inline.kubeconfig", &text)
    }
}

fn error_of(result: Result<ClusterAccess, KubeconfigReadError>) -> KubeconfigReadError {
    match result {
        Ok(access) => panic!("accepted: {access:?}"),
        Err(e) => e,
    }
}

#[test]
fn reads_a_kubeconfig_kgate_writes() {
    let f = fixture();
    let path = f.inline("https://127.0.0.1:6443");
    let access = load(&[path], None).unwrap();
    assert_eq!(access.context, "kgate");
    assert_eq!(access.server.to_string(), "https://127.0.0.1:6443/");
    assert_eq!(access.server_name.to_str(), "127.0.0.1");
    assert!(access.token.is_none());
    assert!(access.tls.client_auth_cert_resolver.has_certs());
    assert_eq!(access.tls.alpn_protocols, [b"http/1.1".to_vec()]);
}

#[test]
fn file_variants_are_relative_to_the_kubeconfig() {
    let f = fixture();
    f.write("certs/ca.crt", f.pki.ca.cert_pem());
    f.write("certs/admin.crt", &f.pki.admin.cert_pem);
    f.write("certs/admin.key", f.pki.admin.key_pem.expose_secret());
    f.write("certs/token", "s3cr3t-token\n");
    let path = f.write(
        "conf/config",
        r#"
apiVersion: v1
kind: Config
current-context: other
clusters:
- name: c
  cluster:
    server: https://localhost:8443/prefix/
    certificate-authority: ../certs/ca.crt
    tls-server-name: kgate.internal
users:
- name: u
  user:
    client-certificate: ../certs/admin.crt
    client-key: ../certs/admin.key
    tokenFile: ../certs/token
- name: empty
  user: null
contexts:
- name: other
  context: {cluster: c, user: empty}
- name: mine
  context: {cluster: c, user: u, namespace: team}
"#,
    );
    let access = load(std::slice::from_ref(&path), Some("mine")).unwrap();
    assert_eq!(access.server.path(), "/prefix/");
    assert_eq!(access.server_name.to_str(), "kgate.internal");
    assert_eq!(
        access.token.as_ref().unwrap().expose_secret(),
        "s3cr3t-token"
    );
    assert!(access.tls.client_auth_cert_resolver.has_certs());
    // Debug never shows the token.
    assert!(!format!("{access:?}").contains("s3cr3t"));

    // The current context's user has no credential at all: TLS without a client certificate.
    let access = load(&[path], None).unwrap();
    assert!(access.token.is_none());
    assert!(!access.tls.client_auth_cert_resolver.has_certs());
}

#[test]
fn files_merge_first_wins() {
    let f = fixture();
    // The first file picks a context of its own over the second's current-context, kgate.
    let first = f.write(
        "first",
        "current-context: a\ncontexts: [{name: a, context: {cluster: kgate, user: admin}}]\n",
    );
    let second = f.inline("https://second:2");
    let access = load(&[first, second.clone()], None).unwrap();
    assert_eq!(access.context, "a");
    assert_eq!(access.server.host(), Some("second"));
    // A cluster of the same name in an earlier file wins, here one without a CA.
    let earlier = f.write(
        "earlier",
        "clusters: [{name: kgate, cluster: {server: \"https://earlier:3\"}}]\n",
    );
    let error = error_of(load(&[earlier, second], None));
    assert!(matches!(error, KubeconfigReadError::NoCa { .. }), "{error}");
}

#[test]
fn unusable_kubeconfigs_say_why_without_secrets() {
    let f = fixture();
    let ca = Fixture::b64(f.pki.ca.cert_pem());
    let case = |name: &str, cluster: &str, user: &str| {
        let text = format!(
            "current-context: c\ncontexts: [{{name: c, context: {{cluster: k, user: u}}}}]\n\
             clusters: [{{name: k, cluster: {{{cluster}}}}}]\nusers: [{{name: u, user: {{{user}}}}}]\n"
        );
        error_of(load(&[f.write(name, &text)], None)).to_string()
    };
    let server = "server: \"https://127.0.0.1:1\"";
    let with_ca = format!("{server}, certificate-authority-data: {ca}");
    assert_eq!(
        case(
            "insecure",
            &format!("{server}, insecure-skip-tls-verify: true"),
            ""
        ),
        r#"cluster "k": insecure-skip-tls-verify is not supported by kgate rbac"#
    );
    assert_eq!(
        case("noca", server, ""),
        r#"cluster "k" has no certificate-authority or certificate-authority-data"#
    );
    assert_eq!(
        case("http", "server: \"http://127.0.0.1:1\"", ""),
        r#"cluster "k": server "http://127.0.0.1:1" is not an https:// URL"#
    );
    assert_eq!(
        case("exec", &with_ca, "exec: {command: gcloud}"),
        r#"user "u": exec (a credential plugin) is not supported by kgate rbac"#
    );
    let key = Fixture::b64(f.pki.admin.key_pem.expose_secret());
    assert_eq!(
        case("half", &with_ca, &format!("client-key-data: {key}")),
        r#"user "u": client-certificate and client-key must be given together"#
    );
    let garbage = "c2VjcmV0LWtleS1ieXRlcw=!!";
    let text = case(
        "b64",
        &with_ca,
        &format!("client-certificate-data: {ca}, client-key-data: \"{garbage}\""),
    );
    assert_eq!(text, r#"user "u": client-key-data is not valid base64"#);
    let not_a_key = Fixture::b64("secret-key-bytes");
    let text = case(
        "pem",
        &with_ca,
        &format!("client-certificate-data: {ca}, client-key-data: {not_a_key}"),
    );
    assert_eq!(text, r#"user "u": client-key is not a PEM private key"#);
    assert!(!text.contains("secret-key-bytes"));

    let missing = f.write(
        "missing-user",
        "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: nobody}}]\n\
         clusters: [{name: k, cluster: {server: \"https://h:1\"}}]\n",
    );
    assert_eq!(
        error_of(load(&[missing], None)).to_string(),
        r#"the kubeconfig has no user "nobody""#
    );
    let no_current = f.write("no-current", "clusters: []\n");
    assert!(matches!(
        error_of(load(std::slice::from_ref(&no_current), None)),
        KubeconfigReadError::NoCurrentContext
    ));
    assert_eq!(
        error_of(load(&[no_current], Some("x"))).to_string(),
        r#"the kubeconfig has no context "x""#
    );
    let not_yaml = f.write("not-yaml", "clusters: {");
    assert!(matches!(
        error_of(load(&[not_yaml], None)),
        KubeconfigReadError::Parse { .. }
    ));
    assert!(matches!(
        error_of(load(&[f.dir.path().join("absent")], None)),
        KubeconfigReadError::Read { .. }
    ));
}

#[test]
fn an_explicit_path_is_used_as_given() {
    let path = Path::new("/some/where/config");
    assert_eq!(locate(Some(path)).unwrap(), [path.to_owned()]);
}
