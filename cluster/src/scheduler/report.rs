//! What the scheduler tells users, off the scheduling path: the `FailedScheduling` Warning
//! event (core/v1, as `kubectl describe pod` lists it) with the pod's `PodScheduled=False`
//! condition, and the `Scheduled` Normal event of a binding. A repeated failure with the same
//! message bumps the existing event's count and lastTimestamp instead of adding one, as kube's
//! event correlator does; reports arrive on a bounded channel and are dropped when it is full,
//! so a flood of failures can never slow scheduling down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::warn;

use super::SCHEDULER_NAME;

/// How many events the correlator remembers before it forgets the stale ones.
const REMEMBERED: usize = 4096;
/// A remembered event older than this is not bumped again (a new one is made).
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// One thing to tell.
#[derive(Debug)]
pub(super) enum Report {
    /// No node fits.
    Unschedulable { pod: Arc<Pod>, message: String },
    /// The pod was bound.
    Scheduled { pod: Arc<Pod>, node: String },
}

#[derive(Debug)]
struct Recorded {
    namespace: String,
    event: String,
    message: String,
    count: i32,
    at: Instant,
}

/// Writes the reports until the channel closes.
pub(super) async fn run(client: kube::Client, mut reports: mpsc::Receiver<Report>) {
    let mut recorded: HashMap<String, Recorded> = HashMap::new();
    while let Some(report) = reports.recv().await {
        match report {
            Report::Unschedulable { pod, message } => {
                failed_event(&client, &mut recorded, &pod, &message).await;
                unschedulable_condition(&client, &pod, &message).await;
            }
            Report::Scheduled { pod, node } => {
                recorded.remove(pod.metadata.uid.as_deref().unwrap_or(""));
                let message = format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.metadata.namespace.as_deref().unwrap_or(""),
                    pod.metadata.name.as_deref().unwrap_or("")
                );
                if let Err(error) =
                    create_event(&client, &pod, "Normal", "Scheduled", &message).await
                {
                    warn!(%error, pod = %name_of(&pod), "recording the Scheduled event failed");
                }
            }
        }
        if recorded.len() > REMEMBERED {
            recorded.retain(|_, r| r.at.elapsed() < FORGET_AFTER);
            if recorded.len() > REMEMBERED {
                recorded.clear();
            }
        }
    }
}

fn name_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn now() -> Time {
    Time(Timestamp::now())
}

async fn failed_event(
    client: &kube::Client,
    recorded: &mut HashMap<String, Recorded>,
    pod: &Pod,
    message: &str,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(previous) = recorded.get_mut(&uid) {
        if previous.message == message && previous.at.elapsed() < FORGET_AFTER {
            let api: Api<Event> = Api::namespaced(client.clone(), &previous.namespace);
            let bump = json!({"count": previous.count + 1, "lastTimestamp": now()});
            match api
                .patch(
                    &previous.event,
                    &PatchParams::default(),
                    &Patch::Merge(&bump),
                )
                .await
            {
                Ok(_) => {
                    previous.count += 1;
                    previous.at = Instant::now();
                    return;
                }
                // Gone (expired or deleted): record a new one below.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(error) => {
                    warn!(%error, pod = %name_of(pod), "updating the FailedScheduling event failed");
                    return;
                }
            }
        }
    }
    match create_event(client, pod, "Warning", "FailedScheduling", message).await {
        Ok(event) => {
            recorded.insert(
                uid,
                Recorded {
                    namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                    event,
                    message: message.to_owned(),
                    count: 1,
                    at: Instant::now(),
                },
            );
        }
        Err(error) => {
            warn!(%error, pod = %name_of(pod), "recording the FailedScheduling event failed");
        }
    }
}

/// Creates a core/v1 event about the pod; returns its name.
async fn create_event(
    client: &kube::Client,
    pod: &Pod,
    type_: &str,
    reason: &str,
    message: &str,
) -> Result<String, kube::Error> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let stamp = Timestamp::now();
    // Kube names events `<object>.<hex nanoseconds>`.
    let name = format!("{pod_name}.{:x}", stamp.as_nanosecond());
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: Some(pod_name),
            namespace: Some(namespace.clone()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(type_.to_owned()),
        source: Some(EventSource {
            component: Some(SCHEDULER_NAME.to_owned()),
            host: None,
        }),
        reporting_component: Some(SCHEDULER_NAME.to_owned()),
        reporting_instance: Some(SCHEDULER_NAME.to_owned()),
        action: Some("Scheduling".to_owned()),
        first_timestamp: Some(Time(stamp)),
        last_timestamp: Some(Time(stamp)),
        count: Some(1),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    api.create(&PostParams::default(), &event).await?;
    Ok(name)
}

/// Sets `PodScheduled=False, reason Unschedulable` with the message, unless it says so already.
async fn unschedulable_condition(client: &kube::Client, pod: &Pod, message: &str) {
    let conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let current = conditions.iter().find(|c| c.type_ == "PodScheduled");
    if current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(message)
    }) {
        return;
    }
    let mut list: Vec<serde_json::Value> = conditions
        .iter()
        .filter(|c| c.type_ != "PodScheduled")
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect();
    list.push(json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": now(),
    }));
    let patch = json!({"status": {"conditions": list}});
    let api: Api<Pod> = Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or(""),
    );
    let name = pod.metadata.name.as_deref().unwrap_or("");
    if let Err(error) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        warn!(%error, pod = %name_of(pod), "setting PodScheduled=False failed");
    }
}
