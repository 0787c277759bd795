//! A real OpenID provider for the end-to-end tests: the npm package `oidc-provider`, run by
//! `tests/oidc-provider/server.js` in one node process that serves several issuers over HTTPS on
//! one loopback port (`https://127.0.0.1:PORT/<name>`), each with its own RSA signing keys,
//! users and clients.
//!
//! What it owns: the test-time CA and server certificate (rcgen), the provider's config file,
//! starting/stopping/restarting node (killed on drop), and a person's part of the flows, driven
//! through `curl` with a cookie jar: the authorization-code flow with PKCE ([`OidcProvider::login`]),
//! answering the login page for an authorization URL made by someone else
//! ([`OidcProvider::answer_login`], also used by the `oidc-browser` binary), refresh, and the
//! provider's admin endpoints (key rotation).
//!
//! Node and `tests/oidc-provider/node_modules` must be there (`scripts/test.sh` installs them);
//! a missing one fails the test loudly, it is never skipped.
//!
//! ```no_run
//! use kgate_e2e::oidc::{ClientSpec, IssuerSpec, OidcProvider, ProviderSpec, UserSpec};
//!
//! let op = OidcProvider::start(
//!     ProviderSpec::new().issuer(
//!         IssuerSpec::new("corp")
//!             .client(ClientSpec::public("kubectl"))
//!             .client(ClientSpec::confidential("hs", "a-secret-of-at-least-32-characters!!").hs256())
//!             .client(ClientSpec::public("short").id_token_ttl(2))
//!             .user(UserSpec::new("alice", "alice-pw").groups(&["dev", "ops"])),
//!     ),
//! );
//! let issuer = op.issuer_url("corp"); // https://127.0.0.1:PORT/corp
//! let ca = op.ca_pem_path(); // the CA that signed the provider's certificate
//! let tokens = op.login("corp", "kubectl", "alice", "alice-pw", &["openid", "email", "groups"]);
//! let claims = kgate_e2e::oidc::jwt_claims(&tokens.id_token);
//! assert_eq!(claims["email"], "alice@example.com");
//! let again = op.refresh("corp", "kubectl", tokens.refresh_token.as_deref().unwrap());
//! let new_kid = op.rotate("corp"); // old key still published until op.drop_old_keys("corp")
//! // `kgate login` made the authorization URL and listens on the loopback redirect:
//! # let authorization_url = String::new();
//! let redirect = op.answer_login(&authorization_url, "alice", "alice-pw");
//! op.deliver(&redirect).ok();
//! # let _ = (issuer, ca, again, new_kid);
//! ```

use crate::{run_bounded, workspace_root, Run, CLIENT_TIMEOUT};
use base64::Engine as _;
use serde_json::{json, Value};
use std::fmt;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long node may take to print its listening line.
pub const OIDC_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The loopback redirect URI of [`ClientSpec::public`] and [`ClientSpec::confidential`]
/// (native clients: any port is accepted).
pub const LOOPBACK_REDIRECT: &str = "http://127.0.0.1/callback";

const ALL_GRANTS: [&str; 3] = [
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
];

// ---------------------------------------------------------------------------------------------
// Specs.

/// One OAuth client of an issuer.
#[derive(Clone)]
pub struct ClientSpec {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uris: Vec<String>,
    /// `none` (public, PKCE required), `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    /// `native` allows loopback redirects on any port.
    pub application_type: String,
    pub grant_types: Vec<String>,
    /// `RS256` when `None`; `HS256` signs ID tokens with the client secret.
    pub id_token_signed_response_alg: Option<String>,
    /// Overrides the issuer's ID token lifetime for this client.
    pub id_token_ttl_seconds: Option<u64>,
}

impl fmt::Debug for ClientSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSpec")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uris", &self.redirect_uris)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("application_type", &self.application_type)
            .field("grant_types", &self.grant_types)
            .field(
                "id_token_signed_response_alg",
                &self.id_token_signed_response_alg,
            )
            .field("id_token_ttl_seconds", &self.id_token_ttl_seconds)
            .finish()
    }
}

impl ClientSpec {
    /// A public native client (no secret, PKCE), redirect [`LOOPBACK_REDIRECT`] on any port,
    /// grants: authorization code, refresh token, device code.
    pub fn public(client_id: &str) -> ClientSpec {
        ClientSpec {
            client_id: client_id.to_owned(),
            client_secret: None,
            redirect_uris: vec![LOOPBACK_REDIRECT.to_owned()],
            token_endpoint_auth_method: "none".to_owned(),
            application_type: "native".to_owned(),
            grant_types: ALL_GRANTS.iter().map(|g| (*g).to_owned()).collect(),
            id_token_signed_response_alg: None,
            id_token_ttl_seconds: None,
        }
    }

    /// A confidential native client (`client_secret_basic`), otherwise like [`Self::public`].
    pub fn confidential(client_id: &str, client_secret: &str) -> ClientSpec {
        ClientSpec {
            client_secret: Some(client_secret.to_owned()),
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
            ..ClientSpec::public(client_id)
        }
    }

    /// ID tokens signed with HS256 (the client secret); needs a confidential client.
    pub fn hs256(mut self) -> Self {
        self.id_token_signed_response_alg = Some("HS256".to_owned());
        self
    }

    /// This client's ID tokens live `seconds` (exp - iat).
    pub fn id_token_ttl(mut self, seconds: u64) -> Self {
        self.id_token_ttl_seconds = Some(seconds);
        self
    }

    /// Replaces the redirect URIs.
    pub fn redirect_uris(mut self, uris: &[&str]) -> Self {
        self.redirect_uris = uris.iter().map(|u| (*u).to_owned()).collect();
        self
    }

    fn to_json(&self) -> Value {
        let mut c = json!({
            "client_id": self.client_id,
            "redirect_uris": self.redirect_uris,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "application_type": self.application_type,
            "grant_types": self.grant_types,
            "response_types": ["code"],
        });
        if let Some(secret) = &self.client_secret {
            c["client_secret"] = json!(secret);
        }
        if let Some(alg) = &self.id_token_signed_response_alg {
            c["id_token_signed_response_alg"] = json!(alg);
        }
        if let Some(ttl) = self.id_token_ttl_seconds {
            c["idTokenTtlSeconds"] = json!(ttl);
        }
        c
    }
}

/// One user (account) of an issuer.
#[derive(Clone)]
pub struct UserSpec {
    pub sub: String,
    pub login: String,
    pub password: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub groups: Vec<String>,
}

impl fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSpec")
            .field("sub", &self.sub)
            .field("login", &self.login)
            .field("email", &self.email)
            .field("email_verified", &self.email_verified)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl UserSpec {
    /// sub `<login>-sub`, email `<login>@example.com` (verified), name = login, no groups.
    pub fn new(login: &str, password: &str) -> UserSpec {
        UserSpec {
            sub: format!("{login}-sub"),
            login: login.to_owned(),
            password: password.to_owned(),
            email: format!("{login}@example.com"),
            email_verified: true,
            name: login.to_owned(),
            groups: Vec::new(),
        }
    }

    pub fn with_sub(mut self, sub: &str) -> Self {
        self.sub = sub.to_owned();
        self
    }

    pub fn email(mut self, email: &str, verified: bool) -> Self {
        self.email = email.to_owned();
        self.email_verified = verified;
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    pub fn groups(mut self, groups: &[&str]) -> Self {
        self.groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "sub": self.sub,
            "login": self.login,
            "password": self.password,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "groups": self.groups,
        })
    }
}

/// One issuer, served at `https://127.0.0.1:PORT/<name>`.
#[derive(Debug, Clone)]
pub struct IssuerSpec {
    /// Letters, digits, `-` and `_`.
    pub name: String,
    pub clients: Vec<ClientSpec>,
    pub users: Vec<UserSpec>,
    /// 600 by default.
    pub id_token_ttl_seconds: u64,
}

impl IssuerSpec {
    pub fn new(name: &str) -> IssuerSpec {
        IssuerSpec {
            name: name.to_owned(),
            clients: Vec::new(),
            users: Vec::new(),
            id_token_ttl_seconds: 600,
        }
    }

    pub fn client(mut self, client: ClientSpec) -> Self {
        self.clients.push(client);
        self
    }

    pub fn user(mut self, user: UserSpec) -> Self {
        self.users.push(user);
        self
    }

    pub fn id_token_ttl(mut self, seconds: u64) -> Self {
        self.id_token_ttl_seconds = seconds;
        self
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "clients": self.clients.iter().map(ClientSpec::to_json).collect::<Vec<_>>(),
            "users": self.users.iter().map(UserSpec::to_json).collect::<Vec<_>>(),
            "idTokenTtlSeconds": self.id_token_ttl_seconds,
        })
    }
}

/// Every issuer of one provider process.
#[derive(Debug, Clone, Default)]
pub struct ProviderSpec {
    pub issuers: Vec<IssuerSpec>,
}

impl ProviderSpec {
    pub fn new() -> ProviderSpec {
        ProviderSpec::default()
    }

    pub fn issuer(mut self, issuer: IssuerSpec) -> Self {
        self.issuers.push(issuer);
        self
    }
}

impl From<IssuerSpec> for ProviderSpec {
    fn from(issuer: IssuerSpec) -> Self {
        ProviderSpec::new().issuer(issuer)
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens.

/// A token endpoint response. Debug shows no token.
#[derive(Clone)]
pub struct Tokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
    pub access_token: String,
    pub expires_in: u64,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("id_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("access_token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

impl Tokens {
    fn from_response(body: &Value) -> Result<Tokens, String> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Tokens {
            id_token: text("id_token").ok_or("the token response has no id_token")?,
            refresh_token: text("refresh_token"),
            access_token: text("access_token").ok_or("the token response has no access_token")?,
            expires_in: body.get("expires_in").and_then(Value::as_u64).unwrap_or(0),
        })
    }
}

fn jwt_part(token: &str, index: usize) -> Value {
    let part = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("not a JWT (no part {index})"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("JWT part {index} is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part {index} is not JSON: {e}"))
}

/// The decoded (unverified) header of a JWT.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// The decoded (unverified) claims of a JWT.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

// ---------------------------------------------------------------------------------------------
// PKCE and small encoders.

/// A PKCE pair: a 43-character verifier and its S256 challenge.
#[derive(Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_token();
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

/// 32 random bytes, base64url.
pub fn random_token() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system RNG failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `application/x-www-form-urlencoded` component encoding.
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// HTTP through curl.

/// One HTTP response (headers lower-cased).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request through curl: `body` (form-encoded) is sent on stdin so that secrets never show
/// in a command line; `headers` go through a file for the same reason.
fn curl(
    ca: Option<&Path>,
    jar: Option<&Path>,
    url: &str,
    form: Option<&str>,
    headers: &[String],
) -> Result<HttpResponse, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "30"]);
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    if let Some(jar) = jar {
        cmd.arg("-b").arg(jar).arg("-c").arg(jar);
    }
    let header_file = if headers.is_empty() {
        None
    } else {
        let file = tempfile::NamedTempFile::new().map_err(|e| format!("temp file: {e}"))?;
        std::fs::write(file.path(), headers.join("\n") + "\n")
            .map_err(|e| format!("temp file: {e}"))?;
        cmd.arg("-H").arg(format!("@{}", file.path().display()));
        Some(file)
    };
    if form.is_some() {
        cmd.args([
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data-binary",
            "@-",
        ]);
    }
    cmd.arg("--").arg(url);
    let run = run_bounded(cmd, form.map(str::as_bytes), CLIENT_TIMEOUT);
    drop(header_file);
    if !run.success() {
        return Err(format!(
            "curl {url} failed ({}): {}",
            run.status,
            run.stderr.trim()
        ));
    }
    parse_response(&run.stdout).ok_or_else(|| format!("curl {url}: cannot parse the response"))
}

fn parse_response(text: &str) -> Option<HttpResponse> {
    let mut rest = text;
    loop {
        let (head, body) = rest
            .split_once("\r\n\r\n")
            .or_else(|| rest.split_once("\n\n"))
            .unwrap_or((rest, ""));
        let mut lines = head.lines();
        let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        return Some(HttpResponse {
            status,
            headers,
            body: body.to_owned(),
        });
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after..].find(['/', '?', '#']) {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// Resolves a Location or form action against the URL it came from.
fn resolve(base: &str, reference: &str) -> String {
    if reference.starts_with("http://") || reference.starts_with("https://") {
        reference.to_owned()
    } else if reference.starts_with('/') {
        format!("{}{reference}", origin(base))
    } else if reference.is_empty() {
        base.to_owned()
    } else {
        let path = base.split(['?', '#']).next().unwrap_or(base);
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(path.len())];
        format!("{dir}{reference}")
    }
}

// --- HTML forms (the provider's own pages: simple, double-quoted attributes) ---

fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let start = from + i;
        // A whole attribute name, not the end of another (`data-name=`).
        let before = tag[..start].chars().last();
        if before.is_some_and(|c| c.is_whitespace()) {
            let value_start = start + needle.len();
            let end = tag[value_start..].find('"')? + value_start;
            return Some(html_unescape(&tag[value_start..end]));
        }
        from = start + needle.len();
    }
    None
}

/// The first form of a page: its action and its inputs (name, value) in order.
#[derive(Debug, Clone)]
struct Form {
    action: String,
    inputs: Vec<(String, String)>,
}

impl Form {
    fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let tag_end = html[start..].find('>')? + start;
        let action = attr(&html[start..tag_end], "action").unwrap_or_default();
        let end = html[tag_end..]
            .find("</form>")
            .map(|i| i + tag_end)
            .unwrap_or(html.len());
        let body = &html[tag_end..end];
        let mut inputs = Vec::new();
        let mut rest = body;
        while let Some(i) = rest.find("<input") {
            let tag_len = rest[i..].find('>').unwrap_or(rest.len() - i);
            let tag = &rest[i..i + tag_len];
            if let Some(name) = attr(tag, "name") {
                inputs.push((name, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[i + tag_len..];
        }
        Some(Form { action, inputs })
    }

    fn has(&self, name: &str) -> bool {
        self.inputs.iter().any(|(n, _)| n == name)
    }

    fn set(&mut self, name: &str, value: &str) {
        for (n, v) in &mut self.inputs {
            if n == name {
                *v = value.to_owned();
            }
        }
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn encoded(&self) -> String {
        let fields: Vec<(&str, &str)> = self
            .inputs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        form_body(&fields)
    }
}

// ---------------------------------------------------------------------------------------------
// A person at a browser.

/// Where a person's walk through the provider's pages ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserOutcome {
    /// A redirect away from the provider (the client's redirect URI with `code` and `state`),
    /// not fetched.
    Redirect(String),
    /// A page of the provider with no form (e.g. the device flow's "you are signed in" page).
    Page { url: String, body: String },
}

/// Plays the person: opens `start_url` (an authorization URL or a device verification URL) with
/// a fresh cookie jar, trusting `ca`, follows the provider's redirects, fills the device user
/// code form (`user_code` if the page has none), confirms, fills the login form with
/// `login`/`password`, and stops at the first redirect that leaves the provider (not fetched)
/// or at a page without a form. A refused login is an `Err` saying so.
pub fn browse(
    ca: &Path,
    start_url: &str,
    login: &str,
    password: &str,
    user_code: Option<&str>,
) -> Result<BrowserOutcome, String> {
    let jar_dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let jar = jar_dir.path().join("cookies.txt");
    let provider = origin(start_url).to_owned();
    let mut url = start_url.to_owned();
    let mut post: Option<String> = None;
    let mut logins = 0;
    for _ in 0..30 {
        let response = curl(Some(ca), Some(&jar), &url, post.as_deref(), &[])?;
        let was_login = post.is_some() && logins > 0;
        post = None;
        if (300..400).contains(&response.status) {
            let location = response
                .header("location")
                .ok_or_else(|| format!("{} from {url} without a Location", response.status))?;
            let next = resolve(&url, location);
            if origin(&next) != provider {
                return Ok(BrowserOutcome::Redirect(next));
            }
            url = next;
            continue;
        }
        let form = Form::parse(&response.body);
        if response.status == 401 || (was_login && form.as_ref().is_some_and(|f| f.has("login"))) {
            return Err(format!(
                "the provider refused the login of {login:?} ({}): invalid login or password",
                response.status
            ));
        }
        if response.status != 200 {
            return Err(format!(
                "{} from {url}:\n{}",
                response.status,
                response.body.trim()
            ));
        }
        let Some(mut form) = form else {
            return Ok(BrowserOutcome::Page {
                url,
                body: response.body,
            });
        };
        if form.has("login") && form.has("password") {
            form.set("login", login);
            form.set("password", password);
            logins += 1;
        } else if form.has("user_code") && form.value("user_code").is_some_and(str::is_empty) {
            let code = user_code.ok_or_else(|| {
                format!("{url} asks for the device user code, and none was given")
            })?;
            form.set("user_code", code);
        }
        url = resolve(&url, &form.action);
        post = Some(form.encoded());
    }
    Err(format!("too many steps from {start_url}; last at {url}"))
}

/// GETs a redirect URL (e.g. the loopback callback of a waiting `kgate login`), delivering its
/// code. Plain HTTP, no cookies.
pub fn deliver(redirect_url: &str) -> Run {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "30", "--", redirect_url]);
    run_bounded(cmd, None, CLIENT_TIMEOUT)
}

// ---------------------------------------------------------------------------------------------
// The provider process.

/// An authorization request made by [`OidcProvider::authorization_request`].
#[derive(Clone)]
pub struct AuthRequest {
    pub url: String,
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    pub pkce: Pkce,
}

struct Node {
    child: Child,
    lines: Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The running provider (one node process, several issuers). Killed on drop.
pub struct OidcProvider {
    // Field order matters: node is killed before its folder is removed.
    node: Option<Node>,
    spec: ProviderSpec,
    port: u16,
    stdout_log: Arc<Mutex<Vec<String>>>,
    stderr_paths: Vec<PathBuf>,
    seq: AtomicUsize,
    root: Option<tempfile::TempDir>,
    root_path: PathBuf,
}

impl fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcProvider")
            .field("port", &self.port)
            .field("root", &self.root_path)
            .finish_non_exhaustive()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.node = None;
        if thread::panicking() || std::env::var_os("KGATE_E2E_KEEP").is_some() {
            if let Some(root) = self.root.take() {
                let path = root.keep();
                eprintln!("[e2e] kept the OpenID provider's folder {}", path.display());
            }
        }
    }
}

/// `tests/oidc-provider`.
pub fn provider_dir() -> PathBuf {
    workspace_root().join("tests").join("oidc-provider")
}

/// `node`: `$NODE`, else the first on PATH. Panics (the tests never skip) if there is none.
pub fn node_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("NODE") {
        return PathBuf::from(bin);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("node"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("node is not installed (not on PATH, no $NODE): run scripts/test.sh, which installs it")
        })
}

impl OidcProvider {
    /// Generates a CA and a certificate for 127.0.0.1, writes the config, starts node on a free
    /// loopback port and waits for its listening line.
    pub fn start(spec: impl Into<ProviderSpec>) -> OidcProvider {
        let spec = spec.into();
        let node = node_bin();
        let modules = provider_dir().join("node_modules").join("oidc-provider");
        assert!(
            modules.join("package.json").is_file(),
            "{} is missing: run scripts/test.sh (or `npm ci` in tests/oidc-provider)",
            modules.display()
        );
        let root = tempfile::Builder::new()
            .prefix("kgate-oidc-")
            .tempdir()
            .expect("cannot create a temp dir");
        let root_path = root.path().to_path_buf();
        std::fs::create_dir_all(root_path.join("logs")).expect("cannot create logs/");
        write_certificates(&root_path);
        let mut op = OidcProvider {
            node: None,
            spec,
            port: 0,
            stdout_log: Arc::new(Mutex::new(Vec::new())),
            stderr_paths: Vec::new(),
            seq: AtomicUsize::new(0),
            root: Some(root),
            root_path,
        };
        op.spawn(&node);
        op
    }

    fn write_config(&self) -> PathBuf {
        let config = json!({
            "port": self.port,
            "tls": {
                "cert": self.root_path.join("cert.pem"),
                "key": self.root_path.join("key.pem"),
            },
            "dataDir": self.root_path.join("data"),
            "issuers": self.spec.issuers.iter().map(IssuerSpec::to_json).collect::<Vec<_>>(),
        });
        let path = self.root_path.join("config.json");
        let text = serde_json::to_string_pretty(&config).expect("the config serializes");
        std::fs::write(&path, text).expect("cannot write the provider's config");
        path
    }

    fn spawn(&mut self, node: &Path) {
        let config = self.write_config();
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let stderr_path = self
            .root_path
            .join("logs")
            .join(format!("node-{n}.stderr.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("cannot create a log file");
        self.stderr_paths.push(stderr_path);
        let mut cmd = Command::new(node);
        cmd.arg(provider_dir().join("server.js"))
            .arg("--config")
            .arg(&config)
            .current_dir(provider_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
        let (tx, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let log = self.stdout_log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut log) = log.lock() {
                        log.push(line.clone());
                    }
                    let _ = tx.send(line);
                }
            });
        }
        let mut node = Node { child, lines };
        let origin = self.wait_listening(&mut node);
        let port = origin
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad listening line {origin:?}\n{}", self.logs()));
        if self.port != 0 {
            assert_eq!(port, self.port, "the provider came back on another port");
        }
        self.port = port;
        self.node = Some(node);
    }

    fn wait_listening(&self, node: &mut Node) -> String {
        let deadline = Instant::now() + OIDC_START_TIMEOUT;
        loop {
            match node.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening on ") {
                        return rest.trim().to_owned();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = node.child.try_wait() {
                        panic!(
                            "the OpenID provider exited ({status}) before listening\n{}",
                            self.logs()
                        );
                    }
                    if Instant::now() >= deadline {
                        panic!(
                            "the OpenID provider did not listen within {OIDC_START_TIMEOUT:?}\n{}",
                            self.logs()
                        );
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    thread::sleep(Duration::from_millis(100));
                    let status = node.child.try_wait().ok().flatten();
                    panic!(
                        "the OpenID provider closed its stdout ({status:?}) before listening\n{}",
                        self.logs()
                    );
                }
            }
        }
    }

    /// Stops node (SIGTERM, bounded wait, then SIGKILL). Issuer URLs stay reserved for
    /// [`Self::restart`]; requests fail (connection refused) meanwhile.
    pub fn stop(&mut self) {
        let Some(mut node) = self.node.take() else {
            return;
        };
        let pid = node.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = node.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        drop(node); // SIGKILL
    }

    /// Starts node again on the same port, with the same keys, users, clients and store
    /// (sessions, grants and refresh tokens survive). Stops it first if it runs.
    pub fn restart(&mut self) {
        self.stop();
        let node = node_bin();
        self.spawn(&node);
    }

    /// Whether node is running.
    pub fn is_running(&mut self) -> bool {
        self.node
            .as_mut()
            .is_some_and(|n| matches!(n.child.try_wait(), Ok(None)))
    }

    /// The port all issuers share.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:PORT/<name>` (no trailing slash), the `iss` of its tokens.
    pub fn issuer_url(&self, name: &str) -> String {
        assert!(
            self.spec.issuers.iter().any(|i| i.name == name),
            "no issuer {name:?} in this provider"
        );
        format!("https://127.0.0.1:{}/{name}", self.port)
    }

    /// The test CA that signed the provider's certificate (PEM file).
    pub fn ca_pem_path(&self) -> PathBuf {
        self.root_path.join("ca.pem")
    }

    /// The test CA's certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_pem_path()).expect("cannot read ca.pem")
    }

    /// The provider's temporary folder (ca.pem, cert.pem, key.pem, config.json, data/, logs/).
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// What node printed: stdout, then each run's stderr (the request log, errors).
    pub fn logs(&self) -> String {
        let stdout = self
            .stdout_log
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_default();
        let mut text = format!("--- oidc-provider stdout ---\n{stdout}\n");
        for path in &self.stderr_paths {
            text.push_str(&format!(
                "--- oidc-provider stderr ({}) ---\n{}\n",
                path.display(),
                crate::read_text(path)
            ));
        }
        text
    }

    fn client(&self, issuer: &str, client_id: &str) -> &ClientSpec {
        self.spec
            .issuers
            .iter()
            .find(|i| i.name == issuer)
            .unwrap_or_else(|| panic!("no issuer {issuer:?} in this provider"))
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
            .unwrap_or_else(|| panic!("no client {client_id:?} in issuer {issuer:?}"))
    }

    /// GET over HTTPS with the test CA; panics (with the provider's logs) on a transport error.
    pub fn get(&self, url: &str) -> HttpResponse {
        curl(Some(&self.ca_pem_path()), None, url, None, &[])
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    fn get_json(&self, url: &str) -> Value {
        let response = self.get(url);
        assert_eq!(
            response.status,
            200,
            "GET {url}: {}\n{}",
            response.body,
            self.logs()
        );
        serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {}", response.body))
    }

    /// The issuer's discovery document.
    pub fn discovery(&self, issuer: &str) -> Value {
        self.get_json(&format!(
            "{}/.well-known/openid-configuration",
            self.issuer_url(issuer)
        ))
    }

    /// The issuer's published JWKS.
    pub fn jwks(&self, issuer: &str) -> Value {
        let uri = self.discovery(issuer)["jwks_uri"]
            .as_str()
            .expect("discovery has a jwks_uri")
            .to_owned();
        self.get_json(&uri)
    }

    fn endpoint(&self, issuer: &str, name: &str) -> String {
        self.discovery(issuer)[name]
            .as_str()
            .unwrap_or_else(|| panic!("the discovery of {issuer} has no {name}"))
            .to_owned()
    }

    /// An authorization URL for `client_id` (its first redirect URI, PKCE S256, fresh state
    /// and nonce).
    pub fn authorization_request(
        &self,
        issuer: &str,
        client_id: &str,
        scopes: &[&str],
    ) -> AuthRequest {
        let client = self.client(issuer, client_id);
        let redirect_uri = client
            .redirect_uris
            .first()
            .unwrap_or_else(|| panic!("client {client_id} has no redirect URI"))
            .clone();
        self.authorization_request_to(issuer, client_id, &redirect_uri, scopes)
    }

    /// Like [`Self::authorization_request`] with another redirect URI (e.g. the loopback one
    /// with a port: native clients accept any port).
    pub fn authorization_request_to(
        &self,
        issuer: &str,
        client_id: &str,
        redirect_uri: &str,
        scopes: &[&str],
    ) -> AuthRequest {
        let redirect_uri = redirect_uri.to_owned();
        let pkce = Pkce::new();
        let state = random_token();
        let nonce = random_token();
        let scope = scopes.join(" ");
        let query = form_body(&[
            ("client_id", client_id),
            ("response_type", "code"),
            ("scope", &scope),
            ("redirect_uri", &redirect_uri),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ]);
        let url = format!(
            "{}?{query}",
            self.endpoint(issuer, "authorization_endpoint")
        );
        AuthRequest {
            url,
            redirect_uri,
            state,
            nonce,
            pkce,
        }
    }

    /// Like [`Self::answer_login`], but a refused login (or any failure) is an `Err`.
    pub fn try_answer_login(
        &self,
        authorization_url: &str,
        login: &str,
        password: &str,
    ) -> Result<String, String> {
        match browse(
            &self.ca_pem_path(),
            authorization_url,
            login,
            password,
            None,
        )? {
            BrowserOutcome::Redirect(url) => Ok(url),
            BrowserOutcome::Page { url, body } => Err(format!(
                "ended on the page {url} instead of a redirect:\n{body}"
            )),
        }
    }

    /// Plays the person for an authorization URL made by someone else (e.g. `kgate login`):
    /// signs in with `login`/`password` and returns the final redirect URL (the client's
    /// redirect URI with `code` and `state`), WITHOUT fetching it (see [`Self::deliver`]).
    #[track_caller]
    pub fn answer_login(&self, authorization_url: &str, login: &str, password: &str) -> String {
        self.try_answer_login(authorization_url, login, password)
            .unwrap_or_else(|e| panic!("answering the login failed: {e}\n{}", self.logs()))
    }

    /// GETs a redirect URL (delivers the code to a waiting loopback listener).
    pub fn deliver(&self, redirect_url: &str) -> Run {
        deliver(redirect_url)
    }

    /// Any grant at the token endpoint, authenticated as the client is configured
    /// (`none`: client_id in the body; basic; post). An error response is an `Err`.
    pub fn token_request(
        &self,
        issuer: &str,
        client_id: &str,
        fields: &[(&str, &str)],
    ) -> Result<Tokens, String> {
        let client = self.client(issuer, client_id);
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        let mut headers = Vec::new();
        match (
            client.token_endpoint_auth_method.as_str(),
            &client.client_secret,
        ) {
            ("client_secret_basic", Some(secret)) => {
                let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                headers.push(format!("Authorization: Basic {encoded}"));
            }
            ("client_secret_post", Some(secret)) => {
                fields.push(("client_id", client_id));
                fields.push(("client_secret", secret));
            }
            _ => fields.push(("client_id", client_id)),
        }
        let url = self.endpoint(issuer, "token_endpoint");
        let response = curl(
            Some(&self.ca_pem_path()),
            None,
            &url,
            Some(&form_body(&fields)),
            &headers,
        )?;
        let body: Value = serde_json::from_str(&response.body)
            .map_err(|e| format!("token endpoint: not JSON ({e}): {}", response.body))?;
        if response.status != 200 {
            // Error bodies carry no token.
            return Err(format!("token endpoint: {} {body}", response.status));
        }
        Tokens::from_response(&body)
    }

    /// Exchanges an authorization code (with its PKCE verifier) at the token endpoint.
    #[track_caller]
    pub fn exchange_code(
        &self,
        issuer: &str,
        client_id: &str,
        redirect_uri: &str,
        code: &str,
        code_verifier: &str,
    ) -> Tokens {
        self.token_request(
            issuer,
            client_id,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("code_verifier", code_verifier),
            ],
        )
        .unwrap_or_else(|e| panic!("the code exchange failed: {e}\n{}", self.logs()))
    }

    /// Like [`Self::login`], but a refused login (or any failure) is an `Err`.
    pub fn try_login(
        &self,
        issuer: &str,
        client_id: &str,
        login: &str,
        password: &str,
        scopes: &[&str],
    ) -> Result<Tokens, String> {
        let request = self.authorization_request(issuer, client_id, scopes);
        let redirect = self.try_answer_login(&request.url, login, password)?;
        if let Some(error) = query_param(&redirect, "error") {
            let description = query_param(&redirect, "error_description").unwrap_or_default();
            return Err(format!("authorization error {error}: {description}"));
        }
        let state = query_param(&redirect, "state");
        if state.as_deref() != Some(request.state.as_str()) {
            return Err("the redirect's state does not match the request's".to_owned());
        }
        let code = query_param(&redirect, "code").ok_or("the redirect carries no code")?;
        self.token_request(
            issuer,
            client_id,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &request.redirect_uri),
                ("code_verifier", &request.pkce.verifier),
            ],
        )
    }

    /// A whole authorization-code flow with PKCE, as `login` with `password`, through curl with
    /// a fresh cookie jar: authorization endpoint → login page → form → redirects up to the
    /// redirect URI (not fetched) → token endpoint.
    #[track_caller]
    pub fn login(
        &self,
        issuer: &str,
        client_id: &str,
        login: &str,
        password: &str,
        scopes: &[&str],
    ) -> Tokens {
        self.try_login(issuer, client_id, login, password, scopes)
            .unwrap_or_else(|e| panic!("login of {login} at {issuer} failed: {e}\n{}", self.logs()))
    }

    /// Like [`Self::refresh`], but a refused refresh is an `Err`.
    pub fn try_refresh(
        &self,
        issuer: &str,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<Tokens, String> {
        self.token_request(
            issuer,
            client_id,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
    }

    /// The refresh-token grant (new ID token; public clients also get a new refresh token).
    #[track_caller]
    pub fn refresh(&self, issuer: &str, client_id: &str, refresh_token: &str) -> Tokens {
        self.try_refresh(issuer, client_id, refresh_token)
            .unwrap_or_else(|e| panic!("refresh at {issuer} failed: {e}\n{}", self.logs()))
    }

    /// Starts a device flow: the device authorization response (`device_code`, `user_code`,
    /// `verification_uri`, `verification_uri_complete`, `interval`, ...).
    pub fn device_authorization(&self, issuer: &str, client_id: &str, scopes: &[&str]) -> Value {
        let url = self.endpoint(issuer, "device_authorization_endpoint");
        let scope = scopes.join(" ");
        let body = form_body(&[("client_id", client_id), ("scope", &scope)]);
        let response = curl(Some(&self.ca_pem_path()), None, &url, Some(&body), &[])
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        assert_eq!(
            response.status,
            200,
            "POST {url}: {}\n{}",
            response.body,
            self.logs()
        );
        serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("POST {url}: not JSON ({e}): {}", response.body))
    }

    fn admin(&self, issuer: &str, action: &str) -> String {
        let url = format!("{}/admin/{action}", self.issuer_url(issuer));
        let response = curl(Some(&self.ca_pem_path()), None, &url, Some(""), &[])
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        assert_eq!(
            response.status,
            200,
            "POST {url}: {}\n{}",
            response.body,
            self.logs()
        );
        let body: Value = serde_json::from_str(&response.body)
            .unwrap_or_else(|e| panic!("POST {url}: not JSON ({e})"));
        body["kid"]
            .as_str()
            .unwrap_or_else(|| panic!("POST {url}: no kid"))
            .to_owned()
    }

    /// A new RSA signing key for `issuer`; the old ones stay in its JWKS. Returns the new kid.
    pub fn rotate(&self, issuer: &str) -> String {
        self.admin(issuer, "rotate")
    }

    /// Publishes only the current signing key. Returns its kid.
    pub fn drop_old_keys(&self, issuer: &str) -> String {
        self.admin(issuer, "drop-old-keys")
    }
}

/// A CA, and a server certificate for 127.0.0.1/localhost signed by it: ca.pem, cert.pem,
/// key.pem in `dir`.
fn write_certificates(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kgate e2e OpenID provider CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &issuer).expect("server certificate");

    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write ca.pem");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert.pem");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key.pem");
}
