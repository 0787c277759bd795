//! The controllers that run inside the control plane, beside the API server: the ClusterRole
//! aggregation controller ([`aggregation`]), the ServiceAccount controller
//! ([`serviceaccounts`]), and, once the server has a token issuer, the legacy ServiceAccount
//! token Secret controller ([`token_secrets`]).
//!
//! They read the [`Store`] directly (list, watch), as trusted parts of the server, and write
//! through the API server's write path ([`Writer`]: admission, then the resource's strategy,
//! then one compare-and-swap), never with the store's own writes. [`Controllers`] owns their
//! tasks: the [`crate::ControlPlane`] keeps it, and dropping it stops them. A controller holds
//! the store only while it works, never while it waits, so that closing the store after the
//! server is not held up.
//!
//! Import direction: controllers use the API server's lower modules (codec, keys, meta,
//! registry); nothing in `apiserver` uses a controller.

pub mod aggregation;
pub mod serviceaccounts;
pub mod token_secrets;

use std::sync::Arc;

use kgate_core::UserInfo;
use tokio::task::JoinHandle;

use crate::apiserver::admission::Admission;
use crate::apiserver::registry::Writer;
use crate::store::Store;

/// The running controllers; dropping this stops them.
#[derive(Debug)]
pub struct Controllers {
    tasks: Vec<JoinHandle<()>>,
}

/// The writer of the controller kube runs as `name` in kube-system (kube-controller-manager's
/// `--use-service-account-credentials` identities).
fn writer(admission: &Arc<Admission>, name: &str) -> Writer {
    let user = UserInfo {
        name: format!("system:serviceaccount:kube-system:{name}"),
        groups: vec![
            "system:serviceaccounts".to_owned(),
            "system:serviceaccounts:kube-system".to_owned(),
            "system:authenticated".to_owned(),
        ],
        ..UserInfo::default()
    };
    Writer::new(admission.clone(), user)
}

impl Controllers {
    /// Starts every controller over `store`, writing through `admission`, and returns once each
    /// has made its first pass (so that what the server serves from its first request is already
    /// reconciled).
    pub(crate) async fn start(store: &Arc<dyn Store>, admission: &Arc<Admission>) -> Controllers {
        let tasks = vec![
            aggregation::spawn(
                Arc::downgrade(store),
                writer(admission, "clusterrole-aggregation-controller"),
            )
            .await,
            serviceaccounts::spawn(
                Arc::downgrade(store),
                writer(admission, "service-account-controller"),
            )
            .await,
        ];
        Controllers { tasks }
    }

    /// Starts the legacy token Secret controller over `store` (it needs the token issuer, which
    /// the server gets after it started), once its first pass is done.
    pub(crate) async fn start_token_secrets(
        store: &Arc<dyn Store>,
        admission: &Arc<Admission>,
        config: token_secrets::TokenSecretsConfig,
    ) -> Controllers {
        // kube-controller-manager's tokens controller runs with the manager's own credentials.
        let user = UserInfo::new("system:kube-controller-manager");
        let writer = Writer::new(admission.clone(), user);
        let tasks = vec![token_secrets::spawn(Arc::downgrade(store), config, writer).await];
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

/// A writer for the controllers' unit tests: the built-in admission chain over `store`.
#[cfg(test)]
pub(crate) fn test_writer(store: &Arc<dyn Store>) -> Writer {
    let tolerations = Arc::default();
    let admission = Arc::new(crate::apiserver::state::built_in_admission(
        Arc::downgrade(store),
        tolerations,
    ));
    writer(&admission, "test-controller")
}
