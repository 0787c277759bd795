//! kgate's vocabulary: who is calling ([`user::UserInfo`]), what they ask for
//! ([`request_info::RequestInfo`], [`attributes::Attributes`]), what was decided
//! ([`decision::Decision`]), how failures look on the wire ([`status::Status`]), and the two
//! contracts the pipeline is built from ([`authn::Authenticator`], [`authz::Authorizer`]) with
//! their proof types ([`authn::Authenticated`], [`authz::Authorized`]). Two steps of the
//! pipeline live here too: impersonation, the only maker of a proof for another user
//! ([`impersonation`]), and routing by scope ([`scope`], which the API server asks again).
//!
//! This crate does no I/O and depends on no runtime, HTTP stack or Kubernetes client, so every
//! other crate can share it. It follows k8s.io/apiserver's `pkg/authentication` and
//! `pkg/authorization` interfaces.

pub mod attributes;
pub mod authn;
pub mod authz;
pub mod decision;
pub mod headers;
pub mod impersonation;
pub mod request_info;
pub mod scope;
pub mod status;
pub mod user;

pub use attributes::Attributes;
pub use decision::Decision;
pub use request_info::RequestInfo;
pub use status::Status;
pub use user::UserInfo;

/// An error and its causes on one line, `: `-separated, for a log field or a message. A cause
/// whose text the line already holds is left out (many errors repeat their source's text).
/// kgate's error texts name checks and public names, never credentials.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}
