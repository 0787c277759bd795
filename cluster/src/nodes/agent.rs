//! One simulated node's agent, the kubelet stand-in: while its Node is not paused
//! ([`super::AGENT_STOPPED_ANNOTATION`]) it gives the Node a pod CIDR, posts the Node's status
//! (and again every minute, or at once when someone else marks it not Ready), renews the node's
//! Lease every 10 s, and runs the node's pods ([`super::pods`]). Paused, it does nothing but
//! wait for its Node to change.
//!
//! The agent is fed its Node by the manager (a `watch` channel of the latest version), so each
//! node costs one pod watch, not a Node watch as well.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::ipam::{self, PodCidr};
use super::pods::NodePods;
use super::status::{self, NodeAddressing};
use super::{is_stopped, LEASE_NAMESPACE};

/// How often the Lease is renewed (kubelet: 10 s, a quarter of its 40 s duration).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often the Node's status is posted even when nothing changed (kubelet: 5 min; here a
/// minute, so lastHeartbeatTime stays fresh).
const STATUS_INTERVAL: Duration = Duration::from_secs(60);
/// The least time between two status posts triggered by someone else's change of the Node.
const STATUS_MIN_GAP: Duration = Duration::from_secs(5);
/// How soon a failed write is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// What the manager gives an agent.
pub(crate) struct Agent {
    pub client: kube::Client,
    pub name: String,
    /// The node's index ([`ipam`]): its InternalIP and pod CIDR unless the Node has some.
    pub index: u32,
    /// The node's state folder (`STATE_DIR/NAME`), if the manager has one.
    pub node_dir: Option<PathBuf>,
    /// The latest version of the Node.
    pub node: watch::Receiver<Node>,
}

impl Agent {
    /// Runs until the manager drops the Node's channel (or the task is aborted).
    pub(crate) async fn run(mut self) {
        loop {
            // Paused: wait for the annotation to go.
            loop {
                if !is_stopped(&self.node.borrow_and_update()) {
                    break;
                }
                if self.node.changed().await.is_err() {
                    return;
                }
            }
            tracing::info!(node = %self.name, "node agent running");
            let mut stops = self.node.clone();
            let paused = async move {
                loop {
                    if is_stopped(&stops.borrow_and_update()) {
                        return true;
                    }
                    if stops.changed().await.is_err() {
                        return false;
                    }
                }
            };
            tokio::select! {
                () = self.active() => {}
                paused = paused => {
                    if !paused {
                        return;
                    }
                    tracing::info!(node = %self.name, "node agent stopped");
                }
            }
        }
    }

    /// Everything a running agent does; never returns.
    async fn active(&self) {
        let (cidr, addressing) = self.addressing().await;
        let pods = NodePods::new(
            self.client.clone(),
            self.name.clone(),
            addressing.internal_ip,
            cidr,
            self.node_dir.clone(),
        );
        tokio::join!(
            self.post_status(&addressing),
            self.renew_lease(),
            pods.run()
        );
    }

    /// The node's pod CIDR (written into `spec.podCIDR` if the Node has none, as nodeipam does)
    /// and addresses; retried until written.
    async fn addressing(&self) -> (PodCidr, NodeAddressing) {
        let internal_ip = status::reported_internal_ip(&self.node.borrow())
            .unwrap_or_else(|| ipam::node_ip(self.index));
        let addressing = NodeAddressing { internal_ip };
        let existing = self
            .node
            .borrow()
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.clone());
        let own = ipam::pod_cidr(self.index).unwrap_or_else(fallback_cidr);
        if let Some(text) = existing {
            // Written before (by this agent or nodeipam-like tooling): kept, as it is immutable.
            return match PodCidr::parse(&text) {
                Some(cidr) => (cidr, addressing),
                None => {
                    tracing::warn!(node = %self.name, pod_cidr = %text, "the Node's podCIDR is not an IPv4 CIDR; using the node's own");
                    (own, addressing)
                }
            };
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({"spec": {"podCIDR": own.to_string(), "podCIDRs": [own.to_string()]}});
        loop {
            match api
                .patch(
                    &self.name,
                    &PatchParams::default(),
                    &Patch::Merge(patch.clone()),
                )
                .await
            {
                Ok(_) => return (own, addressing),
                Err(error) => {
                    tracing::warn!(node = %self.name, %error, "cannot set the Node's podCIDR; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Posts the Node's status now, every [`STATUS_INTERVAL`], and soon after someone else
    /// marks the Node not Ready (the node lifecycle controller after a missed Lease).
    async fn post_status(&self, addressing: &NodeAddressing) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut changes = self.node.clone();
        let mut next = Instant::now();
        let mut last_post: Option<Instant> = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        return std::future::pending().await;
                    }
                    if !status::is_ready(&changes.borrow_and_update()) {
                        let now = Instant::now();
                        let earliest = last_post.map_or(now, |at| (at + STATUS_MIN_GAP).max(now));
                        next = next.min(earliest);
                    }
                    continue;
                }
            }
            let node = self.node.borrow().clone();
            let body = json!({"status": status::node_status(&node, addressing, Timestamp::now())});
            last_post = Some(Instant::now());
            match api
                .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(body))
                .await
            {
                Ok(_) => next = Instant::now() + STATUS_INTERVAL,
                Err(error) => {
                    tracing::warn!(node = %self.name, %error, "cannot post the Node's status; retrying");
                    next = Instant::now() + RETRY;
                }
            }
        }
    }

    /// Renews the node's Lease every [`LEASE_RENEW_INTERVAL`], creating it (and its namespace)
    /// when missing.
    async fn renew_lease(&self) {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        let mut ticks = tokio::time::interval(LEASE_RENEW_INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = Timestamp::now();
            let patch = json!({"spec": status::lease_spec(&self.name, now)});
            let renewed = api
                .patch(&self.name, &PatchParams::default(), &Patch::Merge(patch))
                .await;
            let result = match renewed {
                Err(kube::Error::Api(e)) if e.code == 404 => self.create_lease(&api, now).await,
                other => other.map(drop),
            };
            if let Err(error) = result {
                tracing::warn!(node = %self.name, %error, "cannot renew the node's Lease");
            }
        }
    }

    async fn create_lease(&self, api: &Api<Lease>, now: Timestamp) -> Result<(), kube::Error> {
        let uid = self.node.borrow().metadata.uid.clone();
        let lease: Lease = serde_json::from_value(status::lease(&self.name, uid.as_deref(), now))
            .map_err(kube::Error::SerdeError)?;
        match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                ensure_lease_namespace(&self.client).await?;
                api.create(&PostParams::default(), &lease).await.map(drop)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// Creates kube-node-lease if it does not exist.
pub(crate) async fn ensure_lease_namespace(client: &kube::Client) -> Result<(), kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": LEASE_NAMESPACE},
    }))
    .map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(error) => Err(error),
    }
}

fn fallback_cidr() -> PodCidr {
    PodCidr {
        base: Ipv4Addr::new(10, 127, 255, 0),
        prefix: 24,
    }
}
