//! Authentication contracts: an [`Authenticator`] looks at a request's [`Credentials`] and answers
//! "mine: this user", "mine: invalid" or "not mine"; an [`AuthenticatorUnion`] asks each in turn,
//! and only it can make the [`Authenticated`] proof that later stages demand.
//!
//! Threat model: a credential that is presented and rejected is 401, never a fall-back to
//! anonymous; error text never carries the credential itself ([`BearerToken`] does not print).

use crate::user::UserInfo;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use thiserror::Error;

/// A bearer token. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
    /// The token itself: for verifiers only, never for logs.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// What a request presented.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The client certificate chain from the TLS handshake, leaf first, DER. The TLS layer has
    /// checked possession of the key; the chain itself is checked by the X.509 authenticator.
    pub client_certificates: Vec<Vec<u8>>,
    /// The token of an `Authorization: Bearer` header.
    pub bearer_token: Option<BearerToken>,
    /// `Authorization` was present but not a well-formed bearer credential.
    pub malformed_authorization: bool,
}

impl Credentials {
    /// True when the request presented anything at all.
    pub fn presented(&self) -> bool {
        !self.client_certificates.is_empty()
            || self.bearer_token.is_some()
            || self.malformed_authorization
    }
}

/// Why authentication failed. The text names the check, never the credential.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthnError {
    /// An authenticator recognised the credential and rejected it.
    #[error("{authenticator}: {reason}")]
    Invalid {
        authenticator: &'static str,
        reason: String,
    },
    /// No credential was presented and anonymous requests are disabled.
    #[error("no credentials were presented")]
    NoCredentials,
    /// Credentials were presented but no authenticator recognised them.
    #[error("no authenticator accepts the presented credentials")]
    Unrecognised,
    /// An authenticator could not decide (a key set or lookup was unavailable).
    #[error("{authenticator} is unavailable: {reason}")]
    Unavailable {
        authenticator: &'static str,
        reason: String,
    },
}

/// A successful answer: the user and which authenticator vouched for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnResponse {
    pub user: UserInfo,
}

/// The future an authenticator returns.
pub type AuthnFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<AuthnResponse>, AuthnError>> + Send + 'a>>;

/// One way of proving identity.
pub trait Authenticator: Send + Sync {
    /// A short name for logs and audit (`x509`, `serviceaccount`, `oidc:<issuer>`).
    fn name(&self) -> &'static str;
    /// `Ok(None)`: not mine. `Ok(Some)`: mine, valid. `Err`: mine, invalid (or undecidable).
    fn authenticate<'a>(&'a self, credentials: &'a Credentials) -> AuthnFuture<'a>;
}

/// Proof that a request was authenticated. Only [`AuthenticatorUnion::authenticate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    user: UserInfo,
    authenticator: &'static str,
    /// The user who authenticated, when [`crate::impersonation`] has made `user` another.
    original: Option<UserInfo>,
}

impl Authenticated {
    pub fn user(&self) -> &UserInfo {
        &self.user
    }
    /// Which authenticator vouched (`anonymous` for the anonymous user).
    pub fn authenticator(&self) -> &'static str {
        self.authenticator
    }
    /// The user who authenticated, when the request acts as another (impersonation); `None`
    /// when [`Self::user`] is that user. Audit records both.
    pub fn original_user(&self) -> Option<&UserInfo> {
        self.original.as_ref()
    }
    /// The proof for `user` acting on behalf of this proof's user: only the impersonation step
    /// ([`crate::impersonation::impersonate`]) makes one, after every check passed.
    pub(crate) fn acting_as(self, user: UserInfo) -> Self {
        Self {
            user,
            authenticator: self.authenticator,
            original: Some(self.user),
        }
    }
}

/// Asks each authenticator in order; the first that accepts wins, as k8s.io/apiserver's union.
#[derive(Clone, Default)]
pub struct AuthenticatorUnion {
    authenticators: Vec<Arc<dyn Authenticator>>,
    anonymous: bool,
}

impl fmt::Debug for AuthenticatorUnion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticatorUnion")
            .field(
                "authenticators",
                &self
                    .authenticators
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>(),
            )
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl AuthenticatorUnion {
    pub fn new(authenticators: Vec<Arc<dyn Authenticator>>) -> Self {
        Self {
            authenticators,
            anonymous: false,
        }
    }

    /// Lets requests with no credential at all through as `system:anonymous`.
    pub fn with_anonymous(mut self, enabled: bool) -> Self {
        self.anonymous = enabled;
        self
    }

    /// Runs the union. A presented credential that every authenticator refused or ignored is an
    /// error, never anonymous.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
    ) -> Result<Authenticated, AuthnError> {
        let mut first_error = None;
        for authenticator in &self.authenticators {
            match authenticator.authenticate(credentials).await {
                Ok(Some(response)) => {
                    let mut user = response.user;
                    user.add_authenticated_group();
                    return Ok(Authenticated {
                        original: None,
                        user,
                        authenticator: authenticator.name(),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if credentials.presented() {
            return Err(AuthnError::Unrecognised);
        }
        if self.anonymous {
            return Ok(Authenticated {
                original: None,
                user: UserInfo::anonymous(),
                authenticator: "anonymous",
            });
        }
        Err(AuthnError::NoCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Option<AuthnResponse>, AuthnError>);
    impl Authenticator for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn authenticate<'a>(&'a self, _: &'a Credentials) -> AuthnFuture<'a> {
            let answer = self.0.clone();
            Box::pin(async move { answer })
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // A tiny executor: these futures never pend.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    fn token() -> Credentials {
        Credentials {
            bearer_token: Some(BearerToken::new("abc")),
            ..Credentials::default()
        }
    }

    #[test]
    fn first_acceptance_wins_and_adds_authenticated_group() {
        let union = AuthenticatorUnion::new(vec![
            Arc::new(Fixed(Ok(None))),
            Arc::new(Fixed(Ok(Some(AuthnResponse {
                user: UserInfo::new("alice"),
            })))),
        ]);
        let a = block_on(union.authenticate(&token())).expect("accepted");
        assert_eq!(a.user().name, "alice");
        assert!(a.user().in_group("system:authenticated"));
    }

    #[test]
    fn presented_but_unrecognised_is_never_anonymous() {
        let union = AuthenticatorUnion::new(vec![Arc::new(Fixed(Ok(None)))]).with_anonymous(true);
        assert_eq!(
            block_on(union.authenticate(&token())),
            Err(AuthnError::Unrecognised)
        );
        let anon = block_on(union.authenticate(&Credentials::default())).expect("anonymous");
        assert_eq!(anon.user().name, "system:anonymous");
    }

    #[test]
    fn no_credentials_without_anonymous_is_an_error() {
        let union = AuthenticatorUnion::new(vec![]);
        assert_eq!(
            block_on(union.authenticate(&Credentials::default())),
            Err(AuthnError::NoCredentials)
        );
    }

    #[test]
    fn bearer_token_debug_is_redacted() {
        assert!(!format!("{:?}", token()).contains("abc"));
    }
}
