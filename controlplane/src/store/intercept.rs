//! Test support: a [`Store`] that lets a caller intercept calls, for fault injection in tests
//! (failed writes, lost races, counted or broken watches). It adds nothing to a real server.
//!
//! An [`Intercept`] sees every call first, with the inner store. Its methods return `None` by
//! default, which goes on to the inner store; `Some(result)` answers the call instead. An
//! interceptor may act on the inner store before either (write a competing value, open the
//! watch it wraps). [`Intercepted`] pairs one with an inner store and is itself a [`Store`].

use std::sync::Arc;

use async_trait::async_trait;

use super::{KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream};

/// Hooks on each [`Store`] method: `None` goes on to the inner store, `Some` answers instead.
#[async_trait]
pub trait Intercept: Send + Sync + 'static {
    async fn get(
        &self,
        _inner: &dyn Store,
        _key: &str,
    ) -> Option<Result<Option<KeyValue>, StoreError>> {
        None
    }
    async fn range(
        &self,
        _inner: &dyn Store,
        _request: &RangeRequest,
    ) -> Option<Result<RangeResponse, StoreError>> {
        None
    }
    async fn create(
        &self,
        _inner: &dyn Store,
        _key: &str,
        _value: &[u8],
    ) -> Option<Result<KeyValue, StoreError>> {
        None
    }
    async fn update(
        &self,
        _inner: &dyn Store,
        _key: &str,
        _value: &[u8],
        _expected: Revision,
    ) -> Option<Result<KeyValue, StoreError>> {
        None
    }
    async fn delete(
        &self,
        _inner: &dyn Store,
        _key: &str,
        _expected: Option<Revision>,
    ) -> Option<Result<KeyValue, StoreError>> {
        None
    }
    async fn watch(
        &self,
        _inner: &dyn Store,
        _prefix: &str,
        _after: Revision,
    ) -> Option<Result<WatchStream, StoreError>> {
        None
    }
    async fn current_revision(&self, _inner: &dyn Store) -> Option<Result<Revision, StoreError>> {
        None
    }
    async fn compact(
        &self,
        _inner: &dyn Store,
        _revision: Revision,
    ) -> Option<Result<(), StoreError>> {
        None
    }
}

/// An inner store behind an interceptor; reach the interceptor's state through `intercept`.
pub struct Intercepted<I> {
    pub inner: Arc<dyn Store>,
    pub intercept: I,
}

impl<I: Intercept> Intercepted<I> {
    pub fn new(inner: Arc<dyn Store>, intercept: I) -> Self {
        Intercepted { inner, intercept }
    }
}

#[async_trait]
impl<I: Intercept> Store for Intercepted<I> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        match self.intercept.get(self.inner.as_ref(), key).await {
            Some(answer) => answer,
            None => self.inner.get(key).await,
        }
    }
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        match self.intercept.range(self.inner.as_ref(), &request).await {
            Some(answer) => answer,
            None => self.inner.range(request).await,
        }
    }
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        match self
            .intercept
            .create(self.inner.as_ref(), key, &value)
            .await
        {
            Some(answer) => answer,
            None => self.inner.create(key, value).await,
        }
    }
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        let hook = self
            .intercept
            .update(self.inner.as_ref(), key, &value, expected);
        match hook.await {
            Some(answer) => answer,
            None => self.inner.update(key, value, expected).await,
        }
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        match self
            .intercept
            .delete(self.inner.as_ref(), key, expected)
            .await
        {
            Some(answer) => answer,
            None => self.inner.delete(key, expected).await,
        }
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        match self
            .intercept
            .watch(self.inner.as_ref(), prefix, after)
            .await
        {
            Some(answer) => answer,
            None => self.inner.watch(prefix, after).await,
        }
    }
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        match self.intercept.current_revision(self.inner.as_ref()).await {
            Some(answer) => answer,
            None => self.inner.current_revision().await,
        }
    }
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        match self.intercept.compact(self.inner.as_ref(), revision).await {
            Some(answer) => answer,
            None => self.inner.compact(revision).await,
        }
    }
}
