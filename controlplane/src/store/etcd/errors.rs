//! What an etcd failure means for the Store.
//!
//! etcd answers its own refusals as gRPC statuses whose messages are fixed strings
//! (`etcdserver: mvcc: required revision has been compacted`); the client library and the
//! transport fail with other statuses and errors when etcd cannot be reached. Those messages
//! hold no values (a value is only ever in a request or a response body), so they may go into
//! error text; the endpoints are named so an operator knows which etcd.

use std::error::Error;
use std::time::Duration;

use crate::store::StoreError;

/// etcd's messages for the refusals a caller handles itself (from etcd's `rpctypes`).
const COMPACTED: &str = "required revision has been compacted";
const FUTURE: &str = "required revision is a future revision";
const TOO_LARGE: &str = "request is too large";
/// gRPC's own refusal of a message over the server's receive limit, which etcd sets a little
/// above `--max-request-bytes`.
const GRPC_TOO_LARGE: &str = "larger than max";

/// gRPC status codes (stable across gRPC implementations) that mean "try again later".
const CANCELLED: i32 = 1;
const DEADLINE_EXCEEDED: i32 = 4;
const RESOURCE_EXHAUSTED: i32 = 8;
const UNAVAILABLE: i32 = 14;

/// An etcd failure, sorted by what the calling operation does with it.
#[derive(Debug)]
pub(super) enum Failure {
    /// The requested revision has been compacted; the caller knows which revision it asked for.
    Compacted,
    /// The requested revision is newer than etcd's.
    FutureRevision,
    /// etcd refused the request as too large; the caller knows the value's size.
    TooLarge,
    /// Anything else, already mapped.
    Other(StoreError),
}

impl Failure {
    /// For callers that have no special case: the plain mapping.
    pub(super) fn into_store_error(self, endpoints: &str) -> StoreError {
        match self {
            Failure::Compacted => StoreError::Backend(format!(
                "etcd at {endpoints}: the requested revision has been compacted"
            )),
            Failure::FutureRevision => StoreError::Backend(format!(
                "etcd at {endpoints}: the requested revision is in the future"
            )),
            Failure::TooLarge => {
                StoreError::Backend(format!("etcd at {endpoints}: the request is too large"))
            }
            Failure::Other(error) => error,
        }
    }
}

/// The failure of an operation that did not answer within the request timeout.
pub(super) fn timed_out(endpoints: &str, timeout: Duration) -> Failure {
    Failure::Other(StoreError::Unavailable(format!(
        "etcd at {endpoints} did not answer within {timeout:?}"
    )))
}

/// Sorts an error of the etcd client.
pub(super) fn classify(error: etcd_client::Error, endpoints: &str) -> Failure {
    use etcd_client::Error as E;
    let unavailable = |detail: String| {
        Failure::Other(StoreError::Unavailable(format!(
            "etcd at {endpoints} is unreachable: {detail}"
        )))
    };
    match error {
        E::GRpcStatus(status) => {
            let message = status.message();
            // `as i32` reads the numeric gRPC code without depending on tonic's enum.
            let code = status.code() as i32;
            if message.contains(COMPACTED) {
                Failure::Compacted
            } else if message.contains(FUTURE) {
                Failure::FutureRevision
            } else if message.contains(TOO_LARGE)
                || (code == RESOURCE_EXHAUSTED && message.contains(GRPC_TOO_LARGE))
            {
                Failure::TooLarge
            } else if !message.starts_with("etcdserver:")
                || matches!(
                    code,
                    CANCELLED | DEADLINE_EXCEEDED | RESOURCE_EXHAUSTED | UNAVAILABLE
                )
            {
                // Statuses not from etcd itself come from the transport (connection refused,
                // reset, TLS); etcd's own "no leader", "timed out", "too many requests" are
                // these codes. All of them may pass on retry.
                // The status's message, not its `Display`, which adds metadata and details.
                unavailable(with_causes(message.to_owned(), status.source()))
            } else {
                Failure::Other(StoreError::Backend(format!(
                    "etcd at {endpoints} refused the request: {message}"
                )))
            }
        }
        E::TransportError(e) => unavailable(with_causes(e.to_string(), e.source())),
        E::IoError(e) => unavailable(with_causes(e.to_string(), e.source())),
        error @ (E::WatchError(_) | E::EndpointError(_)) => unavailable(error.to_string()),
        other => Failure::Other(StoreError::Backend(format!("etcd at {endpoints}: {other}"))),
    }
}

/// An error's message with its causes ("tcp connect error: Connection refused"): the transport's
/// top message alone rarely says what went wrong. None of these hold a value.
fn with_causes(mut text: String, mut source: Option<&(dyn Error + 'static)>) -> String {
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Layers often repeat their cause's words in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
