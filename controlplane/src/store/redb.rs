//! The embedded store on redb: the default backend, one file on one machine.
//!
//! Why redb: pure Rust (no C toolchain, no FFI), copy-on-write B-trees with checksummed commit
//! slots so a crash mid-write leaves the last committed state, one writer with any number of
//! concurrent MVCC readers (the same shape as our `Store`), and a page cache of bounded size, so
//! objects are not all held in memory and a list pages through the file.
//!
//! Shape:
//! - **Writes** go through a queue to one writer thread, which commits each batch of queued writes
//!   in one transaction and one fsync, then answers each write and broadcasts the events
//!   ([`writer`]). A write is acknowledged only once durable.
//! - **Reads** (`get`, `range`, the watch replay) each run in their own read transaction,
//!   concurrently with the writer ([`read`]): ranges and replays on the blocking pool, a `get`
//!   of one key on the calling task (a few cached pages cost less than the thread hand-off).
//! - **History**: a global revision; every write is kept as a version and an event-log entry
//!   ([`schema`]), so watches replay from any revision not compacted, and a range can be served at
//!   any such revision (the continue position of a paged list).
//! - **Compaction** keeps the last [`RedbOptions::compaction_window`] revisions, automatically,
//!   and on [`Store::compact`]. The compacted revision is stored, so it survives restarts.
//! - **Watches** replay the log, then follow the broadcast ([`watch`]).

use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ::redb::{Builder, Database, DatabaseError, ReadableTableMetadata, StorageError};
use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream};

mod read;
mod schema;
#[cfg(test)]
mod tests;
mod watch;
mod writer;

use schema::{backend, meta, FORMAT_VERSION, HIST, KV, LOG, META, META_FORMAT};
use writer::{Batch, Op};

/// How the embedded store behaves. `Default` gives the values documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedbOptions {
    /// Revisions of history to keep for watches and reads at older revisions; older ones are
    /// compacted automatically (in steps of a tenth of the window). 0 turns automatic
    /// compaction off. Default 10,000: kube-apiserver compacts every 5 minutes, and 10,000 writes
    /// cover that at over 30 writes per second, while bounding the history on disk.
    pub compaction_window: u64,
    /// The largest value accepted; larger ones fail with `TooLarge`. Default 1.5 MiB, etcd's
    /// default request limit, so both backends refuse the same objects.
    pub max_value_bytes: usize,
    /// Memory for redb's page cache. Default 64 MiB.
    pub cache_bytes: usize,
    /// Verify every page checksum when opening, so a file damaged outside redb fails to open with
    /// `Corrupt` instead of being trusted. Reads the whole file once. Default on.
    pub verify_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            compaction_window: 10_000,
            max_value_bytes: 1536 * 1024,
            cache_bytes: 64 * 1024 * 1024,
            verify_on_open: true,
        }
    }
}

/// Writes waiting for the writer at most; a full queue makes writers wait (back-pressure).
const QUEUE: usize = 4096;
/// Committed batches a watcher may fall behind before it re-reads from the log.
const BROADCAST: usize = 1024;

/// The embedded store. Dropping it stops the writer after the batch in flight; use
/// [`RedbStore::close`] to wait for that and release the file.
pub struct RedbStore {
    db: Arc<Database>,
    ops: mpsc::Sender<Op>,
    events: broadcast::WeakSender<Batch>,
    writer: Mutex<Option<JoinHandle<()>>>,
    max_value_bytes: usize,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("max_value_bytes", &self.max_value_bytes)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating an empty one if the file does not exist or is empty.
    ///
    /// A file that is not a redb database, is damaged, or is another program's redb database
    /// fails with `Corrupt`; a file that cannot be opened (permissions, a directory, a missing
    /// parent, another process holding it) fails with `Unavailable`. Both name the path.
    pub fn open(path: &Path, options: RedbOptions) -> Result<RedbStore, StoreError> {
        let shown = path.display();
        let mut builder = Builder::new();
        builder
            .set_cache_size(options.cache_bytes)
            .set_check_integrity_on_open(options.verify_on_open);
        // redb may panic on a file damaged in ways it does not check; that is corruption too.
        let opened = catch_unwind(AssertUnwindSafe(|| builder.create(path))).map_err(|_| {
            StoreError::Corrupt(format!(
                "{shown}: the database file is damaged (redb panicked reading it)"
            ))
        })?;
        let db = opened.map_err(|e| open_error(&shown.to_string(), e))?;
        init(&db).map_err(|e| match e {
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{shown}: {m}")),
            other => other,
        })?;
        let db = Arc::new(db);
        let (ops, queue) = mpsc::channel(QUEUE);
        let (events, _) = broadcast::channel(BROADCAST);
        let weak = events.downgrade();
        let writer_db = db.clone();
        let window = options.compaction_window;
        let writer = std::thread::Builder::new()
            .name("kgate-store-writer".into())
            .spawn(move || writer::run(writer_db, queue, events, window))
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the store writer thread: {e}"))
            })?;
        Ok(RedbStore {
            db,
            ops,
            events: weak,
            writer: Mutex::new(Some(writer)),
            max_value_bytes: options.max_value_bytes,
        })
    }

    /// Stops the writer once queued writes are done and releases the file (once in-flight reads
    /// and watch replays finish), so the same path can be opened again.
    pub async fn close(self) -> Result<(), StoreError> {
        let RedbStore {
            db, ops, writer, ..
        } = self;
        drop(ops);
        let handle = writer
            .lock()
            .map_err(|_| StoreError::Backend("writer handle poisoned".into()))?
            .take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StoreError::Backend(format!("joining the store writer: {e}")))?
                .map_err(|_| StoreError::Backend("the store writer panicked".into()))?;
        }
        match Arc::try_unwrap(db) {
            Ok(db) => drop(db),
            Err(_) => tracing::debug!("store file stays open until in-flight reads finish"),
        }
        Ok(())
    }

    /// Queues a write and waits for its durable answer.
    async fn submit<T>(
        &self,
        op: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Op,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ops.send(op(reply)).await.map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    /// Runs a blocking read on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Backend(format!("store read task failed: {e}")))?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable("the store writer has stopped".into())
}

/// Explains why redb refused to open the file.
fn open_error(path: &str, error: DatabaseError) -> StoreError {
    match error {
        // redb reports a file that is not a database (wrong magic, truncated) as invalid data.
        DatabaseError::Storage(StorageError::Io(e))
            if matches!(e.kind(), ErrorKind::InvalidData | ErrorKind::UnexpectedEof) =>
        {
            StoreError::Corrupt(format!("{path} is not a valid store file: {e}"))
        }
        DatabaseError::Storage(StorageError::Io(e)) => {
            StoreError::Unavailable(format!("cannot open {path}: {e}"))
        }
        DatabaseError::Storage(StorageError::Corrupted(m)) => {
            StoreError::Corrupt(format!("{path} is not a valid store file: {m}"))
        }
        DatabaseError::DatabaseAlreadyOpen => {
            StoreError::Unavailable(format!("{path} is already open (another kgate process?)"))
        }
        DatabaseError::UpgradeRequired(v) => StoreError::Corrupt(format!(
            "{path} has redb file format {v}, which this build cannot read"
        )),
        other => StoreError::Corrupt(format!("cannot open {path}: {other}")),
    }
}

/// Creates the tables of a new store, or checks that an existing file is a kgate store.
fn init(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    let tables = txn.list_tables().map_err(backend)?.count();
    {
        let mut meta_table = txn.open_table(META).map_err(backend)?;
        match meta(&meta_table, META_FORMAT)? {
            0 if tables == 0 => {
                meta_table
                    .insert(META_FORMAT, FORMAT_VERSION)
                    .map_err(backend)?;
            }
            0 => {
                return Err(StoreError::Corrupt(
                    "a redb database, but not a kgate store".into(),
                ))
            }
            FORMAT_VERSION => {}
            other => return Err(StoreError::Corrupt(format!("unknown store format {other}"))),
        }
        txn.open_table(KV).map_err(backend)?;
        txn.open_table(HIST).map_err(backend)?;
        let log = txn.open_table(LOG).map_err(backend)?;
        // Cheap sanity check that the tables are ours and readable.
        log.len().map_err(backend)?;
    }
    txn.commit().map_err(backend)
}

#[async_trait]
impl Store for RedbStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        // On the calling task, not the blocking pool: one key is a walk of a few pages, nearly
        // always in redb's cache or the OS's, so microseconds; the hand-off to a pool thread
        // and back cost more than the read (about 4% of the CPU of a busy cluster in `perf`).
        // Ranges, which may read many pages, stay on the pool.
        read::get(&self.db, key)
    }

    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.read(move |db| read::range(db, &request)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        StoreError::check_size(&value, self.max_value_bytes)?;
        let key = key.to_owned();
        self.submit(|reply| Op::Create { key, value, reply }).await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        StoreError::check_size(&value, self.max_value_bytes)?;
        let key = key.to_owned();
        self.submit(|reply| Op::Update {
            key,
            value,
            expected,
            reply,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        let key = key.to_owned();
        self.submit(|reply| Op::Delete {
            key,
            expected,
            reply,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        watch::start(&self.db, &self.events, prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.read(|db| schema::revisions(db).map(|(current, _)| current))
            .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.submit(|reply| Op::Compact { revision, reply }).await
    }
}
