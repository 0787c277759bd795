//! The `DefaultTolerationSeconds` admission of pods, as kube-apiserver's plugin of that name
//! (on by default there): a pod created without a toleration of the `not-ready` or the
//! `unreachable` NoExecute taint gets one, bounded by `--default-not-ready-toleration-seconds`
//! and `--default-unreachable-toleration-seconds` (300 s each). So a pod stays on a node that
//! stopped answering for five minutes before the node lifecycle controller evicts it, as in
//! Kubernetes, instead of at once.

use std::sync::OnceLock;

use async_trait::async_trait;
use kgate_core::Status;
use serde_json::{json, Value};

use super::{AdmissionPlugin, Attributes, Operation};

/// The taint kube puts on a node whose Ready condition is False.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The taint kube puts on a node whose Ready condition is Unknown (its Lease stopped).
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";

/// The `tolerationSeconds` of the tolerations added. `Default` is kube's: 300 s each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerationSeconds {
    pub not_ready: u32,
    pub unreachable: u32,
}

impl Default for DefaultTolerationSeconds {
    fn default() -> Self {
        DefaultTolerationSeconds {
            not_ready: 300,
            unreachable: 300,
        }
    }
}

/// The plugin; its seconds are set once, after the server started (kube's 300 s until then).
#[derive(Debug, Default)]
pub struct DefaultTolerationSecondsPlugin {
    seconds: OnceLock<DefaultTolerationSeconds>,
}

impl DefaultTolerationSecondsPlugin {
    /// Sets the seconds of the tolerations added from now on. A second call changes nothing.
    pub fn set(&self, seconds: DefaultTolerationSeconds) {
        let _ = self.seconds.set(seconds);
    }

    fn seconds(&self) -> DefaultTolerationSeconds {
        self.seconds.get().copied().unwrap_or_default()
    }
}

#[async_trait]
impl AdmissionPlugin for DefaultTolerationSecondsPlugin {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn handles(&self, operation: Operation) -> bool {
        operation == Operation::Create
    }

    async fn admit(&self, attrs: &mut Attributes<'_>) -> Result<(), Status> {
        let seconds = self.seconds();
        if let (true, Some(pod)) = (attrs.is_pod(), attrs.object.as_mut()) {
            admit_pod(pod, seconds);
        }
        Ok(())
    }
}

/// Adds the missing default tolerations to a pod being created.
pub(crate) fn admit_pod(pod: &mut Value, seconds: DefaultTolerationSeconds) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(tolerations) = tolerations.as_array_mut() else {
        return;
    };
    // kube's test: a toleration of the key (or of every key) for NoExecute (or every effect).
    let tolerated = |taint: &str| {
        tolerations.iter().any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (key == taint || key.is_empty()) && (effect == "NoExecute" || effect.is_empty())
        })
    };
    let missing: Vec<(&str, u32)> = [
        (NOT_READY_TAINT, seconds.not_ready),
        (UNREACHABLE_TAINT, seconds.unreachable),
    ]
    .into_iter()
    .filter(|(taint, _)| !tolerated(taint))
    .collect();
    for (taint, seconds) in missing {
        tolerations.push(json!({
            "key": taint,
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": seconds,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(tolerations: Value) -> Value {
        let mut pod = json!({"spec": {"containers": [], "tolerations": tolerations}});
        admit_pod(
            &mut pod,
            DefaultTolerationSeconds {
                not_ready: 60,
                unreachable: 90,
            },
        );
        pod["spec"]["tolerations"].clone()
    }

    fn default_for(taint: &str, seconds: u32) -> Value {
        json!({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
    }

    /// The cases of kube's `admission_test.go` for the plugin.
    #[test]
    fn only_the_tolerations_a_pod_lacks_are_added() {
        let both = json!([
            default_for(NOT_READY_TAINT, 60),
            default_for(UNREACHABLE_TAINT, 90)
        ]);
        assert_eq!(admitted(json!([])), both);
        let mut without = json!({"spec": {"containers": []}});
        admit_pod(&mut without, DefaultTolerationSeconds::default());
        assert_eq!(without["spec"]["tolerations"][0]["tolerationSeconds"], 300);
        assert_eq!(without["spec"]["tolerations"][1]["key"], UNREACHABLE_TAINT);

        // An unrelated toleration is kept, and both defaults follow it.
        let other = json!({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(
            admitted(json!([other.clone()])),
            json!([
                other,
                default_for(NOT_READY_TAINT, 60),
                default_for(UNREACHABLE_TAINT, 90)
            ])
        );

        // The pod's own not-ready toleration wins (even forever); only unreachable is added.
        let forever = json!({"key": NOT_READY_TAINT, "operator": "Exists", "effect": "NoExecute"});
        assert_eq!(
            admitted(json!([forever.clone()])),
            json!([forever, default_for(UNREACHABLE_TAINT, 90)])
        );

        // A toleration without an effect covers NoExecute; one for NoSchedule does not.
        let any_effect = json!({"key": UNREACHABLE_TAINT, "operator": "Exists"});
        assert_eq!(
            admitted(json!([any_effect.clone()])),
            json!([any_effect, default_for(NOT_READY_TAINT, 60)])
        );
        let no_schedule =
            json!({"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(
            admitted(json!([no_schedule])).as_array().map(Vec::len),
            Some(3)
        );

        // Tolerating every key tolerates both.
        let everything = json!({"operator": "Exists"});
        assert_eq!(admitted(json!([everything.clone()])), json!([everything]));
    }
}
