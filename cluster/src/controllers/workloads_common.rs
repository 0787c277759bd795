//! What the ReplicaSet and Deployment controllers share, as kube's `pkg/controller` helpers do:
//! label selector matching, controller references, pod readiness and availability, the error
//! type and its retry policy, best-effort Events, the applier loop and its trigger queue, and
//! claiming (adopting and releasing) the objects a controller owns.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// How often every object is reconciled again even without a watch event (kube's resync).
pub(crate) const RESYNC: Duration = Duration::from_secs(300);

/// A failed reconcile: retried by the error policy, never the end of the controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed (the status code and kube's message, never credentials).
    #[error("API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// A request body could not be encoded.
    #[error("cannot encode a request: {0}")]
    Json(#[from] serde_json::Error),
    /// The objects are not in a state the controller can act on yet.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A lost optimistic-concurrency race (409): retried quickly, the cache is merely stale.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Kube(e) if status_code(e) == Some(409))
    }
}

/// The HTTP status of an API error, if the server answered.
pub(crate) fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    status_code(err) == Some(404)
}

pub(crate) fn is_already_exists(err: &kube::Error) -> bool {
    status_code(err) == Some(409)
        && matches!(err, kube::Error::Api(s) if s.reason == "AlreadyExists")
}

/// The requeue delay after a failed reconcile.
pub(crate) fn retry_after(err: &Error) -> Duration {
    if err.is_conflict() {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    }
}

/// True when `selector` has no requirement at all (controllers refuse to act on those: an empty
/// selector would match every pod of the namespace).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// `metav1.LabelSelectorAsSelector(selector).Matches(labels)`; an empty selector matches nothing
/// here (see [`selector_is_empty`]), an unknown operator matches nothing.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if selector_is_empty(selector) {
        return false;
    }
    let get = |k: &str| labels.and_then(|l| l.get(k));
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| get(k) == Some(v));
    labels_ok
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            match e.operator.as_str() {
                "In" => get(&e.key).is_some_and(|v| values.contains(v)),
                "NotIn" => get(&e.key).is_none_or(|v| !values.contains(v)),
                "Exists" => get(&e.key).is_some(),
                "DoesNotExist" => get(&e.key).is_none(),
                _ => false,
            }
        })
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// The controller reference a controller sets on what it creates or adopts.
pub fn controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// `controller.IsPodActive`: not terminating, not Succeeded or Failed.
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// When the pod's Ready condition last became True, if it is True now (`Some(None)`: True with
/// no transition time).
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// `podutil.IsPodReady`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// How long until a ready pod counts as available (`None`: it is not ready; zero: it is
/// available), as `podutil.IsPodAvailable` with `minReadySeconds`.
pub fn until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let Some(since) = since else {
        return Some(Duration::from_secs(u64::from(
            min_ready_seconds.unsigned_abs(),
        )));
    };
    let ready_for = now.duration_since(since).as_secs_f64().max(0.0);
    let left = f64::from(min_ready_seconds) - ready_for;
    if left < 0.0 {
        Some(Duration::ZERO)
    } else {
        // kube needs ready+minReadySeconds to be strictly before now.
        Some(Duration::from_secs_f64(left) + Duration::from_millis(1))
    }
}

/// `podutil.IsPodAvailable`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    until_available(pod, min_ready_seconds, now) == Some(Duration::ZERO)
}

/// Now, as a `metav1.Time` (whole seconds, as kube serializes it).
pub fn now() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Records a core/v1 Event about `object` (best effort: a failure is logged, never returned).
pub(crate) async fn record_event(
    client: &kube::Client,
    component: &str,
    object: ObjectReference,
    event_type: &str,
    reason: &str,
    message: String,
) {
    let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
    let stamp = now();
    // kube names events "<object>.<unix nanos in hex>"; the sequence keeps two events of the
    // same instant apart.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = Timestamp::now()
        .as_nanosecond()
        .wrapping_add(i128::from(SEQ.fetch_add(1, AtomicOrdering::Relaxed)));
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                object.name.as_deref().unwrap_or("object"),
                nanos
            )),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: object,
        reason: Some(reason.to_owned()),
        message: Some(message),
        type_: Some(event_type.to_owned()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        first_timestamp: Some(stamp.clone()),
        last_timestamp: Some(stamp),
        count: Some(1),
        reporting_component: Some(component.to_owned()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(component, reason, error = %e, "cannot record an event");
    }
}

/// The reference an Event uses for an object of `kind`.
pub(crate) fn object_reference(
    api_version: &str,
    kind: &str,
    meta: &ObjectMeta,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

/// Delete options that only delete the object with this uid (not a recreated namesake).
pub(crate) fn delete_if_uid(meta: &ObjectMeta) -> DeleteParams {
    DeleteParams {
        preconditions: meta.uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

/// The applier's queue: each watch event's batch of objects to sync, one request each (a watch
/// error passes through, for the applier to report).
pub(crate) fn one_by_one<K, S>(
    batches: S,
) -> impl Stream<Item = Result<ObjectRef<K>, watcher::Error>>
where
    K: Resource,
    S: Stream<Item = Result<Vec<ObjectRef<K>>, watcher::Error>>,
{
    batches.flat_map(|batch| {
        let items: Vec<Result<ObjectRef<K>, watcher::Error>> = match batch {
            Ok(refs) => refs.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    })
}

/// Runs kube-runtime's applier (the engine under `Controller`) over `store` and `queue` until
/// the task is aborted: failed reconciles are requeued by [`retry_after`] and logged, as are
/// watch failures (`name` says which controller, e.g. "replicaset").
pub(crate) async fn run_applier<K, C, F, Fut>(
    name: &'static str,
    mut reconcile: F,
    ctx: Arc<C>,
    store: Store<K>,
    queue: impl Stream<Item = Result<ObjectRef<K>, watcher::Error>>,
    concurrency: u16,
) where
    K: Resource<DynamicType = ()> + Clone + Debug + 'static,
    F: FnMut(Arc<K>, Arc<C>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    controller::applier(
        move |obj, ctx| Box::pin(reconcile(obj, ctx)),
        |_obj, err: &Error, _ctx| Action::requeue(retry_after(err)),
        ctx,
        store,
        queue,
        controller::Config::default().concurrency(concurrency),
    )
    .for_each(|result| async move {
        match result {
            Ok(_) => {}
            Err(controller::Error::ReconcilerFailed(err, obj)) if err.is_conflict() => {
                tracing::debug!(object = %obj, error = %err, "{name} sync lost a race; retrying");
            }
            Err(controller::Error::ReconcilerFailed(err, obj)) => {
                tracing::warn!(object = %obj, error = %err, "{name} sync failed; retrying");
            }
            Err(controller::Error::ObjectNotFound(_)) => {}
            Err(e) => tracing::warn!(error = %e, "{name} controller watch failed; retrying"),
        }
    })
    .await;
}

/// The owners of kind `K` a watch event about `child` concerns: its controller if that is a
/// `K`, else (an orphan) every `K` of its namespace whose selector matches it.
pub(crate) fn owners_to_sync<K>(
    child: &ObjectMeta,
    owners: &Store<K>,
    selector: impl Fn(&K) -> Option<&LabelSelector>,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let ns = child.namespace.clone().unwrap_or_default();
    if let Some(owner) = controller_of(child) {
        if owner.kind == K::kind(&()) && owner.api_version.starts_with("apps/") {
            return vec![ObjectRef::new(&owner.name).within(&ns)];
        }
        return Vec::new();
    }
    owners
        .state()
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns.as_str()))
        .filter(|o| selector(o).is_some_and(|s| selector_matches(s, child.labels.as_ref())))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// kube's `ClaimObjects` (`ClaimPods`, `ClaimReplicaSets`): the `candidates` (of the owner's
/// namespace) that `owner` controls after adopting matching orphans and releasing owned ones
/// that no longer match `selector`.
pub(crate) async fn claim<O, K>(
    client: &Client,
    owner: &O,
    selector: &LabelSelector,
    candidates: impl IntoIterator<Item = Arc<K>>,
) -> Result<Vec<Arc<K>>, Error>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let deleting = owner.meta().deletion_timestamp.is_some();
    let mut claimed = Vec::new();
    let mut can_adopt: Option<bool> = None;
    for obj in candidates {
        let meta = obj.meta();
        let matches = selector_matches(selector, meta.labels.as_ref());
        match controller_of(meta) {
            Some(owner_ref) if owner_ref.uid == uid => {
                if matches {
                    claimed.push(obj);
                } else if !deleting {
                    let refs = meta
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|r| r.uid != uid)
                        .cloned()
                        .collect();
                    set_owner_refs(client, obj.as_ref(), refs).await?;
                }
            }
            Some(_) => {}
            None => {
                if !matches || deleting || meta.deletion_timestamp.is_some() {
                    continue;
                }
                // kube re-reads the owner before adopting (it may be a recreated namesake).
                if can_adopt.is_none() {
                    can_adopt = Some(still_adoptable(client, owner).await?);
                }
                if can_adopt != Some(true) {
                    continue;
                }
                let mut refs = meta.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref(
                    &O::api_version(&()),
                    &O::kind(&()),
                    owner.meta(),
                ));
                if let Some(adopted) = set_owner_refs(client, obj.as_ref(), refs).await? {
                    claimed.push(Arc::new(adopted));
                }
            }
        }
    }
    Ok(claimed)
}

/// True when the owner, read fresh, is the same object and not being deleted.
async fn still_adoptable<O>(client: &Client, owner: &O) -> Result<bool, Error>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<O> = Api::namespaced(client.clone(), &owner.namespace().unwrap_or_default());
    let fresh = api.get_opt(&owner.name_any()).await?;
    Ok(fresh
        .is_some_and(|f| f.meta().uid == owner.meta().uid && f.meta().deletion_timestamp.is_none()))
}

/// Sets the object's owner references (adopt or release), guarded by its resourceVersion;
/// `None` when the object is gone.
async fn set_owner_refs<K>(
    client: &Client,
    obj: &K,
    refs: Vec<OwnerReference>,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(refs)?
    };
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.meta().resource_version,
        "uid": obj.meta().uid,
    }});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "b")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "c")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")]))
        ));
        assert!(!selector_matches(&sel, None));
        assert!(!selector_matches(
            &LabelSelector::default(),
            Some(&labels(&[("app", "web")]))
        ));
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Timestamp::now();
        let ready_at = now - k8s_openapi::jiff::SignedDuration::from_secs(5);
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "status": {"conditions": [{"type": "Ready", "status": "True",
                "lastTransitionTime": Time(ready_at)}]}
        }))
        .unwrap();
        assert!(is_pod_ready(&pod));
        assert!(is_pod_available(&pod, 0, now));
        assert!(is_pod_available(&pod, 4, now));
        assert!(!is_pod_available(&pod, 10, now));
        let left = until_available(&pod, 10, now).unwrap();
        assert!(left > Duration::from_secs(4) && left < Duration::from_secs(6));
        assert_eq!(until_available(&Pod::default(), 0, now), None);
    }
}
