//! The legacy ServiceAccount token Secret controller, as kube-controller-manager's tokens
//! controller: a Secret of type `kubernetes.io/service-account-token` annotated
//! `kubernetes.io/service-account.name` gets `data.token` (a non-expiring legacy token from
//! [`TokenIssuer::issue_legacy`]), `data["ca.crt"]` (the cluster CA), `data.namespace`, and the
//! annotation `kubernetes.io/service-account.uid`.
//!
//! As kube, a token Secret whose ServiceAccount does not exist, or whose uid annotation names
//! another incarnation of it, is deleted, and deleting a ServiceAccount deletes its token
//! Secrets: a legacy token never expires, so it must not outlive the account it speaks for.
//! (Hence, as in kube, the ServiceAccount must be created before its token Secret.)
//!
//! Threat model: the Secret's data is a credential. It never reaches a log line or an error
//! message; logs name the Secret only. Writes are compare-and-swap on the revision read, so a
//! concurrent edit is never overwritten (the watch brings it, and it is reconciled again).

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use kgate_tokens::TokenIssuer;
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

use super::serviceaccounts::{core, namespaced_name, spawn_driven, Reconciler};
use crate::apiserver::codec::decode_object;
use crate::apiserver::meta::{is_deleting, meta_mut, meta_str};
use crate::apiserver::object_key;
use crate::apiserver::registry::{WriteError, Writer};
use crate::resources::ResourceDef;
use crate::store::{EventKind, KeyValue, RangeRequest, Revision, Store, StoreError, WatchEvent};

/// The Secret type this controller fills.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming the ServiceAccount.
pub const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation holding the ServiceAccount's uid.
pub const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// What the controller needs to fill Secrets.
pub struct TokenSecretsConfig {
    /// Signs the legacy tokens.
    pub issuer: Arc<TokenIssuer>,
    /// The PEM put in `ca.crt` (the CA that signs the API server's certificate); empty for none.
    pub root_ca_pem: String,
}

impl std::fmt::Debug for TokenSecretsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSecretsConfig").finish_non_exhaustive()
    }
}

/// The controller.
pub(super) struct TokenSecrets {
    config: TokenSecretsConfig,
    secrets: &'static ResourceDef,
    accounts: &'static ResourceDef,
    writer: Writer,
}

/// A token Secret's view: what the controller reads from it.
struct TokenSecret<'a> {
    namespace: &'a str,
    name: &'a str,
    account: &'a str,
    account_uid: &'a str,
}

/// The token Secret fields of `obj`; `None` for any other Secret, for one being deleted, and
/// for one that names no ServiceAccount (kube's validation refuses it; it is left alone).
fn token_secret(obj: &Value) -> Option<TokenSecret<'_>> {
    if obj.get("type").and_then(Value::as_str) != Some(SERVICE_ACCOUNT_TOKEN_TYPE)
        || is_deleting(obj)
    {
        return None;
    }
    let annotation = |key: &str| {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let account = annotation(NAME_ANNOTATION);
    if account.is_empty() {
        return None;
    }
    Some(TokenSecret {
        namespace: meta_str(obj, "namespace")?,
        name: meta_str(obj, "name")?,
        account,
        account_uid: annotation(UID_ANNOTATION),
    })
}

/// `data[key]` decoded, empty when absent or not base64.
fn data_bytes(obj: &Value, key: &str) -> Vec<u8> {
    obj.get("data")
        .and_then(|d| d.get(key))
        .and_then(Value::as_str)
        .and_then(|s| BASE64.decode(s).ok())
        .unwrap_or_default()
}

impl TokenSecrets {
    pub(super) fn new(config: TokenSecretsConfig, writer: Writer) -> Result<Self, StoreError> {
        Ok(Self {
            config,
            writer,
            secrets: core("secrets")?,
            accounts: core("serviceaccounts")?,
        })
    }

    /// Whether the Secret lacks something this controller writes (kube's `needsToken`,
    /// `needsCA`, `needsNamespace`, and the uid annotation).
    fn incomplete(&self, obj: &Value, secret: &TokenSecret<'_>) -> bool {
        data_bytes(obj, "token").is_empty()
            || data_bytes(obj, "namespace").is_empty()
            || secret.account_uid.is_empty()
            || (!self.config.root_ca_pem.is_empty()
                && data_bytes(obj, "ca.crt") != self.config.root_ca_pem.as_bytes())
    }

    /// Brings one stored Secret in line: filled, deleted, or left alone.
    async fn reconcile(&self, store: &dyn Store, kv: &KeyValue) -> Result<(), StoreError> {
        // An undecodable object was logged by the decoder; it is left alone.
        let Ok(obj) = decode_object(kv) else {
            return Ok(());
        };
        let Some(secret) = token_secret(&obj) else {
            return Ok(());
        };
        let account_key = object_key(self.accounts, Some(secret.namespace), secret.account);
        let account = match store.get(&account_key).await? {
            Some(kv) => match decode_object(&kv) {
                Ok(account) => Some(account),
                // Damage in the store (logged by the decoder) is no proof the account is gone.
                Err(_) => return Ok(()),
            },
            None => None,
        };
        let uid = account
            .as_ref()
            .and_then(|a| meta_str(a, "uid"))
            .unwrap_or("");
        if account.is_none() || (!secret.account_uid.is_empty() && secret.account_uid != uid) {
            return self.delete(store, kv, &obj, &secret).await;
        }
        if !self.incomplete(&obj, &secret) {
            return Ok(());
        }
        let mut next = obj.clone();
        if !self.fill(&mut next, &secret, uid) {
            return Ok(());
        }
        // Through the API server's write path: admission, then the strategy (system metadata
        // carried over, defaults, validation), then a compare-and-swap on the revision read.
        match self
            .writer
            .update(store, self.secrets, kv, &obj, next)
            .await
        {
            Ok(_) => {
                tracing::info!(namespace = %secret.namespace, secret = %secret.name, serviceaccount = %secret.account, "ServiceAccount token Secret filled");
                Ok(())
            }
            // Changed or deleted since it was read: the watch brings that change.
            Err(WriteError::Store(StoreError::Conflict { .. } | StoreError::NotFound)) => Ok(()),
            Err(WriteError::Store(error)) => Err(error),
            Err(WriteError::Refused(_)) => {
                tracing::error!(namespace = %secret.namespace, secret = %secret.name, "token controller: the filled Secret is invalid");
                Ok(())
            }
        }
    }

    /// Writes token, ca.crt, namespace and the uid annotation into `obj` (only what is missing
    /// or stale: an existing token is kept, as kube keeps it). False when nothing may be
    /// written: a half-filled Secret would come back through the watch to fail again.
    fn fill(&self, obj: &mut Value, secret: &TokenSecret<'_>, uid: &str) -> bool {
        let token = if data_bytes(obj, "token").is_empty() {
            match self.config.issuer.issue_legacy(
                secret.namespace,
                secret.account,
                uid,
                secret.name,
            ) {
                Ok(token) => Some(token),
                Err(error) => {
                    // The signing keys are broken: a retry will not help, and a Secret without a
                    // token is harmless; the next change or restart tries again.
                    tracing::error!(namespace = %secret.namespace, secret = %secret.name, %error, "token controller: cannot issue a legacy token");
                    return false;
                }
            }
        } else {
            None
        };
        let namespace = secret.namespace.to_owned();
        let Some(map) = obj.as_object_mut() else {
            return false;
        };
        let data = map.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(data) = data.as_object_mut() {
            if let Some(token) = token {
                data.insert("token".into(), Value::String(BASE64.encode(token)));
            }
            if !self.config.root_ca_pem.is_empty() {
                data.insert(
                    "ca.crt".into(),
                    Value::String(BASE64.encode(&self.config.root_ca_pem)),
                );
            }
            data.insert("namespace".into(), Value::String(BASE64.encode(namespace)));
        }
        let meta = meta_mut(obj);
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(UID_ANNOTATION.into(), Value::String(uid.to_owned()));
        }
        true
    }

    /// Deletes a token Secret whose ServiceAccount is gone, if it has not changed since read.
    async fn delete(
        &self,
        store: &dyn Store,
        kv: &KeyValue,
        obj: &Value,
        secret: &TokenSecret<'_>,
    ) -> Result<(), StoreError> {
        // Through the API server's write path (admission), if unchanged since read.
        match self.writer.delete(store, self.secrets, kv, obj).await {
            Ok(()) => {
                tracing::info!(namespace = %secret.namespace, secret = %secret.name, serviceaccount = %secret.account, "ServiceAccount token Secret deleted: its ServiceAccount does not exist");
                Ok(())
            }
            Err(WriteError::Store(StoreError::Conflict { .. } | StoreError::NotFound)) => Ok(()),
            Err(WriteError::Store(error)) => Err(error),
            Err(WriteError::Refused(status)) => {
                tracing::warn!(namespace = %secret.namespace, secret = %secret.name, reason = %status.message, "token controller: the delete was refused");
                Ok(())
            }
        }
    }

    /// Reconciles the token Secrets of `namespace` that name `account`.
    async fn reconcile_account(
        &self,
        store: &dyn Store,
        namespace: &str,
        account: &str,
    ) -> Result<(), StoreError> {
        let listed = store
            .range(RangeRequest {
                prefix: crate::apiserver::collection_prefix(self.secrets, Some(namespace)),
                ..RangeRequest::default()
            })
            .await?;
        for kv in &listed.items {
            let names_account = decode_object(kv)
                .ok()
                .as_ref()
                .and_then(token_secret)
                .is_some_and(|s| s.account == account);
            if names_account {
                self.reconcile(store, kv).await?;
            }
        }
        Ok(())
    }
}

/// Whether a Secret change needs a look: a new or incomplete token Secret, or one whose
/// ServiceAccount annotations changed. The controller's own fill comes back complete with the
/// same name and a uid newly set, so it is not looked at again.
fn secret_changed(controller: &TokenSecrets, event: &WatchEvent) -> bool {
    let Ok(obj) = decode_object(&event.kv) else {
        return false;
    };
    let Some(secret) = token_secret(&obj) else {
        return false;
    };
    if event.kind == EventKind::Create || controller.incomplete(&obj, &secret) {
        return true;
    }
    let prev = event.prev.as_ref().and_then(|kv| decode_object(kv).ok());
    let Some(before) = prev.as_ref().and_then(token_secret) else {
        return true;
    };
    before.account != secret.account
        || (!before.account_uid.is_empty() && before.account_uid != secret.account_uid)
}

#[async_trait]
impl Reconciler for TokenSecrets {
    const NAME: &'static str = "serviceaccount-token";

    fn prefixes(&self) -> Vec<String> {
        vec![self.secrets.key_prefix(), self.accounts.key_prefix()]
    }

    async fn resync(&self, store: &dyn Store) -> Result<Revision, StoreError> {
        let listed = store
            .range(RangeRequest {
                prefix: self.secrets.key_prefix(),
                ..RangeRequest::default()
            })
            .await?;
        for kv in &listed.items {
            self.reconcile(store, kv).await?;
        }
        Ok(listed.revision)
    }

    fn wants(&self, event: &WatchEvent) -> bool {
        if event.kv.key.starts_with(&self.accounts.key_prefix()) {
            // A deleted account takes its token Secrets along.
            return event.kind == EventKind::Delete;
        }
        event.kind != EventKind::Delete && secret_changed(self, event)
    }

    async fn handle(&self, store: &dyn Store, event: &WatchEvent) -> Result<(), StoreError> {
        if event.kv.key.starts_with(&self.accounts.key_prefix()) {
            return match namespaced_name(self.accounts, &event.kv.key) {
                Some((namespace, account)) => {
                    self.reconcile_account(store, namespace, account).await
                }
                None => Ok(()),
            };
        }
        self.reconcile(store, &event.kv).await
    }
}

/// Starts the controller; returns its task once the first pass is done.
pub(crate) async fn spawn(
    store: Weak<dyn Store>,
    config: TokenSecretsConfig,
    writer: Writer,
) -> JoinHandle<()> {
    match TokenSecrets::new(config, writer) {
        Ok(controller) => spawn_driven(store, controller).await,
        Err(error) => {
            tracing::error!(%error, "token controller: not running");
            tokio::spawn(async {})
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "token_secrets_tests.rs"]
mod tests;
