//! The conformance suite against redb, plus what only an embedded store has: reopening, damaged
//! files, automatic compaction, slow watchers.
#![allow(clippy::unwrap_used)]

use futures::StreamExt;
use tempfile::TempDir;

use super::{RedbOptions, RedbStore};
use crate::store::conformance::{self, next_event};
use crate::store::{RangeRequest, Store, StoreError};

fn open(dir: &TempDir, options: RedbOptions) -> RedbStore {
    RedbStore::open(&dir.path().join("store.redb"), options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dirs = std::sync::Mutex::new(Vec::new());
    let limit = RedbOptions::default().max_value_bytes;
    conformance::run_all(
        || {
            let dir = TempDir::new().unwrap();
            let store = open(&dir, RedbOptions::default());
            dirs.lock().unwrap().push(dir);
            async move { store }
        },
        limit,
    )
    .await;
}

#[tokio::test]
async fn value_exactly_at_the_limit_is_stored() {
    let dir = TempDir::new().unwrap();
    let store = open(
        &dir,
        RedbOptions {
            max_value_bytes: 1000,
            ..Default::default()
        },
    );
    store.create("/k", vec![1; 1000]).await.unwrap();
    assert_eq!(
        store.create("/k2", vec![1; 1001]).await,
        Err(StoreError::TooLarge {
            size: 1001,
            limit: 1000
        })
    );
}

#[tokio::test]
async fn reopen_keeps_revisions_keys_and_history() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir, RedbOptions::default());
    let a = store.create("/r/a", b"a".to_vec()).await.unwrap();
    let a = store
        .update("/r/a", b"a2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    store.create("/r/b", b"b".to_vec()).await.unwrap();
    store.delete("/r/b", None).await.unwrap();
    let c = store.create("/r/c", b"c".to_vec()).await.unwrap();
    store.compact(2).await.unwrap();
    store.close().await.unwrap();

    let store = open(&dir, RedbOptions::default());
    assert_eq!(store.current_revision().await.unwrap(), 5);
    assert_eq!(store.get("/r/a").await.unwrap(), Some(a.clone()));
    let all = store
        .range(RangeRequest {
            prefix: "/r/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.items, vec![a, c]);
    // The compacted revision survived; the history after it too.
    assert!(matches!(
        store.watch("/r/", 1).await,
        Err(StoreError::Compacted { compacted: 2, .. })
    ));
    let mut watch = store.watch("/r/", 2).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), 3);
    // New writes continue the revision sequence.
    assert_eq!(store.create("/r/d", vec![]).await.unwrap().mod_revision, 6);
}

#[tokio::test]
async fn garbage_file_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.redb");
    std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
    let error = RedbStore::open(&path, RedbOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    assert!(error.to_string().contains("store.redb"), "{error}");
}

#[tokio::test]
async fn damaged_store_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.redb");
    let store = RedbStore::open(&path, RedbOptions::default()).unwrap();
    for i in 0..200 {
        store
            .create(&format!("/d/{i}"), vec![i as u8; 2000])
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    // Overwrite a stretch in the middle, past redb's header.
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 8192].fill(0xff);
    std::fs::write(&path, bytes).unwrap();
    let error = RedbStore::open(&path, RedbOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn unopenable_paths_are_unavailable_with_the_path() {
    let dir = TempDir::new().unwrap();
    for path in [
        dir.path().to_path_buf(),
        dir.path().join("no/such/dir/store.redb"),
    ] {
        let error = RedbStore::open(&path, RedbOptions::default()).unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}

#[tokio::test]
async fn another_redb_database_is_not_ours() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = ::redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(::redb::TableDefinition::<u64, u64>::new("theirs"))
            .unwrap();
        txn.commit().unwrap();
    }
    let error = RedbStore::open(&path, RedbOptions::default()).unwrap_err();
    assert!(error.to_string().contains("not a kgate store"), "{error}");
}

#[tokio::test]
async fn second_open_of_the_same_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let _store = open(&dir, RedbOptions::default());
    let error =
        RedbStore::open(&dir.path().join("store.redb"), RedbOptions::default()).unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn automatic_compaction_keeps_the_window() {
    let dir = TempDir::new().unwrap();
    let store = open(
        &dir,
        RedbOptions {
            compaction_window: 50,
            ..Default::default()
        },
    );
    let mut kv = store.create("/auto/k", vec![0]).await.unwrap();
    for i in 0..200 {
        kv = store
            .update("/auto/k", vec![i], kv.mod_revision)
            .await
            .unwrap();
    }
    // The writer compacts after the batch it just committed; one more write lets it run.
    store.create("/auto/other", vec![]).await.unwrap();
    let current = store.current_revision().await.unwrap();
    assert!(matches!(
        store.watch("/auto/", 1).await,
        Err(StoreError::Compacted { .. })
    ));
    // The window (and a step of slack) is still there.
    let mut watch = store.watch("/auto/", current - 50).await.unwrap();
    assert_eq!(next_event(&mut watch).await.revision(), current - 49);
    // Compaction never touches the latest values.
    assert_eq!(store.get("/auto/k").await.unwrap(), Some(kv));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_catches_up_from_the_log() {
    let dir = TempDir::new().unwrap();
    let store = std::sync::Arc::new(open(&dir, RedbOptions::default()));
    let mut watch = store.watch("/slow/", 0).await.unwrap();
    // Far more committed batches than the broadcast holds, one write each, unread.
    for i in 0..(super::BROADCAST as i64 + 200) {
        store
            .create(&format!("/slow/{i:05}"), vec![])
            .await
            .unwrap();
    }
    let total = store.current_revision().await.unwrap();
    let mut expected = 1;
    while expected <= total {
        assert_eq!(next_event(&mut watch).await.revision(), expected);
        expected += 1;
    }
}

#[tokio::test]
async fn watch_ends_when_the_store_closes() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir, RedbOptions::default());
    let mut watch = store.watch("/", 0).await.unwrap();
    store.close().await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Err(StoreError::Unavailable(_)))),
        "{end:?}"
    );
}

#[test]
fn options_default_to_the_documented_values() {
    let options = RedbOptions::default();
    assert_eq!(options.compaction_window, 10_000);
    assert_eq!(options.max_value_bytes, 1_572_864);
}

#[tokio::test]
async fn compaction_bounds_the_history_on_disk() {
    use ::redb::{ReadableDatabase, ReadableTableMetadata};
    let dir = TempDir::new().unwrap();
    let store = open(
        &dir,
        RedbOptions {
            compaction_window: 20,
            ..Default::default()
        },
    );
    let mut kv = store.create("/h/k", vec![0]).await.unwrap();
    for i in 0..100 {
        kv = store
            .update("/h/k", vec![i], kv.mod_revision)
            .await
            .unwrap();
    }
    store.create("/h/gone", vec![]).await.unwrap();
    store.delete("/h/gone", None).await.unwrap();
    store.compact(kv.mod_revision + 2).await.unwrap();
    let txn = store.db.begin_read().unwrap();
    // Only the newest version of the live key is left; the deleted key left nothing behind.
    assert_eq!(
        txn.open_table(super::schema::HIST).unwrap().len().unwrap(),
        1
    );
    assert_eq!(
        txn.open_table(super::schema::LOG).unwrap().len().unwrap(),
        0
    );
    let all = RangeRequest {
        prefix: "/h/".into(),
        revision: Some(kv.mod_revision + 2),
        ..Default::default()
    };
    assert_eq!(store.range(all).await.unwrap().items, vec![kv]);
}
