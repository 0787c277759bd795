//! The admission seam: the chain's order, its two phases around the strategy, and the built-in
//! plugins' refusals in kube's words.

use std::sync::Mutex;

use serde_json::json;

use super::*;
use crate::apiserver::codec::{decode_object, encode_object};
use crate::apiserver::keys::object_key;
use crate::apiserver::registry::{WriteError, Writer};
use crate::resources::lookup;
use crate::store::redb::{RedbOptions, RedbStore};
use crate::store::Store;

fn configmaps() -> &'static ResourceDef {
    lookup("", "v1", "configmaps").expect("configmaps")
}

fn namespaces() -> &'static ResourceDef {
    lookup("", "v1", "namespaces").expect("namespaces")
}

/// A plugin that records each call in `log`, labels the object in the mutating phase, and
/// refuses (in the phase `refuse` names) when asked.
struct Recorder {
    name: &'static str,
    operations: &'static [Operation],
    log: Arc<Mutex<Vec<String>>>,
    refuse: Option<&'static str>,
}

impl Recorder {
    fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Self {
        Recorder {
            name,
            operations: &[Operation::Create, Operation::Update, Operation::Delete],
            log: log.clone(),
            refuse: None,
        }
    }

    fn record(&self, phase: &str, attrs: &Attributes<'_>) {
        // What the plugin saw: the labels set so far, and whether the system fields were set.
        let labels = attrs
            .object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
            .unwrap_or_default();
        let uid = attrs
            .object
            .as_ref()
            .and_then(|o| o.pointer("/metadata/uid"))
            .is_some();
        self.log
            .lock()
            .expect("log")
            .push(format!("{}:{phase}:[{labels}]:uid={uid}", self.name));
    }
}

#[async_trait]
impl AdmissionPlugin for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }

    fn handles(&self, operation: Operation) -> bool {
        self.operations.contains(&operation)
    }

    async fn admit(&self, attrs: &mut Attributes<'_>) -> Result<(), Status> {
        self.record("admit", attrs);
        if self.refuse == Some("admit") {
            return Err(Status::forbidden_resource(
                None,
                attrs.name,
                &format!("{} says no", self.name),
            ));
        }
        if let Some(obj) = attrs.object.as_mut() {
            let labels = crate::apiserver::meta::meta_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}));
            labels[self.name] = json!("yes");
        }
        Ok(())
    }

    async fn validate(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        self.record("validate", attrs);
        if self.refuse == Some("validate") {
            return Err(Status::forbidden_resource(
                None,
                attrs.name,
                &format!("{} says no", self.name),
            ));
        }
        Ok(())
    }
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"}, "data": {"a": "b"}})
}

#[tokio::test]
async fn the_chain_runs_in_order_and_stops_at_the_first_refusal() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut deletes_only = Recorder::new("deletes", &log);
    deletes_only.operations = &[Operation::Delete];
    let mut refuses = Recorder::new("third", &log);
    refuses.refuse = Some("admit");
    let chain = Admission::new(vec![
        Arc::new(Recorder::new("first", &log)),
        Arc::new(deletes_only),
        Arc::new(Recorder::new("second", &log)),
        Arc::new(refuses),
        Arc::new(Recorder::new("never", &log)),
    ]);
    let mut attrs = Attributes::new(Operation::Create, configmaps(), "default", "c")
        .with_object(configmap("c"));
    let status = chain.admit(&mut attrs).await.expect_err("third refuses");
    assert_eq!(status.code, 403);
    assert_eq!(status.message, "forbidden: third says no");
    // Each plugin saw what the ones before it did; the one for deletes only was skipped, and
    // nothing ran after the refusal.
    assert_eq!(
        *log.lock().expect("log"),
        vec![
            "first:admit:[]:uid=false",
            "second:admit:[first]:uid=false",
            "third:admit:[first,second]:uid=false",
        ]
    );
}

/// A writer over a fresh store with `chain`, and the store.
async fn fixture(chain: Admission) -> (tempfile::TempDir, Arc<dyn Store>, Writer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).expect("open"),
    );
    let writer = Writer::new(Arc::new(chain), kgate_core::UserInfo::new("tester"));
    (dir, store, writer)
}

#[tokio::test]
async fn mutation_comes_before_the_strategy_and_validation_after_it() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let chain = Admission::new(vec![
        Arc::new(Recorder::new("first", &log)),
        Arc::new(Recorder::new("second", &log)),
    ]);
    let (_dir, store, writer) = fixture(chain).await;
    let kv = writer
        .create(store.as_ref(), configmaps(), configmap("c"))
        .await
        .expect("created");
    // The mutating phase saw the object before its system fields, the validating phase after
    // them (the strategy ran in between), with every mutation; what they set was stored.
    assert_eq!(
        *log.lock().expect("log"),
        vec![
            "first:admit:[]:uid=false",
            "second:admit:[first]:uid=false",
            "first:validate:[first,second]:uid=true",
            "second:validate:[first,second]:uid=true",
        ]
    );
    let stored = decode_object(&kv).expect("decode");
    assert_eq!(stored["metadata"]["labels"]["second"], "yes");
}

#[tokio::test]
async fn a_validating_refusal_stores_nothing() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut refuses = Recorder::new("strict", &log);
    refuses.refuse = Some("validate");
    let (_dir, store, writer) = fixture(Admission::new(vec![Arc::new(refuses)])).await;
    let refused = writer
        .create(store.as_ref(), configmaps(), configmap("c"))
        .await;
    assert!(matches!(refused, Err(WriteError::Refused(s)) if s.code == 403));
    let key = object_key(configmaps(), Some("default"), "c");
    assert!(store.get(&key).await.expect("get").is_none());
}

#[tokio::test]
async fn the_strategy_refuses_before_validating_admission() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_dir, store, writer) =
        fixture(Admission::new(vec![Arc::new(Recorder::new("only", &log))])).await;
    let refused = writer
        .create(store.as_ref(), configmaps(), configmap("Not_A_Name"))
        .await;
    assert!(matches!(refused, Err(WriteError::Refused(s)) if s.code == 422));
    assert_eq!(*log.lock().expect("log"), vec!["only:admit:[]:uid=false"]);
}

#[tokio::test]
async fn namespace_lifecycle_refuses_in_kubes_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).expect("open"),
    );
    let chain = crate::apiserver::state::built_in_admission(Arc::downgrade(&store), Arc::default());
    // A create in a namespace that does not exist: kube's 404 for the namespace.
    let mut attrs =
        Attributes::new(Operation::Create, configmaps(), "nope", "c").with_object(configmap("c"));
    let status = chain.admit(&mut attrs).await.expect_err("no namespace");
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "namespaces \"nope\" not found");
    // A create in a Terminating namespace: 403.
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "leaving"}, "status": {"phase": "Terminating"}});
    store
        .create(
            &object_key(namespaces(), None, "leaving"),
            encode_object(&ns).expect("encode"),
        )
        .await
        .expect("store");
    let mut attrs = Attributes::new(Operation::Create, configmaps(), "leaving", "c")
        .with_object(configmap("c"));
    let status = chain.admit(&mut attrs).await.expect_err("terminating");
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "configmaps \"c\" is forbidden: unable to create new content in namespace leaving because it is being terminated"
    );
    // The system namespaces may not be deleted; others may.
    let mut attrs = Attributes::new(Operation::Delete, namespaces(), "", "kube-system");
    let status = chain.admit(&mut attrs).await.expect_err("immortal");
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
    let mut attrs = Attributes::new(Operation::Delete, namespaces(), "", "leaving");
    chain.admit(&mut attrs).await.expect("may be deleted");
}

/// Records every call: phase, operation, subresource, name, user, and whether an old object
/// was given; refuses the validating phase of deletes of `keep`.
struct Witness {
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl AdmissionPlugin for Witness {
    fn name(&self) -> &'static str {
        "Witness"
    }

    fn handles(&self, _operation: Operation) -> bool {
        true
    }

    async fn admit(&self, attrs: &mut Attributes<'_>) -> Result<(), Status> {
        self.note("admit", attrs);
        Ok(())
    }

    async fn validate(&self, attrs: &Attributes<'_>) -> Result<(), Status> {
        self.note("validate", attrs);
        if attrs.operation == Operation::Delete && attrs.name == "keep" {
            return Err(Status::forbidden_resource(
                Some(kgate_core::status::GroupResource::new("", "configmaps")),
                attrs.name,
                "kept by the witness",
            ));
        }
        Ok(())
    }
}

impl Witness {
    fn note(&self, phase: &str, attrs: &Attributes<'_>) {
        self.log.lock().expect("log").push(format!(
            "{phase} {} {}/{} {} user={} old={} dry={}",
            attrs.operation.as_str(),
            attrs.resource.plural,
            attrs.subresource,
            attrs.name,
            attrs.user.map(|u| u.name.as_str()).unwrap_or("-"),
            attrs.old_object.is_some(),
            attrs.dry_run,
        ));
    }
}

async fn send(router: &axum::Router, method: &str, uri: &str, ct: &str, body: &str) -> u16 {
    use tower::ServiceExt;
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", ct)
        .header("x-remote-user", "alice")
        .body(axum::body::Body::from(body.to_owned()))
        .expect("request");
    let answer = router.clone().oneshot(request).await.expect("answer");
    answer.status().as_u16()
}

#[tokio::test]
async fn every_write_of_the_api_passes_both_phases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).expect("open"),
    );
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut shared = crate::apiserver::state::Shared::new(store.clone());
    shared.admission = Arc::new(Admission::new(vec![
        Arc::new(namespace_lifecycle::NamespaceLifecycle::new(
            Arc::downgrade(&store),
        )),
        Arc::new(Witness { log: log.clone() }),
    ]));
    let shared = Arc::new(shared);
    crate::apiserver::bootstrap::run(&shared)
        .await
        .expect("bootstrap");
    // The bootstrap wrote through the chain too, as the API server itself.
    {
        let mut log = log.lock().expect("log");
        assert!(log.iter().any(|l| l
            == "validate CREATE namespaces/ default user=system:apiserver old=false dry=false"));
        log.clear();
    }
    let router = crate::ApiServer { shared }.router();
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = |name: &str| configmap(name).to_string();
    const JSON: &str = "application/json";
    assert_eq!(send(&router, "POST", cms, JSON, &cm("a")).await, 201);
    assert_eq!(
        send(
            &router,
            "POST",
            &format!("{cms}?dryRun=All"),
            JSON,
            &cm("b")
        )
        .await,
        201
    );
    assert_eq!(
        send(&router, "PUT", &format!("{cms}/a"), JSON, &cm("a")).await,
        200
    );
    let merge = "application/merge-patch+json";
    assert_eq!(
        send(
            &router,
            "PATCH",
            &format!("{cms}/a"),
            merge,
            r#"{"data":{"x":"y"}}"#
        )
        .await,
        200
    );
    assert_eq!(
        send(&router, "DELETE", &format!("{cms}/a"), JSON, "").await,
        200
    );
    // The status subresource: an UPDATE of `namespaces/status`, with the stored object.
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"default"},"status":{"phase":"Active"}}"#;
    assert_eq!(
        send(
            &router,
            "PUT",
            "/api/v1/namespaces/default/status",
            JSON,
            ns
        )
        .await,
        200
    );
    assert_eq!(
        *log.lock().expect("log"),
        vec![
            "admit CREATE configmaps/ a user=alice old=false dry=false",
            "validate CREATE configmaps/ a user=alice old=false dry=false",
            "admit CREATE configmaps/ b user=alice old=false dry=true",
            "validate CREATE configmaps/ b user=alice old=false dry=true",
            "admit UPDATE configmaps/ a user=alice old=true dry=false",
            "validate UPDATE configmaps/ a user=alice old=true dry=false",
            "admit UPDATE configmaps/ a user=alice old=true dry=false",
            "validate UPDATE configmaps/ a user=alice old=true dry=false",
            "admit DELETE configmaps/ a user=alice old=false dry=false",
            "validate DELETE configmaps/ a user=alice old=true dry=false",
            "admit UPDATE namespaces/status default user=alice old=true dry=false",
            "validate UPDATE namespaces/status default user=alice old=true dry=false",
        ]
    );
    // A validating refusal of a delete answers the plugin's Status and removes nothing.
    assert_eq!(send(&router, "POST", cms, JSON, &cm("keep")).await, 201);
    assert_eq!(
        send(&router, "DELETE", &format!("{cms}/keep"), JSON, "").await,
        403
    );
    let key = object_key(configmaps(), Some("default"), "keep");
    assert!(store.get(&key).await.expect("get").is_some());
}

#[tokio::test]
async fn the_controllers_write_through_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        RedbStore::open(&dir.path().join("s.redb"), RedbOptions::default()).expect("open"),
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    store
        .create(
            &object_key(namespaces(), None, "team"),
            encode_object(&ns).expect("encode"),
        )
        .await
        .expect("store");
    let log = Arc::new(Mutex::new(Vec::new()));
    let chain = Arc::new(Admission::new(vec![Arc::new(Witness { log: log.clone() })]));
    let writer = Writer::new(
        chain,
        kgate_core::UserInfo::new("system:serviceaccount:kube-system:service-account-controller"),
    );
    // The first pass is done when spawn returns.
    let task = crate::controllers::serviceaccounts::spawn(Arc::downgrade(&store), writer).await;
    task.abort();
    assert_eq!(
        *log.lock().expect("log"),
        vec![
            "admit CREATE serviceaccounts/ default user=system:serviceaccount:kube-system:service-account-controller old=false dry=false",
            "validate CREATE serviceaccounts/ default user=system:serviceaccount:kube-system:service-account-controller old=false dry=false",
        ]
    );
}
