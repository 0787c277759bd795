//! [`ControlPlane`]: the API server and the controllers that run beside it, started and stopped
//! together. It owns both so that neither owns the other: the API server knows nothing of its
//! controllers, and the controllers write through the API server's write path
//! ([`crate::apiserver::registry`]) with its admission chain.

use std::sync::{Arc, OnceLock};

use axum::{Extension, Router};

use crate::apiserver::{default_tolerations, ApiServer, ApiServerError};
use crate::controllers::{token_secrets, Controllers};
use crate::store::Store;

/// The controllers' tasks; they stop when the last holder lets go (the control plane and every
/// router it made).
#[derive(Debug)]
struct Running {
    /// ClusterRole aggregation and ServiceAccounts, from the start.
    #[expect(dead_code, reason = "held for its Drop, which stops the controllers")]
    core: Controllers,
    /// The legacy token Secret controller, once enabled.
    token_secrets: OnceLock<Controllers>,
}

/// The control plane: cheap to clone; one [`Router`] per caller.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    api: ApiServer,
    running: Arc<Running>,
}

impl ControlPlane {
    /// Starts the API server over `store` (see [`ApiServer::start`]), then its controllers
    /// (ClusterRole aggregation, ServiceAccounts); returns once each has made its first pass.
    /// The controllers stop when the last handle of the control plane and of its routers is
    /// dropped.
    pub async fn start(store: Arc<dyn Store>) -> Result<ControlPlane, ApiServerError> {
        let api = ApiServer::start(store).await?;
        let core = Controllers::start(api.store(), api.admission()).await;
        Ok(ControlPlane {
            api,
            running: Arc::new(Running {
                core,
                token_secrets: OnceLock::new(),
            }),
        })
    }

    /// The API server.
    pub fn api(&self) -> &ApiServer {
        &self.api
    }

    /// The API server's HTTP service; it keeps the controllers running while it lives.
    pub fn router(&self) -> Router {
        self.api.router().layer(Extension(self.running.clone()))
    }

    /// Starts the legacy token Secret controller (see [`crate::controllers::token_secrets`]):
    /// Secrets of type `kubernetes.io/service-account-token` get a token from `issuer` and
    /// `root_ca_pem` as `ca.crt`. Returns once its first pass is done; it stops with the
    /// control plane. A second call changes nothing.
    pub async fn enable_token_secrets(
        &self,
        issuer: Arc<kgate_tokens::TokenIssuer>,
        root_ca_pem: String,
    ) {
        if self.running.token_secrets.get().is_some() {
            return;
        }
        let config = token_secrets::TokenSecretsConfig {
            issuer,
            root_ca_pem,
        };
        let controller =
            Controllers::start_token_secrets(self.api.store(), self.api.admission(), config).await;
        // Two racing calls: the loser's controller is dropped here, which stops it.
        let _ = self.running.token_secrets.set(controller);
    }

    /// See [`ApiServer::enable_escalation_checks`].
    pub fn enable_escalation_checks(
        &self,
        rbac: Arc<kgate_authz::RbacAuthorizer>,
        authorizer: kgate_core::authz::AuthorizerChain,
    ) {
        self.api.enable_escalation_checks(rbac, authorizer);
    }

    /// See [`ApiServer::enable_token_requests`].
    pub fn enable_token_requests(&self, issuer: Arc<kgate_tokens::TokenIssuer>) {
        self.api.enable_token_requests(issuer);
    }

    /// See [`ApiServer::set_default_toleration_seconds`].
    pub fn set_default_toleration_seconds(
        &self,
        seconds: default_tolerations::DefaultTolerationSeconds,
    ) {
        self.api.set_default_toleration_seconds(seconds);
    }

    /// The store the control plane writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.api.store()
    }
}
