//! The HTTPS client towards a separate control plane: hyper-util's pooled client over a rustls
//! connector that presents the gateway's front-proxy certificate, verifies the upstream's serving
//! certificate against kgate's CA, and negotiates HTTP/2 or HTTP/1.1 by ALPN.
//!
//! Hop-by-hop headers are dropped both ways ([`crate::hop_by_hop`]); the identity headers the
//! proxy set are checked to be unchanged by that, the last step before the request leaves.
//!
//! Only connecting has a timeout: a request may run as long as it likes, since a watch is a
//! request that lasts minutes.

use crate::hop_by_hop::{identity_headers, remove_hop_by_hop};
use crate::proxy::UpstreamError;
use axum::body::Body;
use futures::future::BoxFuture;
use http::header::HOST;
use http::{Request, Response, Uri, Version};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How long a TCP connect plus TLS handshake to the upstream may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a connection to the upstream failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The upstream URL has no host.
    #[error("the upstream URL has no host")]
    NoHost,
    /// The host is not a valid TLS server name.
    #[error("the upstream host is not a valid server name")]
    ServerName(#[source] rustls::pki_types::InvalidDnsNameError),
    /// TCP connect or TLS handshake failed.
    #[error("connecting to the upstream failed")]
    Io(#[from] io::Error),
    /// TCP connect plus TLS handshake took too long.
    #[error("connecting to the upstream timed out")]
    Timeout,
}

/// A separate control plane over HTTPS.
#[derive(Clone)]
pub struct RemoteUpstream {
    client: Client<TlsConnector, Body>,
    /// `https://host:port`, without a trailing slash.
    base: String,
}

impl std::fmt::Debug for RemoteUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteUpstream")
            .field("base", &self.base)
            .finish()
    }
}

impl RemoteUpstream {
    /// A client for `base` (scheme `https`, host and port; no path) with `tls` (see
    /// [`crate::tls::client_config`]).
    pub fn new(base: &Uri, tls: Arc<ClientConfig>) -> Self {
        let connector = TlsConnector {
            tls: tokio_rustls::TlsConnector::from(tls),
            connect_timeout: CONNECT_TIMEOUT,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            // Under the control plane's default --idle-timeout (90 s): the pool drops an idle
            // connection before the server closes it under a request.
            .pool_idle_timeout(Duration::from_secs(60))
            .timer(TokioTimer::new())
            .build(connector);
        let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
        Self {
            client,
            base: format!("https://{authority}"),
        }
    }

    /// Forwards a request: the path and query are kept, the scheme and authority replaced, and
    /// hop-by-hop headers dropped both ways.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| UpstreamError::Protocol(Box::new(e)))?;
        // The client picks HTTP/2 or HTTP/1.1 by ALPN; an HTTP/2 request would be refused on an
        // HTTP/1.1 connection.
        parts.version = Version::HTTP_11;
        // The proxy removed the client's hop-by-hop headers before it set the identity ones, so
        // this strip must not change them; if it did, refuse rather than forward a request
        // whose identity a client edited.
        let identity = identity_headers(&parts.headers);
        remove_hop_by_hop(&mut parts.headers);
        if identity_headers(&parts.headers) != identity {
            return Err(UpstreamError::IdentityChanged);
        }
        // hyper sets the upstream's Host from the URI.
        parts.headers.remove(HOST);
        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(classify)?;
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

fn classify(error: hyper_util::client::legacy::Error) -> UpstreamError {
    if !error.is_connect() {
        return UpstreamError::Protocol(Box::new(error));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(ConnectError::Timeout) = current.downcast_ref::<ConnectError>() {
            return UpstreamError::Timeout;
        }
        source = current.source();
    }
    UpstreamError::Unavailable(Box::new(error))
}

/// Connects TCP then TLS, within [`CONNECT_TIMEOUT`].
#[derive(Clone)]
pub struct TlsConnector {
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
}

impl tower::Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsConnection>;
    type Error = ConnectError;
    type Future = BoxFuture<'static, Result<Self::Response, ConnectError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let connect_timeout = self.connect_timeout;
        Box::pin(async move {
            let host = uri.host().ok_or(ConnectError::NoHost)?;
            // IPv6 literals come bracketed in URIs.
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let server_name =
                ServerName::try_from(host.clone()).map_err(ConnectError::ServerName)?;
            let connect = async move {
                let tcp = TcpStream::connect((host.as_str(), port)).await?;
                tcp.set_nodelay(true)?;
                tls.connect(server_name, tcp).await
            };
            match tokio::time::timeout(connect_timeout, connect).await {
                Ok(stream) => Ok(TokioIo::new(TlsConnection(stream?))),
                Err(_) => Err(ConnectError::Timeout),
            }
        })
    }
}

/// A TLS connection to the upstream that tells the pool whether ALPN chose HTTP/2.
pub struct TlsConnection(tokio_rustls::client::TlsStream<TcpStream>);

impl Connection for TlsConnection {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.0.get_ref().1.alpn_protocol() == Some(b"h2") {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
