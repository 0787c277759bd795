//! Listing a cluster's RBAC objects for `kgate rbac --kubeconfig`: a GET of
//! `/apis/rbac.authorization.k8s.io/v1/<kind>?limit=500` per kind, following `continue` until
//! the last page, over HTTPS with the kubeconfig's CA and credentials (see
//! [`super::kubeconfig`]).
//!
//! One HTTP/1.1 request per TLS connection, made with hyper's connection API: the handful of
//! requests a question needs do not call for a pool. Connecting and each request have a time
//! limit, and a page has a size limit, so an unreachable or misbehaving server is an error
//! rather than a hang.

use super::kubeconfig::ClusterAccess;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;

/// TCP connect plus TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One page, from sending the request to the last byte of the body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Items per page, as kubectl asks.
const PAGE_SIZE: u32 = 500;
/// A page larger than this is refused (500 RBAC objects are far smaller).
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
const API_PATH: &str = "/apis/rbac.authorization.k8s.io/v1";

/// Why listing failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// TCP connect or the TLS handshake failed (the server is down, or its certificate is not
    /// signed by the kubeconfig's CA).
    #[error("cannot connect to {server}")]
    Connect {
        server: String,
        #[source]
        source: std::io::Error,
    },
    /// TCP connect plus TLS handshake took longer than [`CONNECT_TIMEOUT`].
    #[error("connecting to {server} timed out after {}s", CONNECT_TIMEOUT.as_secs())]
    ConnectTimeout { server: String },
    /// The HTTP exchange failed.
    #[error("GET {path} failed")]
    Http {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request took longer than [`REQUEST_TIMEOUT`].
    #[error("GET {path} timed out after {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout { path: String },
    /// The server answered something other than 200, with the message of its `Status`.
    #[error("GET {path}: the server answered {status}: {message}")]
    Status {
        path: String,
        status: StatusCode,
        message: String,
    },
    /// The answer is not a list.
    #[error("GET {path}: the answer is not a list ({reason})")]
    Malformed { path: String, reason: String },
    /// The kubeconfig's token cannot be sent as a header (it is not shown).
    #[error("the kubeconfig's token is not a valid HTTP header value")]
    Token,
}

/// Every object of `plural` (`clusterroles`, ...), each with `kind` and `apiVersion` set
/// (list items come without them).
pub async fn list(
    access: &ClusterAccess,
    plural: &str,
    kind: &str,
) -> Result<Vec<Value>, RemoteError> {
    let prefix = access.server.path().trim_end_matches('/');
    let base = format!("{prefix}{API_PATH}/{plural}?limit={PAGE_SIZE}");
    let mut items = Vec::new();
    let mut continue_token = String::new();
    loop {
        let mut path = base.clone();
        if !continue_token.is_empty() {
            path.push_str("&continue=");
            path.push_str(
                &percent_encoding::utf8_percent_encode(
                    &continue_token,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            );
        }
        let mut page = get_json(access, &path).await?;
        let malformed = |reason: &str| RemoteError::Malformed {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let Some(Value::Array(page_items)) = page.get_mut("items").map(Value::take) else {
            return Err(malformed("no items"));
        };
        for mut item in page_items {
            let map = item
                .as_object_mut()
                .ok_or_else(|| malformed("an item is not an object"))?;
            map.entry("kind").or_insert_with(|| kind.into());
            map.entry("apiVersion")
                .or_insert_with(|| "rbac.authorization.k8s.io/v1".into());
            items.push(item);
        }
        continue_token = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if continue_token.is_empty() {
            return Ok(items);
        }
    }
}

/// GET `path` on a new connection; the body parsed as JSON if the answer is 200.
async fn get_json(access: &ClusterAccess, path: &str) -> Result<Value, RemoteError> {
    let stream = connect(access).await?;
    let http_error = |source: Box<dyn std::error::Error + Send + Sync>| RemoteError::Http {
        path: path.to_owned(),
        source,
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http_error(Box::new(e)))?;
    let driver = tokio::spawn(connection);

    let mut request = Request::get(path)
        .header(
            HOST,
            access
                .server
                .authority()
                .map(|a| a.as_str())
                .unwrap_or_default(),
        )
        .header(ACCEPT, "application/json")
        .header(
            USER_AGENT,
            concat!("kgate-rbac/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| http_error(Box::new(e)))?;
    if let Some(token) = &access.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| RemoteError::Token)?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }

    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| http_error(Box::new(e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_PAGE_BYTES)
            .collect()
            .await
            .map_err(http_error)?
            .to_bytes();
        Ok::<_, RemoteError>((status, body))
    };
    let result = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await;
    driver.abort();
    let (status, body) = result.map_err(|_| RemoteError::Timeout {
        path: path.to_owned(),
    })??;
    if status != StatusCode::OK {
        return Err(RemoteError::Status {
            path: path.to_owned(),
            status,
            message: status_message(&body),
        });
    }
    serde_json::from_slice(&body).map_err(|e| RemoteError::Malformed {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// The `message` of a `Status` body, or the start of a body that is not one.
fn status_message(body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned));
    match message {
        Some(message) => message,
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let short: String = text.chars().take(200).collect();
            if short.is_empty() {
                "(no body)".to_owned()
            } else {
                short
            }
        }
    }
}

async fn connect(
    access: &ClusterAccess,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, RemoteError> {
    let server = access.server.to_string();
    let host = access
        .server
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = access.server.port_u16().unwrap_or(443);
    let connector = tokio_rustls::TlsConnector::from(access.tls.clone());
    let server_name = access.server_name.clone();
    let attempt = async move {
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        connector.connect(server_name, tcp).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(RemoteError::Connect { server, source }),
        Err(_) => Err(RemoteError::ConnectTimeout { server }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages() {
        assert_eq!(
            status_message(br#"{"kind":"Status","message":"clusterroles is forbidden"}"#),
            "clusterroles is forbidden"
        );
        assert_eq!(status_message(b"  oops \n"), "oops");
        assert_eq!(status_message(b""), "(no body)");
    }
}
