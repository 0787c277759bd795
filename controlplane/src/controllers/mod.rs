//! The controllers that run inside the control plane, beside the API server: the ClusterRole
//! aggregation controller ([`aggregation`]), the ServiceAccount controller
//! ([`serviceaccounts`]), and, once the server has a token issuer, the legacy ServiceAccount
//! token Secret controller ([`token_secrets`]).
//!
//! They work on the [`Store`] directly (list, watch, compare-and-swap), as trusted parts of the
//! server. [`Controllers`] owns their tasks: it is kept by the API server, and dropping it (with
//! the last handle of the API server) stops them. A controller holds the store only while it
//! works, never while it waits, so that closing the store after the server is not held up.

pub mod aggregation;
pub mod serviceaccounts;
pub mod token_secrets;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::store::Store;

/// The running controllers; dropping this stops them.
#[derive(Debug)]
pub struct Controllers {
    tasks: Vec<JoinHandle<()>>,
}

impl Controllers {
    /// Starts every controller over `store`, and returns once each has made its first pass (so
    /// that what the server serves from its first request is already reconciled).
    pub async fn start(store: &Arc<dyn Store>) -> Controllers {
        let tasks = vec![
            aggregation::spawn(Arc::downgrade(store)).await,
            serviceaccounts::spawn(Arc::downgrade(store)).await,
        ];
        Controllers { tasks }
    }

    /// Starts the legacy token Secret controller over `store` (it needs the token issuer, which
    /// the server gets after it started), once its first pass is done.
    pub async fn start_token_secrets(
        store: &Arc<dyn Store>,
        config: token_secrets::TokenSecretsConfig,
    ) -> Controllers {
        let tasks = vec![token_secrets::spawn(Arc::downgrade(store), config).await];
        Controllers { tasks }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
