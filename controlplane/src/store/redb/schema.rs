//! The on-disk layout of the embedded store and the few helpers every part of it shares.
//!
//! Four tables, all written only by the writer thread:
//!
//! | table  | key            | value                                  | holds |
//! |--------|----------------|----------------------------------------|-------|
//! | `meta` | name           | i64                                    | `revision`, `compacted`, `format` |
//! | `kv`   | key            | (create_rev, mod_rev, value)           | the latest value of every live key |
//! | `hist` | (key, rev)     | (create_rev, deleted, value)           | every version since the compacted revision, plus the latest version at or below it |
//! | `log`  | rev            | (key, kind, prev_mod_rev)              | one entry per revision above the compacted one: the event log watches replay |
//!
//! A watch event is rebuilt from `log` plus `hist`: the new value is `hist[(key, rev)]` and the
//! previous one `hist[(key, prev_mod_rev)]`. Compaction keeps, for every key, its latest version at
//! or below the compacted revision (unless that is a deletion), so both lookups always succeed for
//! revisions a watcher may still ask for, and a range at any revision not compacted is exact.
//! `kv` duplicates the newest `hist` entry so that latest reads take one lookup per key.

use std::ops::Bound;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::store::{EventKind, KeyValue, Revision, StoreError, WatchEvent};

pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
pub(super) const KV: TableDefinition<&str, (i64, i64, &[u8])> = TableDefinition::new("kv");
/// `hist` key: (key, revision).
pub(super) type HistKey = (&'static str, i64);
/// `hist` value: (create revision, 1 if this version is a deletion, value).
pub(super) type HistValue = (i64, u8, &'static [u8]);
/// A range of `hist` keys.
pub(super) type HistBounds<'a> = (Bound<(&'a str, i64)>, Bound<(&'a str, i64)>);
pub(super) const HIST: TableDefinition<HistKey, HistValue> = TableDefinition::new("hist");
pub(super) const LOG: TableDefinition<i64, (&str, u8, i64)> = TableDefinition::new("log");

pub(super) const META_REVISION: &str = "revision";
pub(super) const META_COMPACTED: &str = "compacted";
pub(super) const META_FORMAT: &str = "format";
/// Bumped on any incompatible change of the layout above.
pub(super) const FORMAT_VERSION: i64 = 1;

pub(super) const KIND_CREATE: u8 = 0;
pub(super) const KIND_UPDATE: u8 = 1;
pub(super) const KIND_DELETE: u8 = 2;

/// Maps any redb failure during operation to a store error. Corruption found while running is
/// `Corrupt`; a closed database is `Unavailable`; the rest is `Backend`.
pub(super) fn backend(error: impl Into<::redb::Error>) -> StoreError {
    match error.into() {
        ::redb::Error::Corrupted(message) => StoreError::Corrupt(message),
        ::redb::Error::DatabaseClosed => StoreError::Unavailable("the store is closed".into()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// Reads a counter from `meta` (0 when absent).
pub(super) fn meta(
    table: &impl ReadableTable<&'static str, i64>,
    name: &str,
) -> Result<i64, StoreError> {
    Ok(table
        .get(name)
        .map_err(backend)?
        .map(|v| v.value())
        .unwrap_or(0))
}

pub(super) fn kind_from(code: u8) -> Result<EventKind, StoreError> {
    match code {
        KIND_CREATE => Ok(EventKind::Create),
        KIND_UPDATE => Ok(EventKind::Update),
        KIND_DELETE => Ok(EventKind::Delete),
        other => Err(StoreError::Corrupt(format!(
            "unknown event kind {other} in the log"
        ))),
    }
}

/// One version of a key as `hist` holds it.
pub(super) struct Version {
    pub create_revision: Revision,
    pub value: Vec<u8>,
}

pub(super) fn version(
    hist: &impl ReadableTable<HistKey, HistValue>,
    key: &str,
    rev: Revision,
) -> Result<Version, StoreError> {
    let guard = hist.get((key, rev)).map_err(backend)?.ok_or_else(|| {
        StoreError::Corrupt(format!("history of {key:?} at revision {rev} is missing"))
    })?;
    let (create_revision, _deleted, value) = guard.value();
    Ok(Version {
        create_revision,
        value: value.to_vec(),
    })
}

/// Rebuilds the watch event of revision `rev` from its log entry.
pub(super) fn event(
    hist: &impl ReadableTable<HistKey, HistValue>,
    rev: Revision,
    key: &str,
    kind: u8,
    prev_mod: Revision,
) -> Result<WatchEvent, StoreError> {
    let kind = kind_from(kind)?;
    let prev = if prev_mod > 0 {
        let v = version(hist, key, prev_mod)?;
        Some(KeyValue {
            key: key.to_owned(),
            value: v.value,
            create_revision: v.create_revision,
            mod_revision: prev_mod,
        })
    } else {
        None
    };
    let kv = match (kind, &prev) {
        // A delete carries the last value, stamped with the deletion's revision.
        (EventKind::Delete, Some(prev)) => KeyValue {
            mod_revision: rev,
            ..prev.clone()
        },
        (EventKind::Delete, None) => {
            return Err(StoreError::Corrupt(format!(
                "delete of {key:?} at {rev} has no previous value"
            )))
        }
        _ => {
            let v = version(hist, key, rev)?;
            KeyValue {
                key: key.to_owned(),
                value: v.value,
                create_revision: v.create_revision,
                mod_revision: rev,
            }
        }
    };
    Ok(WatchEvent { kind, kv, prev })
}

/// The latest revision and the compacted revision, read in one transaction.
pub(super) fn revisions(db: &Database) -> Result<(Revision, Revision), StoreError> {
    let txn = db.begin_read().map_err(backend)?;
    let meta_table = txn.open_table(META).map_err(backend)?;
    Ok((
        meta(&meta_table, META_REVISION)?,
        meta(&meta_table, META_COMPACTED)?,
    ))
}
