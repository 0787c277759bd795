//! The OpenID Connect side of `kgate login`, on `openidconnect`: the HTTP client (no redirects,
//! optionally one CA as the only root), discovery, the authorization-code flow with PKCE (S256),
//! state and nonce, the device flow (RFC 8628), the refresh, and ID token verification.
//!
//! Every ID token handed out is verified here with `IdTokenVerifier` (signature from the
//! provider's JWKS, issuer, audience = client id, expiry, and the nonce for the code flow).

use super::callback::CallbackListener;
use super::LoginError;
use kgate_gateway::error::error_chain;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreGrantType, CoreIdToken,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::reqwest;
use openidconnect::{
    AdditionalProviderMetadata, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, ProviderMetadata, RedirectUrl, RefreshToken, Scope, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::AsFd as _;
use std::path::Path;
use std::time::Duration;

/// How long the code flow waits for the browser to come back.
pub const CALLBACK_TIMEOUT: Duration = Duration::from_secs(300);

/// The discovery document, plus the device authorization endpoint `openidconnect`'s core
/// metadata does not carry.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct DeviceEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

/// Provider metadata with the device endpoint.
pub type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client made from discovery.
pub type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A verified ID token: the JWT, its `exp` (Unix seconds) and `sub`, and the refresh token.
pub struct Verified {
    pub id_token: String,
    pub expiry: i64,
    pub subject: String,
    pub refresh_token: Option<String>,
}

/// The HTTP client: redirects off (discovery and token requests must not be bounced elsewhere),
/// and with `ca_file` that CA as the only trusted root.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, LoginError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| LoginError::ReadCa {
            path: path.to_owned(),
            source,
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| LoginError::BadCa {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if certs.is_empty() {
            return Err(LoginError::BadCa {
                path: path.to_owned(),
                reason: "no certificate in the file".into(),
            });
        }
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| LoginError::Http(format!("cannot build the HTTP client: {e}")))
}

/// Fetches the discovery document and the JWKS.
pub async fn discover(issuer: &IssuerUrl, http: &reqwest::Client) -> Result<Metadata, LoginError> {
    Metadata::discover_async(issuer.clone(), http)
        .await
        .map_err(|e| LoginError::Discovery(error_chain(&e)))
}

/// The client for `metadata`.
pub fn client(metadata: Metadata, client_id: &str, client_secret: Option<&str>) -> Client {
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.to_owned()),
        client_secret.map(|s| ClientSecret::new(s.to_owned())),
    )
}

/// Scopes to request: the library always adds `openid` itself.
fn extra_scopes(scopes: &[String]) -> impl Iterator<Item = Scope> + '_ {
    scopes
        .iter()
        .filter(|s| s.as_str() != "openid")
        .map(|s| Scope::new(s.clone()))
}

/// Verifies the ID token of a token response; `nonce` for the code flow, `None` for the device
/// flow and refreshes (whose tokens carry no nonce of ours).
fn verify(
    client: &Client,
    metadata_algs: &[openidconnect::core::CoreJwsSigningAlgorithm],
    response: &CoreTokenResponse,
    nonce: Option<&Nonce>,
) -> Result<Verified, LoginError> {
    let id_token: &CoreIdToken = response.id_token().ok_or(LoginError::NoIdToken)?;
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(metadata_algs.iter().cloned());
    let claims = match nonce {
        Some(nonce) => id_token.claims(&verifier, nonce),
        None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
    }
    .map_err(|e| LoginError::InvalidIdToken(e.to_string()))?;
    Ok(Verified {
        id_token: id_token.to_string(),
        expiry: claims.expiration().timestamp(),
        subject: claims.subject().as_str().to_owned(),
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
    })
}

/// Everything a flow needs.
pub struct Provider<'a> {
    pub http: &'a reqwest::Client,
    pub metadata: Metadata,
    pub client: Client,
    pub scopes: &'a [String],
}

impl Provider<'_> {
    fn algs(&self) -> Vec<openidconnect::core::CoreJwsSigningAlgorithm> {
        self.metadata
            .id_token_signing_alg_values_supported()
            .clone()
    }

    /// The device authorization endpoint, if the provider offers one.
    pub fn device_endpoint(&self) -> Option<&DeviceAuthorizationUrl> {
        self.metadata
            .additional_metadata()
            .device_authorization_endpoint
            .as_ref()
    }

    /// Trades the refresh token for new tokens; the new ID token must verify and, as OpenID
    /// Connect Core 12.2 asks, be for the same subject as before (`subject`, when known). A
    /// response without a new refresh token keeps the old one.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        subject: Option<&str>,
    ) -> Result<Verified, LoginError> {
        let token = RefreshToken::new(refresh_token.to_owned());
        let response = self
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| LoginError::Token(e.to_string()))?
            // No scope parameter: the refresh keeps the scopes granted at login (RFC 6749 6);
            // asking again for one the provider did not grant fails the refresh.
            .request_async(self.http)
            .await
            .map_err(|e| LoginError::Token(error_chain(&e)))?;
        let mut verified = verify(&self.client, &self.algs(), &response, None)?;
        if subject.is_some_and(|s| s != verified.subject) {
            return Err(LoginError::InvalidIdToken(
                "the refreshed ID token is for another subject".into(),
            ));
        }
        if verified.refresh_token.is_none() {
            verified.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(verified)
    }

    /// The authorization-code flow: bind the loopback listener, open the browser (or print the
    /// URL), wait for the redirect, exchange the code with the PKCE verifier.
    pub async fn code_flow(
        &self,
        listener: CallbackListener,
        browser: Option<&[String]>,
        stderr: &mut dyn Write,
    ) -> Result<Verified, LoginError> {
        let redirect = RedirectUrl::new(listener.redirect_uri())
            .map_err(|e| LoginError::Http(format!("bad redirect URI: {e}")))?;
        let client = self.client.clone().set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(extra_scopes(self.scopes))
            .set_pkce_challenge(challenge)
            .url();
        let browser = match browser {
            Some(command) => Some(open_browser(command, url.as_str())?),
            None => {
                let _ = writeln!(stderr, "Open this URL in a browser: {url}");
                None
            }
        };
        // A browser command that exits successfully may have handed the URL to a running
        // browser: keep waiting. One that fails ends the login instead of a 5-minute wait.
        let browser_failed = async move {
            let Some(mut child) = browser else {
                return std::future::pending().await;
            };
            match child.wait().await {
                Ok(status) if status.success() => std::future::pending().await,
                Ok(status) => {
                    LoginError::Browser(format!("the browser command exited with {status}"))
                }
                Err(e) => LoginError::Browser(e.to_string()),
            }
        };
        let code = tokio::select! {
            code = listener.wait(&state, CALLBACK_TIMEOUT) => code.map_err(LoginError::Callback)?,
            error = browser_failed => return Err(error),
        };
        let response = client
            .exchange_code(code)
            .map_err(|e| LoginError::Token(e.to_string()))?
            .set_pkce_verifier(verifier)
            .request_async(self.http)
            .await
            .map_err(|e| LoginError::Token(error_chain(&e)))?;
        verify(&client, &self.algs(), &response, Some(&nonce))
    }

    /// The device flow (RFC 8628): show the user code, optionally open the complete
    /// verification URI, poll the token endpoint at the interval the provider asks for.
    pub async fn device_flow(
        &self,
        browser: Option<&[String]>,
        stderr: &mut dyn Write,
    ) -> Result<Verified, LoginError> {
        let endpoint = self
            .device_endpoint()
            .cloned()
            .ok_or(LoginError::NoDeviceEndpoint)?;
        let client = self.client.clone().set_device_authorization_url(endpoint);
        let details: CoreDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(extra_scopes(self.scopes))
            .request_async(self.http)
            .await
            .map_err(|e| LoginError::Token(error_chain(&e)))?;
        let _ = writeln!(
            stderr,
            "To log in, open {} and enter the code {}",
            details.verification_uri().as_str(),
            details.user_code().secret()
        );
        if let (Some(command), Some(complete)) = (browser, details.verification_uri_complete()) {
            // The browser only helps here; if it fails the user can still type the code.
            match open_browser(command, complete.secret()) {
                Ok(_child) => {}
                Err(e) => {
                    let _ = writeln!(stderr, "warning: {e}");
                }
            }
        }
        let response = client
            .exchange_device_access_token(&details)
            .map_err(|e| LoginError::Token(e.to_string()))?
            .request_async(self.http, tokio::time::sleep, None)
            .await
            .map_err(|e| LoginError::Token(error_chain(&e)))?;
        verify(&self.client, &self.algs(), &response, None)
    }
}

/// Splits a browser command (`--browser` or `$BROWSER`) into program and arguments, on
/// whitespace; `None` when empty.
pub fn browser_command(text: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    (!parts.is_empty()).then_some(parts)
}

/// Runs the browser command with `url` as its last argument, without a shell. Its stdout goes
/// to our stderr: our stdout is kubectl's credential channel.
fn open_browser(command: &[String], url: &str) -> Result<tokio::process::Child, LoginError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| LoginError::Browser("the browser command is empty".into()))?;
    // Our stderr, duplicated, as the child's stdout.
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| LoginError::Browser(e.to_string()))?;
    tokio::process::Command::new(program)
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(stdout))
        .spawn()
        .map_err(|e| LoginError::Browser(format!("cannot run {program:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_commands_split_on_whitespace() {
        assert_eq!(
            browser_command("firefox --new-window"),
            Some(vec!["firefox".to_owned(), "--new-window".to_owned()])
        );
        assert_eq!(browser_command("  "), None);
    }

    #[test]
    fn openid_is_not_requested_twice() {
        let scopes = ["openid".to_owned(), "email".to_owned()];
        let extra: Vec<String> = extra_scopes(&scopes).map(|s| s.to_string()).collect();
        assert_eq!(extra, ["email"]);
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let err = http_client(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(matches!(
            http_client(Some(&empty)),
            Err(LoginError::BadCa { .. })
        ));
        assert!(http_client(None).is_ok());
    }

    #[tokio::test]
    async fn pkce_and_state_are_in_the_authorization_url() {
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "device_authorization_endpoint": "https://idp.example/device",
        }))
        .unwrap();
        let metadata = metadata.set_jwks(openidconnect::JsonWebKeySet::new(vec![]));
        let client = client(metadata.clone(), "kgate", None)
            .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:1/callback".into()).unwrap());
        let (challenge, _verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(extra_scopes(&["openid".to_owned(), "groups".to_owned()]))
            .set_pkce_challenge(challenge.clone())
            .url();
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["code_challenge"], challenge.as_str());
        assert_eq!(query["state"], *state.secret());
        assert_eq!(query["nonce"], *nonce.secret());
        assert_eq!(query["scope"], "openid groups");
        assert_eq!(query["client_id"], "kgate");
        assert_eq!(query["redirect_uri"], "http://127.0.0.1:1/callback");
        assert!(state.secret().len() >= 16);
        // Two logins never share state, nonce or verifier.
        let (other, _) = PkceCodeChallenge::new_random_sha256();
        assert_ne!(other.as_str(), challenge.as_str());
        assert_eq!(
            metadata
                .additional_metadata()
                .device_authorization_endpoint
                .as_ref()
                .map(|u| u.as_str()),
            Some("https://idp.example/device")
        );
    }
}
