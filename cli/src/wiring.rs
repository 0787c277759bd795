//! The one place [`crate::up`] touches the other crates' constructors: the embedded control
//! plane (store + API server), the authenticators, the authorizers and the pipeline builder.
//! Kept apart so the run functions read as "what runs", and so a constructor that changes
//! shape is fixed here only.

use crate::config::{EtcdSettings, ServiceAccountSettings, StorageConfig};
use axum::body::Body;
use http::{Request, Response};
use kgate_controlplane::apiserver::default_tolerations::DefaultTolerationSeconds;
use kgate_controlplane::store::compactor;
use kgate_controlplane::store::etcd::{EtcdOptions, EtcdStore, EtcdTls};
use kgate_controlplane::store::redb::{RedbOptions, RedbStore};
use kgate_controlplane::store::Store;
use kgate_controlplane::ControlPlane as EmbeddedControlPlane;
use kgate_core::authn::AuthenticatorUnion;
use kgate_core::authz::AuthorizerChain;
use kgate_gateway::proxy::Proxy;
use kgate_gateway::rbac_sync::RbacSink;
use kgate_gateway::readiness::Readiness;
use kgate_gateway::reviews::RulesSource;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tower::util::BoxCloneSyncService;

/// The whole pipeline as one service, ready for the listener.
pub type PipelineService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Why a part could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WiringError {
    /// The store could not be opened.
    #[error("cannot open the store at {}", path.display())]
    Store {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// etcd could not be reached or refused the connection.
    #[error("cannot use etcd at {servers}")]
    Etcd {
        servers: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The API server could not start.
    #[error("cannot start the API server")]
    ApiServer(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The X.509 authenticator refused the CA.
    #[error("cannot build the X.509 authenticator")]
    X509(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The ServiceAccount signing keys could not be loaded or created.
    #[error("cannot load the ServiceAccount signing keys in {}", dir.display())]
    ServiceAccountKeys {
        dir: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The embedded control plane: its router, and how to close it.
pub(crate) struct ControlPlane {
    pub router: axum::Router,
    pub closer: ControlPlaneCloser,
}

/// Closes the store once the listener and background tasks have let go of the API server, so
/// the file is released and the next start on the same data dir opens it.
pub(crate) struct ControlPlaneCloser {
    api: EmbeddedControlPlane,
    store: OpenedStore,
    /// etcd's compactor (the embedded store compacts itself).
    compactor: Option<tokio::task::JoinHandle<()>>,
}

impl ControlPlaneCloser {
    /// The API server and its controllers, for settings made after it started.
    pub(crate) fn api(&self) -> &EmbeddedControlPlane {
        &self.api
    }
}

/// The backend, kept typed for closing.
enum OpenedStore {
    Embedded(Arc<RedbStore>),
    Etcd(Arc<EtcdStore>),
}

impl ControlPlaneCloser {
    /// How long shutdown waits for in-flight requests and watch streams to drop the store.
    const RELEASE_WAIT: Duration = Duration::from_secs(3);

    pub(crate) async fn close(self) {
        let ControlPlaneCloser {
            api,
            store,
            compactor,
        } = self;
        if let Some(compactor) = compactor {
            compactor.abort();
        }
        drop(api);
        let mut store = match store {
            OpenedStore::Embedded(store) => store,
            // etcd keeps the data; dropping the client closes its connections.
            OpenedStore::Etcd(store) => return drop(store),
        };
        let deadline = tokio::time::Instant::now() + Self::RELEASE_WAIT;
        loop {
            match Arc::try_unwrap(store) {
                Ok(owned) => {
                    if let Err(error) = owned.close().await {
                        tracing::error!(%error, "closing the store");
                    }
                    return;
                }
                Err(shared) if tokio::time::Instant::now() < deadline => {
                    store = shared;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    // Every acknowledged write is already durable; only the file lock lingers.
                    tracing::warn!(
                        "the store is still in use at shutdown; it closes when the last reader ends"
                    );
                    return;
                }
            }
        }
    }
}

/// Opens the store `storage` names (by default `DATA_DIR/store/kgate.redb`) and starts the API
/// server over it, new pods getting `default_tolerations`.
pub(crate) async fn open_control_plane(
    data_dir: &Path,
    storage: &StorageConfig,
    default_tolerations: DefaultTolerationSeconds,
) -> Result<ControlPlane, WiringError> {
    let (store, dyn_store, compactor): (OpenedStore, Arc<dyn Store>, _) = match storage {
        StorageConfig::Embedded { history_revisions } => {
            let store = Arc::new(open_embedded(data_dir, *history_revisions)?);
            (OpenedStore::Embedded(store.clone()), store, None)
        }
        StorageConfig::Etcd(settings) => {
            let store = Arc::new(connect_etcd(settings).await?);
            let compactor = settings
                .compaction_interval
                .map(|every| compactor::spawn(store.clone(), every));
            (OpenedStore::Etcd(store.clone()), store, compactor)
        }
    };
    let api = EmbeddedControlPlane::start(dyn_store)
        .await
        .map_err(|e| WiringError::ApiServer(Box::new(e)))?;
    api.set_default_toleration_seconds(default_tolerations);
    Ok(ControlPlane {
        router: api.router(),
        closer: ControlPlaneCloser {
            api,
            store,
            compactor,
        },
    })
}

/// Gives the control plane a ServiceAccount token issuer: TokenRequest
/// (`serviceaccounts/token`) and the legacy token Secret controller, whose Secrets get
/// `root_ca_pem` as `ca.crt`. The signing keys live in `DATA_DIR/pki/service-account-keys`
/// (by default RS256, as kubeadm's `sa.key`, which every verifier understands), created on
/// first start.
/// Returns the keys, for a verifier of the tokens issued.
pub(crate) async fn enable_service_account_tokens(
    api: &EmbeddedControlPlane,
    data_dir: &Path,
    settings: &ServiceAccountSettings,
    root_ca_pem: &str,
) -> Result<kgate_tokens::SharedKeys, WiringError> {
    let keys = service_account_keys(data_dir, settings.signing_algorithm)?;
    let issuer = Arc::new(kgate_tokens::TokenIssuer::new(
        keys.clone(),
        kgate_tokens::IssuerConfig {
            issuer: settings.issuer.clone(),
            // As kube-apiserver, whose --api-audiences default to the issuer.
            api_audiences: vec![settings.issuer.clone()],
            max_expiration: settings.max_token_expiration,
        },
    ));
    api.enable_token_requests(issuer.clone());
    api.enable_token_secrets(issuer, root_ca_pem.to_owned())
        .await;
    Ok(keys)
}

fn open_embedded(data_dir: &Path, history_revisions: u64) -> Result<RedbStore, WiringError> {
    let dir = data_dir.join("store");
    let path = dir.join("kgate.redb");
    kgate_gateway::pki::create_private_dir(&dir).map_err(|e| WiringError::Store {
        path: path.clone(),
        source: Box::new(e),
    })?;
    let options = RedbOptions {
        compaction_window: history_revisions,
        ..RedbOptions::default()
    };
    RedbStore::open(&path, options).map_err(|e| WiringError::Store {
        path,
        source: Box::new(e),
    })
}

async fn connect_etcd(settings: &EtcdSettings) -> Result<EtcdStore, WiringError> {
    let tls = settings.ca_file.as_ref().map(|ca_file| EtcdTls {
        ca_file: ca_file.clone(),
        cert_file: settings.client_cert.as_ref().map(|(cert, _)| cert.clone()),
        key_file: settings.client_cert.as_ref().map(|(_, key)| key.clone()),
    });
    let options = EtcdOptions {
        endpoints: settings.servers.clone(),
        prefix: settings.prefix.clone(),
        tls,
        ..EtcdOptions::default()
    };
    EtcdStore::connect(options)
        .await
        .map_err(|e| WiringError::Etcd {
            servers: settings.servers.join(","),
            source: Box::new(e),
        })
}

/// X.509 against the CA, then ServiceAccount tokens, then OIDC ID tokens when configured, plus
/// anonymous only where enabled.
pub(crate) fn authenticator(
    ca_der: &[u8],
    service_accounts: Arc<kgate_tokens::ServiceAccountAuthenticator>,
    oidc: Option<Arc<kgate_tokens::oidc::OidcAuthenticator>>,
    anonymous: bool,
) -> Result<AuthenticatorUnion, WiringError> {
    let x509 = kgate_gateway::x509::X509Authenticator::new(vec![ca_der.to_vec()])
        .map_err(|e| WiringError::X509(Box::new(e)))?;
    // ServiceAccount tokens first: their verifier answers "not mine" for a foreign issuer at
    // the cost of one unverified header read, and they are most of the bearer traffic.
    let mut authenticators: Vec<Arc<dyn kgate_core::authn::Authenticator>> =
        vec![Arc::new(x509), service_accounts];
    if let Some(oidc) = oidc {
        authenticators.push(oidc);
    }
    Ok(AuthenticatorUnion::new(authenticators).with_anonymous(anonymous))
}

/// What the gateway verifies ServiceAccount tokens with.
pub(crate) struct TokenSettings {
    pub keys: kgate_tokens::SharedKeys,
    pub settings: ServiceAccountSettings,
}

/// Where the ServiceAccount signing keys live.
pub(crate) fn service_account_keys_dir(data_dir: &Path) -> std::path::PathBuf {
    kgate_gateway::pki::Pki::dir_of(data_dir).join("service-account-keys")
}

/// The ServiceAccount keys of a data directory (created when absent, with `algorithm`).
pub(crate) fn service_account_keys(
    data_dir: &Path,
    algorithm: kgate_tokens::Algorithm,
) -> Result<kgate_tokens::SharedKeys, WiringError> {
    let dir = service_account_keys_dir(data_dir);
    let keys = kgate_tokens::KeySet::load_or_create(&dir, algorithm).map_err(|e| {
        WiringError::ServiceAccountKeys {
            dir: dir.clone(),
            source: Box::new(e),
        }
    })?;
    Ok(kgate_tokens::SharedKeys::new(keys))
}

/// The ServiceAccount token authenticator over `objects` (fed by the object sync), which drops
/// cached verifications of deleted objects at once.
pub(crate) fn service_account_authenticator(
    tokens: &TokenSettings,
    objects: Arc<kgate_gateway::object_index::ObjectIndex>,
) -> Arc<kgate_tokens::ServiceAccountAuthenticator> {
    let config = kgate_tokens::IssuerConfig {
        issuer: tokens.settings.issuer.clone(),
        api_audiences: vec![tokens.settings.issuer.clone()],
        max_expiration: tokens.settings.max_token_expiration,
    };
    let authenticator = Arc::new(kgate_tokens::ServiceAccountAuthenticator::new(
        tokens.keys.clone(),
        config,
        objects.clone(),
    ));
    objects.on_forget(Arc::new(ForgetInAuthenticator(authenticator.clone())));
    authenticator
}

/// Relays the object sync's deletions to the token authenticator's cache.
struct ForgetInAuthenticator(Arc<kgate_tokens::ServiceAccountAuthenticator>);

impl kgate_gateway::object_index::ForgetObject for ForgetInAuthenticator {
    fn forget(&self, kind: kgate_tokens::ObjectKind, namespace: &str, name: &str) {
        self.0.forget(kind, namespace, name);
    }
}

/// How often the key directory is checked for a rotation made by another process.
const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Follows `kgate keys rotate` and `kgate keys prune` made while running: a changed key
/// directory is reloaded and swapped in (a broken one is logged and the current keys kept).
pub(crate) fn spawn_key_reload(
    data_dir: &Path,
    keys: kgate_tokens::SharedKeys,
) -> tokio::task::JoinHandle<()> {
    spawn_key_dir_reload(service_account_keys_dir(data_dir), keys)
}

/// Follows the rotation and pruning of the key directory `dir` made while running (the
/// ServiceAccount keys, or the webhook's machine-token keys).
pub(crate) fn spawn_key_dir_reload(
    dir: std::path::PathBuf,
    keys: kgate_tokens::SharedKeys,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(KEY_RELOAD_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match keys.reload_if_changed(&dir) {
                Ok(true) => tracing::info!(dir = %dir.display(), "signing keys reloaded"),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, dir = %dir.display(), "cannot reload the signing keys; keeping the current ones")
                }
            }
        }
    })
}

/// The authorizers of the pipeline and what keeps them current.
pub(crate) struct Authorizers {
    /// `[policy deny lines, system:masters, RBAC, policy allow lines]`, in decision order.
    pub chain: AuthorizerChain,
    /// RBAC itself, for the rules lists of SelfSubjectRulesReview.
    pub rbac: Arc<kgate_authz::RbacAuthorizer>,
    /// Keeps RBAC in step with the control plane.
    pub sink: Arc<dyn RbacSink>,
    /// The chain has the policy layers, so RBAC alone does not tell every decision.
    pub has_policy: bool,
}

/// The authorization chain in decision order (the first Allow or Deny wins), and the sink that
/// keeps RBAC in step with the control plane. Without a policy file the policy layers are left
/// out.
pub(crate) fn authorizer(
    policy: Option<kgate_authz::PolicyHandle>,
) -> Result<Authorizers, WiringError> {
    let rbac = Arc::new(kgate_authz::RbacAuthorizer::new());
    let has_policy = policy.is_some();
    let mut authorizers: Vec<Arc<dyn kgate_core::authz::Authorizer>> = Vec::new();
    // Policy deny lines first: an operator's deny beats even system:masters and cluster-admin.
    if let Some(policy) = &policy {
        authorizers.push(Arc::new(kgate_authz::PolicyAuthorizer::deny(
            policy.clone(),
        )));
    }
    // system:masters may do everything else, as in kube-apiserver.
    authorizers.push(Arc::new(kgate_authz::PrivilegedGroups::default()));
    // RBAC only allows or has no opinion.
    authorizers.push(rbac.clone());
    // Policy allow lines last: asked only for what RBAC did not allow.
    if let Some(policy) = policy {
        authorizers.push(Arc::new(kgate_authz::PolicyAuthorizer::allow(policy)));
    }
    let chain = AuthorizerChain::new(authorizers);
    Ok(Authorizers {
        chain,
        sink: rbac_sink(rbac.clone()),
        rbac,
        has_policy,
    })
}

/// The sink that keeps `rbac` in step with a control plane's list and watch.
fn rbac_sink(rbac: Arc<kgate_authz::RbacAuthorizer>) -> Arc<dyn RbacSink> {
    Arc::new(RbacAuthorizerSink(rbac))
}

/// Feeds the sync's list and watch events to the RBAC authorizer.
struct RbacAuthorizerSink(Arc<kgate_authz::RbacAuthorizer>);

impl RbacSink for RbacAuthorizerSink {
    fn replace_kind(
        &self,
        kind: &str,
        objects: &[serde_json::Value],
    ) -> Result<(), kgate_gateway::rbac_sync::SinkError> {
        self.0.replace_kind(kind, objects).map_err(Into::into)
    }
    fn upsert(
        &self,
        object: &serde_json::Value,
    ) -> Result<(), kgate_gateway::rbac_sync::SinkError> {
        self.0.upsert(object).map_err(Into::into)
    }
    fn remove(&self, kind: &str, namespace: &str, name: &str) {
        self.0.remove(kind, namespace, name)
    }
}

/// Settings the pipeline needs besides its parts.
pub(crate) struct PipelineLimits {
    pub max_body_bytes: u64,
    pub max_header_bytes: usize,
}

/// The request pipeline (`chain::build`) around `handler`.
pub(crate) fn pipeline(
    authenticator: AuthenticatorUnion,
    authorizers: &Authorizers,
    limits: PipelineLimits,
    readiness: Readiness,
    issuer: Option<kgate_gateway::issuer_discovery::IssuerDocuments>,
    handler: Proxy,
) -> Result<PipelineService, WiringError> {
    let config = kgate_gateway::chain::ChainConfig {
        authenticator,
        authorizer: authorizers.chain.clone(),
        max_body_bytes: limits.max_body_bytes,
        max_header_bytes: limits.max_header_bytes,
        readiness,
        // The upstream is kgate's own control plane (in process or `kgate controlplane`),
        // which serves the resources of this table.
        scopes: Arc::new(kgate_controlplane::resources::BuiltinResources),
        rules: RulesSource {
            rbac: authorizers.rbac.clone(),
            other_authorizers: authorizers.has_policy,
        },
        issuer,
    };
    Ok(kgate_gateway::chain::build(config, handler))
}
