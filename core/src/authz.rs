//! Authorization contracts: an [`Authorizer`] answers a [`Decision`] for [`Attributes`]; an
//! [`AuthorizerChain`] asks each in turn (the first Allow or Deny wins) and only it can make the
//! [`Authorized`] proof that the handler and the proxy demand.

use crate::attributes::Attributes;
use crate::authn::Authenticated;
use crate::decision::Decision;
use crate::request_info::RequestInfo;
use std::fmt;
use std::sync::Arc;

/// One source of authorization decisions.
pub trait Authorizer: Send + Sync {
    /// A short name for logs (`rbac`, `policy`, `privileged-groups`).
    fn name(&self) -> &'static str;
    fn authorize(&self, attributes: &Attributes) -> Decision;
}

/// Proof that a request was authorized: the attributes that were allowed and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    attributes: Attributes,
    reason: String,
}

impl Authorized {
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A denial: the attributes and the reason, for the 403 Status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub attributes: Attributes,
    pub reason: String,
}

/// Asks each authorizer in order, as k8s.io/apiserver's union authorizer: the first Allow or Deny
/// decides; all NoOpinion is a denial.
#[derive(Clone, Default)]
pub struct AuthorizerChain {
    authorizers: Vec<Arc<dyn Authorizer>>,
}

impl fmt::Debug for AuthorizerChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.authorizers.iter().map(|a| a.name()))
            .finish()
    }
}

impl AuthorizerChain {
    pub fn new(authorizers: Vec<Arc<dyn Authorizer>>) -> Self {
        Self { authorizers }
    }

    /// The decision alone, for review APIs.
    pub fn decide(&self, attributes: &Attributes) -> Decision {
        let mut reasons = Vec::new();
        for authorizer in &self.authorizers {
            match authorizer.authorize(attributes) {
                d @ (Decision::Allow { .. } | Decision::Deny { .. }) => return d,
                Decision::NoOpinion { reason } => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
            }
        }
        Decision::no_opinion(reasons.join(", "))
    }

    /// Authorizes an authenticated request; only this makes an [`Authorized`].
    // A denial carries the attributes for the 403 text; it is the rare path and callers box it.
    #[allow(clippy::result_large_err)]
    pub fn authorize(
        &self,
        authenticated: &Authenticated,
        info: &RequestInfo,
    ) -> Result<Authorized, Denied> {
        let attributes = Attributes::new(authenticated.user().clone(), info);
        match self.decide(&attributes) {
            Decision::Allow { reason } => Ok(Authorized { attributes, reason }),
            Decision::Deny { reason } | Decision::NoOpinion { reason } => {
                Err(Denied { attributes, reason })
            }
        }
    }
}

impl Authorizer for AuthorizerChain {
    fn name(&self) -> &'static str {
        "chain"
    }
    fn authorize(&self, attributes: &Attributes) -> Decision {
        self.decide(attributes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::UserInfo;

    struct Fixed(Decision);
    impl Authorizer for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }
        fn authorize(&self, _: &Attributes) -> Decision {
            self.0.clone()
        }
    }

    fn attrs() -> Attributes {
        Attributes::resource(UserInfo::new("u"), "get", "", "pods", "ns")
    }

    #[test]
    fn first_definite_decision_wins() {
        let chain = AuthorizerChain::new(vec![
            Arc::new(Fixed(Decision::no_opinion("a"))),
            Arc::new(Fixed(Decision::deny("policy"))),
            Arc::new(Fixed(Decision::allow("rbac"))),
        ]);
        assert_eq!(chain.decide(&attrs()), Decision::deny("policy"));
    }

    #[test]
    fn all_no_opinion_is_not_allowed() {
        let chain = AuthorizerChain::new(vec![Arc::new(Fixed(Decision::no_opinion("")))]);
        assert!(!chain.decide(&attrs()).is_allow());
    }
}
