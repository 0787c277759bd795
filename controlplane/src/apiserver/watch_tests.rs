//! Tests of [`super`].

use super::*;
use crate::apiserver::watch_cache::WatchCacheConfig;
use crate::resources::lookup;
use crate::store::redb::{RedbOptions, RedbStore};

struct Fixture {
    store: Arc<dyn Store>,
    cache: Arc<WatchCache>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with(WatchCacheConfig::default())
}

fn fixture_with(config: WatchCacheConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("db"), RedbOptions::default()).expect("open");
    let store: Arc<dyn Store> = Arc::new(store);
    Fixture {
        cache: Arc::new(WatchCache::new(store.clone(), config)),
        store,
        _dir: dir,
    }
}

fn pods() -> &'static ResourceDef {
    lookup("", "v1", "pods").expect("pods")
}

fn pod(name: &str, app: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": app}},
    }))
    .expect("json")
}

fn key(name: &str) -> String {
    format!("/registry/pods/ns/{name}")
}

fn ctx(f: &Fixture) -> WatchContext {
    WatchContext {
        store: f.store.clone(),
        cache: f.cache.clone(),
        def: pods(),
        namespace: Some("ns".into()),
        name: None,
        resource_version: None,
        labels: LabelSelector::everything(),
        fields: FieldSelector::everything(),
        bookmarks: false,
        timeout: Some(Duration::from_secs(20)),
        negotiated: Negotiated::Json,
    }
}

type Events = futures::stream::BoxStream<'static, Value>;

fn events(r: Response<Body>) -> Events {
    assert_eq!(r.headers()[header::CONTENT_TYPE], JSON);
    r.into_body()
        .into_data_stream()
        .map(|chunk| {
            let bytes = chunk.expect("chunk");
            assert_eq!(bytes.last(), Some(&b'\n'), "one event per chunk");
            serde_json::from_slice(&bytes).expect("event json")
        })
        .boxed()
}

async fn next(ev: &mut Events) -> (String, Value) {
    let e = tokio::time::timeout(Duration::from_secs(10), ev.next())
        .await
        .expect("an event in time")
        .expect("stream open");
    (
        e["type"].as_str().expect("type").to_owned(),
        e["object"].clone(),
    )
}

async fn ended(ev: &mut Events) -> bool {
    tokio::time::timeout(Duration::from_secs(10), ev.next())
        .await
        .expect("in time")
        .is_none()
}

fn name_rv(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["name"].as_str().unwrap_or("").to_owned(),
        obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
    )
}

#[tokio::test]
async fn initial_events_then_changes_filtered_by_labels() {
    let f = fixture();
    let a = f.store.create(&key("a"), pod("a", "web")).await.expect("a");
    let b = f.store.create(&key("b"), pod("b", "db")).await.expect("b");
    f.store
        .create("/registry/pods/other/c", pod("c", "web"))
        .await
        .expect("c");
    let mut c = ctx(&f);
    c.labels = LabelSelector::parse("app=web").expect("selector");
    let mut ev = events(serve_watch(c).await.expect("watch"));
    let (t, o) = next(&mut ev).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("ADDED", ("a".into(), a.mod_revision.to_string()))
    );

    let b2 = f
        .store
        .update(&key("b"), pod("b", "web"), b.mod_revision)
        .await
        .expect("b2");
    let (t, o) = next(&mut ev).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("ADDED", ("b".into(), b2.mod_revision.to_string()))
    );

    let a2 = f
        .store
        .update(&key("a"), pod("a", "web"), a.mod_revision)
        .await
        .expect("a2");
    let (t, o) = next(&mut ev).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("MODIFIED", ("a".into(), a2.mod_revision.to_string()))
    );

    let a3 = f
        .store
        .update(&key("a"), pod("a", "db"), a2.mod_revision)
        .await
        .expect("a3");
    let (t, o) = next(&mut ev).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("DELETED", ("a".into(), a3.mod_revision.to_string()))
    );
    assert_eq!(
        o["metadata"]["labels"]["app"], "web",
        "the last state the client saw"
    );

    f.store.delete(&key("a"), None).await.expect("delete a");
    let gone = f.store.delete(&key("b"), None).await.expect("delete b");
    let (t, o) = next(&mut ev).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("DELETED", ("b".into(), gone.mod_revision.to_string()))
    );
}

#[tokio::test]
async fn from_a_revision_and_by_name() {
    let f = fixture();
    let a = f.store.create(&key("a"), pod("a", "x")).await.expect("a");
    let mut c = ctx(&f);
    c.resource_version = Some(a.mod_revision.to_string());
    c.name = Some("b".into());
    let mut ev = events(serve_watch(c).await.expect("watch"));
    f.store
        .create(&key("bb"), pod("bb", "x"))
        .await
        .expect("bb");
    f.store
        .update(&key("a"), pod("a", "y"), a.mod_revision)
        .await
        .expect("a2");
    let b = f.store.create(&key("b"), pod("b", "x")).await.expect("b");
    let (t, o) = next(&mut ev).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("ADDED", ("b".into(), b.mod_revision.to_string()))
    );
}

#[tokio::test]
async fn without_selectors_an_update_needs_no_previous_object() {
    let f = fixture();
    // A previous state that does not decode: only a watch that must test it fails on it.
    let a = f
        .store
        .create(&key("a"), b"not json".to_vec())
        .await
        .expect("a");
    let mut plain = ctx(&f);
    plain.resource_version = Some(a.mod_revision.to_string());
    let mut labelled = ctx(&f);
    labelled.resource_version = Some(a.mod_revision.to_string());
    labelled.labels = LabelSelector::parse("app=x").expect("selector");
    let mut plain = events(serve_watch(plain).await.expect("watch"));
    let mut labelled = events(serve_watch(labelled).await.expect("watch"));
    let a2 = f
        .store
        .update(&key("a"), pod("a", "x"), a.mod_revision)
        .await
        .expect("a2");
    let (t, o) = next(&mut plain).await;
    assert_eq!(
        (t.as_str(), name_rv(&o)),
        ("MODIFIED", ("a".into(), a2.mod_revision.to_string()))
    );
    let (t, _) = next(&mut labelled).await;
    assert_eq!(t, "ERROR");
}

#[tokio::test]
async fn compacted_revision_is_an_expired_error_event() {
    let f = fixture();
    let a = f.store.create(&key("a"), pod("a", "x")).await.expect("a");
    let a2 = f
        .store
        .update(&key("a"), pod("a", "y"), a.mod_revision)
        .await
        .expect("a2");
    f.store.compact(a2.mod_revision).await.expect("compact");
    let mut c = ctx(&f);
    c.resource_version = Some(a.mod_revision.to_string());
    let r = serve_watch(c).await.expect("a 200 stream");
    assert_eq!(r.status(), StatusCode::OK);
    let mut ev = events(r);
    let (t, o) = next(&mut ev).await;
    assert_eq!(t, "ERROR");
    assert_eq!(o["kind"], "Status");
    assert_eq!(o["code"], 410);
    assert_eq!(o["reason"], "Expired");
    assert!(o["message"]
        .as_str()
        .expect("msg")
        .starts_with("too old resource version: "));
    assert!(ended(&mut ev).await);
}

#[tokio::test]
async fn bad_resource_version_is_400() {
    let f = fixture();
    let mut c = ctx(&f);
    c.resource_version = Some("abc".into());
    assert_eq!(serve_watch(c).await.expect_err("400").code, 400);
}

#[tokio::test]
async fn timeout_ends_the_stream() {
    let f = fixture();
    let mut c = ctx(&f);
    c.timeout = Some(Duration::from_millis(50));
    let mut ev = events(serve_watch(c).await.expect("watch"));
    assert!(ended(&mut ev).await);
}

#[tokio::test]
async fn table_mode_sends_columns_once() {
    let f = fixture();
    f.store.create(&key("a"), pod("a", "x")).await.expect("a");
    f.store.create(&key("b"), pod("b", "x")).await.expect("b");
    let mut c = ctx(&f);
    c.negotiated = Negotiated::Table(IncludeObject::Metadata);
    let mut ev = events(serve_watch(c).await.expect("watch"));
    let (t, first) = next(&mut ev).await;
    assert_eq!(t, "ADDED");
    assert_eq!(first["kind"], "Table");
    assert!(first["columnDefinitions"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(first["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["rows"][0]["cells"][0], "a");
    let (_, second) = next(&mut ev).await;
    assert!(second["columnDefinitions"].is_null());
    assert_eq!(second["rows"][0]["cells"][0], "b");
}

#[tokio::test]
async fn metadata_mode_sends_partial_objects() {
    let f = fixture();
    f.store.create(&key("a"), pod("a", "x")).await.expect("a");
    let mut c = ctx(&f);
    c.negotiated = Negotiated::Metadata;
    c.bookmarks = true;
    let mut ev = events(
        serve_watch_with(
            c,
            WatchOptions::default().bookmark_every(Duration::from_millis(50)),
        )
        .await
        .expect("watch"),
    );
    let want = |name: &str, object: &Value| {
        assert_eq!(object["kind"], "PartialObjectMetadata", "{object}");
        assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(object["metadata"]["name"], name);
        assert_eq!(object["metadata"]["labels"]["app"], "x");
        assert!(object.get("spec").is_none() && object.get("status").is_none());
    };
    let (t, initial) = next(&mut ev).await;
    assert_eq!(t, "ADDED");
    want("a", &initial);
    f.store.create(&key("b"), pod("b", "x")).await.expect("b");
    let (t, live) = next(&mut ev).await;
    assert_eq!(t, "ADDED");
    want("b", &live);
    let (t, bookmark) = next(&mut ev).await;
    assert_eq!(t, "BOOKMARK");
    assert_eq!(bookmark["kind"], "PartialObjectMetadata");
}

#[tokio::test]
async fn bookmarks_with_initial_events_end() {
    let f = fixture();
    f.store.create(&key("a"), pod("a", "x")).await.expect("a");
    let current = f.store.current_revision().await.expect("rev");
    let mut c = ctx(&f);
    c.bookmarks = true;
    c.timeout = Some(Duration::from_secs(3600));
    let options = WatchOptions::default()
        .send_initial_events(Some(true))
        .bookmark_every(Duration::from_millis(100));
    let mut ev = events(serve_watch_with(c, options).await.expect("watch"));
    assert_eq!(next(&mut ev).await.0, "ADDED");
    let (t, o) = next(&mut ev).await;
    assert_eq!(t, "BOOKMARK");
    assert_eq!(o["kind"], "Pod");
    assert_eq!(o["metadata"]["resourceVersion"], current.to_string());
    assert_eq!(
        o["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let (t, o) = next(&mut ev).await;
    assert_eq!(t, "BOOKMARK");
    assert!(o["metadata"].get("annotations").is_none());
}

#[tokio::test]
async fn bookmarks_carry_the_progress_of_other_namespaces() {
    let f = fixture();
    let mut c = ctx(&f);
    c.bookmarks = true;
    c.timeout = Some(Duration::from_secs(3600));
    let options = WatchOptions::default().bookmark_every(Duration::from_millis(50));
    let mut ev = events(serve_watch_with(c, options).await.expect("watch"));
    // Only another namespace changes: this watch has no event to send, but its bookmarks move.
    let other = f
        .store
        .create("/registry/pods/other/c", pod("c", "x"))
        .await
        .expect("c");
    let want = other.mod_revision.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no bookmark at {want}");
        let (t, o) = next(&mut ev).await;
        assert_eq!(t, "BOOKMARK");
        let rv = o["metadata"]["resourceVersion"].as_str().expect("rv");
        assert!(rv.parse::<Revision>().expect("number") <= other.mod_revision);
        if rv == want {
            break;
        }
    }
}

#[tokio::test]
async fn a_watcher_that_falls_behind_is_closed_without_an_error() {
    let capacity = 2;
    let f = fixture_with(WatchCacheConfig {
        subscriber_capacity: capacity,
        dispatch_budget: Duration::from_millis(10),
        ..WatchCacheConfig::default()
    });
    let now = f.store.current_revision().await.expect("rev");
    let mut c = ctx(&f);
    c.resource_version = Some(now.to_string());
    // Subscribed now; its events queue up while nobody reads the body.
    let mut ev = events(serve_watch(c).await.expect("watch"));
    let mut reader = f
        .cache
        .watch(pods(), Some("ns"), now)
        .await
        .expect("reader");
    for i in 0..2 * capacity {
        f.store
            .create(&key(&format!("p{i}")), pod(&format!("p{i}"), "x"))
            .await
            .expect("create");
    }
    // Once another subscriber has the last event, the feed has dispatched them all.
    let mut seen = 0;
    while seen < 2 * capacity {
        match tokio::time::timeout(Duration::from_secs(10), reader.next()).await {
            Ok(Some(Ok(Update::Event(_)))) => seen += 1,
            Ok(Some(Ok(Update::Progress(_)))) => {}
            other => panic!("the reader got {other:?}"),
        }
    }
    for i in 0..capacity {
        let (t, o) = next(&mut ev).await;
        assert_eq!((t.as_str(), name_rv(&o).0), ("ADDED", format!("p{i}")));
    }
    assert!(ended(&mut ev).await, "closed, with no ERROR event");
}

#[test]
fn a_shared_json_line_is_the_line_each_watcher_would_write() {
    let event = SharedEvent::new(crate::store::WatchEvent {
        kind: EventKind::Create,
        kv: KeyValue {
            key: "/registry/pods/ns/web".into(),
            value: pod("web", "quoted \"app\" é"),
            create_revision: 7,
            mod_revision: 7,
        },
        prev: None,
    });
    let current = event.current().expect("decodes");
    for kind in ["ADDED", "MODIFIED", "DELETED"] {
        assert_eq!(event.json_line(kind).expect("line"), line(kind, current));
    }
    assert!(current.pointer("/metadata/resourceVersion").is_some());

    let broken = SharedEvent::new(crate::store::WatchEvent {
        kind: EventKind::Create,
        kv: KeyValue {
            key: "/registry/pods/ns/bad".into(),
            value: b"{not json".to_vec(),
            create_revision: 8,
            mod_revision: 8,
        },
        prev: None,
    });
    assert!(broken.json_line("ADDED").is_err());
}

#[tokio::test]
async fn initial_events_end_only_for_a_client_that_allows_bookmarks() {
    let f = fixture();
    f.store.create(&key("a"), pod("a", "x")).await.expect("a");
    let mut c = ctx(&f);
    c.bookmarks = false;
    c.timeout = Some(Duration::from_millis(300));
    let options = WatchOptions::default().send_initial_events(Some(true));
    let mut ev = events(serve_watch_with(c, options).await.expect("watch"));
    assert_eq!(next(&mut ev).await.0, "ADDED");
    assert!(
        ev.next().await.is_none(),
        "no bookmark without allowWatchBookmarks"
    );
}

#[test]
fn send_initial_events_is_checked_as_kube_validates_watch_options() {
    let ok = |s, m| send_initial_events(s, m, None).expect("valid");
    assert_eq!(ok(Some("true"), Some("NotOlderThan")), Some(true));
    assert_eq!(ok(Some("false"), Some("NotOlderThan")), Some(false));
    assert_eq!(ok(None, None), None);
    let refused = |s, m, c| send_initial_events(s, m, c).expect_err("refused");
    let no_match = refused(Some("true"), None, None);
    assert_eq!(no_match.code, 422);
    assert_eq!(
        no_match.message,
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
    );
    assert!(refused(None, Some("NotOlderThan"), None)
        .message
        .contains("forbidden for watch unless sendInitialEvents is provided"));
    assert!(refused(Some("true"), Some("Exact"), None)
        .message
        .contains("Unsupported value: \"Exact\""));
    assert!(refused(Some("true"), Some("NotOlderThan"), Some("abc"))
        .message
        .contains("forbidden when continue is provided"));
    assert_eq!(refused(Some("yes"), Some("NotOlderThan"), None).code, 400);
}
