//! What a pod asks of a node, computed once per pod as kube's `resource.PodRequests` does: the
//! sum of its containers' requests, raised to the largest init container (restartable sidecar
//! init containers add up), plus the pod overhead; and the "non-zero" requests that scoring
//! uses, where a container without a cpu or memory request counts as 100m / 200Mi.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The CPU a container without a CPU request counts as when scoring (kube's
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts as when scoring (kube's
/// `DefaultMemoryRequest`, 200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource: CPU in millicores, memory in bytes, any other resource (e.g.
/// `ephemeral-storage`, `nvidia.com/gpu`) in its integer unit, rounded up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    /// Other resources by name; absent means zero.
    pub scalars: BTreeMap<String, i64>,
}

impl Resources {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        for (name, value) in &other.scalars {
            *self.scalars.entry(name.clone()).or_insert(0) += value;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        for (name, value) in &other.scalars {
            let left = self.scalars.entry(name.clone()).or_insert(0);
            *left -= value;
            if *left == 0 {
                self.scalars.remove(name);
            }
        }
    }

    /// Raises each resource of `self` to at least `other`'s.
    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        for (name, value) in &other.scalars {
            let mine = self.scalars.entry(name.clone()).or_insert(0);
            *mine = (*mine).max(*value);
        }
    }

    /// Reads a resource list (requests, overhead, allocatable). Unparseable quantities count
    /// as zero: the API server validated them, and a bad one must not stop the scheduler.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut out = Resources::default();
        for (name, quantity) in list.into_iter().flatten() {
            let Some(value) = parse_quantity(&quantity.0) else {
                continue;
            };
            match name.as_str() {
                "cpu" => out.milli_cpu = to_i64((value * 1000.0).ceil()),
                "memory" => out.memory = to_i64(value.ceil()),
                // The pod count is not a request; allocatable pods are read separately.
                "pods" => {}
                other => {
                    let value = to_i64(value.ceil());
                    if value != 0 {
                        out.scalars.insert(other.to_owned(), value);
                    }
                }
            }
        }
        out
    }
}

fn to_i64(value: f64) -> i64 {
    // `as` saturates, which is the wanted behaviour for absurd quantities.
    value as i64
}

/// Parses a Kubernetes quantity (`100m`, `1.5Gi`, `2`, `1e3`, `500M`) into base units.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Pi" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Ei" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..].parse().ok()?;
            10f64.powi(power)
        }
        _ => return None,
    };
    let value = number * factor;
    value.is_finite().then_some(value)
}

/// A container's requests; a resource with a limit and no request requests its limit, as the
/// API server's defaulting would have made it.
fn container_requests(resources: Option<&ResourceRequirements>) -> Resources {
    let Some(resources) = resources else {
        return Resources::default();
    };
    let mut list = resources.limits.clone().unwrap_or_default();
    for (name, quantity) in resources.requests.iter().flatten() {
        list.insert(name.clone(), quantity.clone());
    }
    Resources::from_list(Some(&list))
}

/// A container's requests with cpu and memory raised from zero to the scoring defaults.
fn non_zero(mut requests: Resources, resources: Option<&ResourceRequirements>) -> Resources {
    let asked = |name: &str| {
        resources.is_some_and(|r| {
            r.requests.as_ref().is_some_and(|l| l.contains_key(name))
                || r.limits.as_ref().is_some_and(|l| l.contains_key(name))
        })
    };
    if !asked("cpu") {
        requests.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if !asked("memory") {
        requests.memory = DEFAULT_MEMORY_REQUEST;
    }
    requests
}

/// Kube's `PodRequests` over containers, with `each` giving one container's amount.
fn pod_total(pod: &Pod, each: impl Fn(&Container) -> Resources) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let mut total = Resources::default();
    for container in &spec.containers {
        total.add(&each(container));
    }
    let mut restartable = Resources::default();
    let mut init_max = Resources::default();
    for container in spec.init_containers.iter().flatten() {
        let mut amount = each(container);
        if container.restart_policy.as_deref() == Some("Always") {
            // A sidecar runs alongside the app containers and the later init containers.
            total.add(&amount);
            restartable.add(&amount);
            amount = restartable.clone();
        } else {
            amount.add(&restartable);
        }
        init_max.max_with(&amount);
    }
    total.max_with(&init_max);
    total.add(&Resources::from_list(spec.overhead.as_ref()));
    total
}

/// The requests that count against a node's allocatable.
pub fn pod_requests(pod: &Pod) -> Resources {
    pod_total(pod, |c| container_requests(c.resources.as_ref()))
}

/// The requests that scoring counts, with the non-zero defaults for cpu and memory.
pub fn pod_non_zero_requests(pod: &Pod) -> Resources {
    let mut total = pod_total(pod, |c| {
        non_zero(
            container_requests(c.resources.as_ref()),
            c.resources.as_ref(),
        )
    });
    total.scalars.clear();
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
        assert_eq!(parse_quantity("1.5Ki"), Some(1536.0));
        assert_eq!(parse_quantity("500M"), Some(5e8));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1E"), Some(1e18));
        assert_eq!(parse_quantity("12x"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn sums_containers_max_init_plus_overhead() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "32Mi"}}},
            ],
            "initContainers": [
                {"name": "i", "resources": {"requests": {"cpu": "1", "memory": "16Mi"}}},
            ],
            "overhead": {"cpu": "10m"},
        }));
        let r = pod_requests(&p);
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 96 * 1024 * 1024);
        let nz = pod_non_zero_requests(&p);
        assert_eq!(nz.milli_cpu, 1010);
        assert_eq!(nz.memory, 96 * 1024 * 1024);
    }

    #[test]
    fn sidecars_add_up() {
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
            "initContainers": [
                {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "i", "resources": {"requests": {"cpu": "120m"}}},
            ],
        }));
        // max(100 + 50, 120 + 50)
        assert_eq!(pod_requests(&p).milli_cpu, 170);
    }

    #[test]
    fn no_requests_is_zero_but_scores_as_defaults() {
        let p = pod(json!({"containers": [{"name": "a"}, {"name": "b"}]}));
        assert_eq!(pod_requests(&p), Resources::default());
        let nz = pod_non_zero_requests(&p);
        assert_eq!(nz.milli_cpu, 2 * DEFAULT_MILLI_CPU_REQUEST);
        assert_eq!(nz.memory, 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn scalars_are_kept() {
        let p = pod(json!({"containers": [{"name": "a",
            "resources": {"requests": {"nvidia.com/gpu": "2", "ephemeral-storage": "1Gi"}}}]}));
        let r = pod_requests(&p);
        assert_eq!(r.scalars.get("nvidia.com/gpu"), Some(&2));
        assert_eq!(r.scalars.get("ephemeral-storage"), Some(&1073741824));
    }
}
