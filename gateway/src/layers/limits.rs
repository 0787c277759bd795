//! Limits: requests whose headers or body are over the configured size are refused before any
//! credential is checked, so an anonymous client cannot make the gateway buffer or forward an
//! unbounded request.
//!
//! - The request line and headers are counted as they stood on the wire (`name: value\r\n` per
//!   header, plus the request target), as Go's `MaxHeaderBytes` counts them: over the limit, 431.
//! - A `Content-Length` (or a body whose size is known) over the body limit is 413 at once.
//! - A body without a length (chunked, HTTP/2 DATA frames) or one that lies about its length is
//!   wrapped in [`http_body_util::Limited`]: reading past the limit fails the read, and whatever
//!   the handler then answered, the client gets 413. The stage learns of it through a flag the
//!   wrapped body sets, because the handler may report the failed read in its own way (a 502
//!   from the proxy, a 400 from a JSON decoder) or not at all.
//!
//! The listener's own limits (hyper's maximum header list) still apply first; this stage gives
//! clients a Status instead of a dropped connection for the sizes the gateway is configured with.

use crate::error::GatewayError;
use axum::body::Body;
use futures::future::BoxFuture;
use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The configured limits; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct LimitsLayer {
    max_header_bytes: usize,
    max_body_bytes: u64,
}

impl LimitsLayer {
    pub fn new(max_header_bytes: usize, max_body_bytes: u64) -> Self {
        Self {
            max_header_bytes,
            max_body_bytes,
        }
    }
}

impl<S> Layer<S> for LimitsLayer {
    type Service = Limits<S>;
    fn layer(&self, inner: S) -> Limits<S> {
        Limits {
            inner,
            limits: *self,
        }
    }
}

/// The limits service.
#[derive(Debug, Clone)]
pub struct Limits<S> {
    inner: S,
    limits: LimitsLayer,
}

/// The request line and headers as counted against `max_header_bytes`.
fn header_bytes(request: &Request<Body>) -> usize {
    // `METHOD target HTTP/x.y\r\n`: the version and separators are a constant 12 bytes.
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    let request_line = request.method().as_str().len() + target + 12;
    request
        .headers()
        .iter()
        .fold(request_line, |total, (name, value)| {
            // `name: value\r\n`
            total
                .saturating_add(name.as_str().len())
                .saturating_add(value.len())
                .saturating_add(4)
        })
}

impl<S> Service<Request<Body>> for Limits<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = GatewayError>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = GatewayError;
    type Future = BoxFuture<'static, Result<Response<Body>, GatewayError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), GatewayError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let LimitsLayer {
            max_header_bytes,
            max_body_bytes,
        } = self.limits;
        let size = header_bytes(&request);
        if size > max_header_bytes {
            return Box::pin(futures::future::ready(Err(GatewayError::HeadersTooLarge {
                size,
                limit: max_header_bytes,
            })));
        }
        let too_large = GatewayError::BodyTooLarge {
            limit: max_body_bytes,
        };
        // A Content-Length that is not one number is refused by hyper before we see it; here
        // a value we cannot read is left to the streaming limit below.
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // The body's own size hint covers HTTP/2 and in-process requests without the header.
        let hinted = request.body().size_hint().lower();
        if hinted > max_body_bytes || declared.is_some_and(|length| length > max_body_bytes) {
            return Box::pin(futures::future::ready(Err(too_large)));
        }

        if request.body().is_end_stream() {
            // No body (most GETs): nothing to count, no wrapper to allocate.
            return Box::pin(self.inner.call(request));
        }
        let exceeded = Arc::new(AtomicBool::new(false));
        let (parts, body) = request.into_parts();
        let flag = exceeded.clone();
        let max = usize::try_from(max_body_bytes).unwrap_or(usize::MAX);
        let limited = Limited::new(body, max).map_err(move |error| {
            if error.is::<LengthLimitError>() {
                flag.store(true, Ordering::Relaxed);
            }
            error
        });
        let request = Request::from_parts(parts, Body::new(limited));
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if exceeded.load(Ordering::Relaxed) {
                return Err(too_large);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::Recorder;
    use bytes::Bytes;
    use tower::ServiceExt;

    fn limits(recorder: &Recorder) -> Limits<Recorder> {
        LimitsLayer::new(300, 10).layer(recorder.clone())
    }

    fn post(body: Body) -> Request<Body> {
        Request::post("/api/v1/namespaces/a/configmaps")
            .body(body)
            .unwrap_or_else(|_| Request::new(Body::empty()))
    }

    /// A body that arrives in chunks with no declared length.
    fn streamed(chunks: &'static [&'static str]) -> Body {
        let stream = futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes()))),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn small_requests_pass_with_their_body() {
        let recorder = Recorder::default();
        let result = limits(&recorder)
            .oneshot(post(Body::from("0123456789")))
            .await;
        assert!(result.is_ok());
        assert_eq!(
            recorder.seen().map(|s| s.body),
            Some(b"0123456789".to_vec())
        );
    }

    #[tokio::test]
    async fn headers_over_the_limit_are_431() {
        let recorder = Recorder::default();
        let mut request = post(Body::empty());
        request
            .headers_mut()
            .insert("x-padding", http::HeaderValue::from_static("p"));
        assert!(limits(&recorder).oneshot(request).await.is_ok());
        let mut request = post(Body::empty());
        let padding = "p".repeat(300);
        if let Ok(value) = http::HeaderValue::from_str(&padding) {
            request.headers_mut().insert("x-padding", value);
        }
        let result = limits(&recorder).oneshot(request).await;
        assert!(
            matches!(
                result,
                Err(GatewayError::HeadersTooLarge { limit: 300, .. })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn content_length_over_the_limit_is_413_before_the_handler() {
        let recorder = Recorder::default();
        // A streamed body has no size hint: only the header speaks.
        let mut request = post(streamed(&["01234567890"]));
        request
            .headers_mut()
            .insert(CONTENT_LENGTH, http::HeaderValue::from_static("11"));
        let result = limits(&recorder).oneshot(request).await;
        assert!(matches!(
            result,
            Err(GatewayError::BodyTooLarge { limit: 10 })
        ));
        assert!(recorder.seen().is_none());
        // A body of known size without the header (HTTP/2, in process).
        let result = limits(&recorder)
            .oneshot(post(Body::from("01234567890")))
            .await;
        assert!(matches!(
            result,
            Err(GatewayError::BodyTooLarge { limit: 10 })
        ));
        assert!(recorder.seen().is_none());
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_limit_is_413() {
        let recorder = Recorder::default();
        let result = limits(&recorder)
            .oneshot(post(streamed(&["01234", "56789", "x"])))
            .await;
        assert!(matches!(
            result,
            Err(GatewayError::BodyTooLarge { limit: 10 })
        ));
        let recorder = Recorder::default();
        let result = limits(&recorder)
            .oneshot(post(streamed(&["01234", "56789"])))
            .await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn a_body_longer_than_its_content_length_is_413() {
        let recorder = Recorder::default();
        let mut request = post(streamed(&["0123456789", "abc"]));
        request
            .headers_mut()
            .insert(CONTENT_LENGTH, http::HeaderValue::from_static("3"));
        let result = limits(&recorder).oneshot(request).await;
        assert!(matches!(result, Err(GatewayError::BodyTooLarge { .. })));
    }
}
