//! The EndpointSlice controller's half: the selected pods of each Service as IPv4
//! EndpointSlices named `<service>-<random>` (generateName), labelled
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`, owned by the
//! Service, at most [`MAX_ENDPOINTS_PER_SLICE`] endpoints each. Endpoints that resolve to the
//! same ports share slices; a terminating pod stays, with `ready: false, terminating: true`; a
//! Service with no endpoints keeps one empty placeholder slice, as kube's does.
//!
//! Slices are named by the server, so a cache that has not yet seen a creation would make the
//! next sync create another: [`Expectations`] holds each Service's unseen writes, and a sync
//! waits (a short requeue) until the cache shows them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::Store;
use kube::ResourceExt;

use super::subsets::hostname;
use super::{
    derived_labels, eligible, pod_ip, pod_ports, pod_ready, pod_ref, publish_not_ready,
    status_code, Ctx, Error, PodPort,
};

/// kube's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Unseen writes older than this are forgotten (someone else may have changed the slice since).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(10);

/// The managed slices of one Service in the cache.
pub(super) fn owned(
    slices: &Store<EndpointSlice>,
    namespace: &str,
    service: &str,
) -> Vec<Arc<EndpointSlice>> {
    let mut out = slices.state_filter(|s| {
        s.metadata.namespace.as_deref() == Some(namespace)
            && s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(service)
            && s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
    });
    out.sort_by_key(|s| s.name_any());
    out
}

/// The contents of the slices `svc` should have (without names), in a stable order.
pub(super) fn desired(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSlice> {
    let publish = publish_not_ready(svc);
    let mut groups: BTreeMap<Vec<PodPort>, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| eligible(p, true)) {
        let Some(ip) = pod_ip(pod) else { continue };
        let serving = pod_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let endpoint = Endpoint {
            addresses: vec![ip.to_owned()],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_ref(pod)),
            hostname: hostname(svc, pod),
            ..Endpoint::default()
        };
        groups
            .entry(pod_ports(svc, pod))
            .or_default()
            .push(endpoint);
    }
    let mut out = Vec::new();
    for (ports, mut endpoints) in groups {
        endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push(slice(svc, &ports, chunk.to_vec()));
        }
    }
    if out.is_empty() {
        out.push(slice(svc, &[], Vec::new()));
    }
    out
}

fn slice(svc: &Service, ports: &[PodPort], endpoints: Vec<Endpoint>) -> EndpointSlice {
    let name = svc.name_any();
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(derived_labels(
                svc,
                &[(SERVICE_NAME_LABEL, &name), (MANAGED_BY_LABEL, MANAGED_BY)],
            )),
            owner_references: Some(vec![owner(svc)]),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints,
        ports: Some(
            ports
                .iter()
                .map(|p| EndpointPort {
                    name: Some(p.name.clone()),
                    port: Some(p.port),
                    protocol: Some(p.protocol.clone()),
                    app_protocol: p.app_protocol.clone(),
                })
                .collect(),
        ),
    }
}

fn owner(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether a stored slice already holds what `want` holds.
fn same(have: &EndpointSlice, want: &EndpointSlice) -> bool {
    have.address_type == want.address_type
        && have.endpoints == want.endpoints
        && have.ports.clone().unwrap_or_default() == want.ports.clone().unwrap_or_default()
        && have.metadata.labels == want.metadata.labels
        && have.metadata.owner_references == want.metadata.owner_references
}

/// Brings the managed slices of `svc` to the desired ones: unchanged slices are kept, changed
/// ones updated in place, then extra ones created or deleted.
pub(super) async fn sync(ctx: &Ctx, svc: &Service, pods: &[Arc<Pod>]) -> Result<(), Error> {
    let namespace = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let key = format!("{namespace}/{name}");
    let existing = owned(&ctx.slices, &namespace, &name);
    if !ctx.expectations.satisfied(&key, &existing) {
        return Err(Error::StaleCache);
    }
    let want = if super::selector(svc).is_some() {
        desired(svc, pods)
    } else {
        // A Service without a selector (or ExternalName) has no slices of this controller.
        Vec::new()
    };
    let mut stale: Vec<Arc<EndpointSlice>> = Vec::new();
    let mut todo: Vec<EndpointSlice> = want;
    for have in existing {
        match todo.iter().position(|w| same(&have, w)) {
            Some(i) => {
                todo.remove(i);
            }
            None => stale.push(have),
        }
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut written = Written::default();
    let result = apply(&api, &mut todo, &mut stale, &mut written).await;
    ctx.expectations.expect(&key, written);
    result
}

/// Writes `todo` into the `stale` slices (updates), then creates or deletes the rest.
async fn apply(
    api: &Api<EndpointSlice>,
    todo: &mut Vec<EndpointSlice>,
    stale: &mut Vec<Arc<EndpointSlice>>,
    written: &mut Written,
) -> Result<(), Error> {
    while let (Some(_), Some(_)) = (todo.last(), stale.last()) {
        let (Some(want), Some(have)) = (todo.pop(), stale.pop()) else {
            break;
        };
        let mut next = (*have).clone();
        next.address_type = want.address_type;
        next.endpoints = want.endpoints;
        next.ports = want.ports;
        next.metadata.labels = want.metadata.labels;
        next.metadata.owner_references = want.metadata.owner_references;
        let stored = api
            .replace(&have.name_any(), &PostParams::default(), &next)
            .await?;
        written.seen(&stored);
    }
    for want in todo.drain(..) {
        let stored = api.create(&PostParams::default(), &want).await?;
        written.seen(&stored);
    }
    for have in stale.drain(..) {
        match api.delete(&have.name_any(), &DeleteParams::default()).await {
            Ok(_) => written.deleted.push(have.name_any()),
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// What one sync wrote: slices with the resourceVersion written, and deleted names.
#[derive(Debug, Default)]
pub(super) struct Written {
    stored: Vec<(String, u64)>,
    deleted: Vec<String>,
}

impl Written {
    fn seen(&mut self, slice: &EndpointSlice) {
        let version = slice
            .resource_version()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        self.stored.push((slice.name_any(), version));
    }
}

/// Per Service, the writes the cache has not shown yet (kube's EndpointSliceTracker).
#[derive(Debug, Default)]
pub(super) struct Expectations(Mutex<HashMap<String, (Written, Instant)>>);

impl Expectations {
    fn expect(&self, key: &str, written: Written) {
        if written.stored.is_empty() && written.deleted.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map
            .entry(key.to_owned())
            .or_insert_with(|| (Written::default(), Instant::now()));
        entry.0.stored.extend(written.stored);
        entry.0.deleted.extend(written.deleted);
        entry.1 = Instant::now();
    }

    /// Whether `cached` (a Service's slices in the cache) shows every write expected for it;
    /// a satisfied or timed-out expectation is dropped.
    pub(super) fn satisfied(&self, key: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((written, since)) = map.get(key) else {
            return true;
        };
        let version_of = |name: &str| {
            cached.iter().find(|s| s.name_any() == name).map(|s| {
                s.resource_version()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(u64::MAX)
            })
        };
        let shown = written
            .stored
            .iter()
            .all(|(name, v)| version_of(name).is_some_and(|have| have >= *v))
            && written
                .deleted
                .iter()
                .all(|name| version_of(name).is_none());
        if shown || since.elapsed() > EXPECTATIONS_TIMEOUT {
            map.remove(key);
            return true;
        }
        false
    }
}
