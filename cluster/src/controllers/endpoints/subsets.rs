//! The Endpoints controller's half: one Endpoints object per selecting Service, of the
//! Service's name, whose subsets list the selected pods' IPs (ready ones under `addresses`, the
//! others under `notReadyAddresses`; terminating pods left out) with the Service's ports
//! resolved against each pod. Pods that resolve to the same ports share a subset, as kube's
//! `RepackSubsets` does.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;

use super::{
    derived_labels, eligible, is_headless, pod_ip, pod_ports, pod_ready, pod_ref,
    publish_not_ready, status_code, Ctx, Error, PodPort, SKIP_MIRROR_LABEL,
};

/// The Endpoints `svc` should have, given the pods its selector matches.
pub(super) fn desired(svc: &Service, pods: &[Arc<Pod>]) -> Endpoints {
    let headless = is_headless(svc);
    let publish = publish_not_ready(svc);
    // Subsets by their port set; addresses split by readiness.
    type Addrs = (Vec<EndpointAddress>, Vec<EndpointAddress>);
    let mut groups: BTreeMap<Vec<PodPort>, Addrs> = BTreeMap::new();
    for pod in pods.iter().filter(|p| eligible(p, false)) {
        let Some(ip) = pod_ip(pod) else { continue };
        let ports = pod_ports(svc, pod);
        if ports.is_empty() && !headless {
            continue;
        }
        let address = EndpointAddress {
            ip: ip.to_owned(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(pod_ref(pod)),
            hostname: hostname(svc, pod),
        };
        let entry = groups.entry(ports).or_default();
        if publish || pod_ready(pod) {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    let subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: Some(ready).filter(|a| !a.is_empty()),
                not_ready_addresses: Some(not_ready).filter(|a| !a.is_empty()),
                ports: Some(ports.into_iter().map(endpoint_port).collect::<Vec<_>>())
                    .filter(|p| !p.is_empty()),
            }
        })
        .collect();
    Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(derived_labels(svc, &[(SKIP_MIRROR_LABEL, "true")])),
            ..ObjectMeta::default()
        },
        subsets: Some(subsets).filter(|s| !s.is_empty()),
    }
}

fn endpoint_port(p: PodPort) -> EndpointPort {
    EndpointPort {
        name: Some(p.name).filter(|n| !n.is_empty()),
        port: p.port,
        protocol: Some(p.protocol),
        app_protocol: p.app_protocol,
    }
}

/// kube's `ShouldSetHostname`: a pod with a hostname in the subdomain named after the Service.
pub(super) fn hostname(svc: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host = spec.hostname.as_ref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref() && is_headless(svc))
        .then(|| host.clone())
}

/// Whether the stored Endpoints already say what `want` says.
fn same(have: &Endpoints, want: &Endpoints) -> bool {
    let subsets = |e: &Endpoints| e.subsets.clone().unwrap_or_default();
    subsets(have) == subsets(want) && have.metadata.labels == want.metadata.labels
}

/// Creates or updates the Endpoints of `svc` (a Service without a selector is left alone: its
/// Endpoints are the user's).
pub(super) async fn sync(ctx: &Ctx, svc: &Service, pods: &[Arc<Pod>]) -> Result<(), Error> {
    if super::selector(svc).is_none() {
        return Ok(());
    }
    let namespace = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let want = desired(svc, pods);
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &namespace);
    let cached = ctx.endpoints.get(&ObjectRef::new(&name).within(&namespace));
    let current = match cached {
        Some(have) => Some((*have).clone()),
        None => match api.create(&PostParams::default(), &want).await {
            Ok(_) => return Ok(()),
            // The cache is behind: update what is there.
            Err(e) if status_code(&e) == Some(409) => Some(api.get(&name).await?),
            Err(e) => return Err(e.into()),
        },
    };
    let Some(mut have) = current else {
        return Ok(());
    };
    if same(&have, &want) {
        return Ok(());
    }
    have.subsets = want.subsets;
    have.metadata.labels = want.metadata.labels;
    api.replace(&name, &PostParams::default(), &have).await?;
    Ok(())
}
