//! The garbage collector, as kube-controller-manager's: objects whose owners (by
//! `metadata.ownerReferences`, matched by uid) are all gone are deleted, and the deletion
//! policies the API server leaves to it are carried out.
//!
//! - Background (the default): the owner is removed at once; its dependents, left without a
//!   live owner, are deleted once a GET confirms the owner is gone (a dependent naming an owner
//!   that never existed goes the same way).
//! - Foreground: the owner waits, with `deletionTimestamp` and the finalizer
//!   `foregroundDeletion`, while the collector deletes its dependents; once none that blocks it
//!   (`blockOwnerDeletion`) is left, the collector removes the finalizer and the API server
//!   removes the owner.
//! - Orphan: the owner waits with the finalizer `orphan` while the collector removes the
//!   references to it from its dependents, then the finalizer.
//!
//! The collector discovers the served resources, watches every one it may delete (events
//! aside), and keeps the owner index in [`graph`]. It works only through the API; every
//! failed call is logged and retried on the next pass.

mod graph;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{
    Api, DeleteParams, DynamicObject, PartialObjectMeta, Patch, PatchParams, Preconditions,
};
use kube::discovery::{verbs, ApiCapabilities, ApiResource, Discovery, Scope};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use graph::{decide, Action, Graph, Item, OwnerState, Policy, FOREGROUND, ORPHAN};

/// How often failed work is retried and everything pending looked at again.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often every object with owners is looked at again, in case an event was missed.
const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// Attempts of one read-modify-write before it is left for the next pass.
const WRITE_ATTEMPTS: usize = 5;
/// Resources never watched: nothing owns them, and they churn.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// Why one piece of work failed (it is retried).
#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("gave up after repeated conflicts")]
    Conflicts,
}

/// A served resource, as the collector uses it.
#[derive(Debug, Clone)]
struct Resource {
    ar: ApiResource,
    namespaced: bool,
}

/// One watch event, reduced to what the graph needs.
#[derive(Debug)]
enum Change {
    Apply(Item),
    Delete(String),
    Init,
    InitApply(Item),
    InitDone,
}

/// Runs the controller until the task is aborted.
pub fn spawn(client: kube::Client) -> JoinHandle<()> {
    tokio::spawn(async move {
        let resources = discover(&client).await;
        Collector::new(client, resources).run().await;
    })
}

/// The served resources, retried until discovery answers.
async fn discover(client: &kube::Client) -> Vec<Resource> {
    loop {
        match Discovery::new(client.clone()).run().await {
            Ok(d) => {
                let mut out = Vec::new();
                for group in d.groups() {
                    for (ar, caps) in group.recommended_resources() {
                        if usable(&ar, &caps) {
                            out.push(Resource {
                                namespaced: caps.scope == Scope::Namespaced,
                                ar,
                            });
                        }
                    }
                }
                return out;
            }
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector: discovery failed; retrying");
                tokio::time::sleep(RETRY_EVERY).await;
            }
        }
    }
}

fn usable(ar: &ApiResource, caps: &ApiCapabilities) -> bool {
    [
        verbs::GET,
        verbs::LIST,
        verbs::WATCH,
        verbs::DELETE,
        verbs::PATCH,
    ]
    .iter()
    .all(|v| caps.supports_operation(v))
        && !IGNORED.contains(&(ar.group.as_str(), ar.plural.as_str()))
}

struct Collector {
    client: kube::Client,
    resources: Vec<Resource>,
    /// (group, kind) to resource index, to find an owner from its reference.
    by_kind: HashMap<(String, String), usize>,
    graph: Graph,
    /// Resources whose first list is complete; nothing is decided before all are.
    synced: HashSet<usize>,
    /// Per resource, the uids listed since its last watch restart.
    relisting: HashMap<usize, HashSet<String>>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    /// Work that failed or waits, looked at again on the next tick.
    retry: HashSet<String>,
}

impl Collector {
    fn new(client: kube::Client, resources: Vec<Resource>) -> Self {
        let by_kind = resources
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.ar.group.clone(), r.ar.kind.clone()), i))
            .collect();
        Collector {
            client,
            resources,
            by_kind,
            graph: Graph::default(),
            synced: HashSet::new(),
            relisting: HashMap::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            retry: HashSet::new(),
        }
    }

    async fn run(mut self) {
        let (tx, mut rx) = mpsc::channel::<(usize, Change)>(1024);
        // The watch tasks end with this one's abort: they are aborted when their handles drop.
        let _watches: Vec<AbortOnDrop> = self
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                AbortOnDrop(tokio::spawn(watch(
                    self.client.clone(),
                    i,
                    r.ar.clone(),
                    tx.clone(),
                )))
            })
            .collect();
        drop(tx);
        tracing::info!(
            resources = self.resources.len(),
            "garbage collector started"
        );
        let mut tick = tokio::time::interval(RETRY_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => {
                    let Some((i, change)) = msg else {
                        // Every watch ended: only an abort does that; wait for it.
                        std::future::pending::<()>().await;
                        return;
                    };
                    self.on_change(i, change);
                    while let Ok((i, change)) = rx.try_recv() {
                        self.on_change(i, change);
                    }
                }
                _ = tick.tick() => {
                    for uid in std::mem::take(&mut self.retry) {
                        self.enqueue(uid);
                    }
                }
                _ = resync.tick() => {
                    for uid in self.graph.needing_attention() {
                        self.enqueue(uid);
                    }
                }
            }
            if self.synced.len() == self.resources.len() {
                self.work().await;
            }
        }
    }

    fn enqueue(&mut self, uid: String) {
        if self.queued.insert(uid.clone()) {
            self.queue.push_back(uid);
        }
    }

    fn on_change(&mut self, resource: usize, change: Change) {
        let dirty = match change {
            Change::Apply(item) => self.graph.apply(item),
            Change::Delete(uid) => self.graph.remove(&uid),
            Change::Init => {
                self.relisting.insert(resource, HashSet::new());
                Vec::new()
            }
            Change::InitApply(item) => {
                self.relisting
                    .entry(resource)
                    .or_default()
                    .insert(item.uid.clone());
                self.graph.apply(item)
            }
            Change::InitDone => {
                let listed = self.relisting.remove(&resource).unwrap_or_default();
                let mut dirty = Vec::new();
                for uid in self.graph.uids_of(resource) {
                    if !listed.contains(&uid) {
                        dirty.extend(self.graph.remove(&uid));
                    }
                }
                if self.synced.insert(resource) && self.synced.len() == self.resources.len() {
                    tracing::info!(objects = self.graph.len(), "garbage collector synced");
                    dirty.extend(self.graph.needing_attention());
                }
                dirty
            }
        };
        for uid in dirty {
            self.enqueue(uid);
        }
    }

    /// Handles everything queued.
    async fn work(&mut self) {
        while let Some(uid) = self.queue.pop_front() {
            self.queued.remove(&uid);
            let Some(item) = self.graph.get(&uid).cloned() else {
                continue;
            };
            let outcome = if item.orphaning() {
                self.orphan_dependents(&item).await
            } else if item.deleting_dependents() {
                self.delete_dependents(&item).await
            } else {
                self.attempt_to_delete(&item).await.map(|_| true)
            };
            match outcome {
                Ok(true) => {}
                Ok(false) => {
                    self.retry.insert(uid);
                }
                Err(e) => {
                    tracing::warn!(object = %self.describe(&item), error = %e, "garbage collector: will retry");
                    self.retry.insert(uid);
                }
            }
        }
    }

    fn describe(&self, item: &Item) -> String {
        let plural = self
            .resources
            .get(item.resource)
            .map_or("?", |r| r.ar.plural.as_str());
        match &item.namespace {
            Some(ns) => format!("{plural} {ns}/{}", item.name),
            None => format!("{plural} {}", item.name),
        }
    }

    fn api(&self, resource: usize, namespace: Option<&str>) -> Option<Api<DynamicObject>> {
        let r = self.resources.get(resource)?;
        Some(match (r.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &r.ar),
            _ => Api::all_with(self.client.clone(), &r.ar),
        })
    }

    /// The state of one owner reference of `item`: from the graph when the owner is there,
    /// else from a GET (the graph may simply not have seen it yet).
    async fn owner_state(
        &self,
        item: &Item,
        uid: &str,
        kind: &str,
        api_version: &str,
        name: &str,
    ) -> Result<OwnerState, GcError> {
        if let Some(owner) = self.graph.get(uid) {
            return Ok(if owner.deleting_dependents() {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let Some(&resource) = self.by_kind.get(&(group.to_owned(), kind.to_owned())) else {
            return Ok(OwnerState::Unknown);
        };
        let owner_namespaced = self.resources.get(resource).is_some_and(|r| r.namespaced);
        if owner_namespaced && item.namespace.is_none() {
            // A cluster-scoped object cannot be owned by a namespaced one: the reference is void.
            return Ok(OwnerState::Dangling);
        }
        let Some(api) = self.api(resource, item.namespace.as_deref()) else {
            return Ok(OwnerState::Unknown);
        };
        Ok(match api.get_opt(name).await? {
            Some(o) if o.metadata.uid.as_deref() == Some(uid) => {
                let foreground = o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                if foreground {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                }
            }
            _ => OwnerState::Dangling,
        })
    }

    /// A dependent: deleted when no owner is left alive, rid of its gone owners otherwise.
    async fn attempt_to_delete(&mut self, item: &Item) -> Result<(), GcError> {
        if item.deleting || item.owners.is_empty() {
            return Ok(());
        }
        let mut states = Vec::with_capacity(item.owners.len());
        for r in &item.owners {
            let state = self
                .owner_state(item, &r.uid, &r.kind, &r.api_version, &r.name)
                .await?;
            states.push((r.uid.clone(), state));
        }
        let has_dependents = !self.graph.dependents(&item.uid).is_empty();
        match decide(item, &states, has_dependents) {
            Action::Nothing => Ok(()),
            Action::RemoveOwners(uids) => {
                tracing::info!(object = %self.describe(item), owners = ?uids, "garbage collector: removing references to gone owners");
                self.update_meta(item, |meta| {
                    let refs = meta.owner_references.get_or_insert_with(Vec::new);
                    let before = refs.len();
                    refs.retain(|r| !uids.contains(&r.uid));
                    (refs.len() != before).then(|| json!({"ownerReferences": null_if_empty(refs)}))
                })
                .await
            }
            Action::Delete(policy) => {
                tracing::info!(object = %self.describe(item), policy = policy.as_str(), "garbage collector: deleting an object whose owners are gone");
                self.delete(item, policy).await
            }
        }
    }

    /// An owner deleted in the foreground: its dependents are deleted; the finalizer goes when
    /// none that blocks it is left. `Ok(false)`: still waiting.
    async fn delete_dependents(&mut self, owner: &Item) -> Result<bool, GcError> {
        let dependents = self.graph.dependents(&owner.uid);
        let mut blocking = false;
        for uid in &dependents {
            let Some(dep) = self.graph.get(uid).cloned() else {
                continue;
            };
            blocking |= dep.blocks(&owner.uid);
            if !dep.deleting {
                self.attempt_to_delete(&dep).await?;
            }
        }
        if blocking {
            return Ok(false);
        }
        tracing::info!(object = %self.describe(owner), "garbage collector: dependents gone; finishing the foreground deletion");
        self.remove_finalizer(owner, FOREGROUND).await?;
        Ok(true)
    }

    /// An owner deleted with Orphan: its dependents let go of it, then the finalizer goes.
    async fn orphan_dependents(&mut self, owner: &Item) -> Result<bool, GcError> {
        for uid in self.graph.dependents(&owner.uid) {
            let Some(dep) = self.graph.get(&uid).cloned() else {
                continue;
            };
            let gone = owner.uid.clone();
            self.update_meta(&dep, |meta| {
                let refs = meta.owner_references.get_or_insert_with(Vec::new);
                let before = refs.len();
                refs.retain(|r| r.uid != gone);
                (refs.len() != before).then(|| json!({"ownerReferences": null_if_empty(refs)}))
            })
            .await?;
        }
        tracing::info!(object = %self.describe(owner), "garbage collector: dependents orphaned");
        self.remove_finalizer(owner, ORPHAN).await?;
        Ok(true)
    }

    async fn remove_finalizer(&self, item: &Item, finalizer: &str) -> Result<(), GcError> {
        self.update_meta(item, |meta| {
            let list = meta.finalizers.get_or_insert_with(Vec::new);
            let before = list.len();
            list.retain(|f| f != finalizer);
            (list.len() != before).then(|| json!({"finalizers": null_if_empty(list)}))
        })
        .await
    }

    /// Reads the object afresh and, when `change` says what to write in its metadata, merges it
    /// with the resourceVersion read as the precondition; retried on conflicts. An object gone
    /// or replaced (another uid) needs nothing.
    async fn update_meta<F>(&self, item: &Item, change: F) -> Result<(), GcError>
    where
        F: Fn(&mut kube::api::ObjectMeta) -> Option<serde_json::Value>,
    {
        let Some(api) = self.api(item.resource, item.namespace.as_deref()) else {
            return Ok(());
        };
        for _ in 0..WRITE_ATTEMPTS {
            let Some(mut obj) = api.get_opt(&item.name).await? else {
                return Ok(());
            };
            if obj.metadata.uid.as_deref() != Some(item.uid.as_str()) {
                return Ok(());
            }
            let rv = obj.metadata.resource_version.clone();
            let Some(serde_json::Value::Object(mut meta)) = change(&mut obj.metadata) else {
                return Ok(());
            };
            meta.insert("resourceVersion".into(), json!(rv));
            let patch = json!({"metadata": meta});
            match api
                .patch(&item.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if status_code(&e) == Some(409) => continue,
                Err(e) if status_code(&e) == Some(404) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(GcError::Conflicts)
    }

    async fn delete(&self, item: &Item, policy: Policy) -> Result<(), GcError> {
        let Some(api) = self.api(item.resource, item.namespace.as_deref()) else {
            return Ok(());
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(item.uid.clone()),
                resource_version: None,
            }),
            propagation_policy: Some(match policy {
                Policy::Orphan => kube::api::PropagationPolicy::Orphan,
                Policy::Background => kube::api::PropagationPolicy::Background,
                Policy::Foreground => kube::api::PropagationPolicy::Foreground,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&item.name, &params).await {
            Ok(_) => Ok(()),
            // Gone already, or replaced by another object of the same name.
            Err(e) if matches!(status_code(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The list as JSON, `null` (field removed) when empty.
fn null_if_empty<T: serde::Serialize>(list: &[T]) -> serde_json::Value {
    if list.is_empty() {
        serde_json::Value::Null
    } else {
        json!(list)
    }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches one resource until aborted (or until the collector is gone), forwarding changes.
async fn watch(
    client: kube::Client,
    resource: usize,
    ar: ApiResource,
    tx: mpsc::Sender<(usize, Change)>,
) {
    // Metadata only (owners, finalizers, deletion), as kube's collector uses metadata
    // informers: the server sends no spec or status, and nothing here decodes them.
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &ar);
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(watcher::Event::Apply(o)) => {
                Item::from_object(resource, &o.metadata).map(Change::Apply)
            }
            Ok(watcher::Event::Delete(o)) => o.metadata.uid.map(Change::Delete),
            Ok(watcher::Event::Init) => Some(Change::Init),
            Ok(watcher::Event::InitApply(o)) => {
                Item::from_object(resource, &o.metadata).map(Change::InitApply)
            }
            Ok(watcher::Event::InitDone) => Some(Change::InitDone),
            Err(e) => {
                tracing::warn!(resource = %ar.plural, error = %e, "garbage collector: watch failed; retrying");
                None
            }
        };
        if let Some(change) = change {
            if tx.send((resource, change)).await.is_err() {
                return;
            }
        }
    }
}
