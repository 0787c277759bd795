//! Reads: each runs in one redb read transaction (a consistent snapshot), concurrently with the
//! writer and with each other. They are blocking calls; the async layer runs them on the blocking
//! pool.

use std::ops::Bound;

use ::redb::{Database, ReadableDatabase, ReadableTable};

use super::schema::{
    backend, event, meta, HistBounds, HistKey, HistValue, HIST, KV, LOG, META, META_COMPACTED,
    META_REVISION,
};
use crate::store::{KeyValue, RangeRequest, RangeResponse, Revision, StoreError, WatchEvent};

pub(super) fn get(db: &Database, key: &str) -> Result<Option<KeyValue>, StoreError> {
    let txn = db.begin_read().map_err(backend)?;
    let kv = txn.open_table(KV).map_err(backend)?;
    let found = kv.get(key).map_err(backend)?;
    Ok(found.map(|guard| {
        let (create_revision, mod_revision, value) = guard.value();
        KeyValue {
            key: key.to_owned(),
            value: value.to_vec(),
            create_revision,
            mod_revision,
        }
    }))
}

/// Where a scan over string keys starts: after the continue key, but never before the prefix.
fn lower_bound(request: &RangeRequest) -> Bound<&str> {
    match request.start_after.as_deref() {
        Some(after) if after >= request.prefix.as_str() => Bound::Excluded(after),
        _ => Bound::Included(request.prefix.as_str()),
    }
}

pub(super) fn range(db: &Database, request: &RangeRequest) -> Result<RangeResponse, StoreError> {
    let txn = db.begin_read().map_err(backend)?;
    let meta_table = txn.open_table(META).map_err(backend)?;
    let current = meta(&meta_table, META_REVISION)?;
    let compacted = meta(&meta_table, META_COMPACTED)?;
    // Like etcd, a revision of 0 (or below) means the latest.
    let at = match request.revision {
        Some(r) if r > 0 => r,
        _ => current,
    };
    if at > current {
        return Err(StoreError::FutureRevision {
            requested: at,
            current,
        });
    }
    if at < compacted {
        return Err(StoreError::Compacted {
            requested: at,
            compacted,
        });
    }
    // Collect one more than asked for: its presence is `more`.
    let want = if request.limit == 0 {
        usize::MAX
    } else {
        request.limit.saturating_add(1)
    };
    let mut items = Vec::new();
    if at == current {
        let kv = txn.open_table(KV).map_err(backend)?;
        let bounds: (Bound<&str>, Bound<&str>) = (lower_bound(request), Bound::Unbounded);
        for entry in kv.range::<&str>(bounds).map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let key = key.value();
            if !key.starts_with(request.prefix.as_str()) || items.len() >= want {
                break;
            }
            let (create_revision, mod_revision, value) = value.value();
            items.push(KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision,
            });
        }
    } else {
        historic(
            &txn.open_table(HIST).map_err(backend)?,
            request,
            at,
            want,
            &mut items,
        )?;
    }
    let more = items.len() > request.limit && request.limit > 0;
    items.truncate(if request.limit == 0 {
        items.len()
    } else {
        request.limit
    });
    Ok(RangeResponse {
        items,
        revision: at,
        more,
    })
}

/// A range as of revision `at` from the version history: for each key, its newest version at or
/// below `at`, unless that version is a deletion. Costs one pass over the versions in the range.
fn historic(
    hist: &impl ReadableTable<HistKey, HistValue>,
    request: &RangeRequest,
    at: Revision,
    want: usize,
    items: &mut Vec<KeyValue>,
) -> Result<(), StoreError> {
    let lower = match lower_bound(request) {
        Bound::Excluded(key) => Bound::Excluded((key, i64::MAX)),
        Bound::Included(key) => Bound::Included((key, i64::MIN)),
        Bound::Unbounded => Bound::Unbounded,
    };
    let bounds: HistBounds<'_> = (lower, Bound::Unbounded);
    // The newest version at or below `at` of the key being scanned.
    let mut pending: Option<KeyValue> = None;
    let mut pending_key = String::new();
    for entry in hist.range::<(&str, i64)>(bounds).map_err(backend)? {
        let (key, value) = entry.map_err(backend)?;
        let (key, rev) = key.value();
        if !key.starts_with(request.prefix.as_str()) {
            break;
        }
        if key != pending_key {
            items.extend(pending.take());
            if items.len() >= want {
                return Ok(());
            }
            pending_key = key.to_owned();
        }
        if rev <= at {
            let (create_revision, deleted, value) = value.value();
            pending = (deleted == 0).then(|| KeyValue {
                key: key.to_owned(),
                value: value.to_vec(),
                create_revision,
                mod_revision: rev,
            });
        }
    }
    items.extend(pending);
    Ok(())
}

/// A slice of the event log for a watcher.
pub(super) struct LogChunk {
    /// Events under the prefix, in revision order.
    pub events: Vec<WatchEvent>,
    /// Every revision up to this one has been looked at (matching the prefix or not).
    pub scanned_to: Revision,
    /// The latest revision when the chunk was read.
    pub current: Revision,
}

/// Reads log entries after `after`, at most `max_scan` of them, keeping those under `prefix`.
/// Fails with `Compacted` when revisions after `after` are no longer all in the log.
pub(super) fn log_chunk(
    db: &Database,
    prefix: &str,
    after: Revision,
    max_scan: usize,
) -> Result<LogChunk, StoreError> {
    let txn = db.begin_read().map_err(backend)?;
    let meta_table = txn.open_table(META).map_err(backend)?;
    let current = meta(&meta_table, META_REVISION)?;
    let compacted = meta(&meta_table, META_COMPACTED)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let log = txn.open_table(LOG).map_err(backend)?;
    let hist = txn.open_table(HIST).map_err(backend)?;
    let mut events = Vec::new();
    let mut scanned_to = after.max(0);
    let mut scanned = 0;
    let bounds: (Bound<i64>, Bound<i64>) = (Bound::Excluded(after), Bound::Included(current));
    for entry in log.range::<i64>(bounds).map_err(backend)?.take(max_scan) {
        let (rev, value) = entry.map_err(backend)?;
        let rev = rev.value();
        if rev != scanned_to + 1 {
            // Revisions are consecutive; a hole would silently drop events.
            return Err(StoreError::Corrupt(format!(
                "the event log skips from {scanned_to} to {rev}"
            )));
        }
        let (key, kind, prev_mod) = value.value();
        if key.starts_with(prefix) {
            events.push(event(&hist, rev, key, kind, prev_mod)?);
        }
        scanned_to = rev;
        scanned += 1;
    }
    if scanned < max_scan && scanned_to < current {
        return Err(StoreError::Corrupt(format!(
            "the event log ends at revision {scanned_to}, before the latest {current}"
        )));
    }
    Ok(LogChunk {
        events,
        scanned_to: scanned_to.max(after),
        current,
    })
}
