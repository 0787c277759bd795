//! The Pod row, after kube's `printPod`: the READY count, the aggregate STATUS (init progress,
//! container waiting/terminated reasons, Terminating) and RESTARTS with the last restart's age.

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::printers::{list as items, s as text};
use super::table::age;

/// The later of the known last restart and a container's last termination.
fn note_restart(last: &mut Option<OffsetDateTime>, status: &Value) {
    let finished = text(status, "/lastState/terminated/finishedAt")
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    if let Some(f) = finished {
        if last.is_none_or(|l| f > l) {
            *last = Some(f);
        }
    }
}

fn terminated_reason(t: &Value, prefix: &str) -> String {
    match text(t, "/reason") {
        Some(r) => format!("{prefix}{r}"),
        None => match t.pointer("/signal").and_then(Value::as_i64) {
            Some(sig) if sig != 0 => format!("{prefix}Signal:{sig}"),
            _ => format!(
                "{prefix}ExitCode:{}",
                t.pointer("/exitCode").and_then(Value::as_i64).unwrap_or(0)
            ),
        },
    }
}

/// The cells of a Pod row.
pub(super) fn pod(o: &Value, name: &str, created_age: String, now: OffsetDateTime) -> Vec<Value> {
    let total = items(o, "/spec/containers").len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<OffsetDateTime> = None;
    let mut reason = text(o, "/status/reason")
        .or(text(o, "/status/phase"))
        .unwrap_or("Pending")
        .to_owned();

    let init_total = items(o, "/spec/initContainers").len();
    let mut initializing = false;
    for (idx, c) in items(o, "/status/initContainerStatuses").iter().enumerate() {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        note_restart(&mut last_restart, c);
        if let Some(t) = c.pointer("/state/terminated") {
            if t["exitCode"].as_i64() == Some(0) {
                continue;
            }
            reason = terminated_reason(t, "Init:");
        } else if let Some(w) = text(c, "/state/waiting/reason").filter(|r| *r != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else if c["started"] == Value::Bool(true) && c["ready"] == Value::Bool(true) {
            // A running sidecar (restartable init container) does not hold up the pod.
            continue;
        } else {
            reason = format!("Init:{idx}/{init_total}");
        }
        initializing = true;
        break;
    }

    if !initializing {
        let mut has_running = false;
        for c in items(o, "/status/containerStatuses").iter().rev() {
            restarts += c["restartCount"].as_i64().unwrap_or(0);
            note_restart(&mut last_restart, c);
            if let Some(w) = text(c, "/state/waiting/reason") {
                reason = w.to_owned();
            } else if let Some(t) = c.pointer("/state/terminated") {
                reason = terminated_reason(t, "");
            } else if c["ready"] == Value::Bool(true) && c.pointer("/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = items(o, "/status/conditions")
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    let phase = text(o, "/status/phase").unwrap_or("");
    if o.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
    {
        if text(o, "/status/reason") == Some("NodeLost") {
            reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_owned();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            let ago = age(t.format(&Rfc3339).ok().as_deref(), now);
            format!("{restarts} ({ago} ago)")
        }
        _ => restarts.to_string(),
    };
    let gates = items(o, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let conditions = items(o, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    let or_none = |p: &str| text(o, p).unwrap_or("<none>").to_owned();
    vec![
        json!(name),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(created_age),
        json!(or_none("/status/podIP")),
        json!(or_none("/spec/nodeName")),
        json!(or_none("/status/nominatedNodeName")),
        json!(gates_cell),
    ]
}
