//! The ServiceAccount controller, as kube-controller-manager's serviceaccount controller: every
//! namespace that is not Terminating has a ServiceAccount `default`, created with the namespace
//! and recreated soon after someone deletes it.
//!
//! It also holds the loop the store-driven controllers of this module's siblings share
//! ([`drive`]): a full pass over what exists at one store revision, then one small reconcile
//! per watch event after that revision; any failure starts over with a full pass after a
//! backoff. A missed event is therefore impossible (the watch starts where the pass read), and
//! a failure costs one pass.

use std::sync::Weak;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apiserver::codec::decode_object;
use crate::apiserver::meta::is_deleting;
use crate::apiserver::object_key;
use crate::apiserver::registry::{WriteError, Writer};
use crate::resources::{self, ResourceDef};
use crate::store::{EventKind, RangeRequest, Revision, Store, StoreError, WatchEvent};

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The ServiceAccount every namespace has.
pub use crate::apiserver::admission::service_accounts::DEFAULT_SERVICE_ACCOUNT;

/// One store-driven controller, as [`drive`] runs it.
#[async_trait]
pub(super) trait Reconciler: Send + Sync + 'static {
    /// For the logs.
    const NAME: &'static str;

    /// The key prefixes whose changes concern this controller.
    fn prefixes(&self) -> Vec<String>;

    /// Brings everything in line; returns the store revision it read at (the watch starts there).
    async fn resync(&self, store: &dyn Store) -> Result<Revision, StoreError>;

    /// Whether an event needs [`Reconciler::handle`]; decided without the store, so that the
    /// controller's own writes coming back do not hold it.
    fn wants(&self, event: &WatchEvent) -> bool;

    /// Reacts to one event. A lost race is not an error: the watch brings the change that won.
    async fn handle(&self, store: &dyn Store, event: &WatchEvent) -> Result<(), StoreError>;
}

/// Runs `reconciler` until the store is gone; `first` is told once the first pass is done.
/// The store is held only while working, never while waiting (see the module docs of
/// [`super`]).
pub(super) async fn drive<R: Reconciler>(
    store: Weak<dyn Store>,
    reconciler: R,
    first: oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut backoff = MIN_BACKOFF;
    loop {
        match session(&store, &reconciler, &mut first, &mut backoff).await {
            Ok(()) => return,
            Err(error) => {
                started(&mut first);
                tracing::warn!(controller = R::NAME, %error, retry_in = ?backoff, "controller: store failure; starting over");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Spawns [`drive`] and returns its task once the first pass is done.
pub(super) async fn spawn_driven<R: Reconciler>(
    store: Weak<dyn Store>,
    reconciler: R,
) -> JoinHandle<()> {
    let (first, done) = oneshot::channel();
    let task = tokio::spawn(drive(store, reconciler, first));
    // An error means the task ended before its first pass (the store is gone).
    let _ = done.await;
    task
}

/// Tells the spawner the first pass is done (once).
fn started(first: &mut Option<oneshot::Sender<()>>) {
    if let Some(tx) = first.take() {
        let _ = tx.send(());
    }
}

/// One full pass, then events until a failure (`Err`) or the store is gone (`Ok`).
async fn session<R: Reconciler>(
    store: &Weak<dyn Store>,
    reconciler: &R,
    first: &mut Option<oneshot::Sender<()>>,
    backoff: &mut Duration,
) -> Result<(), StoreError> {
    let mut events = {
        let Some(strong) = store.upgrade() else {
            return Ok(());
        };
        let revision = reconciler.resync(strong.as_ref()).await?;
        let mut streams = Vec::new();
        for prefix in reconciler.prefixes() {
            streams.push(strong.watch(&prefix, revision).await?);
        }
        futures::stream::select_all(streams)
    };
    started(first);
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            // A watch ends with an error when the store closes under it.
            Err(_) if store.strong_count() == 0 => return Ok(()),
            Err(error) => return Err(error),
        };
        if !reconciler.wants(&event) {
            continue;
        }
        let Some(strong) = store.upgrade() else {
            return Ok(());
        };
        reconciler.handle(strong.as_ref(), &event).await?;
        *backoff = MIN_BACKOFF;
    }
    if store.strong_count() == 0 {
        return Ok(());
    }
    Err(StoreError::Unavailable(
        "a controller watch ended".to_owned(),
    ))
}

/// The served resource `plural` of the core group.
pub(super) fn core(plural: &str) -> Result<&'static ResourceDef, StoreError> {
    resources::lookup("", "v1", plural)
        .ok_or_else(|| StoreError::Unavailable(format!("{plural} are not served")))
}

/// `(namespace, name)` of a namespaced object's key under `def`.
pub(super) fn namespaced_name<'k>(def: &ResourceDef, key: &'k str) -> Option<(&'k str, &'k str)> {
    key.strip_prefix(&def.key_prefix())?.split_once('/')
}

/// Whether a namespace object is being deleted (no new content may go in).
fn terminating(ns: &Value) -> bool {
    is_deleting(ns) || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

/// Keeps a `default` ServiceAccount in every namespace.
pub(super) struct ServiceAccounts {
    namespaces: &'static ResourceDef,
    accounts: &'static ResourceDef,
    writer: Writer,
}

impl ServiceAccounts {
    pub(super) fn new(writer: Writer) -> Result<Self, StoreError> {
        Ok(Self {
            namespaces: core("namespaces")?,
            accounts: core("serviceaccounts")?,
            writer,
        })
    }

    /// Creates `default` in `namespace` when the namespace exists, is not Terminating, and has
    /// none.
    async fn ensure_default(&self, store: &dyn Store, namespace: &str) -> Result<(), StoreError> {
        let Some(kv) = store
            .get(&object_key(self.namespaces, None, namespace))
            .await?
        else {
            return Ok(());
        };
        // An undecodable namespace was logged by the decoder; nothing can go in it.
        let Ok(ns) = decode_object(&kv) else {
            return Ok(());
        };
        if terminating(&ns) {
            return Ok(());
        }
        let key = object_key(self.accounts, Some(namespace), DEFAULT_SERVICE_ACCOUNT);
        if store.get(&key).await?.is_some() {
            return Ok(());
        }
        let account = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace},
        });
        // Through the API server's write path: the same admission, system metadata, defaults
        // and validation as a ServiceAccount created through the API.
        match self.writer.create(store, self.accounts, account).await {
            Ok(_) => {
                tracing::info!(%namespace, "ServiceAccount default created");
                Ok(())
            }
            // Someone else created it in between: it exists, which is all that is wanted.
            Err(WriteError::Store(StoreError::AlreadyExists)) => Ok(()),
            Err(WriteError::Store(error)) => Err(error),
            Err(WriteError::Refused(status)) => {
                // NamespaceLifecycle: the namespace went away or started terminating since it
                // was read; its deletion (or re-creation) comes through the watch.
                tracing::info!(%namespace, reason = %status.message, "ServiceAccount default not created");
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Reconciler for ServiceAccounts {
    const NAME: &'static str = "serviceaccount";

    fn prefixes(&self) -> Vec<String> {
        vec![self.namespaces.key_prefix(), self.accounts.key_prefix()]
    }

    async fn resync(&self, store: &dyn Store) -> Result<Revision, StoreError> {
        let listed = store
            .range(RangeRequest {
                prefix: self.namespaces.key_prefix(),
                ..RangeRequest::default()
            })
            .await?;
        for kv in &listed.items {
            if let Some(name) = kv.key.strip_prefix(&self.namespaces.key_prefix()) {
                self.ensure_default(store, name).await?;
            }
        }
        Ok(listed.revision)
    }

    fn wants(&self, event: &WatchEvent) -> bool {
        if event.kv.key.starts_with(&self.namespaces.key_prefix()) {
            return event.kind == EventKind::Create;
        }
        event.kind == EventKind::Delete
            && namespaced_name(self.accounts, &event.kv.key)
                .is_some_and(|(_, name)| name == DEFAULT_SERVICE_ACCOUNT)
    }

    async fn handle(&self, store: &dyn Store, event: &WatchEvent) -> Result<(), StoreError> {
        let key = &event.kv.key;
        let namespace = match key.strip_prefix(&self.namespaces.key_prefix()) {
            Some(name) => name,
            None => match namespaced_name(self.accounts, key) {
                Some((namespace, _)) => namespace,
                None => return Ok(()),
            },
        };
        self.ensure_default(store, namespace).await
    }
}

/// Starts the controller; returns its task once the first pass is done.
pub(crate) async fn spawn(store: Weak<dyn Store>, writer: Writer) -> JoinHandle<()> {
    match ServiceAccounts::new(writer) {
        Ok(controller) => spawn_driven(store, controller).await,
        Err(error) => {
            tracing::error!(%error, "ServiceAccount controller: not running");
            tokio::spawn(async {})
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "serviceaccounts_tests.rs"]
mod tests;
