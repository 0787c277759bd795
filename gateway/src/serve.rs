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
//!
//! Threat model: anyone who can reach the port can open connections without any credential, so
//! what an idle or slow connection may hold is bounded ([`ConnectionLimits`], kube-apiserver's
//! `http.Server` settings where it has them):
//! - at most `max_connections` at once; one more is closed as soon as it is accepted, before the
//!   TLS handshake (kube-apiserver has none: Go raises the open-files limit to the hard limit, Rust
//!   does not, so without a bound idle connections exhaust file descriptors and the store, the
//!   upstream and the accept loop fail with them);
//! - the TLS handshake within `handshake_timeout`;
//! - the first request's headers within `read_header_timeout` of the handshake, whatever the
//!   protocol (a connection that sends nothing, part of the HTTP/2 preface, or an HTTP/2 header
//!   block in dribs and drabs is closed), and each later HTTP/1.1 request's headers within it too
//!   (hyper's timer, which starts as soon as a kept-alive connection waits for its next request,
//!   so an idle HTTP/1.1 connection closes after the shorter of the two timeouts);
//! - no request in flight for `idle_timeout`: closed, HTTP/2 and HTTP/1.1 alike (a watch is a
//!   request in flight until its response ends);
//! - at most `http2_max_concurrent_streams` streams per HTTP/2 connection.
//!
//! A connection closed for idleness gets a graceful shutdown (HTTP/2 GOAWAY) and, if the client
//! does not close it within [`GOAWAY_GRACE`] and still has nothing in flight, is dropped.

use crate::peer::{PeerAddr, PeerCertificates};
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

/// How long a connection closed for idleness may take to go after its GOAWAY, while nothing is
/// in flight, before it is dropped (Go's HTTP/2 server waits one second).
pub const GOAWAY_GRACE: Duration = Duration::from_secs(5);

/// The bounds on what connections may hold; see the module docs. The CLI's `--max-connections`,
/// `--idle-timeout`, `--read-header-timeout` and `--http2-max-streams-per-connection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// How long a client may take to send request headers.
    pub read_header_timeout: Duration,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
}

/// The largest `max_connections` accepted (a semaphore's permits must fit).
pub const MAX_CONNECTIONS_LIMIT: usize = 1 << 20;
/// The most connections the default allows, whatever the open-files limit: about 10,000 idle TLS
/// connections (rustls and hyper buffers) hold a few hundred MiB.
pub const DEFAULT_MAX_CONNECTIONS_CEILING: usize = 10_000;

impl Default for ConnectionLimits {
    /// kube-apiserver's `IdleTimeout` (90 s), `ReadHeaderTimeout` (32 s) and HTTP/2
    /// `MaxConcurrentStreams` (100); connections: [`default_max_connections`].
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            idle_timeout: Duration::from_secs(90),
            read_header_timeout: Duration::from_secs(32),
            http2_max_concurrent_streams: 100,
        }
    }
}

/// Three quarters of this process's open-files limit (the soft `RLIMIT_NOFILE`), leaving the rest
/// for the store, upstream connections and logs, and at most
/// [`DEFAULT_MAX_CONNECTIONS_CEILING`].
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    (limit / 4 * 3).clamp(1, DEFAULT_MAX_CONNECTIONS_CEILING)
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The pipeline's header limit; hyper's limits are set above it.
    pub max_header_bytes: usize,
    /// How long a client may take to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Connections, idleness, header time and HTTP/2 streams.
    pub limits: ConnectionLimits,
    /// How long open requests may run after shutdown begins.
    pub drain_timeout: Duration,
}

impl ServeOptions {
    /// The default limits ([`ConnectionLimits::default`]).
    pub fn new(max_header_bytes: usize) -> Self {
        Self::with_limits(max_header_bytes, ConnectionLimits::default())
    }

    pub fn with_limits(max_header_bytes: usize, limits: ConnectionLimits) -> Self {
        Self {
            max_header_bytes,
            handshake_timeout: Duration::from_secs(10),
            limits,
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
    let max_connections = options
        .limits
        .max_connections
        .clamp(1, MAX_CONNECTIONS_LIMIT);
    // One permit per open connection; a connection task holds its permit until it ends, so
    // draining is waiting for all of them.
    let slots = Arc::new(Semaphore::new(max_connections));
    let (closing, closing_seen) = watch::channel(false);
    let options = Arc::new(options);
    let mut refusals = Refusals::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        // Closed before the handshake: a refused connection costs no TLS work.
                        drop(tcp);
                        refusals.note(addr, max_connections);
                        continue;
                    };
                    let connection = serve_connection(
                        tcp,
                        addr,
                        acceptor.clone(),
                        service.clone(),
                        options.clone(),
                        closing_seen.clone(),
                        slot,
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
    let _ = closing.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("all connections closed"),
        () = tokio::time::sleep(options.drain_timeout) => {
            tracing::warn!(timeout = ?options.drain_timeout, "connections still open after the drain timeout; closing them");
        }
    }
}

/// Connections closed at the bound, logged at most every [`Refusals::EVERY`].
#[derive(Debug, Default)]
struct Refusals {
    unlogged: u64,
    logged_at: Option<Instant>,
}

impl Refusals {
    const EVERY: Duration = Duration::from_secs(10);

    fn note(&mut self, peer: SocketAddr, max_connections: usize) {
        self.unlogged += 1;
        if self.logged_at.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        tracing::warn!(
            max_connections,
            refused = self.unlogged,
            %peer,
            "connection limit reached: new connections are closed (--max-connections)"
        );
        self.unlogged = 0;
        self.logged_at = Some(Instant::now());
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
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
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
    let first_request_by = Instant::now() + options.limits.read_header_timeout;
    let certificates = PeerCertificates(Arc::new(
        stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|chain| chain.iter().map(|c| c.to_vec()).collect())
            .unwrap_or_default(),
    ));
    let activity = Arc::new(Activity::new());
    let activity_seen = activity.clone();
    let hyper_service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(certificates.clone());
        request.extensions_mut().insert(PeerAddr(addr));
        let service = service.clone();
        // In flight from its headers until its response body is done (or dropped).
        let busy = Busy::begin(&activity);
        async move {
            let response = call_draining(service, request).await;
            Ok::<_, Infallible>(response.map(|body| TrackedBody {
                inner: body,
                _busy: busy,
            }))
        }
    });

    let limit = options.hyper_header_limit();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.limits.read_header_timeout)
        .max_buf_size(limit.max(8192))
        .max_headers(1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limit).unwrap_or(u32::MAX));
    // With upgrades, so that exec/attach/port-forward can pass through later.
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service);
    let mut connection = std::pin::pin!(connection);
    let mut draining = false;
    let mut drop_at: Option<Instant> = None;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(peer = %addr, %error, "connection ended with an error");
                }
                return;
            }
            // The server is shutting down (or gone): finish what is in flight, then close.
            _ = closing.changed(), if !draining => {
                draining = true;
                drop_at = None;
                connection.as_mut().graceful_shutdown();
            }
            reason = quiet(&activity_seen, first_request_by, options.limits.idle_timeout),
                if !draining && drop_at.is_none() => {
                tracing::debug!(peer = %addr, reason, "closing connection");
                connection.as_mut().graceful_shutdown();
                drop_at = Some(Instant::now() + GOAWAY_GRACE);
            }
            () = sleep_until_some(drop_at), if !draining && drop_at.is_some() => {
                if activity_seen.in_flight.load(Ordering::Acquire) == 0 {
                    tracing::debug!(peer = %addr, "connection still open after its GOAWAY; dropped");
                    return;
                }
                // A request slipped in before the GOAWAY: let it finish.
                drop_at = Some(Instant::now() + GOAWAY_GRACE);
            }
        }
    }
}

/// What a connection is doing: requests in flight, whether one ever started, and when the last
/// one ended. Counters, not a channel: a request only touches atomics, and the connection's
/// idle check reads them when its timer fires, so serving a request wakes nothing.
#[derive(Debug)]
struct Activity {
    /// When the connection was served; `last_end` counts from here.
    since: Instant,
    in_flight: AtomicUsize,
    started: AtomicBool,
    /// Milliseconds from `since` to the end of the last request.
    last_end: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            last_end: AtomicU64::new(0),
        }
    }

    fn last_end(&self) -> Instant {
        self.since + Duration::from_millis(self.last_end.load(Ordering::Acquire))
    }
}

/// One request in flight; ends when dropped.
struct Busy(Arc<Activity>);

impl Busy {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.started.store(true, Ordering::Release);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_end.fetch_max(elapsed, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves, with the reason, when the connection should close: no request headers by
/// `first_request_by`, or no request in flight for `idle` since the last one ended. It sleeps
/// to the earliest moment either could be true and looks again then.
async fn quiet(activity: &Activity, first_request_by: Instant, idle: Duration) -> &'static str {
    loop {
        let now = Instant::now();
        let deadline = if !activity.started.load(Ordering::Acquire) {
            if now >= first_request_by {
                return "no request headers within --read-header-timeout";
            }
            first_request_by
        } else if activity.in_flight.load(Ordering::Acquire) > 0 {
            // Busy (a watch, say): look again an idle period later.
            now + idle
        } else {
            let idle_at = activity.last_end() + idle;
            if now >= idle_at {
                return "idle for --idle-timeout";
            }
            idle_at
        };
        tokio::time::sleep_until(deadline).await;
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A response body that keeps its request counted as in flight until it is done or dropped.
struct TrackedBody {
    inner: Body,
    _busy: Busy,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
