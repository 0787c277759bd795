//! The etcd v3 backend of the [`Store`], for running the control plane on an existing etcd (or
//! several kgate replicas on one), the way kube-apiserver's etcd3 storage does.
//!
//! What it owns: the translation of each Store operation into etcd requests (one transaction
//! per write, with the compare that makes it a create-if-absent or a compare-and-swap), of
//! etcd's answers and errors back into [`StoreError`], of Store keys into keys under the
//! configured prefix ([`keys`]), and of etcd watches into [`WatchStream`]s ([`watch`]).
//! It depends on `etcd-client` (gRPC over tonic, TLS by rustls with ring).
//!
//! Semantics, as kube-apiserver's: the Store revision is etcd's revision; a write is durable
//! when etcd acknowledged it (etcd commits it to a quorum's fsynced log first); `compact` is
//! etcd's compaction, which is global to the etcd cluster, not to the prefix. kube-apiserver
//! compacts every 5 minutes; whoever runs kgate on etcd should do the same (or run etcd with
//! `--auto-compaction-retention`).
//!
//! Threat model: the values are Kubernetes objects, Secrets among them, so values never appear
//! in an error, a log line or a `Debug` output of this module; key names (resource, namespace,
//! name) may. The etcd endpoints and the paths of the TLS files are named in errors so an
//! operator can act; the client key's contents are read once and handed to rustls. etcd is
//! trusted: what it answers is taken as the stored data. The prefix confines what kgate writes,
//! not what others with access to the same etcd can read or change: protect etcd with client
//! certificates (`tls`) and etcd's own permissions.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, ResponseHeader, Txn, TxnOp,
    TxnOpResponse, TxnResponse,
};

use super::{KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream};
use errors::{classify, timed_out, Failure};
use keys::{prefix_end, Keys, Root};

pub use options::{EtcdOptions, EtcdTls};

mod errors;
mod keys;
mod options;
#[cfg(test)]
#[path = "etcd_tests.rs"]
mod tests;
mod watch;

/// The largest response accepted (a list page or a watch batch of large objects): 2 GiB, as
/// kube-apiserver's etcd client. etcd is trusted; the default 4 MiB would fail lists of a few
/// large objects.
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;
/// How long to wait for etcd to name its compacted revision for a `Compacted` error.
const COMPACTED_PROBE_WAIT: Duration = Duration::from_secs(2);

/// The Store on etcd. Cheap to share behind an `Arc`; every operation is one or two etcd
/// requests on one multiplexed connection per endpoint.
pub struct EtcdStore {
    kv: KvClient,
    context: Arc<watch::Context>,
    max_value_bytes: usize,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.context.endpoints)
            .field("prefix", &self.context.keys.prefix())
            .field("max_value_bytes", &self.max_value_bytes)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to etcd and checks that it answers a read within the request timeout.
    ///
    /// Fails with `Unavailable` naming the endpoints if etcd cannot be reached (refused,
    /// timed out, TLS handshake failed), and with `Backend` if the options cannot work (no
    /// endpoints, `https://` without a CA, a TLS file that cannot be read).
    pub async fn connect(options: EtcdOptions) -> Result<EtcdStore, StoreError> {
        let endpoints = options.endpoints.join(", ");
        let connect = options::connect_options(&options).await?;
        let client = tokio::time::timeout(
            options.request_timeout,
            Client::connect(&options.endpoints, Some(connect)),
        )
        .await
        .unwrap_or_else(|_| {
            Err(etcd_client::Error::EndpointError(format!(
                "no connection within {:?}",
                options.request_timeout
            )))
        })
        .map_err(|e| classify(e, &endpoints).into_store_error(&endpoints))?;
        let store = EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            context: Arc::new(watch::Context {
                client: client
                    .watch_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
                keys: Keys::new(&options.prefix),
                endpoints,
                request_timeout: options.request_timeout,
            }),
            max_value_bytes: options.max_value_bytes,
        };
        // The client connects lazily; one read proves that etcd answers, TLS included.
        let revision = store.current_revision().await?;
        tracing::info!(
            endpoints = %store.context.endpoints,
            prefix = store.keys().prefix(),
            revision,
            "connected to etcd"
        );
        Ok(store)
    }

    fn keys(&self) -> &Keys {
        &self.context.keys
    }

    fn endpoints(&self) -> &str {
        &self.context.endpoints
    }

    /// Runs one etcd request within the request timeout.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Failure> {
        let timeout = self.context.request_timeout;
        match tokio::time::timeout(timeout, request).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(classify(error, self.endpoints())),
            Err(_) => Err(timed_out(self.endpoints(), timeout)),
        }
    }

    /// Runs a write transaction carrying a value of `size` bytes.
    async fn txn(&self, txn: Txn, size: usize) -> Result<TxnResponse, StoreError> {
        let mut kv = self.kv.clone();
        self.call(kv.txn(txn))
            .await
            .map_err(|failure| match failure {
                Failure::TooLarge => {
                    tracing::warn!(
                        size,
                        max_value_bytes = self.max_value_bytes,
                        "etcd refused a write as too large: set max_value_bytes below etcd's \
                     --max-request-bytes"
                    );
                    // etcd does not say its limit, and it counts the whole request; all that is
                    // known is that a value of this size does not fit.
                    StoreError::TooLarge {
                        size,
                        limit: size.saturating_sub(1).min(self.max_value_bytes),
                    }
                }
                other => other.into_store_error(self.endpoints()),
            })
    }

    fn header_revision(&self, header: Option<&ResponseHeader>) -> Result<Revision, StoreError> {
        header.map(ResponseHeader::revision).ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd at {} answered without a response header",
                self.endpoints()
            ))
        })
    }

    /// The `Compacted` error for a read or watch at `requested`, naming etcd's compacted
    /// revision if etcd tells it in time, else the least it can be.
    async fn compacted(&self, requested: Revision) -> StoreError {
        let compacted = watch::compacted_revision(&self.context, self.context.probe_wait())
            .await
            .filter(|&c| c > requested)
            .unwrap_or(requested + 1);
        StoreError::Compacted {
            requested,
            compacted,
        }
    }

    async fn future(&self, requested: Revision) -> StoreError {
        match self.current_revision().await {
            Ok(current) => StoreError::FutureRevision { requested, current },
            Err(error) => error,
        }
    }

    /// Checks that etcd can still serve a read at `revision` (a one-key count, no values).
    async fn check_readable(&self, revision: Revision) -> Result<(), StoreError> {
        let mut kv = self.kv.clone();
        let options = GetOptions::new().with_count_only().with_revision(revision);
        let probe = kv.get(self.keys().prefix().as_bytes().to_vec(), Some(options));
        match self.call(probe).await {
            Ok(_) => Ok(()),
            Err(Failure::Compacted) => Err(self.compacted(revision).await),
            Err(Failure::FutureRevision) => Err(self.future(revision).await),
            Err(other) => Err(other.into_store_error(self.endpoints())),
        }
    }
}

/// A Store key-value from an etcd one, copying the value.
fn to_kv(keys: &Keys, root: Root, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: keys.store_key(root, kv.key())?,
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

/// A Store key-value from an etcd one, taking the value.
fn into_kv(keys: &Keys, root: Root, kv: etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    Ok(KeyValue {
        key: keys.store_key(root, &key)?,
        value,
        create_revision,
        mod_revision,
    })
}

/// A get of the key's revisions only, for the answer of a transaction: values stay in etcd.
fn revisions_of(key: &[u8]) -> TxnOp {
    TxnOp::get(key.to_vec(), Some(GetOptions::new().with_keys_only()))
}

/// The key (revisions only) read by the transaction's get, if the key exists.
fn found(response: &TxnResponse) -> Option<etcd_client::KeyValue> {
    response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(mut get) => get.take_kvs().into_iter().next(),
        _ => None,
    })
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut kv = self.kv.clone();
        let mut response = self
            .call(kv.get(self.keys().etcd_key(key), None))
            .await
            .map_err(|f| f.into_store_error(self.endpoints()))?;
        Ok(response.take_kvs().into_iter().next().map(|kv| {
            let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
            KeyValue {
                key: key.to_owned(),
                value: kv.into_key_value().1,
                create_revision,
                mod_revision,
            }
        }))
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        let root = Root::of(&request.prefix);
        let prefix = self.keys().etcd_key(&request.prefix);
        let end = prefix_end(&prefix);
        let mut start = prefix;
        if let Some(after) = &request.start_after {
            // The first key after `after` is `after` + NUL; a continue key before the prefix
            // (no key of it was seen yet) starts at the prefix.
            let mut next = self.keys().etcd_key(after);
            next.push(0);
            start = start.max(next);
        }
        // Like etcd, a revision of 0 (or below) means the latest.
        let at = request.revision.filter(|&r| r > 0);
        if start >= end {
            // Past the prefix's last possible key: nothing, at the asked revision, still checked.
            let revision = match at {
                Some(at) => self.check_readable(at).await.map(|()| at)?,
                None => self.current_revision().await?,
            };
            return Ok(RangeResponse {
                items: Vec::new(),
                revision,
                more: false,
            });
        }
        let options = GetOptions::new()
            .with_range(end)
            .with_limit(i64::try_from(request.limit).unwrap_or(i64::MAX))
            .with_revision(at.unwrap_or(0));
        let mut kv = self.kv.clone();
        let mut response = match self.call(kv.get(start, Some(options))).await {
            Ok(response) => response,
            Err(Failure::Compacted) => return Err(self.compacted(at.unwrap_or(0)).await),
            Err(Failure::FutureRevision) => return Err(self.future(at.unwrap_or(0)).await),
            Err(other) => return Err(other.into_store_error(self.endpoints())),
        };
        let revision = match at {
            Some(at) => at,
            None => self.header_revision(response.header())?,
        };
        let more = response.more();
        let items = response
            .take_kvs()
            .into_iter()
            .map(|kv| into_kv(self.keys(), root, kv))
            .collect::<Result<_, _>>()?;
        Ok(RangeResponse {
            items,
            revision,
            more,
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        StoreError::check_size(&value, self.max_value_bytes)?;
        let etcd_key = self.keys().etcd_key(key);
        // A create revision of 0 is etcd's "absent" (never created, or deleted since).
        let txn = Txn::new()
            .when([Compare::create_revision(
                etcd_key.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(etcd_key, value.clone(), None)]);
        let response = self.txn(txn, value.len()).await?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists);
        }
        let revision = self.header_revision(response.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        StoreError::check_size(&value, self.max_value_bytes)?;
        let etcd_key = self.keys().etcd_key(key);
        // An absent key has mod revision 0, so `expected == 0` alone would create it: the key
        // must also exist. On success the get after the put reads the create revision; on
        // failure the get tells absent from changed, in the same transaction.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(etcd_key.clone(), CompareOp::Equal, expected),
                Compare::version(etcd_key.clone(), CompareOp::Greater, 0),
            ])
            .and_then([
                TxnOp::put(etcd_key.clone(), value.clone(), None),
                revisions_of(&etcd_key),
            ])
            .or_else([revisions_of(&etcd_key)]);
        let response = self.txn(txn, value.len()).await?;
        let current = found(&response);
        if !response.succeeded() {
            return Err(match current {
                Some(kv) => StoreError::Conflict {
                    current: kv.mod_revision(),
                },
                None => StoreError::NotFound,
            });
        }
        let revision = self.header_revision(response.header())?;
        let create_revision = current.map(|kv| kv.create_revision()).ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd at {} did not return the updated key {key}",
                self.endpoints()
            ))
        })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let etcd_key = self.keys().etcd_key(key);
        let mut when = vec![Compare::version(etcd_key.clone(), CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            when.push(Compare::mod_revision(
                etcd_key.clone(),
                CompareOp::Equal,
                expected,
            ));
        }
        let txn = Txn::new()
            .when(when)
            .and_then([TxnOp::delete(
                etcd_key.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([revisions_of(&etcd_key)]);
        let response = self.txn(txn, 0).await?;
        if !response.succeeded() {
            return Err(match found(&response) {
                Some(kv) => StoreError::Conflict {
                    current: kv.mod_revision(),
                },
                None => StoreError::NotFound,
            });
        }
        let revision = self.header_revision(response.header())?;
        let deleted = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(mut delete) => delete.take_prev_kvs().into_iter().next(),
            _ => None,
        });
        let deleted = deleted.ok_or_else(|| {
            StoreError::Backend(format!(
                "etcd at {} deleted {key} without returning its value",
                self.endpoints()
            ))
        })?;
        let create_revision = deleted.create_revision();
        Ok(KeyValue {
            key: key.to_owned(),
            value: deleted.into_key_value().1,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let after = after.max(0);
        // etcd starts a watch at any revision it has events for, the compacted revision
        // included, but the Store forgets history at and below the compacted revision: a
        // watch after `after` needs `after` readable. (etcd's revisions start at 1.) A future
        // revision is fine: the watch waits for it, as etcd's does.
        match self.check_readable(after.max(1)).await {
            Ok(()) | Err(StoreError::FutureRevision { .. }) => {}
            Err(StoreError::Compacted { compacted, .. }) => {
                return Err(StoreError::Compacted {
                    requested: after,
                    compacted,
                })
            }
            Err(other) => return Err(other),
        }
        watch::start(self.context.clone(), prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let mut kv = self.kv.clone();
        let count = GetOptions::new().with_count_only();
        let response = self
            .call(kv.get(self.keys().prefix().as_bytes().to_vec(), Some(count)))
            .await
            .map_err(|f| f.into_store_error(self.endpoints()))?;
        self.header_revision(response.header())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        if revision <= 0 {
            return Ok(());
        }
        let mut kv = self.kv.clone();
        match self.call(kv.compact(revision, None)).await {
            // Compacted already, at this revision or a later one.
            Ok(_) | Err(Failure::Compacted) => Ok(()),
            Err(Failure::FutureRevision) => Err(self.future(revision).await),
            Err(other) => Err(other.into_store_error(self.endpoints())),
        }
    }
}
