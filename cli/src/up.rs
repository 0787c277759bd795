//! What each subcommand runs. `up` = PKI + embedded control plane + pipeline + proxy over the
//! in-process router; `gateway` = the same pipeline with an HTTPS upstream, presenting the
//! front-proxy client certificate; `controlplane` = the control plane alone behind mutual TLS and
//! the [`FrontProxyGuard`], which believes identity headers only from the requestheader CA;
//! `kubeconfig` = one client certificate from the users' CA.
//!
//! Each `start_*` returns a [`Running`] once the listener is bound (readiness may follow later:
//! the RBAC sync must finish first); [`Running::shutdown`] stops accepting, drains, then stops
//! the background tasks and closes the store.

use crate::config::{
    ControlplaneConfig, GatewayConfig, GatewaySettings, KubeconfigConfig, UpConfig,
};
use crate::kubeconfig::{Kubeconfig, KubeconfigError};
use crate::wiring::{self, PipelineLimits, WiringError};
use kgate_gateway::front_proxy_guard::{
    FrontProxyGuard, RequestHeaderAuthority, RequestHeaderError,
};
use kgate_gateway::pki::{CertificateAuthority, Pki, PkiError, Validity, ADMIN_USER};
use kgate_gateway::proxy::{Proxy, Upstream};
use kgate_gateway::readiness::Readiness;
use kgate_gateway::serve::{serve, ServeOptions};
use kgate_gateway::tls::TlsError;
use kgate_gateway::upstream::RemoteUpstream;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Why kgate could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The PKI could not be loaded or created.
    #[error("the PKI in the data directory")]
    Pki(#[from] PkiError),
    /// The kubeconfig could not be written.
    #[error("the kubeconfig")]
    Kubeconfig(#[from] KubeconfigError),
    /// A TLS configuration could not be built.
    #[error("the TLS configuration")]
    Tls(#[from] TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// A part of the pipeline or control plane could not be built (the error names it).
    #[error(transparent)]
    Wiring(#[from] WiringError),
    /// The authorization policy file cannot be read or is invalid (the error names it).
    #[error(transparent)]
    Policy(#[from] kgate_gateway::policy_reload::PolicyFileError),
    /// The OIDC configuration (file or flags) cannot be read or is invalid (the error names it).
    #[error(transparent)]
    Authentication(#[from] kgate_gateway::authn_config::AuthnConfigError),
    /// The cluster's components (nodes, scheduler, controllers) could not start.
    #[error("the cluster components: {0}")]
    Cluster(String),
    /// The requestheader CA (`--requestheader-client-ca-file`) cannot be used.
    #[error(transparent)]
    RequestHeader(#[from] RequestHeaderError),
    /// A part of the webhook mode could not be built (the error names it).
    #[error("the webhook: {0}")]
    Webhook(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A started kgate process part.
pub struct Running {
    addr: SocketAddr,
    kubeconfig: Option<PathBuf>,
    readiness: Readiness,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
    control_plane: Option<wiring::ControlPlaneCloser>,
    /// The gateway's pipeline, for in-process clients ([`crate::loopback`]), which hold it
    /// weakly; `None` in `kgate controlplane`, which serves no pipeline.
    pipeline: Option<Arc<wiring::PipelineService>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin kubeconfig written for this address, if this mode writes one.
    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Waits until every readiness check passed; false after `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.readiness.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops accepting, lets open requests finish briefly, stops background tasks, and closes
    /// the store.
    pub async fn shutdown(self) {
        // The in-process clients' requests are refused from here on.
        drop(self.pipeline);
        let _ = self.shutdown.send(());
        if let Err(error) = self.server.await {
            tracing::error!(%error, "the listener task failed");
        }
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        // Last: the API server and the store it holds.
        if let Some(control_plane) = self.control_plane {
            control_plane.close().await;
        }
    }
}

/// `kgate up`.
pub async fn start_up(config: UpConfig) -> Result<Running, RunError> {
    let settings = config.gateway;
    let pki = Pki::load_or_create(&settings.data_dir)?;
    let control_plane =
        wiring::open_control_plane(&settings.data_dir, &config.storage, config.admission).await?;
    let keys = wiring::enable_service_account_tokens(
        control_plane.closer.api(),
        &settings.data_dir,
        &config.service_accounts,
        pki.ca.cert_pem(),
    )
    .await?;
    let upstream = Upstream::InProcess(control_plane.router);
    let tokens = wiring::TokenSettings {
        keys,
        settings: config.service_accounts,
    };
    let data_dir = settings.data_dir.clone();
    let client_ca_pem = pki.ca.cert_pem().to_owned();
    let mut running =
        start_gateway_part(settings, pki, upstream, tokens, Some(control_plane.closer)).await?;
    let kubeconfig = running
        .kubeconfig
        .clone()
        .ok_or(RunError::Cluster("no admin kubeconfig was written".into()))?;
    let admin = crate::cluster::client_from_kubeconfig(&kubeconfig)
        .await
        .map_err(RunError::Cluster)?;
    // As kube-apiserver's post-start hook; a failure costs the components' own ports their
    // client certificates, not the API, so it is a warning.
    if let Err(error) = crate::cluster::publish_authentication_info(&admin, &client_ca_pem).await {
        tracing::warn!(%error, "the client CA is not published for the components");
    }
    // The cluster's components are API clients of the gateway that now serves.
    if !config.cluster.components.is_empty() {
        let ca = CertificateAuthority::load(&Pki::dir_of(&data_dir))?;
        let pipeline = running
            .pipeline
            .as_ref()
            .map(Arc::downgrade)
            .ok_or(RunError::Cluster("the gateway serves no pipeline".into()))?;
        let identities = crate::cluster::Identities::new(ca, pipeline);
        let tasks = crate::cluster::start(&config.cluster, &data_dir, &admin, &identities)
            .await
            .map_err(RunError::Cluster)?;
        running.background.extend(tasks);
    }
    Ok(running)
}

/// `kgate gateway`.
pub async fn start_gateway(config: GatewayConfig) -> Result<Running, RunError> {
    let settings = config.gateway;
    let pki = Pki::load_or_create(&settings.data_dir)?;
    let tls = kgate_gateway::tls::client_config(pki.ca.cert_der(), &pki.front_proxy)?;
    let upstream = Upstream::Remote(Box::new(RemoteUpstream::new(&config.upstream, tls)));
    // The control plane signs with the keys of the shared data directory; the gateway verifies
    // with them (and follows their rotation).
    let tokens = wiring::TokenSettings {
        keys: wiring::service_account_keys(
            &settings.data_dir,
            config.service_accounts.signing_algorithm,
        )?,
        settings: config.service_accounts,
    };
    start_gateway_part(settings, pki, upstream, tokens, None).await
}

async fn start_gateway_part(
    settings: GatewaySettings,
    pki: Pki,
    upstream: Upstream,
    tokens: wiring::TokenSettings,
    control_plane: Option<wiring::ControlPlaneCloser>,
) -> Result<Running, RunError> {
    let readiness = Readiness::default();
    let objects = Arc::new(kgate_gateway::object_index::ObjectIndex::new());
    let service_accounts = wiring::service_account_authenticator(&tokens, objects.clone());
    // A bad OIDC configuration stops kgate here; a provider that is down does not.
    let oidc = kgate_gateway::authn_config::load(&settings.authentication)?;
    let authenticator = wiring::authenticator(
        pki.ca.cert_der(),
        service_accounts,
        oidc.as_ref().map(|o| o.authenticator.clone()),
        settings.anonymous_auth,
    )?;
    // A bad policy file stops kgate here, before anything listens.
    let policy = match &settings.authorization_policy_file {
        Some(path) => Some(kgate_gateway::policy_reload::load(path)?),
        None => None,
    };
    let authorizers = wiring::authorizer(policy.as_ref().map(|p| p.handle.clone()))?;
    if let Some(control_plane) = &control_plane {
        // The embedded control plane judges RBAC writes by what the gateway's RBAC knows: the
        // same objects, fed by the same sync.
        control_plane
            .api()
            .enable_escalation_checks(authorizers.rbac.clone(), authorizers.chain.clone());
    }
    let limits = PipelineLimits {
        max_body_bytes: settings.max_request_bytes,
        max_header_bytes: settings.max_header_bytes,
    };
    let tls = kgate_gateway::tls::gateway_server_config(&pki.serving)?;
    // Bound before the pipeline is built: the JWKS URI the discovery document names is ours.
    let listener = bind(settings.listen).await?;
    let addr = local_addr(&listener, settings.listen)?;
    let documents = kgate_gateway::issuer_discovery::IssuerDocuments {
        issuer: tokens.settings.issuer.clone(),
        jwks_uri: format!(
            "{}{}",
            server_url(addr),
            kgate_gateway::issuer_discovery::JWKS_PATH
        ),
        keys: tokens.keys.clone(),
    };
    let service = wiring::pipeline(
        authenticator,
        &authorizers,
        limits,
        readiness.clone(),
        Some(documents),
        Proxy::new(upstream.clone()),
    )?;

    let kubeconfig_path = settings.data_dir.join("admin.kubeconfig");
    let admin = Kubeconfig::new(
        &server_url(addr),
        pki.ca.cert_pem(),
        ADMIN_USER,
        pki.admin.clone(),
    );
    admin.write_private(&kubeconfig_path)?;

    // Registered before serving, so /readyz is 503 until the first full sync.
    let mut background = kgate_gateway::rbac_sync::spawn(
        upstream.clone(),
        authorizers.sink.clone(),
        readiness.clone(),
    );
    // ServiceAccounts, Pods, Secrets and Nodes, for token verification and revocation, and
    // the legacy token Secrets (digests of their tokens).
    background.extend(kgate_gateway::rbac_sync::spawn_set(
        &kgate_gateway::object_index::TOKEN_SECRETS,
        upstream.clone(),
        objects.token_secret_sink(),
        readiness.clone(),
    ));
    background.extend(kgate_gateway::rbac_sync::spawn_set(
        &kgate_gateway::object_index::OBJECTS,
        upstream,
        objects,
        readiness.clone(),
    ));
    background.push(wiring::spawn_key_reload(&settings.data_dir, tokens.keys));
    if let Some(policy) = policy {
        background.push(kgate_gateway::policy_reload::spawn(policy));
    }
    if let Some(oidc) = oidc {
        background.extend(kgate_gateway::authn_config::spawn(oidc, readiness.clone()));
    }
    let (shutdown, server) = spawn_server(
        listener,
        tls,
        service.clone(),
        ServeOptions::with_limits(settings.max_header_bytes, settings.limits),
    );
    tracing::info!(%addr, "gateway listening");
    Ok(Running {
        addr,
        kubeconfig: Some(kubeconfig_path),
        readiness,
        shutdown,
        server,
        background,
        control_plane,
        pipeline: Some(Arc::new(service)),
    })
}

/// `kgate webhook`: TokenReview and SubjectAccessReview for a cluster kgate does not run.
pub async fn start_webhook(
    settings: crate::webhook_cli::WebhookSettings,
) -> Result<Running, RunError> {
    let readiness = Readiness::default();
    let pki = Pki::load_or_create(&settings.data_dir)?;
    let keys = crate::webhook_cli::machine_keys(&settings.data_dir)
        .map_err(|e| RunError::Webhook(Box::new(e)))?;
    let files = crate::webhook_cli::machine_token_files(&settings.data_dir);
    let machine_tokens = Arc::new(kgate_tokens::machine::MachineTokenVerifier::new(
        keys.clone(),
        &files,
    ));
    // A bad OIDC configuration or policy file stops kgate here, before anything listens.
    let oidc = kgate_gateway::authn_config::load(&settings.authentication)?;
    let policy = match &settings.authorization_policy_file {
        Some(path) => Some(kgate_gateway::policy_reload::load(path)?),
        None => None,
    };
    // Only the policy layer: what it does not decide, the cluster's own authorizers do.
    let mut authorizers: Vec<Arc<dyn kgate_core::authz::Authorizer>> = Vec::new();
    if let Some(policy) = &policy {
        authorizers.push(Arc::new(kgate_authz::PolicyAuthorizer::deny(
            policy.handle.clone(),
        )));
        authorizers.push(Arc::new(kgate_authz::PolicyAuthorizer::allow(
            policy.handle.clone(),
        )));
    }
    let clients = kgate_gateway::x509::X509Authenticator::new(vec![pki.ca.cert_der().to_vec()])
        .map_err(|e| RunError::Webhook(Box::new(e)))?;
    let service =
        kgate_gateway::webhook::WebhookService::new(kgate_gateway::webhook::WebhookConfig {
            clients,
            allowed_client_names: settings.allowed_client_names.clone(),
            machine_tokens,
            oidc: oidc
                .as_ref()
                .map(|o| o.authenticator.clone() as Arc<dyn kgate_core::authn::Authenticator>),
            authorizer: kgate_core::authz::AuthorizerChain::new(authorizers),
            readiness: readiness.clone(),
        });
    // The address kube-apiserver calls may be another than loopback (a VM's host address): a
    // serving certificate for those names too, made at each start.
    let serving = if settings.tls_sans.is_empty() {
        pki.serving.clone()
    } else {
        let mut hosts = kgate_gateway::pki::serving_hosts();
        hosts.extend(settings.tls_sans.iter().cloned());
        pki.ca
            .issue_serving_cert(&hosts, Validity::from_now(time::Duration::days(365)))?
    };
    let tls = kgate_gateway::tls::gateway_server_config(&serving)?;
    let listener = bind(settings.listen).await?;
    let addr = local_addr(&listener, settings.listen)?;
    // `kgate token rotate-keys` / `prune-keys` apply without a restart.
    let mut background = vec![wiring::spawn_key_dir_reload(files.keys_dir(), keys)];
    if let Some(policy) = policy {
        background.push(kgate_gateway::policy_reload::spawn(policy));
    }
    if let Some(oidc) = oidc {
        background.extend(kgate_gateway::authn_config::spawn(oidc, readiness.clone()));
    }
    let (shutdown, server) = spawn_server(
        listener,
        tls,
        service,
        ServeOptions::with_limits(64 * 1024, settings.limits),
    );
    tracing::info!(%addr, allowed = ?settings.allowed_client_names, "webhook listening");
    Ok(Running {
        addr,
        kubeconfig: None,
        readiness,
        shutdown,
        server,
        background,
        control_plane: None,
        pipeline: None,
    })
}

/// `kgate controlplane`.
pub async fn start_controlplane(config: ControlplaneConfig) -> Result<Running, RunError> {
    // A bad policy file stops kgate here, before anything listens.
    let policy = match &config.authorization_policy_file {
        Some(path) => Some(kgate_gateway::policy_reload::load(path)?),
        None => None,
    };
    let pki = Pki::load_or_create(&config.data_dir)?;
    let control_plane =
        wiring::open_control_plane(&config.data_dir, &config.storage, config.admission).await?;
    let keys = wiring::enable_service_account_tokens(
        control_plane.closer.api(),
        &config.data_dir,
        &config.service_accounts,
        pki.ca.cert_pem(),
    )
    .await?;
    // Who may send identity headers: the requestheader CA, by default the front-proxy CA that
    // signs only the gateway. The listener also admits the users' CA, whose certificates get the
    // guard's 403 (and the health endpoints).
    let authority = match &config.requestheader_client_ca_file {
        Some(path) => {
            RequestHeaderAuthority::from_pem_file(path, config.requestheader_allowed_names.clone())?
        }
        None => RequestHeaderAuthority::new(
            vec![pki.front_proxy_ca.cert_der().to_vec()],
            config.requestheader_allowed_names.clone(),
        )?,
    };
    if authority
        .ca_ders()
        .iter()
        .any(|der| der.as_slice() == pki.ca.cert_der())
    {
        tracing::warn!(
            "--requestheader-client-ca-file holds the users' CA: every certificate it signs with an allowed name may claim any identity"
        );
    }
    let mut client_cas = vec![pki.ca.cert_der().to_vec()];
    client_cas.extend(authority.ca_ders().iter().cloned());
    let tls = kgate_gateway::tls::controlplane_server_config(&pki.serving, &client_cas)?;
    let listener = bind(config.listen).await?;
    let addr = local_addr(&listener, config.listen)?;
    // RBAC writes are checked for escalation against this server's own RBAC objects, kept by
    // the same list+watch the gateway uses, over the in-process router; `escalate` and `bind`
    // are asked of a chain built as the gateway's (same policy file, deny lines first).
    let readiness = Readiness::default();
    let authorizers = wiring::authorizer(policy.as_ref().map(|p| p.handle.clone()))?;
    control_plane
        .closer
        .api()
        .enable_escalation_checks(authorizers.rbac.clone(), authorizers.chain.clone());
    let mut background = kgate_gateway::rbac_sync::spawn(
        Upstream::InProcess(control_plane.router.clone()),
        authorizers.sink.clone(),
        readiness.clone(),
    );
    if let Some(policy) = policy {
        background.push(kgate_gateway::policy_reload::spawn(policy));
    }
    // `kgate keys rotate` from another process: sign with the new key at once.
    background.push(wiring::spawn_key_reload(&config.data_dir, keys));
    let service = FrontProxyGuard::new(control_plane.router, authority);
    // The guard answers the health endpoints itself; serving is being ready.
    let (shutdown, server) = spawn_server(
        listener,
        tls,
        service,
        ServeOptions::with_limits(64 * 1024, config.limits),
    );
    tracing::info!(%addr, "control plane listening");
    Ok(Running {
        addr,
        kubeconfig: None,
        readiness,
        shutdown,
        server,
        background,
        control_plane: Some(control_plane.closer),
        pipeline: None,
    })
}

/// `kgate keys rotate`: a new signing key in the data directory; the new kid.
pub fn rotate_keys(
    data_dir: &Path,
    algorithm: kgate_tokens::Algorithm,
) -> Result<String, RunError> {
    let dir = wiring::service_account_keys_dir(data_dir);
    kgate_tokens::KeySet::rotate(&dir, algorithm).map_err(|e| {
        RunError::Wiring(WiringError::ServiceAccountKeys {
            dir,
            source: Box::new(e),
        })
    })
}

/// `kgate keys prune`: keeps the newest `keep` keys; the kids removed.
pub fn prune_keys(data_dir: &Path, keep: usize) -> Result<Vec<String>, RunError> {
    let dir = wiring::service_account_keys_dir(data_dir);
    kgate_tokens::KeySet::prune(&dir, keep).map_err(|e| {
        RunError::Wiring(WiringError::ServiceAccountKeys {
            dir,
            source: Box::new(e),
        })
    })
}

/// `kgate kubeconfig`: the kubeconfig text for a new client certificate.
pub fn issue_kubeconfig(config: &KubeconfigConfig) -> Result<String, RunError> {
    let ca = CertificateAuthority::load(&Pki::dir_of(&config.data_dir))?;
    let client = ca.issue_client_cert(
        &config.user,
        &config.groups,
        Validity::from_now(config.lifetime),
    )?;
    let server = config.server.to_string();
    let kubeconfig = Kubeconfig::new(
        server.trim_end_matches('/'),
        ca.cert_pem(),
        &config.user,
        client,
    );
    Ok(kubeconfig.to_yaml()?)
}

fn spawn_server<S>(
    listener: TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    service: S,
    options: ServeOptions,
) -> (oneshot::Sender<()>, JoinHandle<()>)
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = http::Response<axum::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (shutdown, signal) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, tls, service, options, async move {
        // A dropped sender also means shut down.
        let _ = signal.await;
    }));
    (shutdown, server)
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, requested: SocketAddr) -> Result<SocketAddr, RunError> {
    listener.local_addr().map_err(|source| RunError::Bind {
        addr: requested,
        source,
    })
}

/// The URL clients on this machine use: a wildcard address is reached over loopback (which the
/// serving certificate names).
fn server_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_become_loopback_urls() {
        assert_eq!(
            server_url("0.0.0.0:6443".parse().expect("addr")),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("[::]:6443".parse().expect("addr")),
            "https://[::1]:6443"
        );
        assert_eq!(
            server_url("10.0.0.1:1".parse().expect("addr")),
            "https://10.0.0.1:1"
        );
    }
}
