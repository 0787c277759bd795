//! An authorizer's answer, as `k8s.io/apiserver/pkg/authorization/authorizer.Decision`.

/// Allow, Deny or NoOpinion, each with the reason in Kubernetes' words.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Allowed; the reason names what allowed it.
    Allow { reason: String },
    /// Denied outright: no later authorizer is asked.
    Deny { reason: String },
    /// This authorizer has nothing to say; the next one is asked. A request that ends with no
    /// opinion is denied.
    NoOpinion { reason: String },
}

impl Decision {
    pub fn allow(reason: impl Into<String>) -> Self {
        Self::Allow {
            reason: reason.into(),
        }
    }
    pub fn deny(reason: impl Into<String>) -> Self {
        Self::Deny {
            reason: reason.into(),
        }
    }
    pub fn no_opinion(reason: impl Into<String>) -> Self {
        Self::NoOpinion {
            reason: reason.into(),
        }
    }
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }
    pub fn reason(&self) -> &str {
        match self {
            Self::Allow { reason } | Self::Deny { reason } | Self::NoOpinion { reason } => reason,
        }
    }
}
