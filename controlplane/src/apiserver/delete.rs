//! DELETE of one object and of collections, with `DeleteOptions` (body or query): preconditions
//! on uid and resourceVersion, `propagationPolicy` (and the deprecated `orphanDependents`),
//! `dryRun`.
//!
//! An object with finalizers is not removed: it gets `deletionTimestamp` (and
//! `deletionGracePeriodSeconds: 0`) and stays until an update empties its finalizers, which
//! [`super::storage::guaranteed_update`] then turns into the removal. Deleting a namespace marks
//! it Terminating and starts the deletion of its content ([`super::namespaces`]). Pods are
//! removed at once: there is no kubelet to wait for.
//!
//! A delete passes admission ([`super::admission`]) as kube's does: the mutating phase first
//! (NamespaceLifecycle refuses the system namespaces), the validating phase on the stored object
//! just before it is marked or removed.
//!
//! `propagationPolicy` is carried out by the garbage collector (a client of this API), as in
//! kube-apiserver: `Orphan` adds the finalizer [`ORPHAN_FINALIZER`] and `Foreground` the
//! finalizer [`FOREGROUND_FINALIZER`] (each replacing the other), `Background` drops both; the
//! object then stays, marked, until the collector has orphaned or deleted its dependents and
//! removed the finalizer. Without a policy the finalizers already there decide, and the default
//! is `Background` (apps/v1 and every other kind served here).

use std::sync::Arc;

use kgate_core::Status;
use serde_json::{json, Value};

use kgate_core::UserInfo;

use super::admission::{Attributes, Operation};
use super::codec::{decode_object, encode_object};
use super::escalation::front_proxy_user;
use super::keys::{store_status, Target};
use super::meta::{finalizers, is_deleting, mark_deleting, meta_mut, meta_str};
use super::namespaces;
use super::read::{list_object, list_page, ListOptions};
use super::request::{dry_run_values, Reply, Req};
use super::state::Shared;
use super::storage::{get_current, guaranteed_update};
use crate::resources::ResourceDef;
use crate::store::{Revision, StoreError};

/// How many times a delete retries after losing a race with another writer.
const MAX_ATTEMPTS: usize = 8;
/// The finalizer of `propagationPolicy: Orphan` (metav1.FinalizerOrphanDependents).
pub(crate) const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer of `propagationPolicy: Foreground` (metav1.FinalizerDeleteDependents).
pub(crate) const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// `metav1.DeletionPropagation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// `metav1.DeleteOptions`, as far as this server acts on it.
#[derive(Debug, Default, Clone)]
pub(crate) struct DeleteOptions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
    /// `propagationPolicy` (or the deprecated `orphanDependents`); `None` when not given.
    pub propagation: Option<Propagation>,
}

impl DeleteOptions {
    /// From the body (optional) and the query, as kube merges them.
    pub fn from_request(req: &Req) -> Result<Self, Status> {
        let mut opts = DeleteOptions {
            dry_run: req.dry_run()?,
            ..Self::default()
        };
        let mut policy = req.query.get("propagationPolicy").map(str::to_owned);
        let mut orphan_dependents = match req.query.get("orphanDependents") {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        if !req.body.iter().all(u8::is_ascii_whitespace) {
            let body = req.body_value()?;
            opts.uid = body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            opts.resource_version = body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(values) = body.get("dryRun").and_then(Value::as_array) {
                opts.dry_run |=
                    dry_run_values(values.iter().filter_map(Value::as_str), "DeleteOptions")?;
            }
            if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
                policy = Some(p.to_owned());
            }
            if let Some(o) = body.get("orphanDependents").and_then(Value::as_bool) {
                orphan_dependents = Some(o);
            }
        }
        opts.propagation = match policy.as_deref() {
            None => orphan_dependents.map(|o| {
                if o {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                }
            }),
            Some("Orphan") => Some(Propagation::Orphan),
            Some("Background") => Some(Propagation::Background),
            Some("Foreground") => Some(Propagation::Foreground),
            Some(other) => return Err(Status::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![kgate_core::status::StatusCause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
                    field: "propagationPolicy".into(),
                }],
            )),
        };
        Ok(opts)
    }
}

/// The finalizers `obj` must carry once deleted with `policy`, when they differ from its
/// current ones (kube's `deletionFinalizersForGarbageCollection`): the garbage collection
/// finalizers are dropped, then the one the policy asks for is added. Without a policy the
/// finalizers already there stand, so nothing changes.
pub(crate) fn gc_finalizers(obj: &Value, policy: Option<Propagation>) -> Option<Vec<String>> {
    let policy = policy?;
    let current = finalizers(obj);
    let mut next: Vec<String> = current
        .iter()
        .filter(|f| **f != ORPHAN_FINALIZER && **f != FOREGROUND_FINALIZER)
        .map(|f| (*f).to_owned())
        .collect();
    match policy {
        Propagation::Orphan => next.push(ORPHAN_FINALIZER.to_owned()),
        Propagation::Foreground => next.push(FOREGROUND_FINALIZER.to_owned()),
        Propagation::Background => {}
    }
    let same = next.len() == current.len() && next.iter().all(|f| current.contains(&f.as_str()));
    (!same).then_some(next)
}

/// The policy of a delete that names none, when the resource's strategy has its own default
/// (kube's `shouldOrphanDependents`): a `v1` ReplicationController orphans its pods, for
/// compatibility (`rcStrategy.DefaultGarbageCollectionPolicy`), unless a garbage collection
/// finalizer already on it says otherwise.
fn default_propagation(def: &ResourceDef, obj: &Value) -> Option<Propagation> {
    let orphans_by_default = def.group.is_empty() && def.kind == "ReplicationController";
    let decided = finalizers(obj)
        .iter()
        .any(|f| *f == ORPHAN_FINALIZER || *f == FOREGROUND_FINALIZER);
    (orphans_by_default && !decided).then_some(Propagation::Orphan)
}

/// `obj` with `metadata.finalizers` set to `list` (removed when empty).
fn with_finalizers(mut obj: Value, list: Vec<String>) -> Value {
    let meta = meta_mut(&mut obj);
    if list.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), json!(list));
    }
    obj
}

/// kube's `rest.BeforeDelete` conflict: it names the kind (not the resource), and says which
/// precondition failed and why that may be.
fn precondition_failed(target: &Target<'_>, what: &str, want: &str, have: &str) -> Status {
    let why = if what == "UID" {
        "The object might have been deleted and then recreated"
    } else {
        "The object might have been modified"
    };
    Status::conflict(
        kgate_core::status::GroupResource::new(target.def.group, target.def.kind),
        target.name,
        &format!(
            "the {what} in the precondition ({want}) does not match the {what} in record ({have}). {why}"
        ),
    )
}

/// Checks the preconditions of `opts` against the current object.
pub(crate) fn check_preconditions(
    target: &Target<'_>,
    opts: &DeleteOptions,
    obj: &Value,
) -> Result<(), Status> {
    if let Some(uid) = &opts.uid {
        let have = meta_str(obj, "uid").unwrap_or("");
        if uid != have {
            return Err(precondition_failed(target, "UID", uid, have));
        }
    }
    if let Some(rv) = &opts.resource_version {
        let have = meta_str(obj, "resourceVersion").unwrap_or("");
        if rv != have {
            return Err(precondition_failed(target, "ResourceVersion", rv, have));
        }
    }
    Ok(())
}

/// Deletes one object (not a namespace); returns it as it was last.
pub(crate) async fn delete_object(
    shared: &Arc<Shared>,
    target: &Target<'_>,
    opts: &DeleteOptions,
    user: Option<&UserInfo>,
) -> Result<Value, Status> {
    let store = shared.store.as_ref();
    let key = target.key();
    for _ in 0..MAX_ATTEMPTS {
        let (kv, obj) = get_current(store, target).await?;
        check_preconditions(target, opts, &obj)?;
        validate_delete(shared, target, &obj, opts, user).await?;
        // The policy may change the finalizers, even of an object already being deleted (a
        // second delete with another policy), and may leave none (Background on an orphaning
        // object): then it is removed at once.
        let policy = opts
            .propagation
            .or_else(|| default_propagation(target.def, &obj));
        let (obj, changed) = match gc_finalizers(&obj, policy) {
            Some(list) => (with_finalizers(obj, list), true),
            None => (obj, false),
        };
        if !finalizers(&obj).is_empty() {
            if is_deleting(&obj) && !changed {
                return Ok(obj);
            }
            let marked = if is_deleting(&obj) {
                obj
            } else {
                mark_deleting(obj)
            };
            if opts.dry_run {
                return Ok(marked);
            }
            match store
                .update(&key, encode_object(&marked)?, kv.mod_revision)
                .await
            {
                Ok(kv) => return decode_object(&kv),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_status(e, Some(target))),
            }
        }
        if opts.dry_run {
            return Ok(obj);
        }
        match store.delete(&key, Some(kv.mod_revision)).await {
            Ok(_) => return Ok(obj),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_status(e, Some(target))),
        }
    }
    Err(target.conflict())
}

/// DELETE of one object: 200 with the object (marked, or as it was before removal).
pub(crate) async fn delete(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let opts = DeleteOptions::from_request(req)?;
    let user = front_proxy_user(&req.headers);
    let mut attrs = delete_attributes(req, &req.name, user.as_ref(), &opts);
    // Mutating admission (NamespaceLifecycle keeps the system namespaces).
    shared.admission.admit(&mut attrs).await?;
    if req.def.kind == "Namespace" {
        return delete_namespace(shared, &req.name, &opts, user.as_ref())
            .await
            .map(Reply::ok);
    }
    let obj = delete_object(shared, &req.target(), &opts, user.as_ref()).await?;
    // An object still waiting for finalizers is answered as it now is; one removed, as its
    // resource's storage answers (kube's `finalizeDelete`).
    if !finalizers(&obj).is_empty() {
        return Ok(Reply::ok(obj));
    }
    if req.def.group.is_empty() && req.def.kind == "Pod" {
        // A pod's deletion is graceful in kube: the pod is marked (deletionTimestamp, grace
        // period 0 for a pod no kubelet runs) before it goes, and answered as marked.
        return Ok(Reply::ok(mark_deleting(obj)));
    }
    if returns_deleted_object(req.def) {
        return Ok(Reply::ok(obj));
    }
    Ok(Reply::ok(deleted_status(req.def, &obj)))
}

/// Whether kube's storage of `def` answers a removal with the object (`ReturnDeletedObject`)
/// rather than a `Status` of `Success`: of the resources served here, the core kinds below and
/// every storage.k8s.io and resource.k8s.io kind but CSIStorageCapacity.
fn returns_deleted_object(def: &ResourceDef) -> bool {
    match def.group {
        "" => matches!(
            def.kind,
            "Pod"
                | "Service"
                | "ServiceAccount"
                | "Namespace"
                | "PersistentVolume"
                | "PersistentVolumeClaim"
        ),
        "storage.k8s.io" => def.kind != "CSIStorageCapacity",
        "resource.k8s.io" => true,
        _ => false,
    }
}

/// kube's answer to the removal of `obj`: `Success`, with the details naming it (`kind` is the
/// resource, as kube sets it).
fn deleted_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = serde_json::Map::new();
    details.insert("name".into(), json!(meta_str(obj, "name").unwrap_or("")));
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    if let Some(uid) = meta_str(obj, "uid") {
        details.insert("uid".into(), json!(uid));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// The admission attributes of a delete of `name` (empty for a collection).
fn delete_attributes<'a>(
    req: &'a Req,
    name: &'a str,
    user: Option<&'a UserInfo>,
    opts: &DeleteOptions,
) -> Attributes<'a> {
    Attributes::new(
        Operation::Delete,
        req.def,
        req.namespace.as_deref().unwrap_or(""),
        name,
    )
    .with_user(user)
    .with_dry_run(opts.dry_run)
}

/// The validating admission of a delete of `old`, at `target`.
async fn validate_delete(
    shared: &Shared,
    target: &Target<'_>,
    old: &Value,
    opts: &DeleteOptions,
    user: Option<&UserInfo>,
) -> Result<(), Status> {
    let attrs = Attributes::new(
        Operation::Delete,
        target.def,
        target.namespace.unwrap_or(""),
        target.name,
    )
    .with_old(old)
    .with_user(user)
    .with_dry_run(opts.dry_run);
    shared.admission.validate(&attrs).await
}

/// DELETE of a namespace: marks it Terminating and starts the content deletion
/// ([`namespaces::spawn_finalizer`]).
async fn delete_namespace(
    shared: &Arc<Shared>,
    name: &str,
    opts: &DeleteOptions,
    user: Option<&UserInfo>,
) -> Result<Value, Status> {
    let target = namespaces::namespace_target(name)?;
    let (_, current) = get_current(shared.store.as_ref(), &target).await?;
    check_preconditions(&target, opts, &current)?;
    let marked = guaranteed_update(
        shared.store.as_ref(),
        &target,
        None,
        opts.dry_run,
        |current: Arc<Value>| async move {
            let current = &*current;
            if is_deleting(current) {
                return Ok(current.clone());
            }
            validate_delete(shared, &target, current, opts, user).await?;
            let mut next = mark_deleting(current.clone());
            // kube's namespace storage sets the deletion time only, no grace period.
            meta_mut(&mut next).remove("deletionGracePeriodSeconds");
            next["status"] = json!({"phase": "Terminating"});
            Ok(next)
        },
    )
    .await?;
    if !opts.dry_run {
        namespaces::spawn_finalizer(shared.store.clone(), name.to_owned());
    }
    Ok(marked)
}

/// DELETE of a collection (with selectors): deletes each match, answers the `<Kind>List` of
/// what was deleted or marked.
pub(crate) async fn delete_collection(shared: &Arc<Shared>, req: &Req) -> Result<Reply, Status> {
    let opts = DeleteOptions::from_request(req)?;
    let user = front_proxy_user(&req.headers);
    let mut attrs = delete_attributes(req, "", user.as_ref(), &opts);
    shared.admission.admit(&mut attrs).await?;
    let mut list_opts = ListOptions::from_request(req)?;
    list_opts.limit = 0;
    list_opts.continue_token = None;
    let page = list_page(
        shared.store.as_ref(),
        req.def,
        req.namespace.as_deref(),
        &list_opts,
    )
    .await?;
    let mut revision: Revision = page.revision;
    for obj in &page.items {
        let name = meta_str(obj, "name").unwrap_or("").to_owned();
        let target = Target {
            def: req.def,
            namespace: meta_str(obj, "namespace"),
            name: &name,
        };
        match delete_object(shared, &target, &opts, user.as_ref()).await {
            Ok(_) => {}
            // Gone meanwhile: someone else deleted it, which is what was asked.
            Err(s) if s.code == 404 => {}
            Err(s) => return Err(s),
        }
    }
    if let Ok(rev) = shared.store.current_revision().await {
        revision = rev;
    }
    // kube's `Store.DeleteCollection` answers the list it deleted from, as listed: an object a
    // finalizer now holds is shown as it was before this delete marked it.
    Ok(Reply::ok(list_object(req.def, page.items, revision, None)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use bytes::Bytes;
    use http::{HeaderMap, Method, Request};
    use http_body_util::BodyExt;
    use kgate_core::request_info::QueryParams;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use super::*;
    use crate::store::redb::{RedbOptions, RedbStore};

    fn req(query: &str, body: &str) -> Req {
        Req {
            def: crate::resources::lookup("", "v1", "configmaps").unwrap(),
            namespace: Some("default".into()),
            name: "a".into(),
            subresource: String::new(),
            query: QueryParams::parse(query),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
            options_kind: "DeleteOptions",
        }
    }

    #[test]
    fn the_policy_comes_from_the_query_or_the_body() {
        let of = |q: &str, b: &str| DeleteOptions::from_request(&req(q, b)).unwrap().propagation;
        assert_eq!(of("", ""), None);
        assert_eq!(
            of("propagationPolicy=Foreground", ""),
            Some(Propagation::Foreground)
        );
        assert_eq!(
            of(
                "",
                r#"{"kind":"DeleteOptions","propagationPolicy":"Orphan"}"#
            ),
            Some(Propagation::Orphan)
        );
        assert_eq!(
            of(
                "propagationPolicy=Orphan",
                r#"{"propagationPolicy":"Background"}"#
            ),
            Some(Propagation::Background)
        );
        assert_eq!(
            of("", r#"{"orphanDependents":true}"#),
            Some(Propagation::Orphan)
        );
        assert_eq!(
            of("orphanDependents=false", ""),
            Some(Propagation::Background)
        );
        let bad = DeleteOptions::from_request(&req("propagationPolicy=Later", "")).unwrap_err();
        assert_eq!(bad.code, 422);
    }

    #[test]
    fn the_policy_sets_the_garbage_collection_finalizers() {
        let obj = |f: Value| json!({"metadata": {"name": "a", "finalizers": f}});
        assert_eq!(
            gc_finalizers(&obj(json!([])), Some(Propagation::Orphan)),
            Some(vec!["orphan".to_owned()])
        );
        assert_eq!(
            gc_finalizers(
                &obj(json!(["orphan", "x/y"])),
                Some(Propagation::Foreground)
            ),
            Some(vec!["x/y".to_owned(), "foregroundDeletion".to_owned()])
        );
        assert_eq!(
            gc_finalizers(&obj(json!(["orphan"])), Some(Propagation::Background)),
            Some(vec![])
        );
        assert_eq!(
            gc_finalizers(&obj(json!(["x/y"])), Some(Propagation::Background)),
            None
        );
        assert_eq!(
            gc_finalizers(
                &obj(json!(["foregroundDeletion"])),
                Some(Propagation::Foreground)
            ),
            None
        );
        assert_eq!(gc_finalizers(&obj(json!(["orphan"])), None), None);
    }

    /// A v1 ReplicationController deleted without a policy orphans its pods (kube's
    /// `rcStrategy.DefaultGarbageCollectionPolicy`); a garbage collection finalizer already on
    /// it decides instead, and other kinds have no default.
    #[test]
    fn replication_controllers_orphan_by_default() {
        let rcs = crate::resources::lookup("", "v1", "replicationcontrollers").expect("rcs");
        let rss = crate::resources::lookup("apps", "v1", "replicasets").expect("rss");
        let obj = |f: Value| json!({"metadata": {"name": "a", "finalizers": f}});
        assert_eq!(
            default_propagation(rcs, &obj(json!(["x/y"]))),
            Some(Propagation::Orphan)
        );
        assert_eq!(
            default_propagation(rcs, &obj(json!(["foregroundDeletion"]))),
            None
        );
        assert_eq!(default_propagation(rss, &obj(json!([]))), None);
    }

    /// A server over a fresh store, its router, and the directory to keep alive.
    async fn server() -> (axum::Router, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(
            RedbStore::open(&tmp.path().join("store.redb"), RedbOptions::default()).unwrap(),
        );
        let server = crate::ApiServer::start(store).await.unwrap();
        (server.router(), tmp)
    }

    async fn send(
        router: &axum::Router,
        method: Method,
        uri: &str,
        ct: &str,
        body: Value,
    ) -> (u16, Value) {
        let body = if body.is_null() {
            Body::empty()
        } else {
            Body::from(body.to_string())
        };
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ct)
            .body(body)
            .unwrap();
        let answer = router.clone().oneshot(request).await.unwrap();
        let code = answer.status().as_u16();
        let bytes = answer.into_body().collect().await.unwrap().to_bytes();
        (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// `send` without a body.
    async fn bodiless(router: &axum::Router, method: Method, uri: &str) -> (u16, Value) {
        send(router, method, uri, "application/json", Value::Null).await
    }

    const CMS: &str = "/api/v1/namespaces/default/configmaps";

    async fn create(router: &axum::Router, name: &str) {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
        let (code, body) = send(router, Method::POST, CMS, "application/json", cm).await;
        assert_eq!(code, 201, "{body}");
    }

    async fn release(router: &axum::Router, name: &str) -> u16 {
        let patch = json!({"metadata": {"finalizers": null}});
        let uri = format!("{CMS}/{name}");
        send(
            router,
            Method::PATCH,
            &uri,
            "application/merge-patch+json",
            patch,
        )
        .await
        .0
    }

    #[tokio::test]
    async fn foreground_and_orphan_deletes_wait_for_the_collector() {
        let (router, _dir) = server().await;
        for (name, policy, finalizer) in [
            ("fg", "Foreground", "foregroundDeletion"),
            ("or", "Orphan", "orphan"),
        ] {
            create(&router, name).await;
            let uri = format!("{CMS}/{name}?propagationPolicy={policy}");
            let (code, marked) = bodiless(&router, Method::DELETE, &uri).await;
            assert_eq!(code, 200, "{marked}");
            assert_eq!(marked["metadata"]["finalizers"], json!([finalizer]));
            assert!(marked["metadata"]["deletionTimestamp"].is_string());
            let (code, kept) = bodiless(&router, Method::GET, &format!("{CMS}/{name}")).await;
            assert_eq!(code, 200);
            assert_eq!(kept["metadata"]["finalizers"], json!([finalizer]));
            // The collector's update that removes the finalizer ends the deletion.
            assert_eq!(release(&router, name).await, 200);
            let (code, _) = bodiless(&router, Method::GET, &format!("{CMS}/{name}")).await;
            assert_eq!(code, 404);
        }
    }

    #[tokio::test]
    async fn background_deletes_at_once_and_overrides_a_pending_orphan() {
        let (router, _dir) = server().await;
        create(&router, "bg").await;
        let body =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"});
        let (code, _) = send(
            &router,
            Method::DELETE,
            &format!("{CMS}/bg"),
            "application/json",
            body,
        )
        .await;
        assert_eq!(code, 200);
        let (code, _) = bodiless(&router, Method::GET, &format!("{CMS}/bg")).await;
        assert_eq!(code, 404);
        // Orphan first, then Background: the orphan finalizer goes and the object with it.
        create(&router, "ob").await;
        let orphan = format!("{CMS}/ob?propagationPolicy=Orphan");
        assert_eq!(bodiless(&router, Method::DELETE, &orphan).await.0, 200);
        let background = format!("{CMS}/ob?propagationPolicy=Background");
        assert_eq!(bodiless(&router, Method::DELETE, &background).await.0, 200);
        let (code, _) = bodiless(&router, Method::GET, &format!("{CMS}/ob")).await;
        assert_eq!(code, 404);
        // Foreground then Orphan on an object held by another finalizer: the policy's
        // finalizer is swapped, the other kept.
        let held = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
        assert_eq!(
            send(&router, Method::POST, CMS, "application/json", held)
                .await
                .0,
            201
        );
        let fg = format!("{CMS}/held?propagationPolicy=Foreground");
        let (_, marked) = bodiless(&router, Method::DELETE, &fg).await;
        assert_eq!(
            marked["metadata"]["finalizers"],
            json!(["example.com/hold", "foregroundDeletion"])
        );
        let or = format!("{CMS}/held?propagationPolicy=Orphan");
        let (_, swapped) = bodiless(&router, Method::DELETE, &or).await;
        assert_eq!(
            swapped["metadata"]["finalizers"],
            json!(["example.com/hold", "orphan"])
        );
        assert_eq!(
            swapped["metadata"]["deletionTimestamp"],
            marked["metadata"]["deletionTimestamp"]
        );
        // A plain delete of an object already marked changes nothing.
        let (_, again) = bodiless(&router, Method::DELETE, &format!("{CMS}/held")).await;
        assert_eq!(
            again["metadata"]["finalizers"],
            json!(["example.com/hold", "orphan"])
        );
        assert_eq!(release(&router, "held").await, 200);
    }
}
