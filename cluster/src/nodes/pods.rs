//! The pods of one simulated node, as kubelet's pod workers would see them: a watch of the pods
//! bound to the node (`spec.nodeName=NAME`); each new pod gets an address of the node's pod CIDR
//! and a Running status (`pods/status`), which a running pod gets again when another writer
//! marked it not ready; a pod being deleted gracefully is finished off; a
//! running pod's ServiceAccount token is kept mounted ([`super::tokens`]).
//!
//! State (addresses, tokens) is rebuilt from the API on every (re)list, so a restart of the
//! agent or of kgate keeps the addresses pods already have.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

use super::ipam::{PodCidr, PodIps};
use super::status::{self, PodPlacement};
use super::tokens;

/// How soon a failed pod status write is tried again.
const RETRY: Duration = Duration::from_secs(5);
/// How soon a pod whose token request or file write failed is tried again.
const TOKEN_RETRY: Duration = Duration::from_secs(15);

/// One node's pods.
pub(crate) struct NodePods {
    client: kube::Client,
    node: String,
    host_ip: Ipv4Addr,
    ips: PodIps,
    /// The node's state folder (tokens are only requested when there is one).
    node_dir: Option<PathBuf>,
    /// The last seen version of each pod, by uid.
    pods: HashMap<String, Pod>,
    /// When each pod needs another look (a retry or a token refresh), by uid.
    due: HashMap<String, Instant>,
    /// When each pod's token is next requested (a refresh, or a retry), by uid; a running pod
    /// without an entry has not had one yet.
    token_next: HashMap<String, Instant>,
    /// The pods already sent a final delete.
    finishing: HashSet<String>,
}

fn uid_of(pod: &Pod) -> Option<String> {
    pod.metadata.uid.clone()
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

impl NodePods {
    pub(crate) fn new(
        client: kube::Client,
        node: String,
        host_ip: Ipv4Addr,
        cidr: PodCidr,
        node_dir: Option<PathBuf>,
    ) -> NodePods {
        NodePods {
            client,
            node,
            host_ip,
            ips: PodIps::new(cidr),
            node_dir,
            pods: HashMap::new(),
            due: HashMap::new(),
            token_next: HashMap::new(),
            finishing: HashSet::new(),
        }
    }

    /// Watches the node's pods and runs them until the future is dropped.
    pub(crate) async fn run(mut self) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.node));
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut listing: Option<Vec<Pod>> = None;
        loop {
            let next_due = self.due.values().min().copied();
            let wake = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => self.on_event(event, &mut listing).await,
                    Some(Err(error)) => {
                        tracing::warn!(node = %self.node, %error, "pod watch failed; retrying");
                    }
                    None => return,
                },
                () = wake => self.run_due().await,
            }
        }
    }

    async fn on_event(&mut self, event: Event<Pod>, listing: &mut Option<Vec<Pod>>) {
        match event {
            Event::Init => *listing = Some(Vec::new()),
            Event::InitApply(pod) => match listing {
                Some(list) => list.push(pod),
                None => self.sync(pod).await,
            },
            Event::InitDone => {
                let pods = listing.take().unwrap_or_default();
                self.relist(pods).await;
            }
            Event::Apply(pod) => self.sync(pod).await,
            Event::Delete(pod) => {
                if let Some(uid) = uid_of(&pod) {
                    self.forget(&uid);
                }
            }
        }
    }

    /// After a (re)list: keeps the addresses pods have, forgets the pods gone meanwhile, then
    /// syncs every pod.
    async fn relist(&mut self, pods: Vec<Pod>) {
        let present: HashSet<String> = pods.iter().filter_map(uid_of).collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .chain(self.ips.pods())
            .filter(|uid| !present.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            self.forget(&uid);
        }
        self.remove_orphan_dirs(&present);
        for pod in &pods {
            self.keep_address(pod);
        }
        for pod in pods {
            self.sync(pod).await;
        }
    }

    /// Reserves the address a pod already reports, if it is one of ours.
    fn keep_address(&mut self, pod: &Pod) {
        let (Some(uid), Some(ip)) = (uid_of(pod), status::pod_ip(pod)) else {
            return;
        };
        if status::host_network(pod) || !self.ips.cidr().contains(ip) {
            return;
        }
        if !self.ips.reserve(&uid, ip) {
            tracing::warn!(node = %self.node, pod = %key_of(pod), %ip, "a pod reports an address another pod holds");
        }
    }

    /// A pod is gone: its address, token and folder go too.
    fn forget(&mut self, uid: &str) {
        self.ips.release(uid);
        self.due.remove(uid);
        self.token_next.remove(uid);
        self.finishing.remove(uid);
        if let Some(pod) = self.pods.remove(uid) {
            if let Some(dir) = self.pod_dir(&pod) {
                tokens::remove(&dir);
            }
        }
    }

    /// Removes the pod folders of pods that no longer exist (e.g. deleted while kgate was down).
    fn remove_orphan_dirs(&self, present: &HashSet<String>) {
        let Some(node_dir) = &self.node_dir else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(node_dir.join("pods")) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(uid) = name.to_str().and_then(tokens::uid_of_pod_dir) else {
                continue;
            };
            if !present.contains(uid) {
                tokens::remove(&entry.path());
            }
        }
    }

    fn pod_dir(&self, pod: &Pod) -> Option<PathBuf> {
        let node_dir = self.node_dir.as_ref()?;
        Some(tokens::pod_dir(
            node_dir,
            pod.metadata.namespace.as_deref()?,
            pod.metadata.name.as_deref()?,
            pod.metadata.uid.as_deref()?,
        ))
    }

    async fn run_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in due {
            self.due.remove(&uid);
            if let Some(pod) = self.pods.get(&uid).cloned() {
                self.sync(pod).await;
            }
        }
    }

    /// Brings one pod where it should be; schedules another look when something failed or a
    /// token will need refreshing.
    async fn sync(&mut self, pod: Pod) {
        let Some(uid) = uid_of(&pod) else {
            return;
        };
        self.pods.insert(uid.clone(), pod.clone());
        if pod.metadata.deletion_timestamp.is_some() {
            self.finish(&pod, &uid).await;
            return;
        }
        let pod = match status::phase(&pod) {
            "Running" if status::pod_ready(&pod) => {
                self.keep_address(&pod);
                pod
            }
            // Running but not ready: kube-controller-manager's node lifecycle controller marks
            // the pods of a node it lost not ready, and kubelet's status manager reports them
            // ready again once it runs; the same report as at start (address and start time
            // kept).
            "Running" => {
                self.keep_address(&pod);
                match self.start(&pod, &uid).await {
                    Some(pod) => pod,
                    None => {
                        self.due.insert(uid, Instant::now() + RETRY);
                        return;
                    }
                }
            }
            "Succeeded" | "Failed" => return,
            _ => match self.start(&pod, &uid).await {
                Some(pod) => pod,
                None => {
                    self.due.insert(uid, Instant::now() + RETRY);
                    return;
                }
            },
        };
        let token_due = self
            .token_next
            .get(&uid)
            .is_none_or(|at| *at <= Instant::now());
        if token_due {
            self.mount_token(&pod, &uid).await;
        }
    }

    /// Reports a new pod Running; the updated pod, or None after a logged failure.
    async fn start(&mut self, pod: &Pod, uid: &str) -> Option<Pod> {
        let pod_ip = if status::host_network(pod) {
            self.host_ip
        } else {
            match self.ips.allocate(uid) {
                Some(ip) => ip,
                None => {
                    tracing::warn!(node = %self.node, pod = %key_of(pod), cidr = %self.ips.cidr(), "no free pod address on the node");
                    return None;
                }
            }
        };
        let placement = PodPlacement {
            host_ip: self.host_ip,
            pod_ip,
        };
        let body = serde_json::json!({
            "status": status::running_pod_status(pod, placement, Timestamp::now()),
        });
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(body))
            .await
        {
            Ok(updated) => {
                tracing::debug!(node = %self.node, pod = %key_of(pod), %pod_ip, "pod running");
                if let Some(uid) = uid_of(&updated) {
                    self.pods.insert(uid, updated.clone());
                }
                Some(updated)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.forget(uid);
                None
            }
            Err(error) => {
                tracing::warn!(node = %self.node, pod = %key_of(pod), %error, "cannot report a pod running; retrying");
                None
            }
        }
    }

    /// A pod deleted gracefully: nothing runs, so it is removed at once, as kubelet does once
    /// its containers stopped.
    async fn finish(&mut self, pod: &Pod, uid: &str) {
        if !self.finishing.insert(uid.to_owned()) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match api.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(error) => {
                tracing::warn!(node = %self.node, pod = %key_of(pod), %error, "cannot finish a pod's deletion; retrying");
                self.finishing.remove(uid);
                self.due.insert(uid.to_owned(), Instant::now() + RETRY);
            }
        }
    }

    /// Requests the token the pod's spec projects and writes it; schedules its refresh (or a
    /// retry).
    async fn mount_token(&mut self, pod: &Pod, uid: &str) {
        let (Some(dir), Some(projection)) = (self.pod_dir(pod), tokens::projection_of(pod)) else {
            return;
        };
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let written = match tokens::request(&self.client, namespace, &projection, name, uid).await {
            Ok(token) => tokens::write(&dir, &projection.path, &token).map(|()| token),
            Err(e) => Err(e),
        };
        match written {
            Ok(token) => {
                let after = tokens::refresh_after(&token, Timestamp::now());
                tracing::debug!(node = %self.node, pod = %key_of(pod), refresh_in = ?after, "pod token mounted");
                let at = Instant::now() + after;
                self.token_next.insert(uid.to_owned(), at);
                self.due.insert(uid.to_owned(), at);
            }
            Err(error) => {
                tracing::warn!(node = %self.node, pod = %key_of(pod), error = %kgate_core::error_chain(&error), "cannot mount the pod's token; retrying");
                self.retry_token(uid);
            }
        }
    }

    fn retry_token(&mut self, uid: &str) {
        let at = Instant::now() + TOKEN_RETRY;
        self.token_next.insert(uid.to_owned(), at);
        self.due.insert(uid.to_owned(), at);
    }
}
