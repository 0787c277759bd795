//! [`Shared`]: the state every request handler of the API server reads: the store, the watch
//! cache, the admission chain, and the settings made once after start. Below every handler and
//! above the leaf modules, so that no handler imports the module that routes to it.

use std::sync::{Arc, OnceLock, Weak};

use super::admission::default_tolerations::DefaultTolerationSecondsPlugin;
use super::admission::namespace_lifecycle::NamespaceLifecycle;
use super::admission::service_accounts::ServiceAccountAdmission;
use super::admission::Admission;
use super::{escalation, watch_cache};
use crate::store::Store;

/// State shared by every request.
pub(crate) struct Shared {
    pub store: Arc<dyn Store>,
    /// One store watch per watched resource, shared by every watch request.
    pub watch_cache: Arc<watch_cache::WatchCache>,
    /// The admission chain every write passes (see [`super::admission`]); the control plane's
    /// controllers write through it too.
    pub admission: Arc<Admission>,
    /// The DefaultTolerationSeconds plugin of [`Self::admission`], for its setting.
    pub default_tolerations: Arc<DefaultTolerationSecondsPlugin>,
    /// Serializes Service creation so that two Services never get the same ClusterIP.
    pub service_ips: tokio::sync::Mutex<()>,
    /// Privilege-escalation checks on RBAC writes, once enabled.
    pub escalation: OnceLock<escalation::EscalationGuard>,
    /// The ServiceAccount token issuer behind `serviceaccounts/token`, once enabled.
    pub token_issuer: OnceLock<Arc<kgate_tokens::TokenIssuer>>,
}

impl Shared {
    /// The state of a server over `store`, with kube's built-in admission plugins.
    pub fn new(store: Arc<dyn Store>) -> Shared {
        let default_tolerations = Arc::new(DefaultTolerationSecondsPlugin::default());
        let admission = Arc::new(built_in_admission(
            Arc::downgrade(&store),
            default_tolerations.clone(),
        ));
        Shared {
            watch_cache: Arc::new(watch_cache::WatchCache::new(
                store.clone(),
                watch_cache::WatchCacheConfig::default(),
            )),
            store,
            admission,
            default_tolerations,
            service_ips: tokio::sync::Mutex::new(()),
            escalation: OnceLock::new(),
            token_issuer: OnceLock::new(),
        }
    }
}

/// kube-apiserver's built-in admission plugins that this server has, in kube's order, over
/// `store`; new pods get the seconds of `tolerations` (read at each admission: set after start).
pub(crate) fn built_in_admission(
    store: Weak<dyn Store>,
    tolerations: Arc<DefaultTolerationSecondsPlugin>,
) -> Admission {
    Admission::new(vec![
        Arc::new(NamespaceLifecycle::new(store.clone())),
        Arc::new(ServiceAccountAdmission::new(store)),
        tolerations,
    ])
}
