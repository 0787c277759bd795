//! The control plane's storage contract, shaped like etcd v3: a global revision (which the API
//! serves as `resourceVersion`), get, range by prefix with limit and continue, create-if-absent,
//! compare-and-swap update and delete on the mod revision, watch of a prefix from a revision
//! (events carry the previous value), and compaction.
//!
//! Values are opaque bytes (the API server stores JSON without `metadata.resourceVersion`; it sets
//! that from the mod revision on the way out, as kube-apiserver's etcd3 storage does).

use async_trait::async_trait;
use futures::stream::BoxStream;
use thiserror::Error;

pub mod compactor;
#[cfg(test)]
pub mod conformance;
pub mod etcd;
pub mod intercept;
pub mod redb;

/// A store revision: increases by one with every write, across all keys.
pub type Revision = i64;

/// One stored key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision that created this key (since it last did not exist).
    pub create_revision: Revision,
    /// The revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A range read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// Every key that starts with this.
    pub prefix: String,
    /// Start strictly after this key (the continue position).
    pub start_after: Option<String>,
    /// At most this many items; 0 means no limit.
    pub limit: usize,
    /// Read as of this revision; `None` reads the latest.
    pub revision: Option<Revision>,
}

/// The answer to a range read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeResponse {
    pub items: Vec<KeyValue>,
    /// The revision the read was served at (use it to continue at the same revision).
    pub revision: Revision,
    /// More keys remain after the last item.
    pub more: bool,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Create,
    Update,
    Delete,
}

/// One change, in revision order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// For create and update, the new key-value; for delete, the last value with `mod_revision`
    /// set to the deletion's revision.
    pub kv: KeyValue,
    /// The value before this change (none for a create).
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of events, in revision order, with none missing. It ends with an error if the
/// watcher fell too far behind (`Compacted`) or the store went away (`Unavailable`).
pub type WatchStream = BoxStream<'static, Result<WatchEvent, StoreError>>;

/// Why a store operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The key does not exist.
    #[error("key not found")]
    NotFound,
    /// A create found the key already there.
    #[error("key already exists")]
    AlreadyExists,
    /// A compare-and-swap found another mod revision.
    #[error("mod revision mismatch (current {current})")]
    Conflict {
        /// The key's current mod revision.
        current: Revision,
    },
    /// The requested revision is older than the compacted one (the API answers 410 Gone).
    #[error("revision {requested} has been compacted (oldest kept {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// A revision newer than the store has.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// A value over the store's size limit.
    #[error("value of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The store cannot serve now (etcd down, the writer stopped); retrying may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The data on disk is damaged or not ours.
    #[error("storage is corrupt: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("storage error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Refuses a value over a backend's size limit before it is sent anywhere.
    pub(crate) fn check_size(value: &[u8], limit: usize) -> Result<(), StoreError> {
        if value.len() > limit {
            return Err(StoreError::TooLarge {
                size: value.len(),
                limit,
            });
        }
        Ok(())
    }
}

/// The storage contract. Implementations: [`redb::RedbStore`] (embedded, the default) and
/// [`etcd::EtcdStore`] (etcd v3, as kube-apiserver). One conformance suite holds both to it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;
    /// Keys under a prefix, in key order.
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError>;
    /// Creates `key`; fails with `AlreadyExists` if present. Durable when it returns.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError>;
    /// Replaces `key` if its mod revision is `expected`. Durable when it returns.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError>;
    /// Deletes `key`, if `expected` is given only at that mod revision. Returns the deleted value
    /// with `mod_revision` set to the deletion's revision. Durable when it returns.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError>;
    /// Events under `prefix` with revision strictly greater than `after`.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;
    /// The latest revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;
    /// Forgets history at and below `revision`.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}
