//! The write path of the control plane's own writers (the bootstrap and the controllers): the
//! same steps as a request's, in the same order — mutating admission, the resource's strategy
//! ([`super::strategy`]: prepare, default, validate), validating admission, then one store write
//! — without an HTTP request around them. Controllers never call `Store::create`, `update` or
//! `delete` for an object of the API themselves; they call a [`Writer`].
//!
//! Each write is a single compare-and-swap against the revision the caller read: a controller
//! that loses a race sees [`WriteError::Store`] with the store's `Conflict` (or `NotFound`,
//! `AlreadyExists`) and waits for the watch to bring the winner's change, as it did before.

use std::sync::Arc;

use kgate_core::{Status, UserInfo};
use serde_json::Value;
use thiserror::Error;

use super::admission::{Admission, Attributes, Operation};
use super::codec::encode_object;
use super::keys::object_key;
use super::meta::meta_str;
use super::strategy::{self, StatusFrom};
use crate::resources::ResourceDef;
use crate::store::{KeyValue, Store, StoreError};

/// Why a write of the control plane's own did not happen.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Admission or the strategy refused the object (the Status a client would have had).
    #[error("the write was refused: {}", .0.message)]
    Refused(Box<Status>),
    /// The store refused or failed the write.
    #[error("the store write failed")]
    Store(#[source] StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

impl From<Status> for WriteError {
    fn from(s: Status) -> Self {
        WriteError::Refused(Box::new(s))
    }
}

/// A writer inside the control plane: who it is (admission sees its user), and the admission
/// chain of the API server it belongs to.
#[derive(Debug, Clone)]
pub struct Writer {
    admission: Arc<Admission>,
    user: Arc<UserInfo>,
}

impl Writer {
    /// A writer that admission sees as `user` (kube's identity of the same component, such as
    /// `system:serviceaccount:kube-system:service-account-controller`).
    pub(crate) fn new(admission: Arc<Admission>, user: UserInfo) -> Writer {
        Writer {
            admission,
            user: Arc::new(user),
        }
    }

    /// Creates `obj` (its type and namespace set): admission, strategy, then a create-if-absent.
    pub async fn create(
        &self,
        store: &dyn Store,
        def: &'static ResourceDef,
        obj: Value,
    ) -> Result<KeyValue, WriteError> {
        let namespace = meta_str(&obj, "namespace").unwrap_or("").to_owned();
        let name = meta_str(&obj, "name").unwrap_or("").to_owned();
        let attrs = Attributes::new(Operation::Create, def, &namespace, &name)
            .with_object(obj)
            .with_user(Some(&self.user));
        let obj = self
            .admission
            .around(attrs, |mut obj| {
                strategy::for_resource(def).before_create(&mut obj)?;
                Ok(obj)
            })
            .await?;
        let name = meta_str(&obj, "name").unwrap_or("");
        let key = object_key(
            def,
            Some(namespace.as_str()).filter(|n| !n.is_empty()),
            name,
        );
        Ok(store.create(&key, encode_object(&obj)?).await?)
    }

    /// Replaces `old` (stored as `current`) with `next`: admission, strategy, then a
    /// compare-and-swap on `current`'s revision.
    pub async fn update(
        &self,
        store: &dyn Store,
        def: &'static ResourceDef,
        current: &KeyValue,
        old: &Value,
        next: Value,
    ) -> Result<KeyValue, WriteError> {
        let namespace = meta_str(old, "namespace").unwrap_or("");
        let name = meta_str(old, "name").unwrap_or("");
        let attrs = Attributes::new(Operation::Update, def, namespace, name)
            .with_object(next)
            .with_old(old)
            .with_user(Some(&self.user));
        let next = self
            .admission
            .around(attrs, |next| {
                strategy::for_resource(def).before_update(old, next, StatusFrom::Old)
            })
            .await?;
        Ok(store
            .update(&current.key, encode_object(&next)?, current.mod_revision)
            .await?)
    }

    /// Deletes `old` (stored as `current`) if unchanged since read: admission, then a
    /// compare-and-swap delete.
    pub async fn delete(
        &self,
        store: &dyn Store,
        def: &'static ResourceDef,
        current: &KeyValue,
        old: &Value,
    ) -> Result<(), WriteError> {
        let namespace = meta_str(old, "namespace").unwrap_or("");
        let name = meta_str(old, "name").unwrap_or("");
        let mut attrs = Attributes::new(Operation::Delete, def, namespace, name)
            .with_old(old)
            .with_user(Some(&self.user));
        self.admission.admit(&mut attrs).await?;
        self.admission.validate(&attrs).await?;
        store
            .delete(&current.key, Some(current.mod_revision))
            .await?;
        Ok(())
    }
}
