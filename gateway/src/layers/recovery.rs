//! Panic recovery, kube-apiserver's `WithPanicRecovery`: a panic while a request is handled
//! becomes a 500 `Status` for that request, is logged once, and the server keeps serving. The
//! gateway pipeline's rescue stage runs it ([`crate::layers::rescue`]), and it wraps the separate
//! control plane's router ([`crate::front_proxy_guard`]).
//!
//! What is covered: the inner service's `call`, its future, and its response body. A panic before
//! the response is answered 500; a panic while the body streams (a watch, say) can no longer
//! change the status, so the body ends with an error and the client sees the stream cut, as Go's
//! server does after `ErrAbortHandler`.
//!
//! Logged once: Rust's panic hook prints every panic before the unwinding starts. While this
//! layer polls the inner service it marks the thread, and the hook installed by
//! [`PanicRecoveryLayer::new`] keeps the message and location of a panic on a marked thread
//! instead of printing it; the layer then logs one error line with them and the request's method
//! and path. Panics anywhere else go to the hook that was installed before, unchanged.
//!
//! Threat model: a client that finds a panicking request must not take the server down or learn
//! anything from it: the body says only that the server failed; the details go to the log.

use axum::body::Body;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kgate_core::Status;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The message of the 500 `Status`, kube-apiserver's words.
pub const PANIC_MESSAGE: &str =
    "This request caused the server to panic. Look in the logs for details.";

/// Wraps a service so that a panic in it answers 500; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct PanicRecoveryLayer(());

impl PanicRecoveryLayer {
    /// The layer; installs the panic hook that keeps caught panics out of stderr (once per
    /// process).
    pub fn new() -> Self {
        install_hook();
        Self(())
    }
}

impl Default for PanicRecoveryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Layer<S> for PanicRecoveryLayer {
    type Service = PanicRecovery<S>;
    fn layer(&self, inner: S) -> PanicRecovery<S> {
        PanicRecovery { inner }
    }
}

/// The recovery service; see the module docs.
#[derive(Debug, Clone)]
pub struct PanicRecovery<S> {
    inner: S,
}

impl<S, E> Service<Request<Body>> for PanicRecovery<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = E>,
    S::Future: Send + 'static,
    E: Send + 'static,
{
    type Response = Response<Body>;
    type Error = E;
    type Future = BoxFuture<'static, Result<Response<Body>, E>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let what = RequestLine::of(&request);
        // Stages that decide synchronously run inside `call`: guard it as well as the future.
        let future = match guarded(|| self.inner.call(request)) {
            Ok(future) => future,
            Err(report) => {
                what.log(&report);
                return Box::pin(futures::future::ready(Ok(panic_response())));
            }
        };
        Box::pin(async move {
            let mut future = std::pin::pin!(future);
            let outcome = std::future::poll_fn(|cx| match guarded(|| future.as_mut().poll(cx)) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
                Err(report) => Poll::Ready(Err(report)),
            })
            .await;
            match outcome {
                Ok(Ok(response)) => Ok(response.map(|body| {
                    Body::new(RecoveringBody {
                        inner: Some(body),
                        what,
                    })
                })),
                Ok(Err(error)) => Err(error),
                Err(report) => {
                    what.log(&report);
                    Ok(panic_response())
                }
            }
        })
    }
}

/// The 500 `Status` response for a request that panicked.
pub fn panic_response() -> Response<Body> {
    crate::layers::rescue::status_response(&Status::internal(PANIC_MESSAGE))
}

/// A response body whose polling is guarded: a panic ends it with an error.
struct RecoveringBody {
    /// `None` once the body panicked: it is never polled again.
    inner: Option<Body>,
    what: RequestLine,
}

/// The error a body that panicked ends with.
#[derive(Debug, thiserror::Error)]
#[error("the response body panicked")]
struct BodyPanicked;

impl http_body::Body for RecoveringBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match guarded(|| Pin::new(inner).poll_frame(cx)) {
            Ok(frame) => frame.map(|f| f.map(|r| r.map_err(Into::into))),
            Err(report) => {
                this.inner = None;
                this.what.log(&report);
                Poll::Ready(Some(Err(Box::new(BodyPanicked))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map(http_body::Body::size_hint)
            .unwrap_or_default()
    }
}

/// The method and path of a request, for the log line (never the query or a header).
#[derive(Debug, Clone)]
struct RequestLine {
    method: Method,
    path: String,
}

impl RequestLine {
    fn of<B>(request: &Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
        }
    }

    fn log(&self, report: &PanicReport) {
        tracing::error!(
            http.method = %self.method,
            url.path = %self.path,
            panic.message = %report.message,
            panic.location = %report.location,
            backtrace = report.backtrace.as_deref().unwrap_or(""),
            "a request handler panicked; answered 500 (or cut the response) and kept serving"
        );
    }
}

/// What the hook kept of a caught panic.
#[derive(Debug, Default)]
struct PanicReport {
    message: String,
    location: String,
    backtrace: Option<String>,
}

thread_local! {
    /// True while this thread runs code guarded by [`guarded`].
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// The report of the last panic on a guarded stretch of this thread.
    static CAUGHT: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

/// Runs `f`, catching a panic; the panic's report comes from the hook when it is installed.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, PanicReport> {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| PanicReport {
                message: payload_text(payload.as_ref()),
                location: "unknown".to_owned(),
                backtrace: None,
            })
    })
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Installs, once, a hook that keeps guarded panics for [`guarded`] and passes every other one
/// to the hook installed before.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
                return;
            }
            let backtrace = std::backtrace::Backtrace::capture();
            let report = PanicReport {
                message: payload_text(info.payload()),
                location: info
                    .location()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "unknown".to_owned()),
                backtrace: (backtrace.status() == std::backtrace::BacktraceStatus::Captured)
                    .then(|| backtrace.to_string()),
            };
            CAUGHT.with(|c| *c.borrow_mut() = Some(report));
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::body_text;
    use futures::StreamExt as _;
    use http::StatusCode;
    use std::convert::Infallible;
    use tower::ServiceExt;

    /// Panics in `call` for /call, in the future for /future, in the body for /body; answers
    /// "ok" otherwise.
    #[derive(Clone)]
    struct Fragile;

    impl Service<Request<Body>> for Fragile {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<Body>) -> Self::Future {
            let path = request.uri().path().to_owned();
            if path == "/call" {
                panic!("boom in call");
            }
            Box::pin(async move {
                tokio::task::yield_now().await;
                match path.as_str() {
                    "/future" => panic!("boom in the future"),
                    "/body" => {
                        let chunks = futures::stream::iter([0, 1]).map(|n| {
                            if n == 1 {
                                panic!("boom in the body");
                            }
                            Ok::<_, Infallible>(Bytes::from_static(b"first "))
                        });
                        Ok(Response::new(Body::from_stream(chunks)))
                    }
                    _ => Ok(Response::new(Body::from("ok"))),
                }
            })
        }
    }

    async fn get(service: &PanicRecovery<Fragile>, path: &str) -> Response<Body> {
        let request = Request::get(path)
            .body(Body::empty())
            .unwrap_or_else(|_| Request::new(Body::empty()));
        service
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {})
    }

    #[tokio::test]
    async fn a_panic_is_a_500_status_and_the_next_request_is_served() {
        let service = PanicRecoveryLayer::new().layer(Fragile);
        for path in ["/call", "/future"] {
            let response = get(&service, path).await;
            assert_eq!(
                response.status(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "{path}"
            );
            let body: serde_json::Value =
                serde_json::from_str(&body_text(response).await).unwrap_or_default();
            assert_eq!(body["kind"], "Status", "{path}");
            assert_eq!(body["reason"], "InternalError", "{path}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.ends_with(PANIC_MESSAGE), "{path}: {message}");
            assert!(!body.to_string().contains("boom"), "{path}: {body}");

            let response = get(&service, "/fine").await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(body_text(response).await, "ok");
        }
    }

    #[tokio::test]
    async fn a_panic_while_the_body_streams_cuts_the_body() {
        let service = PanicRecoveryLayer::new().layer(Fragile);
        let response = get(&service, "/body").await;
        assert_eq!(response.status(), StatusCode::OK);
        let collected = http_body_util::BodyExt::collect(response.into_body()).await;
        assert!(collected.is_err(), "the body should end with an error");
        assert_eq!(body_text(get(&service, "/fine").await).await, "ok");
    }

    #[test]
    fn the_report_has_the_message_and_where_it_was() {
        install_hook();
        let result: Result<u8, PanicReport> = guarded(|| panic!("with {}", "a message"));
        let Err(report) = result else {
            panic!("no panic caught");
        };
        assert_eq!(report.message, "with a message");
        assert!(report.location.contains("recovery.rs"), "{report:?}");
        // Outside a guarded stretch the thread is not marked.
        assert!(!GUARDED.with(Cell::get));
    }
}
