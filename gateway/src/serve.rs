//! The TLS listener: accepts TCP connections, runs the rustls handshake, and serves HTTP/1.1 and
//! HTTP/2 (by ALPN) with hyper-util, one task per connection. Each request carries the
//! connection's [`PeerCertificates`] and [`PeerAddr`] as extensions, for the X.509 authenticator
//! and the logs.
//!
//! hyper's own header limits are set above the pipeline's, so an oversized header block reaches
//! the pipeline and is answered with a `Status` (431) rather than a bare hyper error. Over
//! HTTP/1.1 that includes up to 1,024 header fields (kube-apiserver limits only their size):
//! above hyper's default of 100 it parses into two heap arrays of that many entries per request,
//! a cost HTTP/2 clients such as kubectl do not pay. Shutdown
//! stops accepting at once, lets open requests finish for a grace period (watches included), then
//! gives up on them.

use crate::peer::{PeerAddr, PeerCertificates};
use axum::body::Body;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::ServerConfig;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The pipeline's header limit; hyper's limits are set above it.
    pub max_header_bytes: usize,
    /// How long a client may take to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client may take to send its request headers (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// How long open requests may run after shutdown begins.
    pub drain_timeout: Duration,
}

impl ServeOptions {
    pub fn new(max_header_bytes: usize) -> Self {
        Self {
            max_header_bytes,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(5),
        }
    }

    /// hyper's header limit: comfortably above the pipeline's, so the pipeline answers first.
    fn hyper_header_limit(&self) -> usize {
        self.max_header_bytes
            .saturating_mul(2)
            .saturating_add(64 * 1024)
    }
}

/// Serves `service` over TLS on `listener` until `shutdown` resolves, then drains.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    service: S,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let options = Arc::new(options);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    let connection = serve_connection(
                        tcp,
                        addr,
                        acceptor.clone(),
                        service.clone(),
                        options.clone(),
                        graceful.watcher(),
                    );
                    tokio::spawn(connection);
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("listener closed; draining open connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!(timeout = ?options.drain_timeout, "connections still open after the drain timeout; closing them");
        }
    }
}

/// How much of an unread request body is drained before an error response goes out.
const DRAIN_MAX_BYTES: usize = 8 * 1024 * 1024;
/// How long draining may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Calls the pipeline; when it answers an error without reading the whole body, reads (a
/// bounded amount of) the rest before answering.
///
/// Why: over HTTP/2 a stream whose body is dropped unread ends with RST_STREAM while the client
/// may still be sending, and some clients (curl 7.88 among them) report that as a framing error
/// instead of showing the 400, 401 or 413 they were sent. Requests without a body (every GET)
/// go straight through.
async fn call_draining<S>(service: S, request: Request<Incoming>) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return match service.oneshot(request.map(Body::new)).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    let (parts, body) = request.into_parts();
    let shared = SharedBody(Arc::new(std::sync::Mutex::new(body)));
    let request = Request::from_parts(parts, Body::new(shared.clone()));
    let response = match service.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !response.status().is_success() {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, shared.drain(DRAIN_MAX_BYTES)).await;
    }
    response
}

/// The request body, shared between the pipeline and [`call_draining`].
#[derive(Clone)]
struct SharedBody(Arc<std::sync::Mutex<Incoming>>);

impl SharedBody {
    fn lock(&self) -> std::sync::MutexGuard<'_, Incoming> {
        // A panic while polling leaves the body as it was; keep using it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads and discards frames until the end of the body or `max` bytes.
    async fn drain(&self, max: usize) {
        let mut read = 0usize;
        while read < max {
            let frame = std::future::poll_fn(|cx| {
                use http_body::Body as _;
                let mut body = self.lock();
                std::pin::Pin::new(&mut *body).poll_frame(cx)
            })
            .await;
            match frame {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) | None => return,
            }
        }
    }
}

impl http_body::Body for SharedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let mut body = self.lock();
        std::pin::Pin::new(&mut *body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.lock().size_hint()
    }
}

async fn serve_connection<S>(
    tcp: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    service: S,
    options: Arc<ServeOptions>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Small API responses dominate: do not let Nagle delay them.
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(options.handshake_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(peer = %addr, %error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %addr, "TLS handshake timed out");
            return;
        }
    };
    let certificates = PeerCertificates(Arc::new(
        stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.to_vec()).collect())
            .unwrap_or_default(),
    ));
    let hyper_service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(certificates.clone());
        request.extensions_mut().insert(PeerAddr(addr));
        let service = service.clone();
        async move { Ok::<_, Infallible>(call_draining(service, request).await) }
    });

    let limit = options.hyper_header_limit();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(limit.max(8192))
        .max_headers(1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limit).unwrap_or(u32::MAX));
    // With upgrades, so that exec/attach/port-forward can pass through later.
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service);
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(peer = %addr, %error, "connection ended with an error");
    }
}
