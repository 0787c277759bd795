//! The conformance suite every [`Store`] backend must pass: the embedded redb store and the etcd
//! backend (against a real etcd) run the same cases.
//!
//! Each case gets a fresh store from the factory and checks revisions relative to the store's
//! current revision, so a backend whose revision does not start at 0 (a shared etcd) passes too.
//! Cases run one after another: compaction is global in etcd.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};

use super::{
    EventKind, KeyValue, RangeRequest, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// Runs every case. `max_value_bytes` is the backend's value limit.
pub async fn run_all<S, F, Fut>(new_store: F, max_value_bytes: usize)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    crud(&new_store().await).await;
    range_paging(&new_store().await).await;
    huge_list_paged_during_writes(Arc::new(new_store().await)).await;
    range_at_revision(&new_store().await).await;
    watch_replay_and_live(&new_store().await).await;
    watch_resume_without_gap(&new_store().await).await;
    watch_during_writes(Arc::new(new_store().await)).await;
    compaction(&new_store().await).await;
    concurrent_cas(Arc::new(new_store().await)).await;
    concurrent_creates(Arc::new(new_store().await)).await;
    value_limit(&new_store().await, max_value_bytes).await;
}

/// The next event of a watch, failing the test if none comes within 10 s.
pub async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}

fn kv(key: &str, value: &[u8], create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.to_vec(),
        create_revision,
        mod_revision,
    }
}

pub async fn crud(store: &impl Store) {
    let r0 = store.current_revision().await.unwrap();
    let created = store.create("/crud/a", b"one".to_vec()).await.unwrap();
    assert_eq!(created, kv("/crud/a", b"one", r0 + 1, r0 + 1));
    assert_eq!(store.get("/crud/a").await.unwrap(), Some(created.clone()));
    assert_eq!(store.get("/crud/missing").await.unwrap(), None);
    assert_eq!(
        store.create("/crud/a", b"again".to_vec()).await,
        Err(StoreError::AlreadyExists)
    );

    // A stale compare-and-swap names the current mod revision and changes nothing.
    assert_eq!(
        store.update("/crud/a", b"two".to_vec(), r0).await,
        Err(StoreError::Conflict { current: r0 + 1 })
    );
    let updated = store
        .update("/crud/a", b"two".to_vec(), r0 + 1)
        .await
        .unwrap();
    assert_eq!(updated, kv("/crud/a", b"two", r0 + 1, r0 + 2));
    assert_eq!(
        store.update("/crud/missing", b"x".to_vec(), 1).await,
        Err(StoreError::NotFound)
    );
    // An absent key has no mod revision to match, not even 0 (etcd's "absent"): nothing is
    // created by an update or deleted by a delete.
    assert_eq!(
        store.update("/crud/missing", b"x".to_vec(), 0).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        store.delete("/crud/missing", Some(0)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(store.get("/crud/missing").await.unwrap(), None);

    assert_eq!(
        store.delete("/crud/a", Some(r0 + 1)).await,
        Err(StoreError::Conflict { current: r0 + 2 })
    );
    let deleted = store.delete("/crud/a", Some(r0 + 2)).await.unwrap();
    assert_eq!(deleted, kv("/crud/a", b"two", r0 + 1, r0 + 3));
    assert_eq!(store.get("/crud/a").await.unwrap(), None);
    assert_eq!(
        store.delete("/crud/a", None).await,
        Err(StoreError::NotFound)
    );

    // Re-created, the key starts a new life; an unconditional delete works.
    let again = store.create("/crud/a", b"three".to_vec()).await.unwrap();
    assert_eq!(again, kv("/crud/a", b"three", r0 + 4, r0 + 4));
    assert_eq!(
        store.delete("/crud/a", None).await.unwrap().mod_revision,
        r0 + 5
    );
    // Refused writes took no revision.
    assert_eq!(store.current_revision().await.unwrap(), r0 + 5);
}

pub async fn range_paging(store: &impl Store) {
    for i in 0..250 {
        store
            .create(&format!("/page/{i:04}"), format!("v{i}").into_bytes())
            .await
            .unwrap();
    }
    // Neighbours that a sloppy prefix match would include.
    store.create("/pag", b"x".to_vec()).await.unwrap();
    store.create("/pagf", b"x".to_vec()).await.unwrap();
    store.create("/page0", b"x".to_vec()).await.unwrap();

    let all = store
        .range(RangeRequest {
            prefix: "/page/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.items.len(), 250);
    assert!(!all.more);
    assert_eq!(all.revision, store.current_revision().await.unwrap());

    let mut seen = Vec::new();
    let mut request = RangeRequest {
        prefix: "/page/".into(),
        limit: 100,
        ..Default::default()
    };
    let mut pages = Vec::new();
    loop {
        let page = store.range(request.clone()).await.unwrap();
        pages.push((page.items.len(), page.more));
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        // Later pages at the first page's revision, as the API's continue token does.
        request.revision = Some(page.revision);
        request.start_after = page.items.last().map(|kv| kv.key.clone());
        if pages.len() == 1 {
            store.create("/page/0000a", b"late".to_vec()).await.unwrap();
        }
    }
    assert_eq!(pages, vec![(100, true), (100, true), (50, false)]);
    let expected: Vec<String> = (0..250).map(|i| format!("/page/{i:04}")).collect();
    assert_eq!(seen, expected);

    // An exact page boundary still reports `more` correctly.
    let exact = store
        .range(RangeRequest {
            prefix: "/page/".into(),
            limit: 251,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((exact.items.len(), exact.more), (251, false));

    let empty = store
        .range(RangeRequest {
            prefix: "/nothing/".into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(empty.items.is_empty() && !empty.more);
    assert_eq!(empty.revision, store.current_revision().await.unwrap());
    // Continuing an empty list (a client's continue token) at its revision stays empty.
    let again = store
        .range(RangeRequest {
            prefix: "/nothing/".into(),
            start_after: Some("/nothing/x".into()),
            limit: 10,
            revision: Some(empty.revision),
        })
        .await
        .unwrap();
    assert_eq!((again.items.len(), again.more), (0, false));
    assert_eq!(again.revision, empty.revision);
    let after_end = RangeRequest {
        prefix: "/page/".into(),
        start_after: Some("/page/9".into()),
        ..Default::default()
    };
    assert!(store.range(after_end).await.unwrap().items.is_empty());
}

/// A list far larger than a page, paged at the first page's revision while the keys change
/// around the pages: every page shows the list as it was, and the latest read shows the writes.
pub async fn huge_list_paged_during_writes<S: Store>(store: Arc<S>) {
    const KEYS: usize = 2_500;
    const PAGE: usize = 500;
    let key = |i: usize| format!("/huge/{i:05}");
    // Concurrent creates, so a backend with a network round trip per write loads in seconds.
    let created: Vec<KeyValue> = stream::iter(0..KEYS)
        .map(|i| {
            let store = store.clone();
            let key = key(i);
            async move { store.create(&key, format!("v{i}").into_bytes()).await }
        })
        .buffered(32)
        .map(Result::unwrap)
        .collect()
        .await;

    let mut request = RangeRequest {
        prefix: "/huge/".into(),
        limit: PAGE,
        ..Default::default()
    };
    let mut pages = Vec::new();
    let mut seen: Vec<KeyValue> = Vec::new();
    loop {
        let page = store.range(request.clone()).await.unwrap();
        pages.push((page.items.len(), page.more));
        seen.extend(page.items.iter().cloned());
        if !page.more {
            break;
        }
        request.revision = Some(page.revision);
        request.start_after = page.items.last().map(|kv| kv.key.clone());
        // Between pages: change a key already listed and keys not listed yet, and add one.
        let n = seen.len();
        let listed = &created[n - 1];
        store
            .update(&listed.key, b"changed".to_vec(), listed.mod_revision)
            .await
            .unwrap();
        let ahead = &created[n + 1];
        store
            .update(&ahead.key, b"changed".to_vec(), ahead.mod_revision)
            .await
            .unwrap();
        store.delete(&created[n + 2].key, None).await.unwrap();
        store
            .create(&format!("{}a", key(n + 3)), b"new".to_vec())
            .await
            .unwrap();
    }
    assert_eq!(
        pages,
        vec![
            (PAGE, true),
            (PAGE, true),
            (PAGE, true),
            (PAGE, true),
            (PAGE, false)
        ]
    );
    // Exactly the list as it was at the first page, values and revisions included.
    assert!(seen == created, "the pages differ from the list as created");

    let latest = store
        .range(RangeRequest {
            prefix: "/huge/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // At each of the four page boundaries one key was deleted and one created.
    assert_eq!(latest.items.len(), KEYS);
    assert_ne!(latest.items, created);
}

pub async fn range_at_revision(store: &impl Store) {
    let a = store.create("/at/a", b"a1".to_vec()).await.unwrap();
    let b = store.create("/at/b", b"b1".to_vec()).await.unwrap();
    let then = b.mod_revision;
    store
        .update("/at/a", b"a2".to_vec(), a.mod_revision)
        .await
        .unwrap();
    store.delete("/at/b", None).await.unwrap();
    store.create("/at/c", b"c1".to_vec()).await.unwrap();

    let old = RangeRequest {
        prefix: "/at/".into(),
        revision: Some(then),
        ..Default::default()
    };
    let old = store.range(old).await.unwrap();
    assert_eq!(old.revision, then);
    assert_eq!(old.items, vec![a.clone(), b]);
    let first = RangeRequest {
        prefix: "/at/".into(),
        revision: Some(a.mod_revision),
        ..Default::default()
    };
    assert_eq!(store.range(first).await.unwrap().items, vec![a]);

    let now = store
        .range(RangeRequest {
            prefix: "/at/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = now.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/at/a", "/at/c"]);

    let current = store.current_revision().await.unwrap();
    let future = RangeRequest {
        prefix: "/at/".into(),
        revision: Some(current + 10),
        ..Default::default()
    };
    assert!(matches!(
        store.range(future).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

pub async fn watch_replay_and_live(store: &impl Store) {
    let r0 = store.current_revision().await.unwrap();
    let a1 = store.create("/w/a", b"1".to_vec()).await.unwrap();
    store.create("/other/x", b"x".to_vec()).await.unwrap();
    let a2 = store
        .update("/w/a", b"2".to_vec(), a1.mod_revision)
        .await
        .unwrap();
    let gone = store.delete("/w/a", None).await.unwrap();

    let mut watch = store.watch("/w/", r0).await.unwrap();
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv, &e.prev), (EventKind::Create, &a1, &None));
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, &e.kv, &e.prev),
        (EventKind::Update, &a2, &Some(a1.clone()))
    );
    let e = next_event(&mut watch).await;
    assert_eq!(
        (e.kind, &e.kv, &e.prev),
        (EventKind::Delete, &gone, &Some(a2.clone()))
    );
    assert_eq!(e.kv.value, b"2");

    // Live events follow the replay.
    store.create("/other/y", b"y".to_vec()).await.unwrap();
    let b = store.create("/w/b", b"b".to_vec()).await.unwrap();
    let e = next_event(&mut watch).await;
    assert_eq!((e.kind, &e.kv), (EventKind::Create, &b));

    // A watch from the latest revision sees only what comes next.
    let mut tail = store.watch("/w/", b.mod_revision).await.unwrap();
    let b2 = store
        .update("/w/b", b"b2".to_vec(), b.mod_revision)
        .await
        .unwrap();
    assert_eq!(next_event(&mut tail).await.kv, b2);
}

pub async fn watch_resume_without_gap(store: &impl Store) {
    let r0 = store.current_revision().await.unwrap();
    for i in 0..5 {
        store
            .create(&format!("/resume/{i}"), vec![i])
            .await
            .unwrap();
    }
    let mut watch = store.watch("/resume/", r0).await.unwrap();
    let mut last = r0;
    for _ in 0..3 {
        last = next_event(&mut watch).await.revision();
    }
    drop(watch); // the client disconnects
    for i in 5..8 {
        store
            .create(&format!("/resume/{i}"), vec![i])
            .await
            .unwrap();
    }
    let mut watch = store.watch("/resume/", last).await.unwrap();
    let mut revisions = Vec::new();
    for _ in 0..5 {
        revisions.push(next_event(&mut watch).await.revision());
    }
    assert_eq!(revisions, ((last + 1)..=(last + 5)).collect::<Vec<_>>());
}

/// A watch started while writes stream in sees each exactly once, in order.
pub async fn watch_during_writes<S: Store>(store: Arc<S>) {
    let r0 = store.current_revision().await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                store
                    .create(&format!("/live/{i:03}"), vec![1])
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut watch = store.watch("/live/", r0).await.unwrap();
    let mut revisions = Vec::new();
    for _ in 0..300 {
        revisions.push(next_event(&mut watch).await.revision());
    }
    writer.await.unwrap();
    assert_eq!(revisions, ((r0 + 1)..=(r0 + 300)).collect::<Vec<_>>());
}

pub async fn compaction(store: &impl Store) {
    let r0 = store.current_revision().await.unwrap();
    let k = store.create("/c/k", b"1".to_vec()).await.unwrap();
    let k = store
        .update("/c/k", b"2".to_vec(), k.mod_revision)
        .await
        .unwrap();
    store.create("/c/gone", b"g".to_vec()).await.unwrap();
    store.delete("/c/gone", None).await.unwrap();
    let at = store
        .update("/c/k", b"3".to_vec(), k.mod_revision)
        .await
        .unwrap()
        .mod_revision;
    let after = store.update("/c/k", b"4".to_vec(), at).await.unwrap();

    store.compact(at).await.unwrap();
    // The errors name the oldest revision kept, which a client can list at.
    assert!(matches!(
        store.watch("/c/", r0).await,
        Err(StoreError::Compacted { compacted, .. }) if compacted == at
    ));
    assert!(matches!(
        store.watch("/c/", at - 1).await,
        Err(StoreError::Compacted { compacted, .. }) if compacted == at
    ));
    let old = RangeRequest {
        prefix: "/c/".into(),
        revision: Some(at - 1),
        ..Default::default()
    };
    assert_eq!(
        store.range(old).await,
        Err(StoreError::Compacted {
            requested: at - 1,
            compacted: at
        })
    );

    // The compacted revision itself is still readable and watchable from.
    let kept = RangeRequest {
        prefix: "/c/".into(),
        revision: Some(at),
        ..Default::default()
    };
    let kept = store.range(kept).await.unwrap();
    assert_eq!(
        kept.items
            .iter()
            .map(|kv| kv.value.clone())
            .collect::<Vec<_>>(),
        vec![b"3".to_vec()]
    );
    let mut watch = store.watch("/c/", at).await.unwrap();
    let e = next_event(&mut watch).await;
    assert_eq!(e.kv, after);
    assert_eq!(e.prev.map(|p| p.value), Some(b"3".to_vec()));
    assert_eq!(store.get("/c/k").await.unwrap(), Some(after));

    // Compacting again at or below is harmless; the future is refused.
    store.compact(at).await.unwrap();
    store.compact(at - 1).await.unwrap();
    let current = store.current_revision().await.unwrap();
    assert!(matches!(
        store.compact(current + 1).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

/// Rounds of many writers racing a compare-and-swap on one key: exactly one wins each round.
pub async fn concurrent_cas<S: Store>(store: Arc<S>) {
    let mut current = store.create("/cas/k", b"0".to_vec()).await.unwrap();
    for round in 0..10 {
        let tasks: Vec<_> = (0..16)
            .map(|writer| {
                let store = store.clone();
                let expected = current.mod_revision;
                tokio::spawn(async move {
                    store
                        .update("/cas/k", format!("{round}-{writer}").into_bytes(), expected)
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut conflicts = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(kv) => winners.push(kv),
                Err(StoreError::Conflict { current }) => conflicts.push(current),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        let winner = winners.remove(0);
        assert!(
            conflicts.iter().all(|&c| c == winner.mod_revision),
            "losers see the winner's revision"
        );
        assert_eq!(store.get("/cas/k").await.unwrap(), Some(winner.clone()));
        current = winner;
    }
}

pub async fn concurrent_creates<S: Store>(store: Arc<S>) {
    let r0 = store.current_revision().await.unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create(&format!("/many/{i}"), vec![0]).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for task in tasks {
        revisions.push(task.await.unwrap().unwrap().mod_revision);
    }
    revisions.sort_unstable();
    assert_eq!(revisions, ((r0 + 1)..=(r0 + 100)).collect::<Vec<_>>());

    // Racing creates of one key: exactly one succeeds.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create("/many/same", vec![0]).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e, StoreError::AlreadyExists),
        }
    }
    assert_eq!(ok, 1);
}

/// A value of exactly the limit is stored whole, by create and by update (a backend's limit
/// leaves room for its own per-request overhead); one byte more is refused and changes nothing.
pub async fn value_limit(store: &impl Store, max_value_bytes: usize) {
    let r0 = store.current_revision().await.unwrap();
    let too_big = vec![7u8; max_value_bytes + 1];
    let refused = Err(StoreError::TooLarge {
        size: max_value_bytes + 1,
        limit: max_value_bytes,
    });
    assert_eq!(store.create("/big/a", too_big.clone()).await, refused);
    assert_eq!(store.get("/big/a").await.unwrap(), None);
    assert_eq!(store.current_revision().await.unwrap(), r0);

    let big = vec![9u8; max_value_bytes];
    let kv = store.create("/big/a", big.clone()).await.unwrap();
    assert_eq!(
        store.get("/big/a").await.unwrap().map(|kv| kv.value),
        Some(big)
    );
    assert_eq!(
        store.update("/big/a", too_big, kv.mod_revision).await,
        refused
    );
    assert_eq!(
        store.get("/big/a").await.unwrap().map(|kv| kv.mod_revision),
        Some(kv.mod_revision)
    );
    let at_limit = vec![8u8; max_value_bytes];
    let kv = store
        .update("/big/a", at_limit.clone(), kv.mod_revision)
        .await
        .unwrap();
    assert_eq!(kv.value, at_limit);
    assert_eq!(store.get("/big/a").await.unwrap(), Some(kv));
}
