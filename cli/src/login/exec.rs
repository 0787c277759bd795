//! kubectl's side of an exec credential plugin (client.authentication.k8s.io/v1): the
//! `KUBERNETES_EXEC_INFO` kubectl passes in, and the `ExecCredential` printed back on stdout.

use serde::Deserialize;
use std::fmt;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The API version kgate speaks (and the one `kgate kubeconfig oidc` writes).
pub const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1";

/// The environment variable kubectl sets for the plugin.
pub const EXEC_INFO_ENV: &str = "KUBERNETES_EXEC_INFO";

/// Why `KUBERNETES_EXEC_INFO` was not accepted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExecInfoError {
    /// Not JSON, or not an ExecCredential.
    #[error("KUBERNETES_EXEC_INFO is not an ExecCredential")]
    Parse(#[source] serde_json::Error),
    /// Another API version than client.authentication.k8s.io/v1.
    #[error("KUBERNETES_EXEC_INFO has apiVersion {0:?}; kgate login speaks {EXEC_API_VERSION}")]
    ApiVersion(String),
}

/// What kubectl told the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecInfo {
    /// Whether the plugin may interact with the user (stdin is the terminal). Without
    /// `KUBERNETES_EXEC_INFO` (run by hand) it is assumed true.
    pub interactive: bool,
}

impl Default for ExecInfo {
    fn default() -> Self {
        Self { interactive: true }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExecInfo {
    api_version: String,
    #[serde(default)]
    spec: RawSpec,
}

#[derive(Default, Deserialize)]
struct RawSpec {
    #[serde(default)]
    interactive: Option<bool>,
}

impl ExecInfo {
    /// Reads `KUBERNETES_EXEC_INFO`; unset or empty means run by hand.
    pub fn from_env() -> Result<Self, ExecInfoError> {
        match std::env::var(EXEC_INFO_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text),
            _ => Ok(Self::default()),
        }
    }

    /// Parses the variable's JSON. kubectl sends `spec.interactive` always; a missing one is
    /// taken as false (the safe reading: do not start a browser nobody sees).
    pub fn parse(text: &str) -> Result<Self, ExecInfoError> {
        let raw: RawExecInfo = serde_json::from_str(text).map_err(ExecInfoError::Parse)?;
        if raw.api_version != EXEC_API_VERSION {
            return Err(ExecInfoError::ApiVersion(raw.api_version));
        }
        Ok(Self {
            interactive: raw.spec.interactive.unwrap_or(false),
        })
    }
}

/// The credential printed for kubectl. `Debug` leaves out the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ExecCredential {
    token: String,
    expiration: OffsetDateTime,
}

impl fmt::Debug for ExecCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecCredential")
            .field("token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl ExecCredential {
    /// A credential holding `token` (an ID token) that expires at `expiry` (Unix seconds).
    pub fn new(token: String, expiry: i64) -> Self {
        let expiration =
            OffsetDateTime::from_unix_timestamp(expiry).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Self { token, expiration }
    }

    /// The ID token (for the caller that prints it; never log it).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The ID token's expiry.
    pub fn expiration(&self) -> OffsetDateTime {
        self.expiration
    }

    /// The JSON kubectl reads from stdout.
    pub fn to_json(&self) -> String {
        let expiration = self
            .expiration
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned());
        serde_json::json!({
            "apiVersion": EXEC_API_VERSION,
            "kind": "ExecCredential",
            "status": {
                "token": self.token,
                "expirationTimestamp": expiration,
            }
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_credential_shape() {
        let credential = ExecCredential::new("eyJ.a.b".into(), 1_767_225_600);
        let json: serde_json::Value = serde_json::from_str(&credential.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {
                    "token": "eyJ.a.b",
                    "expirationTimestamp": "2026-01-01T00:00:00Z",
                }
            })
        );
        assert!(!format!("{credential:?}").contains("eyJ"));
    }

    #[test]
    fn exec_info_parsing() {
        let info = ExecInfo::parse(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}"#,
        )
        .unwrap();
        assert!(info.interactive);
        let info = ExecInfo::parse(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false,"cluster":{"server":"https://x"}}}"#,
        )
        .unwrap();
        assert!(!info.interactive);
        let info = ExecInfo::parse(
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}"#,
        )
        .unwrap();
        assert!(!info.interactive);
        assert!(matches!(
            ExecInfo::parse(r#"{"apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}"#),
            Err(ExecInfoError::ApiVersion(v)) if v.ends_with("v1beta1")
        ));
        assert!(matches!(
            ExecInfo::parse("not json"),
            Err(ExecInfoError::Parse(_))
        ));
        assert!(ExecInfo::default().interactive);
    }
}
