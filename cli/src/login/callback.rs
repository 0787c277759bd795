//! The loopback redirect receiver of the authorization-code flow: a listener on 127.0.0.1 that
//! serves exactly `GET /callback`, checks `state`, answers the browser with a small page and
//! hands the code to the caller.
//!
//! Threat model: any local process (or a web page, through the browser) can reach the port.
//! Only a request carrying the `state` of this login is accepted; a wrong `state` ends the login
//! with an error (it may be a forged redirect), other paths get 404 and are otherwise ignored.
//! The code is useless without the PKCE verifier, which never leaves this process.

use openidconnect::url::form_urlencoded;
use openidconnect::{AuthorizationCode, CsrfToken};
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The redirect path.
pub const CALLBACK_PATH: &str = "/callback";
/// The largest request head read from the browser.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no authorization code came back.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackError {
    /// The redirect's `state` is not this login's.
    #[error("the redirect's state does not match this login (a forged or stale redirect)")]
    StateMismatch,
    /// The provider answered with an OAuth error (e.g. `access_denied`).
    #[error("the provider refused the login: {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Provider {
        error: String,
        description: Option<String>,
    },
    /// The redirect has neither `code` nor `error`.
    #[error("the redirect has no authorization code")]
    MissingCode,
    /// Nobody came back in time.
    #[error("no redirect from the browser within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The listener failed.
    #[error("the callback listener failed: {0}")]
    Io(String),
}

/// What one request to the listener means.
#[derive(Debug, PartialEq, Eq)]
pub enum Callback {
    /// Not the callback path: 404, keep waiting.
    NotFound,
    /// The callback with the right state and a code.
    Code(String),
}

/// Reads one request target (`/callback?code=...&state=...`) against the expected state.
pub fn parse_callback(target: &str, expected_state: &str) -> Result<Callback, CallbackError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != CALLBACK_PATH {
        return Ok(Callback::NotFound);
    }
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        // A repeated parameter is ambiguous: keep none of it.
        if slot.is_some() {
            return Err(CallbackError::StateMismatch);
        }
        *slot = Some(value.into_owned());
    }
    // The state is checked before anything else, error redirects included: only the provider
    // that was given this state may end the login with its own error.
    if state.as_deref() != Some(expected_state) {
        return Err(CallbackError::StateMismatch);
    }
    if let Some(error) = error {
        return Err(CallbackError::Provider { error, description });
    }
    match code {
        Some(code) if !code.is_empty() => Ok(Callback::Code(code)),
        _ => Err(CallbackError::MissingCode),
    }
}

/// The bound listener; bind it before building the authorization URL, which names its port.
#[derive(Debug)]
pub struct CallbackListener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl CallbackListener {
    /// Binds `listen` (port 0 picks one).
    pub async fn bind(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener, addr })
    }

    /// The redirect URI to register with the provider: `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}{CALLBACK_PATH}", self.addr)
    }

    /// Serves requests until the callback arrives (or fails), at most `timeout`.
    pub async fn wait(
        self,
        state: &CsrfToken,
        timeout: Duration,
    ) -> Result<AuthorizationCode, CallbackError> {
        tokio::time::timeout(timeout, self.serve(state.secret()))
            .await
            .map_err(|_| CallbackError::Timeout(timeout))?
    }

    async fn serve(self, state: &str) -> Result<AuthorizationCode, CallbackError> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| CallbackError::Io(e.to_string()))?;
            let target = match tokio::time::timeout(READ_TIMEOUT, read_target(&mut stream)).await {
                Ok(Some(target)) => target,
                // A connection that sends no valid request (or too slowly) is dropped.
                _ => {
                    respond(&mut stream, 400, "Bad Request", "Bad request.").await;
                    continue;
                }
            };
            match parse_callback(&target, state) {
                Ok(Callback::NotFound) => {
                    respond(&mut stream, 404, "Not Found", "Not found.").await;
                }
                Ok(Callback::Code(code)) => {
                    respond(
                        &mut stream,
                        200,
                        "OK",
                        "Logged in; you can close this window.",
                    )
                    .await;
                    return Ok(AuthorizationCode::new(code));
                }
                Err(error) => {
                    let message = format!("Login failed: {error}.");
                    respond(&mut stream, 400, "Bad Request", &message).await;
                    return Err(error);
                }
            }
        }
    }
}

/// Reads the request head and returns the target of a `GET`, or `None`.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    request_target(&head)
}

/// The target of a `GET` request line.
pub fn request_target(head: &[u8]) -> Option<String> {
    let line_end = head.iter().position(|&b| b == b'\r')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(version), None) if version.starts_with("HTTP/1.") => {
            Some(target.to_owned())
        }
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, reason: &str, message: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kgate login</title></head>\
         <body><p>{}</p></body></html>\n",
        html_escape(message)
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/html; charset=utf-8\r\n\
         content-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser going away is not our problem; the outcome is already decided.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_parsing() {
        assert_eq!(
            parse_callback("/callback?code=abc%2Fd&state=s1", "s1"),
            Ok(Callback::Code("abc/d".into()))
        );
        assert_eq!(
            parse_callback("/callback?state=s1&code=c&iss=x", "s1"),
            Ok(Callback::Code("c".into()))
        );
        assert_eq!(parse_callback("/favicon.ico", "s1"), Ok(Callback::NotFound));
        assert_eq!(
            parse_callback("/callback/x?code=c&state=s1", "s1"),
            Ok(Callback::NotFound)
        );
        assert_eq!(
            parse_callback("/callback?code=c&state=s2", "s1"),
            Err(CallbackError::StateMismatch)
        );
        assert_eq!(
            parse_callback("/callback?code=c", "s1"),
            Err(CallbackError::StateMismatch)
        );
        assert_eq!(
            parse_callback("/callback?code=c&state=s1&state=s2", "s1"),
            Err(CallbackError::StateMismatch)
        );
        assert_eq!(
            parse_callback(
                "/callback?error=access_denied&error_description=no+way&state=s1",
                "s1"
            ),
            Err(CallbackError::Provider {
                error: "access_denied".into(),
                description: Some("no way".into())
            })
        );
        // An error redirect without our state is a mismatch, not a provider answer.
        assert_eq!(
            parse_callback("/callback?error=access_denied&state=zz", "s1"),
            Err(CallbackError::StateMismatch)
        );
        assert_eq!(
            parse_callback("/callback?state=s1", "s1"),
            Err(CallbackError::MissingCode)
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            request_target(b"GET /callback?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").as_deref(),
            Some("/callback?x=1")
        );
        assert_eq!(request_target(b"POST /callback HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_target(b"GET /callback\r\n\r\n"), None);
        assert_eq!(request_target(b"garbage"), None);
    }

    #[test]
    fn provider_errors_are_escaped_in_the_page() {
        assert_eq!(html_escape("<b>&\"'"), "&lt;b&gt;&amp;&quot;&#39;");
    }

    async fn get(addr: SocketAddr, target: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_404_then_takes_the_code() {
        let listener = CallbackListener::bind(([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let addr = listener.addr;
        assert!(listener.redirect_uri().starts_with("http://127.0.0.1:"));
        assert!(listener.redirect_uri().ends_with("/callback"));
        let state = CsrfToken::new("st".into());
        let waiter =
            tokio::spawn(async move { listener.wait(&state, Duration::from_secs(10)).await });
        let not_found = get(addr, "/other").await;
        assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
        let ok = get(addr, "/callback?code=the-code&state=st").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("Logged in; you can close this window"));
        let code = waiter.await.unwrap().unwrap();
        assert_eq!(code.secret(), "the-code");
    }

    #[tokio::test]
    async fn a_denied_login_is_shown_and_returned() {
        let listener = CallbackListener::bind(([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let addr = listener.addr;
        let state = CsrfToken::new("st".into());
        let waiter =
            tokio::spawn(async move { listener.wait(&state, Duration::from_secs(10)).await });
        let page = get(addr, "/callback?error=access_denied&state=st").await;
        assert!(page.starts_with("HTTP/1.1 400"), "{page}");
        assert!(page.contains("access_denied"));
        assert!(matches!(
            waiter.await.unwrap(),
            Err(CallbackError::Provider { error, .. }) if error == "access_denied"
        ));
    }

    #[tokio::test]
    async fn times_out() {
        let listener = CallbackListener::bind(([127, 0, 0, 1], 0).into())
            .await
            .unwrap();
        let state = CsrfToken::new("st".into());
        assert!(matches!(
            listener.wait(&state, Duration::from_millis(50)).await,
            Err(CallbackError::Timeout(d)) if d == Duration::from_millis(50)
        ));
    }
}
