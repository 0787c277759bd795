//! The pure rules of the node lifecycle controller: which taints a node must carry, how its
//! conditions read once its agent went silent, and when a pod on a `NoExecute`-tainted node is
//! evicted given its tolerations.

use k8s_openapi::api::core::v1::{NodeCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The taint of a node whose agent stopped posting its status.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node whose agent reports Ready=False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const NO_SCHEDULE: &str = "NoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";
/// The reason and message of the conditions of a node gone silent, as kube's.
pub const UNKNOWN_REASON: &str = "NodeStatusUnknown";
pub const UNKNOWN_MESSAGE: &str = "Kubelet stopped posting node status.";
/// The conditions a silent node's agent can no longer vouch for.
const AGENT_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// How a node looks to the controller on one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Its Lease is fresh and it does not say it is not ready.
    Healthy,
    /// Its agent says Ready=False.
    NotReady,
    /// Its Lease is older than the grace period (or it never had one).
    Unreachable,
}

/// The key of the taints a node in `health` must carry (`None`: neither of ours).
pub fn wanted_key(health: Health) -> Option<&'static str> {
    match health {
        Health::Healthy => None,
        Health::NotReady => Some(NOT_READY),
        Health::Unreachable => Some(UNREACHABLE),
    }
}

/// The node's taints with ours made to match `health` (new ones stamped `now`), or `None`
/// when they already do.
pub fn retaint(current: &[Taint], health: Health, now: Timestamp) -> Option<Vec<Taint>> {
    let wanted = wanted_key(health);
    let ours = |t: &Taint| t.key == UNREACHABLE || t.key == NOT_READY;
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !ours(t) || (Some(t.key.as_str()) == wanted && is_our_effect(t)))
        .cloned()
        .collect();
    if let Some(key) = wanted {
        for effect in [NO_SCHEDULE, NO_EXECUTE] {
            if !next.iter().any(|t| t.key == key && t.effect == effect) {
                next.push(Taint {
                    key: key.to_owned(),
                    effect: effect.to_owned(),
                    time_added: Some(Time(now)),
                    value: None,
                });
            }
        }
    }
    (next != current).then_some(next)
}

fn is_our_effect(t: &Taint) -> bool {
    t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE
}

/// The status of the node's `Ready` condition, if it has one.
pub fn ready_status(conditions: &[NodeCondition]) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// The conditions of a node gone silent: the agent's own ones Unknown (Ready added when
/// missing), transition times moved to `now` where the status changes, heartbeats kept.
pub fn unknown_conditions(current: &[NodeCondition], now: Timestamp) -> Vec<NodeCondition> {
    let mut out: Vec<NodeCondition> = current.to_vec();
    if !out.iter().any(|c| c.type_ == "Ready") {
        out.push(NodeCondition {
            type_: "Ready".into(),
            ..NodeCondition::default()
        });
    }
    for c in out.iter_mut() {
        if !AGENT_CONDITIONS.contains(&c.type_.as_str()) {
            continue;
        }
        if c.status != "Unknown" {
            c.last_transition_time = Some(Time(now));
        }
        c.status = "Unknown".into();
        c.reason = Some(UNKNOWN_REASON.into());
        c.message = Some(UNKNOWN_MESSAGE.into());
    }
    out
}

/// kube's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref() {
        None | Some("") | Some("Equal") => {
            t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        Some("Exists") => true,
        Some(_) => false,
    }
}

/// When a pod with `tolerations` on a node with `taints` is evicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Never,
    Now,
    At(Timestamp),
}

/// The taint manager's rule: a `NoExecute` taint the pod does not tolerate evicts it now; else
/// the first toleration of each taint counts, and the earliest end of a bounded one
/// (`tolerationSeconds` after the taint was added, `fallback` when its time is unknown) is
/// when it goes; unbounded tolerations keep it.
pub fn eviction(tolerations: &[Toleration], taints: &[Taint], fallback: Timestamp) -> Eviction {
    let mut at: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let Some(t) = tolerations.iter().find(|t| tolerates(t, taint)) else {
            return Eviction::Now;
        };
        if let Some(seconds) = t.toleration_seconds {
            let added = taint.time_added.as_ref().map_or(fallback, |t| t.0);
            let end = added
                .checked_add(SignedDuration::from_secs(seconds.max(0)))
                .unwrap_or(added);
            at = Some(at.map_or(end, |a| a.min(end)));
        }
    }
    match at {
        None => Eviction::Never,
        Some(t) => Eviction::At(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str, at: Timestamp) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: Some(Time(at)),
            value: None,
        }
    }

    fn toleration(key: &str, op: &str, effect: Option<&str>, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            effect: effect.map(str::to_owned),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn taints_follow_health() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let other = taint("example.com/x", NO_SCHEDULE, t0);
        let tainted = retaint(std::slice::from_ref(&other), Health::Unreachable, t0).unwrap();
        let keys: Vec<_> = tainted
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("example.com/x", NO_SCHEDULE),
                (UNREACHABLE, NO_SCHEDULE),
                (UNREACHABLE, NO_EXECUTE)
            ]
        );
        assert_eq!(retaint(&tainted, Health::Unreachable, t0), None);
        let not_ready = retaint(&tainted, Health::NotReady, t0).unwrap();
        assert!(not_ready.iter().all(|t| t.key != UNREACHABLE));
        assert_eq!(not_ready.iter().filter(|t| t.key == NOT_READY).count(), 2);
        assert_eq!(
            retaint(&not_ready, Health::Healthy, t0).unwrap(),
            vec![other.clone()]
        );
        assert_eq!(retaint(&[other], Health::Healthy, t0), None);
    }

    #[test]
    fn silent_nodes_have_unknown_conditions() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let ready = NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..NodeCondition::default()
        };
        let custom = NodeCondition {
            type_: "example.com/Ok".into(),
            status: "True".into(),
            ..NodeCondition::default()
        };
        let out = unknown_conditions(&[ready, custom.clone()], t0);
        assert_eq!(out[0].status, "Unknown");
        assert_eq!(out[0].reason.as_deref(), Some(UNKNOWN_REASON));
        assert_eq!(out[0].message.as_deref(), Some(UNKNOWN_MESSAGE));
        assert_eq!(out[0].last_transition_time, Some(Time(t0)));
        assert_eq!(out[1], custom);
        assert_eq!(ready_status(&out), Some("Unknown"));
        assert_eq!(ready_status(&unknown_conditions(&[], t0)), Some("Unknown"));
    }

    #[test]
    fn tolerations_match_as_kubes() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let un = taint(UNREACHABLE, NO_EXECUTE, t0);
        assert!(tolerates(
            &toleration(UNREACHABLE, "Exists", None, None),
            &un
        ));
        assert!(tolerates(
            &toleration(UNREACHABLE, "Exists", Some(NO_EXECUTE), None),
            &un
        ));
        assert!(!tolerates(
            &toleration(UNREACHABLE, "Exists", Some(NO_SCHEDULE), None),
            &un
        ));
        assert!(tolerates(&toleration("", "Exists", None, None), &un));
        assert!(!tolerates(
            &toleration(NOT_READY, "Exists", None, None),
            &un
        ));
        assert!(tolerates(
            &toleration(UNREACHABLE, "Equal", None, None),
            &un
        ));
        let mut valued = toleration(UNREACHABLE, "Equal", None, None);
        valued.value = Some("x".into());
        assert!(!tolerates(&valued, &un));
    }

    #[test]
    fn eviction_waits_for_the_shortest_bounded_toleration() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let taints = [
            taint(UNREACHABLE, NO_SCHEDULE, t0),
            taint(UNREACHABLE, NO_EXECUTE, t0),
        ];
        assert_eq!(eviction(&[], &taints, t0), Eviction::Now);
        assert_eq!(
            eviction(
                &[toleration(UNREACHABLE, "Exists", Some(NO_EXECUTE), None)],
                &taints,
                t0
            ),
            Eviction::Never
        );
        let sixty = toleration(UNREACHABLE, "Exists", Some(NO_EXECUTE), Some(60));
        assert_eq!(
            eviction(&[sixty], &taints, t0),
            Eviction::At(Timestamp::from_second(1_060).unwrap())
        );
        // Only NoExecute taints evict.
        assert_eq!(eviction(&[], &taints[..1], t0), Eviction::Never);
    }
}
