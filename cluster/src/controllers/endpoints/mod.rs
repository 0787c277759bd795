//! The Endpoints and EndpointSlice controllers (kube's `pkg/controller/endpoint` and
//! `pkg/controller/endpointslice`): for each Service with a selector, the pods it selects, as
//! an Endpoints object of the Service's name ([`subsets`]) and as EndpointSlices labelled
//! `kubernetes.io/service-name` ([`slices`]). Both follow pods (IP, readiness, labels,
//! deletion) and the Service (selector, ports), and go away with the Service.
//!
//! One kube-runtime applier over Services drives both: reflectors of Endpoints and EndpointSlices
//! and the pod watch (its own, or one shared through
//! [`SharedPods`](super::shared_pods::SharedPods)) fill the caches the reconciler reads and trigger
//! the Services they concern (a pod the Services whose selector matches it now or matched it
//! before; an Endpoints or a slice its Service). A Service that is gone surfaces as the applier's
//! `ObjectNotFound`, and its controller-owned Endpoints and slices are deleted then. As kube's
//! slice controller, it remembers the slices it wrote and waits for the cache to show them before
//! it computes a Service's slices again, so a stale cache never doubles them.

mod slices;
mod subsets;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{stream, Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{self, Action};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::{Client, ResourceExt};

use super::shared_pods::spawn_with_own_pods;

pub use slices::{MANAGED_BY, MANAGED_BY_LABEL, MAX_ENDPOINTS_PER_SLICE, SERVICE_NAME_LABEL};

/// Set on the Endpoints this controller writes, as kube does: the slice mirroring controller
/// leaves them alone, and only these are deleted with their Service.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Set on the Endpoints and slices of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// Why a sync failed; it is retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
    #[error("the {0} cache has stopped")]
    CacheStopped(&'static str),
    #[error("the slice cache has not yet caught up with this controller's writes")]
    StaleCache,
}

impl Error {
    fn retry_after(&self) -> Duration {
        match self {
            Error::StaleCache => Duration::from_millis(100),
            Error::Api(e) if status_code(e) == Some(409) => Duration::from_millis(100),
            _ => Duration::from_secs(2),
        }
    }
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Runs the Endpoints and EndpointSlice controllers until the task is aborted, with a pod watch
/// of their own.
pub fn spawn(client: Client) -> tokio::task::JoinHandle<()> {
    spawn_with_own_pods(client, run)
}

/// Runs the Endpoints and EndpointSlice controllers until the task is aborted, on a
/// [`SharedPods`](super::shared_pods::SharedPods)' store and one of its subscriptions.
pub fn spawn_with_pods(
    client: Client,
    pods: Store<Pod>,
    events: impl Stream<Item = Arc<Event<Pod>>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(client, pods, events))
}

/// What the reconciler reads and remembers.
struct Ctx {
    client: Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
    /// Slice writes not yet seen in the cache, by Service key.
    expectations: slices::Expectations,
}

async fn run(
    client: Client,
    pod_store: Store<Pod>,
    pod_events: impl Stream<Item = Arc<Event<Pod>>> + Send + 'static,
) {
    let (svc_store, svc_writer) = reflector::store();
    let (ep_store, ep_writer) = reflector::store();
    let (slice_store, slice_writer) = reflector::store();

    let svc_trigger = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(svc_writer)
    .touched_objects()
    .map_ok(|svc: Service| vec![ObjectRef::from_obj(&svc)]);
    let members = Arc::new(Membership::default());
    let services = svc_store.clone();
    let pod_trigger = pod_events.map(move |event| {
        Ok::<_, watcher::Error>(match &*event {
            Event::Apply(pod) | Event::InitApply(pod) => members.update(pod, &services, false),
            Event::Delete(pod) => members.update(pod, &services, true),
            Event::Init | Event::InitDone => Vec::new(),
        })
    });
    let ep_trigger = watcher(
        Api::<Endpoints>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(ep_writer)
    .touched_objects()
    .map_ok(|ep: Endpoints| {
        vec![ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default())]
    });
    let slice_config =
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let slice_trigger = watcher(Api::<EndpointSlice>::all(client.clone()), slice_config)
        .default_backoff()
        .reflect(slice_writer)
        .touched_objects()
        .map_ok(|slice: EndpointSlice| {
            slice
                .labels()
                .get(SERVICE_NAME_LABEL)
                .map(|svc| ObjectRef::new(svc).within(&slice.namespace().unwrap_or_default()))
                .into_iter()
                .collect::<Vec<_>>()
        });
    let queue = stream::select_all([
        svc_trigger.boxed(),
        pod_trigger.boxed(),
        ep_trigger.boxed(),
        slice_trigger.boxed(),
    ])
    .flat_map(|batch| {
        let items: Vec<Result<ObjectRef<Service>, watcher::Error>> = match batch {
            Ok(refs) => refs.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        stream::iter(items)
    });

    let ctx = Arc::new(Ctx {
        client,
        services: svc_store.clone(),
        pods: pod_store,
        endpoints: ep_store,
        slices: slice_store,
        expectations: slices::Expectations::default(),
    });
    let cleanup_ctx = ctx.clone();
    controller::applier(
        |svc, ctx| Box::pin(reconcile(svc, ctx)),
        |_svc, err: &Error, _ctx| Action::requeue(err.retry_after()),
        ctx,
        svc_store,
        queue,
        controller::Config::default().concurrency(16),
    )
    .for_each(|result| {
        let ctx = cleanup_ctx.clone();
        async move {
            match result {
                Ok(_) => {}
                Err(controller::Error::ObjectNotFound(gone)) => {
                    let namespace = gone.namespace.clone().unwrap_or_default();
                    tokio::spawn(cleanup(ctx, namespace, gone.name.clone()));
                }
                Err(controller::Error::ReconcilerFailed(Error::StaleCache, _)) => {}
                Err(controller::Error::ReconcilerFailed(err, svc)) => {
                    tracing::debug!(service = %svc, error = %err, "endpoints sync failed; retrying");
                }
                Err(e) => tracing::warn!(error = %e, "endpoints controller watch failed; retrying"),
            }
        }
    })
    .await;
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let ready = |r: Result<(), reflector::store::WriterDropped>, what| {
        r.map_err(|_| Error::CacheStopped(what))
    };
    ready(ctx.pods.wait_until_ready().await, "pod")?;
    ready(ctx.endpoints.wait_until_ready().await, "endpoints")?;
    ready(ctx.slices.wait_until_ready().await, "endpointslice")?;
    let namespace = svc.namespace().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = match selector(&svc) {
        Some(sel) => ctx.pods.state_filter(|p| {
            p.metadata.namespace.as_deref() == Some(namespace.as_str()) && matches(sel, p)
        }),
        None => Vec::new(),
    };
    // Each is tried whatever the other did; the first failure is retried.
    let endpoints = subsets::sync(&ctx, &svc, &pods).await;
    let slices = slices::sync(&ctx, &svc, &pods).await;
    endpoints?;
    slices?;
    Ok(Action::await_change())
}

/// Deletes what this controller wrote for a Service that no longer exists. Retried a few times:
/// nothing triggers it again once the Service's deletion has been seen.
async fn cleanup(ctx: Arc<Ctx>, namespace: String, name: String) {
    if ctx.services.wait_until_ready().await.is_err() {
        return;
    }
    for attempt in 0..5u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        let key = ObjectRef::<Service>::new(&name).within(&namespace);
        if ctx.services.get(&key).is_some() {
            return;
        }
        match cleanup_once(&ctx, &namespace, &name).await {
            Ok(()) => return,
            Err(e) => {
                tracing::debug!(service = %key, error = %e, "endpoints cleanup failed; retrying")
            }
        }
    }
}

async fn cleanup_once(ctx: &Ctx, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let ep_key = ObjectRef::<Endpoints>::new(name).within(namespace);
    let managed = ctx
        .endpoints
        .get(&ep_key)
        .is_some_and(|ep| ep.labels().get(SKIP_MIRROR_LABEL).map(String::as_str) == Some("true"));
    if managed {
        let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), namespace);
        ignore_not_found(api.delete(name, &DeleteParams::default()).await.map(|_| ()))?;
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), namespace);
    for slice in slices::owned(&ctx.slices, namespace, name) {
        ignore_not_found(
            api.delete(&slice.name_any(), &DeleteParams::default())
                .await
                .map(|_| ()),
        )?;
    }
    Ok(())
}

fn ignore_not_found(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(e) if status_code(&e) == Some(404) => Ok(()),
        other => other,
    }
}

/// The Services each pod was last seen to match, so that a pod that stops matching (its labels
/// changed, or it was deleted) still triggers the Services it left.
#[derive(Debug, Default)]
struct Membership(Mutex<HashMap<ObjectRef<Pod>, Vec<ObjectRef<Service>>>>);

impl Membership {
    fn update(
        &self,
        pod: &Pod,
        services: &Store<Service>,
        deleted: bool,
    ) -> Vec<ObjectRef<Service>> {
        let ns = pod.namespace().unwrap_or_default();
        let now: Vec<ObjectRef<Service>> = if deleted {
            Vec::new()
        } else {
            services
                .state_filter(|s| {
                    s.metadata.namespace.as_deref() == Some(ns.as_str())
                        && selector(s).is_some_and(|sel| matches(sel, pod))
                })
                .iter()
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect()
        };
        let key = ObjectRef::from_obj(pod);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let before = if deleted {
            map.remove(&key).unwrap_or_default()
        } else {
            map.insert(key, now.clone()).unwrap_or_default()
        };
        drop(map);
        let mut all: Vec<ObjectRef<Service>> = before;
        for svc in now {
            if !all.contains(&svc) {
                all.push(svc);
            }
        }
        all
    }
}

/// A Service's selector, if it has one this controller acts on. An absent selector leaves the
/// Endpoints to the user; an empty one is treated the same (as it reads after a round-trip
/// through an encoder that drops empty maps).
fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

fn matches(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.labels();
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// Whether a pod is an endpoint at all (kube's `ShouldPodBeInEndpoints`): it has an IP, has not
/// finished for good, and (unless `include_terminating`) is not being deleted.
fn eligible(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ip(pod).is_none() {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let restart = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    !matches!(
        (restart, phase),
        (Some("Never"), Some("Failed" | "Succeeded")) | (Some("OnFailure"), Some("Succeeded"))
    )
}

fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// A Service port as served by one pod: the targetPort resolved against the pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct PodPort {
    name: String,
    port: i32,
    protocol: String,
    app_protocol: Option<String>,
}

/// The Service's ports on `pod`: a numeric targetPort as is, a named one looked up among the
/// pod's container ports (a port the pod does not name is left out for that pod, as kube
/// does), none the Service's own port number.
fn pod_ports(svc: &Service, pod: &Pod) -> Vec<PodPort> {
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
            let port = match &sp.target_port {
                None => sp.port,
                Some(IntOrString::Int(n)) if *n == 0 => sp.port,
                Some(IntOrString::Int(n)) => *n,
                Some(IntOrString::String(name)) => named_port(pod, name, &protocol)?,
            };
            Some(PodPort {
                name: sp.name.clone().unwrap_or_default(),
                port,
                protocol,
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// kube's `podutil.FindPort`: a container port of that name and protocol.
fn named_port(pod: &Pod, name: &str, protocol: &str) -> Option<i32> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol
        })
        .map(|p| p.container_port)
}

/// The labels of the objects written for a Service: its own, the headless marker when it is
/// headless, and `extra`.
fn derived_labels(svc: &Service, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .labels()
        .iter()
        .filter(|(k, _)| !k.as_str().eq(SERVICE_NAME_LABEL) && !k.as_str().eq(MANAGED_BY_LABEL))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.remove(HEADLESS_LABEL);
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    for (k, v) in extra {
        labels.insert((*k).into(), (*v).into());
    }
    labels
}

#[cfg(test)]
mod tests;
