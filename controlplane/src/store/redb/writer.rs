//! The single writer: one thread drains the queue of writes and applies each batch in one redb
//! transaction with immediate durability, so a batch costs one fsync however many writes it holds
//! (group commit). Every write still gets its own revision and its own answer: a failed
//! compare-and-swap answers only its caller. Only after the commit returns are the callers
//! answered and the events broadcast to watchers, so nothing is acknowledged or seen that a crash
//! could take back.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use ::redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::schema::{
    backend, event, meta, HistBounds, HistKey, HistValue, HIST, KIND_CREATE, KIND_DELETE,
    KIND_UPDATE, KV, LOG, META, META_COMPACTED, META_REVISION,
};
use crate::store::{KeyValue, Revision, StoreError, WatchEvent};

/// Writes queued per batch at most; bounds the time one transaction holds the writer.
const MAX_BATCH: usize = 512;

/// The events of one committed batch, in revision order.
pub(super) type Batch = Arc<Vec<WatchEvent>>;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// One queued write.
pub(super) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
        reply: Reply<KeyValue>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
        reply: Reply<KeyValue>,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
        reply: Reply<KeyValue>,
    },
    Compact {
        revision: Revision,
        reply: Reply<()>,
    },
}

/// What a write did, to answer its caller once the batch is durable.
enum Done {
    Write(Reply<KeyValue>, Result<KeyValue, StoreError>),
    Compact(Reply<()>, Result<(), StoreError>),
}

/// The writer's loop; returns when every `RedbStore` handle is gone.
pub(super) fn run(
    db: Arc<Database>,
    mut ops: mpsc::Receiver<Op>,
    events: broadcast::Sender<Batch>,
    compaction_window: u64,
) {
    while let Some(first) = ops.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut emitted = Vec::new();
        match apply_batch(&db, batch, &mut emitted) {
            Ok(done) => {
                if !emitted.is_empty() {
                    // No receivers is fine: nobody watches.
                    let _ = events.send(Arc::new(emitted));
                }
                for d in done {
                    // A caller that went away does not care about the answer.
                    match d {
                        Done::Write(reply, result) => drop(reply.send(result)),
                        Done::Compact(reply, result) => drop(reply.send(result)),
                    }
                }
            }
            Err((error, done)) => {
                tracing::error!(%error, "store write batch failed; nothing in it was stored");
                for d in done {
                    match d {
                        Done::Write(reply, _) => drop(reply.send(Err(error.clone()))),
                        Done::Compact(reply, _) => drop(reply.send(Err(error.clone()))),
                    }
                }
            }
        }
        if compaction_window > 0 {
            if let Err(error) = auto_compact(&db, compaction_window) {
                tracing::warn!(%error, "automatic compaction failed");
            }
        }
    }
}

type BatchError = (StoreError, Vec<Done>);

/// Applies a batch in one transaction. On a storage failure nothing is committed and every
/// caller in the batch gets the error.
fn apply_batch(
    db: &Database,
    batch: Vec<Op>,
    emitted: &mut Vec<WatchEvent>,
) -> Result<Vec<Done>, BatchError> {
    let mut done = Vec::with_capacity(batch.len());
    let txn = match begin(db) {
        Ok(txn) => txn,
        Err(e) => return Err((e, batch.into_iter().map(unanswered).collect())),
    };
    let mut fatal = None;
    let mut ops = batch.into_iter();
    for op in ops.by_ref() {
        match apply_one(&txn, op, emitted) {
            Ok(d) => done.push(d),
            Err((e, d)) => {
                done.push(d);
                fatal = Some(e);
                break;
            }
        }
    }
    done.extend(ops.map(unanswered));
    if let Some(e) = fatal {
        emitted.clear();
        return Err((e, done));
    }
    if let Err(e) = txn.commit() {
        emitted.clear();
        return Err((backend(e), done));
    }
    Ok(done)
}

/// A write transaction that commits only after an fsync (redb's default, made explicit: the
/// acknowledgement of a write depends on it).
fn begin(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(backend)?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(txn)
}

fn not_applied() -> StoreError {
    StoreError::Backend("not applied".into())
}

/// A placeholder answer for an op whose batch failed; the caller gets the batch's error instead.
fn unanswered(op: Op) -> Done {
    match op {
        Op::Create { reply, .. } | Op::Update { reply, .. } | Op::Delete { reply, .. } => {
            Done::Write(reply, Err(not_applied()))
        }
        Op::Compact { reply, .. } => Done::Compact(reply, Err(not_applied())),
    }
}

/// Applies one op inside the batch's transaction. `Ok` carries the op's own answer (which may be
/// a refusal such as `Conflict`); `Err` is a storage failure that dooms the whole batch.
fn apply_one(
    txn: &WriteTransaction,
    op: Op,
    emitted: &mut Vec<WatchEvent>,
) -> Result<Done, (StoreError, Done)> {
    let (reply, outcome) = match op {
        Op::Create { key, value, reply } => {
            (reply, write(txn, &key, Some(value), None, true, emitted))
        }
        Op::Update {
            key,
            value,
            expected,
            reply,
        } => (
            reply,
            write(txn, &key, Some(value), Some(expected), false, emitted),
        ),
        Op::Delete {
            key,
            expected,
            reply,
        } => (reply, write(txn, &key, None, expected, false, emitted)),
        Op::Compact { revision, reply } => {
            return match compact(txn, revision) {
                Ok(result) => Ok(Done::Compact(reply, result)),
                Err(e) => Err((e, Done::Compact(reply, Err(not_applied())))),
            }
        }
    };
    match outcome {
        Ok(result) => Ok(Done::Write(reply, result)),
        Err(e) => Err((e, Done::Write(reply, Err(not_applied())))),
    }
}

/// Creates (`create`), updates (`value` is `Some`) or deletes (`value` is `None`) one key.
/// The outer `Result` is a storage failure; the inner one the op's own answer.
fn write(
    txn: &WriteTransaction,
    key: &str,
    value: Option<Vec<u8>>,
    expected: Option<Revision>,
    create: bool,
    emitted: &mut Vec<WatchEvent>,
) -> Result<Result<KeyValue, StoreError>, StoreError> {
    let mut kv = txn.open_table(KV).map_err(backend)?;
    let current = kv.get(key).map_err(backend)?.map(|guard| {
        let (create_revision, mod_revision, value) = guard.value();
        KeyValue {
            key: key.to_owned(),
            value: value.to_vec(),
            create_revision,
            mod_revision,
        }
    });
    // Refusals first: they take no revision.
    let prev = match (create, current) {
        (true, Some(_)) => return Ok(Err(StoreError::AlreadyExists)),
        (true, None) => None,
        (false, None) => return Ok(Err(StoreError::NotFound)),
        (false, Some(prev)) => match expected {
            Some(expected) if expected != prev.mod_revision => {
                return Ok(Err(StoreError::Conflict {
                    current: prev.mod_revision,
                }))
            }
            _ => Some(prev),
        },
    };
    let mut meta_table = txn.open_table(META).map_err(backend)?;
    let rev = meta(&meta_table, META_REVISION)? + 1;
    meta_table.insert(META_REVISION, rev).map_err(backend)?;
    let mut hist = txn.open_table(HIST).map_err(backend)?;
    let mut log = txn.open_table(LOG).map_err(backend)?;
    let prev_mod = prev.as_ref().map_or(0, |p| p.mod_revision);
    let (kind, result) = match value {
        Some(value) => {
            let create_revision = prev.as_ref().map_or(rev, |p| p.create_revision);
            kv.insert(key, (create_revision, rev, value.as_slice()))
                .map_err(backend)?;
            hist.insert((key, rev), (create_revision, 0u8, value.as_slice()))
                .map_err(backend)?;
            let kind = if prev.is_some() {
                KIND_UPDATE
            } else {
                KIND_CREATE
            };
            (
                kind,
                KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision,
                    mod_revision: rev,
                },
            )
        }
        None => {
            let prev = prev
                .clone()
                .ok_or_else(|| StoreError::Backend("delete without a value".into()))?;
            kv.remove(key).map_err(backend)?;
            hist.insert((key, rev), (prev.create_revision, 1u8, &[][..]))
                .map_err(backend)?;
            (
                KIND_DELETE,
                KeyValue {
                    mod_revision: rev,
                    ..prev
                },
            )
        }
    };
    log.insert(rev, (key, kind, prev_mod)).map_err(backend)?;
    emitted.push(event(&hist, rev, key, kind, prev_mod)?);
    Ok(Ok(result))
}

/// Forgets history at and below `revision`: log entries, and every version that is not a key's
/// newest at or below it (a newest one that is a deletion goes too). Compacting at or below the
/// compacted revision is a no-op, so repeated or racing compactions are harmless.
fn compact(
    txn: &WriteTransaction,
    revision: Revision,
) -> Result<Result<(), StoreError>, StoreError> {
    let mut meta_table = txn.open_table(META).map_err(backend)?;
    let current = meta(&meta_table, META_REVISION)?;
    let compacted = meta(&meta_table, META_COMPACTED)?;
    if revision > current {
        return Ok(Err(StoreError::FutureRevision {
            requested: revision,
            current,
        }));
    }
    if revision <= compacted {
        return Ok(Ok(()));
    }
    let mut log = txn.open_table(LOG).map_err(backend)?;
    let mut hist = txn.open_table(HIST).map_err(backend)?;
    let mut touched = BTreeSet::new();
    let bounds: (Bound<i64>, Bound<i64>) = (Bound::Excluded(compacted), Bound::Included(revision));
    for entry in log.range::<i64>(bounds).map_err(backend)? {
        let (_, value) = entry.map_err(backend)?;
        touched.insert(value.value().0.to_owned());
    }
    log.retain_in::<i64, _>(bounds, |_, _| false)
        .map_err(backend)?;
    for key in &touched {
        prune_key(&mut hist, key, revision)?;
    }
    meta_table
        .insert(META_COMPACTED, revision)
        .map_err(backend)?;
    Ok(Ok(()))
}

/// Drops the versions of `key` at or below `revision` except the newest live one.
fn prune_key(
    hist: &mut Table<'_, HistKey, HistValue>,
    key: &str,
    revision: Revision,
) -> Result<(), StoreError> {
    let bounds: HistBounds<'_> = (
        Bound::Included((key, i64::MIN)),
        Bound::Included((key, revision)),
    );
    let mut newest: Option<(Revision, bool)> = None;
    for entry in hist
        .range::<(&str, i64)>(bounds)
        .map_err(backend)?
        .rev()
        .take(1)
    {
        let (k, v) = entry.map_err(backend)?;
        newest = Some((k.value().1, v.value().1 != 0));
    }
    let keep = match newest {
        Some((rev, false)) => Some(rev),
        _ => None,
    };
    hist.retain_in::<(&str, i64), _>(bounds, |(_, rev), _| Some(rev) == keep)
        .map_err(backend)?;
    Ok(())
}

/// Keeps `window` revisions of history, compacting in steps of a tenth of the window so that
/// each step is short and steps are rare.
fn auto_compact(db: &Database, window: u64) -> Result<(), StoreError> {
    let window = i64::try_from(window).unwrap_or(i64::MAX);
    let step = (window / 10).max(1);
    let (current, compacted) = super::schema::revisions(db)?;
    let target = current.saturating_sub(window);
    if target - compacted < step {
        return Ok(());
    }
    let txn = begin(db)?;
    compact(&txn, target)??;
    txn.commit().map_err(backend)?;
    tracing::debug!(compacted = target, "store history compacted");
    Ok(())
}
