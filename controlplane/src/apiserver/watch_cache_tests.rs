//! Tests of [`super`], over a RedbStore intercepted to count (and break) its watches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::*;
use crate::resources::lookup;
use crate::store::intercept::{Intercept, Intercepted};
use crate::store::redb::{RedbOptions, RedbStore};
use crate::store::WatchStream;

/// Counts `watch` calls and the store watches still open, and can end every open watch with an
/// error.
struct Counting {
    watches: AtomicUsize,
    open: Arc<AtomicUsize>,
    breaker: broadcast::Sender<StoreError>,
}

impl Counting {
    fn watches(&self) -> usize {
        self.watches.load(Ordering::SeqCst)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Ends every store watch open now with `error`; later ones are unaffected.
    fn break_watches(&self, error: StoreError) {
        let _ = self.breaker.send(error);
    }
}

/// Counts one open store watch while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Intercept for Counting {
    async fn watch(
        &self,
        inner: &dyn Store,
        prefix: &str,
        after: Revision,
    ) -> Option<Result<WatchStream, StoreError>> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        let inner = match inner.watch(prefix, after).await {
            Ok(inner) => inner,
            Err(error) => return Some(Err(error)),
        };
        self.open.fetch_add(1, Ordering::SeqCst);
        let state = (
            inner,
            self.breaker.subscribe(),
            Open(self.open.clone()),
            false,
        );
        Some(Ok(futures::stream::unfold(
            state,
            |(mut inner, mut broken, open, done)| async move {
                if done {
                    return None;
                }
                tokio::select! {
                    biased;
                    Ok(error) = broken.recv() => Some((Err(error), (inner, broken, open, true))),
                    item = inner.next() => item.map(|item| (item, (inner, broken, open, false))),
                }
            },
        )
        .boxed()))
    }
}

struct Fixture {
    store: Arc<Intercepted<Counting>>,
    cache: WatchCache,
    _dir: tempfile::TempDir,
}

fn fixture(config: WatchCacheConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = RedbStore::open(&dir.path().join("db"), RedbOptions::default()).expect("open");
    let counting = Counting {
        watches: AtomicUsize::new(0),
        open: Arc::new(AtomicUsize::new(0)),
        breaker: broadcast::channel(4).0,
    };
    let store = Arc::new(Intercepted::new(Arc::new(inner), counting));
    Fixture {
        cache: WatchCache::new(store.clone(), config),
        store,
        _dir: dir,
    }
}

fn pods() -> &'static ResourceDef {
    lookup("", "v1", "pods").expect("pods")
}

impl Fixture {
    async fn now(&self) -> Revision {
        self.store.current_revision().await.expect("revision")
    }

    async fn watch(&self, namespace: Option<&str>, after: Revision) -> Updates {
        self.cache
            .watch(pods(), namespace, after)
            .await
            .expect("watch")
    }

    /// Writes a new pod; returns its key and revision.
    async fn pod(&self, namespace: &str, name: &str) -> (String, Revision) {
        let key = format!("/registry/pods/{namespace}/{name}");
        let kv = self
            .store
            .create(&key, b"{}".to_vec())
            .await
            .expect("create");
        (key, kv.mod_revision)
    }

    /// `n` pods named p0..pn in `namespace`.
    async fn pods(&self, namespace: &str, n: usize) -> Vec<(String, Revision)> {
        let mut written = Vec::new();
        for i in 0..n {
            written.push(self.pod(namespace, &format!("p{i}")).await);
        }
        written
    }
}

async fn next(updates: &mut Updates) -> Option<Result<Update, WatchCacheError>> {
    tokio::time::timeout(Duration::from_secs(10), updates.next())
        .await
        .expect("an update in time")
}

/// The next `n` events (progress skipped), as key and revision.
async fn events(updates: &mut Updates, n: usize) -> Vec<(String, Revision)> {
    let mut got = Vec::new();
    while got.len() < n {
        match next(updates).await {
            Some(Ok(Update::Event(e))) => got.push((e.kv.key.clone(), e.revision())),
            Some(Ok(Update::Progress(_))) => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
    got
}

/// Every event until the stream ends, and the error it ended with.
async fn until_end(updates: &mut Updates) -> (Vec<Revision>, WatchCacheError) {
    let mut got = Vec::new();
    loop {
        match next(updates).await {
            Some(Ok(Update::Event(e))) => got.push(e.revision()),
            Some(Ok(Update::Progress(_))) => {}
            Some(Err(error)) => {
                assert!(
                    next(updates).await.is_none(),
                    "the stream ends after its error"
                );
                return (got, error);
            }
            None => panic!("the stream ended without an error"),
        }
    }
}

#[tokio::test]
async fn many_subscribers_share_one_store_watch_and_see_every_event_in_order() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    // Concurrently, so that the first watches race to start the feed.
    let mut subs = futures::future::join_all((0..200).map(|_| f.watch(None, start))).await;
    let mut written = f.pods("a", 5).await;
    written.extend(f.pods("b", 5).await);
    for sub in &mut subs {
        assert_eq!(events(sub, 10).await, written);
    }
    assert_eq!(f.store.intercept.watches(), 1);
    assert_eq!(f.store.intercept.open(), 1);
}

#[tokio::test]
async fn a_subscriber_sees_only_its_namespace() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let mut a = f.watch(Some("a"), start).await;
    let mut b = f.watch(Some("b"), start).await;
    let ax = f.pod("a", "x").await;
    let by = f.pod("b", "y").await;
    let az = f.pod("a", "z").await;
    assert_eq!(events(&mut a, 2).await, vec![ax, az]);
    assert_eq!(events(&mut b, 1).await, vec![by]);
    assert_eq!(f.store.intercept.watches(), 1);
}

#[tokio::test]
async fn a_node_watch_gets_only_the_pods_that_were_or_are_on_its_node() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let on_node = |node: &str| FieldSelector::parse(pods(), &format!("spec.nodeName={node}"));
    let f = &f;
    let watch = |selector: FieldSelector| async move {
        f.cache
            .watch_selected(pods(), None, start, &selector)
            .await
            .expect("watch")
    };
    let mut n1 = watch(on_node("n1").expect("selector")).await;
    let mut unscheduled = watch(on_node("").expect("selector")).await;
    // A negated term routes nothing: such a watch gets every event.
    let mut not_n1 =
        watch(FieldSelector::parse(pods(), "spec.nodeName!=n1").expect("selector")).await;

    let pod = |node: Option<&str>| match node {
        Some(node) => format!(r#"{{"spec":{{"nodeName":"{node}"}}}}"#).into_bytes(),
        None => b"{}".to_vec(),
    };
    let key = "/registry/pods/a/web".to_owned();
    let created = f.store.create(&key, pod(None)).await.expect("create");
    let bound = f
        .store
        .update(&key, pod(Some("n1")), created.mod_revision)
        .await
        .expect("bind");
    let moved = f
        .store
        .update(&key, pod(Some("n2")), bound.mod_revision)
        .await
        .expect("move");
    let other = f
        .store
        .create("/registry/pods/a/db", pod(Some("n2")))
        .await
        .expect("create");
    let last = f.pod("a", "last").await;

    // n1 hears of the binding and of the move away (its previous object was on n1), not of
    // the pods that never were on it.
    assert_eq!(
        events(&mut n1, 2).await,
        vec![
            (key.clone(), bound.mod_revision),
            (key.clone(), moved.mod_revision)
        ]
    );
    // The unscheduled watch ("" is a missing nodeName) hears of the creation, the binding and
    // the pod created without a node.
    assert_eq!(
        events(&mut unscheduled, 3).await,
        vec![
            (key.clone(), created.mod_revision),
            (key.clone(), bound.mod_revision),
            last.clone()
        ]
    );
    assert_eq!(events(&mut not_n1, 5).await.len(), 5);
    // Nothing more reached n1: the next item is progress past the last event.
    let after_last = loop {
        match next(&mut n1).await {
            Some(Ok(Update::Progress(revision))) if revision >= last.1 => break revision,
            Some(Ok(Update::Progress(_))) => continue,
            other => panic!("expected progress, got {other:?}"),
        }
    };
    assert!(after_last >= other.mod_revision);
}

#[tokio::test]
async fn resume_inside_the_buffer_needs_no_store_watch() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let mut live = f.watch(None, start).await;
    let written = f.pods("a", 10).await;
    assert_eq!(events(&mut live, 10).await, written);

    let mut resumed = f.watch(None, written[4].1).await;
    let more = f.pod("a", "more").await;
    let mut want = written[5..].to_vec();
    want.push(more.clone());
    assert_eq!(events(&mut resumed, 6).await, want);
    assert_eq!(events(&mut live, 1).await, vec![more]);
    assert_eq!(f.store.intercept.watches(), 1);
}

#[tokio::test]
async fn resume_older_than_the_buffer_watches_the_store_without_a_gap() {
    let f = fixture(WatchCacheConfig {
        buffer: 3,
        ..WatchCacheConfig::default()
    });
    let start = f.now().await;
    let mut live = f.watch(None, start).await;
    let written = f.pods("a", 10).await;
    assert_eq!(events(&mut live, 10).await, written);

    // The buffer holds the last 3 events: from the 7th's revision it serves all that follow.
    let mut edge = f.watch(None, written[6].1).await;
    assert_eq!(f.store.intercept.watches(), 1, "served from the buffer");
    // One before that is older than the buffer: a store watch of its own.
    let mut old = f.watch(None, written[5].1).await;
    assert_eq!(f.store.intercept.watches(), 2, "a direct store watch");

    let more = f.pod("a", "more").await;
    let mut want = written[6..].to_vec();
    want.push(more.clone());
    assert_eq!(events(&mut old, 5).await, want);
    assert_eq!(events(&mut edge, 4).await, want[1..]);
}

#[tokio::test]
async fn a_compacted_revision_fails_the_watch() {
    let f = fixture(WatchCacheConfig {
        buffer: 3,
        ..WatchCacheConfig::default()
    });
    let written = f.pods("a", 10).await;
    f.store.compact(written[5].1).await.expect("compact");
    // The first watch, which would start the feed there.
    let first = f.cache.watch(pods(), None, written[1].1).await;
    assert!(
        matches!(first, Err(StoreError::Compacted { .. })),
        "{:?}",
        first.err()
    );
    // With a feed running: older than its buffer, and compacted in the store.
    let _live = f.watch(None, written[9].1).await;
    let old = f.cache.watch(pods(), None, written[2].1).await;
    assert!(
        matches!(old, Err(StoreError::Compacted { .. })),
        "{:?}",
        old.err()
    );
}

#[tokio::test]
async fn a_revision_past_the_feeds_progress_joins_the_feed() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let mut first = f.watch(None, start).await;
    let before = f.pod("a", "before").await;
    // Another resource moves the store's revision but not the pods feed's progress.
    f.store
        .create("/registry/configmaps/a/c", b"{}".to_vec())
        .await
        .expect("configmap");
    let listed = f.now().await;
    let mut second = f.watch(None, listed).await;
    assert_eq!(f.store.intercept.watches(), 1);
    let after = f.pod("a", "after").await;
    assert_eq!(events(&mut first, 2).await, vec![before, after.clone()]);
    assert_eq!(events(&mut second, 1).await, vec![after]);
}

#[tokio::test]
async fn a_slow_subscriber_is_cut_off_without_blocking_a_fast_one() {
    let capacity = 4;
    let f = fixture(WatchCacheConfig {
        subscriber_capacity: capacity,
        dispatch_budget: Duration::from_millis(50),
        ..WatchCacheConfig::default()
    });
    let start = f.now().await;
    let mut slow = f.watch(None, start).await;
    let mut fast = f.watch(None, start).await;
    let mut written = Vec::new();
    for i in 0..3 * capacity {
        let event = f.pod("a", &format!("p{i}")).await;
        // A blocked feed would leave the fast one without this event: `next` would time out.
        assert_eq!(events(&mut fast, 1).await, vec![event.clone()]);
        written.push(event.1);
    }
    // The slow one gets what its channel held, in order and from the start, then the error.
    let (got, error) = until_end(&mut slow).await;
    assert_eq!(error, WatchCacheError::Lagged);
    assert_eq!(got, written[..capacity]);
    // The fast one is still served.
    let more = f.pod("a", "more").await;
    assert_eq!(events(&mut fast, 1).await, vec![more]);
}

#[tokio::test]
async fn progress_advances_on_events_of_other_namespaces() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let mut a = f.watch(Some("a"), start).await;
    let (_, b1) = f.pod("b", "x").await;
    assert_eq!(next(&mut a).await, Some(Ok(Update::Progress(b1))));
    let (_, a1) = f.pod("a", "y").await;
    match next(&mut a).await {
        Some(Ok(Update::Event(e))) => assert_eq!(e.revision(), a1),
        other => panic!("expected the event, got {other:?}"),
    }
    let (_, b2) = f.pod("b", "z").await;
    assert_eq!(next(&mut a).await, Some(Ok(Update::Progress(b2))));
}

#[tokio::test]
async fn a_failed_store_watch_ends_every_subscriber_and_restarts_on_the_next() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let mut subs = [
        f.watch(None, start).await,
        f.watch(Some("a"), start).await,
        f.watch(Some("b"), start).await,
    ];
    let (_, first) = f.pod("a", "x").await;
    let broken = StoreError::Unavailable("injected".into());
    // Once the feed has dispatched the event, so that it is not lost to the break.
    assert_eq!(events(&mut subs[1], 1).await[0].1, first);
    f.store.intercept.break_watches(broken.clone());
    for (i, sub) in subs.iter_mut().enumerate() {
        let (got, error) = until_end(sub).await;
        assert_eq!(error, WatchCacheError::Store(broken.clone()));
        // Those that had not read it still get the event before the error.
        let want = if i == 0 { vec![first] } else { vec![] };
        assert_eq!(got, want, "subscriber {i}");
    }

    let mut again = f.watch(None, f.now().await).await;
    assert_eq!(f.store.intercept.watches(), 2, "a new store watch");
    let later = f.pod("a", "later").await;
    assert_eq!(events(&mut again, 1).await, vec![later]);
}

#[tokio::test]
async fn the_store_watch_stops_when_the_last_subscriber_has_been_gone_a_while() {
    let idle = Duration::from_millis(100);
    let f = fixture(WatchCacheConfig {
        idle,
        ..WatchCacheConfig::default()
    });
    let start = f.now().await;
    let mut kept = f.watch(None, start).await;
    let gone = f.watch(None, start).await;
    drop(gone);
    tokio::time::sleep(idle * 3).await;
    assert_eq!(f.store.intercept.open(), 1, "one subscriber left keeps it");
    let event = f.pod("a", "x").await;
    assert_eq!(events(&mut kept, 1).await, vec![event]);

    drop(kept);
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.store.intercept.open() > 0 {
        assert!(Instant::now() < deadline, "the store watch is still open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut again = f.watch(None, f.now().await).await;
    assert_eq!(
        (f.store.intercept.watches(), f.store.intercept.open()),
        (2, 1)
    );
    let event = f.pod("a", "y").await;
    assert_eq!(events(&mut again, 1).await, vec![event]);
}

#[tokio::test]
async fn progress_rounds_are_paced() {
    let every = Duration::from_millis(300);
    let f = fixture(WatchCacheConfig {
        progress_every: every,
        ..WatchCacheConfig::default()
    });
    let start = f.now().await;
    let mut a = f.watch(Some("a"), start).await;
    // The first round goes at the end of the first burst.
    let (_, b1) = f.pod("b", "x").await;
    assert_eq!(next(&mut a).await, Some(Ok(Update::Progress(b1))));
    let first_round = Instant::now();
    // The next one waits for its turn, then carries the latest revision.
    f.pod("b", "y").await;
    let (_, b3) = f.pod("b", "z").await;
    assert_eq!(next(&mut a).await, Some(Ok(Update::Progress(b3))));
    assert!(first_round.elapsed() >= every - Duration::from_millis(20));
}

#[tokio::test]
async fn pacing_holds_back_progress_but_never_events() {
    let f = fixture(WatchCacheConfig {
        progress_every: Duration::from_secs(3600),
        ..WatchCacheConfig::default()
    });
    let start = f.now().await;
    let mut a = f.watch(Some("a"), start).await;
    let (_, b1) = f.pod("b", "x").await;
    assert_eq!(next(&mut a).await, Some(Ok(Update::Progress(b1))));
    // The progress past b2 is owed for an hour; the subscriber's own event comes at once.
    f.pod("b", "y").await;
    let (_, a1) = f.pod("a", "w").await;
    match next(&mut a).await {
        Some(Ok(Update::Event(e))) => assert_eq!(e.revision(), a1),
        other => panic!("expected the event, got {other:?}"),
    }
}

#[tokio::test]
async fn watches_of_one_node_come_and_go_and_undecodable_events_reach_them_all() {
    let f = fixture(WatchCacheConfig::default());
    let start = f.now().await;
    let on_n1 = FieldSelector::parse(pods(), "spec.nodeName=n1").expect("selector");
    let on_n2 = FieldSelector::parse(pods(), "spec.nodeName=n2").expect("selector");
    let watch = |selector: &FieldSelector, after: Revision| {
        let cache = &f.cache;
        let selector = selector.clone();
        async move {
            cache
                .watch_selected(pods(), None, after, &selector)
                .await
                .expect("watch")
        }
    };
    let mut first = watch(&on_n1, start).await;
    let leaving = watch(&on_n1, start).await;
    let mut n2 = watch(&on_n2, start).await;
    drop(leaving);

    let bound = f
        .store
        .create(
            "/registry/pods/a/web",
            br#"{"spec":{"nodeName":"n1"}}"#.to_vec(),
        )
        .await
        .expect("create");
    assert_eq!(
        events(&mut first, 1).await,
        vec![("/registry/pods/a/web".to_owned(), bound.mod_revision)]
    );
    // A watch of the same node joining later is served too.
    let mut later = watch(&on_n1, bound.mod_revision).await;
    let again = f
        .store
        .create(
            "/registry/pods/a/db",
            br#"{"spec":{"nodeName":"n1"}}"#.to_vec(),
        )
        .await
        .expect("create");
    let expected = vec![("/registry/pods/a/db".to_owned(), again.mod_revision)];
    assert_eq!(events(&mut first, 1).await, expected);
    assert_eq!(events(&mut later, 1).await, expected);
    // An object that does not decode cannot be routed: every node's watch hears of it.
    let broken = f
        .store
        .create("/registry/pods/a/broken", b"not json".to_vec())
        .await
        .expect("create");
    let expected = vec![("/registry/pods/a/broken".to_owned(), broken.mod_revision)];
    assert_eq!(events(&mut first, 1).await, expected);
    assert_eq!(events(&mut later, 1).await, expected);
    assert_eq!(events(&mut n2, 1).await, expected);
}
