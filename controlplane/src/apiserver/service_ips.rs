//! Service ClusterIP and NodePort allocation, as kube-apiserver's service registry
//! (`pkg/registry/core/service`) does it on create and update: a Service of type ClusterIP,
//! NodePort or LoadBalancer without a ClusterIP gets a free one from the service CIDR
//! ([`SERVICE_CIDR`], kube's default `--service-cluster-ip-range`), ports of NodePort and
//! LoadBalancer Services without a nodePort get a free one from [`NODE_PORT_MIN`]..=
//! [`NODE_PORT_MAX`], requested values are checked (in range, free), and an allocated ClusterIP
//! never changes. Headless (`None`) and ExternalName Services get no IP.
//!
//! What is in use is computed from the stored Services under one lock per API server
//! (`Shared::service_ips`, held by the writer from the read of the Services until its own write
//! is stored), so it is always right: a deleted Service frees its IP and ports by being gone, and
//! two concurrent creations never take the same value. The pure functions here
//! ([`allocate_create`], [`allocate_update`]) do the work on an [`InUse`] snapshot.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use kgate_core::status::StatusCause;
use kgate_core::Status;
use rand::Rng;
use serde_json::{json, Value};

use super::keys::store_status;
use super::meta::meta_str;
use crate::resources::{self, ResourceDef};
use crate::store::{RangeRequest, Store};

/// The Service ClusterIP range, kube's default.
pub(crate) const SERVICE_CIDR: &str = "10.96.0.0/12";
const SERVICE_NET: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_NET_BITS: u32 = 12;
/// The first address after the network one belongs to the `kubernetes` Service in `default`
/// (kube-apiserver's `GetIndexedIP(range, 1)`): never handed out at random, whether or not
/// that Service exists.
pub(crate) const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
/// kube's default `--service-node-port-range`.
pub(crate) const NODE_PORT_MIN: i64 = 30000;
pub(crate) const NODE_PORT_MAX: i64 = 32767;

/// The ClusterIPs and NodePorts held by stored Services (all but the one being written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InUse {
    pub ips: HashSet<Ipv4Addr>,
    pub node_ports: HashSet<i64>,
}

impl InUse {
    /// What `services` hold, leaving out the Service `except` (namespace, name), whose own
    /// values stay free for it on an update.
    pub fn from_services<'a>(
        services: impl IntoIterator<Item = &'a Value>,
        except: Option<(&str, &str)>,
    ) -> Self {
        let mut out = InUse::default();
        for svc in services {
            let id = (
                meta_str(svc, "namespace").unwrap_or(""),
                meta_str(svc, "name").unwrap_or(""),
            );
            if except == Some(id) {
                continue;
            }
            out.add(svc);
        }
        out
    }

    /// Marks `svc`'s ClusterIPs and NodePorts used.
    pub fn add(&mut self, svc: &Value) {
        let spec = &svc["spec"];
        let ips = spec["clusterIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(std::iter::once(&spec["clusterIP"]));
        for ip in ips.filter_map(Value::as_str) {
            if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                self.ips.insert(ip);
            }
        }
        for port in ports(svc) {
            if let Some(n) = port["nodePort"].as_i64().filter(|n| *n != 0) {
                self.node_ports.insert(n);
            }
        }
        if let Some(n) = spec["healthCheckNodePort"].as_i64().filter(|n| *n != 0) {
            self.node_ports.insert(n);
        }
    }
}

/// Reads what the stored Services hold. Call with the allocation lock held.
pub(crate) async fn in_use(
    store: &dyn Store,
    except: Option<(&str, &str)>,
) -> Result<InUse, Status> {
    let services = resources::lookup("", "v1", "services").ok_or_else(Status::path_not_found)?;
    let stored = store
        .range(RangeRequest {
            prefix: services.key_prefix(),
            ..RangeRequest::default()
        })
        .await
        .map_err(|e| store_status(e, None))?;
    let values: Vec<Value> = stored
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .collect();
    Ok(InUse::from_services(&values, except))
}

fn svc_type(svc: &Value) -> &str {
    svc.pointer("/spec/type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("ClusterIP")
}

fn needs_cluster_ip(svc: &Value) -> bool {
    svc_type(svc) != "ExternalName"
}

fn needs_node_ports(svc: &Value) -> bool {
    match svc_type(svc) {
        "NodePort" => true,
        // allocateLoadBalancerNodePorts: false opts a LoadBalancer out of node ports.
        "LoadBalancer" => svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&json!(false)),
        _ => false,
    }
}

fn ports(svc: &Value) -> impl Iterator<Item = &Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn cluster_ip(svc: &Value) -> &str {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn cluster_ips(svc: &Value) -> Vec<String> {
    svc.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Go's `%#v`-like rendering of a `[]string`, as kube's field errors print it.
fn go_strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn spec_mut(obj: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    if let Some(map) = obj.as_object_mut() {
        map.entry("spec").or_insert_with(|| json!({}));
    }
    obj.get_mut("spec").and_then(Value::as_object_mut)
}

/// One field error of a Service.
struct Problem {
    reason: &'static str,
    field: String,
    message: String,
}

impl Problem {
    fn invalid(field: impl Into<String>, value: impl std::fmt::Display, why: &str) -> Self {
        Problem {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {why}"),
        }
    }

    fn forbidden(field: impl Into<String>, why: &str) -> Self {
        Problem {
            reason: "FieldValueForbidden",
            field: field.into(),
            message: format!("Forbidden: {why}"),
        }
    }

    fn into_status(self, def: &ResourceDef, name: &str) -> Status {
        Status::invalid(
            def.group,
            def.kind,
            name,
            vec![StatusCause {
                reason: self.reason.to_owned(),
                message: self.message,
                field: self.field,
            }],
        )
    }
}

/// Syncs `clusterIP` and `clusterIPs` as kube's `normalizeClusterIPs` does: either one alone
/// is enough, both must agree.
fn normalize_cluster_ips(obj: &mut Value, old: Option<&Value>) -> Result<(), Problem> {
    let ip = cluster_ip(obj).to_owned();
    let mut ips = cluster_ips(obj);
    if let Some(old) = old {
        // A client that changed only clusterIP (a patch) moves clusterIPs[0] with it.
        if !ip.is_empty() && ip != cluster_ip(old) && ips == cluster_ips(old) && !ips.is_empty() {
            ips[0] = ip.clone();
        }
    }
    let ip = match (ip.is_empty(), ips.first()) {
        (true, Some(first)) => first.clone(),
        (false, Some(first)) if *first != ip => {
            return Err(Problem::invalid(
                "spec.clusterIPs",
                go_strings(&ips),
                "first value must match `clusterIP`",
            ))
        }
        _ => ip,
    };
    if ips.is_empty() && !ip.is_empty() {
        ips.push(ip.clone());
    }
    if let Some(spec) = spec_mut(obj) {
        if !ip.is_empty() {
            spec.insert("clusterIP".into(), json!(ip));
            spec.insert("clusterIPs".into(), json!(ips));
        }
    }
    Ok(())
}

/// Picks a free IP at random (never the network, broadcast or `kubernetes` addresses).
fn random_ip(used: &InUse) -> Option<Ipv4Addr> {
    let size = 1u32 << (32 - SERVICE_NET_BITS);
    // Offsets 2 ..= size - 2: 0 is the network, 1 `kubernetes`, size - 1 the broadcast.
    let first = 2;
    let count = size - 3;
    let start = rand::rng().random_range(0..count);
    (0..count)
        .map(|i| Ipv4Addr::from(SERVICE_NET + first + (start + i) % count))
        .find(|ip| *ip != KUBERNETES_SERVICE_IP && !used.ips.contains(ip))
}

fn in_service_range(ip: Ipv4Addr) -> bool {
    let shift = 32 - SERVICE_NET_BITS;
    u32::from(ip) >> shift == SERVICE_NET >> shift
        && u32::from(ip) != SERVICE_NET
        && u32::from(ip) != SERVICE_NET | ((1 << shift) - 1)
}

/// Checks a requested ClusterIP: an IP, in range, free.
fn check_requested_ip(requested: &str, used: &InUse) -> Result<(), Problem> {
    let all = go_strings(&[requested.to_owned()]);
    let Ok(ip) = requested.parse::<Ipv4Addr>() else {
        return Err(Problem::invalid(
            "spec.clusterIPs[0]",
            format!("{requested:?}"),
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    };
    if !in_service_range(ip) {
        return Err(Problem::invalid(
            "spec.clusterIPs",
            all,
            &format!(
                "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
            ),
        ));
    }
    if used.ips.contains(&ip) {
        return Err(Problem::invalid(
            "spec.clusterIPs",
            all,
            &format!("failed to allocate IP {requested}: provided IP is already allocated"),
        ));
    }
    Ok(())
}

/// Sets the single-stack IPv4 family fields this cluster has, when absent.
fn default_families(obj: &mut Value) {
    if let Some(spec) = spec_mut(obj) {
        spec.entry("ipFamilies").or_insert_with(|| json!(["IPv4"]));
        spec.entry("ipFamilyPolicy")
            .or_insert_with(|| json!("SingleStack"));
    }
}

/// Gives `obj` a ClusterIP if it needs one (a free one, or the requested one if free).
fn allocate_ip(obj: &mut Value, used: &InUse) -> Result<(), Problem> {
    let requested = cluster_ip(obj).to_owned();
    if requested == "None" {
        let kind = svc_type(obj);
        if kind != "ClusterIP" {
            return Err(Problem::invalid(
                "spec.clusterIPs[0]",
                "\"None\"",
                &format!("may not be set to 'None' for {kind} services"),
            ));
        }
        default_families(obj);
        return Ok(());
    }
    let ip = if requested.is_empty() {
        random_ip(used)
            .ok_or_else(|| Problem {
                reason: "FieldValueInvalid",
                field: "spec.clusterIPs".into(),
                message: "failed to allocate a serviceIP: range is full".into(),
            })?
            .to_string()
    } else {
        check_requested_ip(&requested, used)?;
        requested
    };
    if let Some(spec) = spec_mut(obj) {
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    default_families(obj);
    Ok(())
}

/// Gives every port of a NodePort/LoadBalancer Service a nodePort (requested ones checked);
/// `own` are the ports this Service already held (an update may keep them).
fn allocate_node_ports(obj: &mut Value, used: &InUse, own: &HashSet<i64>) -> Result<(), Problem> {
    let needs = needs_node_ports(obj);
    let kind = svc_type(obj).to_owned();
    let Some(list) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    // Taken by this Service's earlier ports: (port, protocol).
    let mut mine: Vec<(i64, String)> = Vec::new();
    let mut taken: HashSet<i64> = HashSet::new();
    for (i, port) in list.iter_mut().enumerate() {
        let field = format!("spec.ports[{i}].nodePort");
        let protocol = port["protocol"].as_str().unwrap_or("TCP").to_owned();
        let requested = port["nodePort"].as_i64().unwrap_or(0);
        if !needs {
            if requested != 0 {
                return Err(Problem::forbidden(
                    field,
                    &format!("may not be used when `type` is '{kind}'"),
                ));
            }
            continue;
        }
        let n = if requested == 0 {
            let free = |n: &i64| !used.node_ports.contains(n) && !taken.contains(n);
            // A port of another protocol may share a number this Service took already.
            let span = NODE_PORT_MAX - NODE_PORT_MIN + 1;
            let start = rand::rng().random_range(0..span);
            (0..span)
                .map(|k| NODE_PORT_MIN + (start + k) % span)
                .find(free)
                .ok_or_else(|| Problem {
                    reason: "FieldValueInvalid",
                    field: field.clone(),
                    message: "failed to allocate a nodePort: range is full".into(),
                })?
        } else {
            if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&requested) {
                return Err(Problem::invalid(
                    field,
                    requested,
                    &format!("provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}"),
                ));
            }
            if mine
                .iter()
                .any(|(p, proto)| *p == requested && *proto == protocol)
            {
                return Err(Problem {
                    reason: "FieldValueDuplicate",
                    field,
                    message: format!("Duplicate value: \"{requested}\""),
                });
            }
            let shared_here = mine.iter().any(|(p, _)| *p == requested);
            if used.node_ports.contains(&requested) && !own.contains(&requested) && !shared_here {
                return Err(Problem::invalid(
                    field,
                    requested,
                    "provided port is already allocated",
                ));
            }
            requested
        };
        taken.insert(n);
        mine.push((n, protocol));
        if let Some(map) = port.as_object_mut() {
            map.insert("nodePort".into(), json!(n));
        }
    }
    Ok(())
}

/// Allocation for a Service being created: `obj` gets its ClusterIP, families and NodePorts, or
/// the 422 kube answers. Runs before defaulting and validation of the object.
pub(crate) fn allocate_create(
    def: &ResourceDef,
    obj: &mut Value,
    used: &InUse,
) -> Result<(), Status> {
    let name = meta_str(obj, "name").unwrap_or("").to_owned();
    create_problems(obj, used).map_err(|p| p.into_status(def, &name))
}

fn create_problems(obj: &mut Value, used: &InUse) -> Result<(), Problem> {
    if !needs_cluster_ip(obj) {
        return external_name(obj);
    }
    normalize_cluster_ips(obj, None)?;
    allocate_ip(obj, used)?;
    allocate_node_ports(obj, used, &HashSet::new())
}

/// ExternalName Services hold no IP and no node port.
fn external_name(obj: &Value) -> Result<(), Problem> {
    if !cluster_ip(obj).is_empty() || !cluster_ips(obj).is_empty() {
        return Err(Problem::forbidden(
            "spec.clusterIPs",
            "may not be set for `ExternalName` services",
        ));
    }
    Ok(())
}

/// Allocation for an update of `old` to `new` (after system metadata is carried over): the
/// ClusterIP is kept and may not change, except to fill an empty one (a Service that was
/// ExternalName); nodePorts a client left out are carried from `old` by port name, new ones
/// allocated; values a type change no longer needs are dropped (and so freed), as kube's
/// `dropTypeDependentFields`.
pub(crate) fn allocate_update(
    def: &ResourceDef,
    old: &Value,
    new: &mut Value,
    used: &InUse,
) -> Result<(), Status> {
    let name = meta_str(old, "name").unwrap_or("").to_owned();
    update_problems(old, new, used).map_err(|p| p.into_status(def, &name))
}

fn update_problems(old: &Value, new: &mut Value, used: &InUse) -> Result<(), Problem> {
    drop_type_dependent(old, new);
    if !needs_cluster_ip(new) {
        external_name(new)?;
    } else {
        normalize_cluster_ips(new, Some(old))?;
        let old_ip = if needs_cluster_ip(old) {
            cluster_ip(old).to_owned()
        } else {
            String::new()
        };
        let new_ip = cluster_ip(new).to_owned();
        if old_ip.is_empty() {
            allocate_ip(new, used)?;
        } else if new_ip.is_empty() {
            // A client that cleared it gets the allocated one back (kube's patchAllocatedValues).
            if let Some(spec) = spec_mut(new) {
                spec.insert("clusterIP".into(), json!(old_ip));
                spec.insert("clusterIPs".into(), json!(cluster_ips(old)));
            }
            default_families(new);
        } else if new_ip != old_ip {
            return Err(Problem::invalid(
                "spec.clusterIPs[0]",
                go_strings(&cluster_ips(new)),
                "may not change once set",
            ));
        } else {
            default_families(new);
        }
    }
    carry_node_ports(old, new);
    let own: HashSet<i64> = ports(old)
        .filter_map(|p| p["nodePort"].as_i64())
        .filter(|n| *n != 0)
        .collect();
    allocate_node_ports(new, used, &own)
}

/// Values of `old`'s type that `new`'s type does not use, left unchanged by the client, are
/// dropped.
fn drop_type_dependent(old: &Value, new: &mut Value) {
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        let same = cluster_ip(old) == cluster_ip(new) && cluster_ips(old) == cluster_ips(new);
        let families = old.pointer("/spec/ipFamilies") == new.pointer("/spec/ipFamilies");
        let policy = old.pointer("/spec/ipFamilyPolicy") == new.pointer("/spec/ipFamilyPolicy");
        if let Some(spec) = spec_mut(new) {
            if same {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            if families {
                spec.remove("ipFamilies");
            }
            if policy {
                spec.remove("ipFamilyPolicy");
            }
        }
    }
    if needs_node_ports(old) && !needs_node_ports(new) {
        let node_ports =
            |s: &Value| -> Vec<Option<i64>> { ports(s).map(|p| p["nodePort"].as_i64()).collect() };
        if node_ports(old) == node_ports(new) {
            if let Some(list) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for p in list.iter_mut().filter_map(Value::as_object_mut) {
                    p.remove("nodePort");
                }
            }
        }
    }
}

/// A port a client sent without nodePort keeps the one its namesake in `old` had, unless
/// another port of `new` uses it.
fn carry_node_ports(old: &Value, new: &mut Value) {
    if !(needs_node_ports(old) && needs_node_ports(new)) {
        return;
    }
    let used_new: HashSet<i64> = ports(new).filter_map(|p| p["nodePort"].as_i64()).collect();
    let by_name: Vec<(String, i64)> = ports(old)
        .filter_map(|p| {
            let n = p["nodePort"].as_i64().filter(|n| *n != 0)?;
            Some((p["name"].as_str().unwrap_or("").to_owned(), n))
        })
        .collect();
    if let Some(list) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in list.iter_mut() {
            if p["nodePort"].as_i64().unwrap_or(0) != 0 {
                continue;
            }
            let name = p["name"].as_str().unwrap_or("").to_owned();
            let carried = by_name
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, port)| *port)
                .filter(|port| !used_new.contains(port));
            if let (Some(port), Some(map)) = (carried, p.as_object_mut()) {
                map.insert("nodePort".into(), json!(port));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn services() -> &'static ResourceDef {
        resources::lookup("", "v1", "services").unwrap()
    }

    fn svc(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn create(mut obj: Value, used: &InUse) -> Result<Value, Status> {
        allocate_create(services(), &mut obj, used).map(|()| obj)
    }

    fn message(status: &Status) -> String {
        status.message.clone()
    }

    fn ip_of(obj: &Value) -> Ipv4Addr {
        cluster_ip(obj).parse().unwrap()
    }

    #[test]
    fn a_service_gets_a_free_ip_in_range_with_single_stack_families() {
        let s = create(
            svc("web", json!({"ports": [{"port": 80}]})),
            &InUse::default(),
        )
        .unwrap();
        let ip = ip_of(&s);
        assert!(in_service_range(ip), "{ip}");
        assert_ne!(ip, KUBERNETES_SERVICE_IP);
        assert_eq!(s["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(s["spec"]["ipFamilyPolicy"], "SingleStack");
        assert!(s["spec"]["ports"][0].get("nodePort").is_none());
        // An empty string is the same as no ClusterIP.
        let s = create(svc("web", json!({"clusterIP": ""})), &InUse::default()).unwrap();
        assert!(in_service_range(ip_of(&s)));
    }

    #[test]
    fn allocations_never_collide_and_skip_the_reserved_addresses() {
        let mut used = InUse::default();
        for i in 0..2000 {
            let s = create(svc(&format!("s{i}"), json!({})), &used).unwrap();
            let ip = ip_of(&s);
            assert!(!used.ips.contains(&ip));
            assert_ne!(ip, KUBERNETES_SERVICE_IP);
            assert_ne!(ip, Ipv4Addr::new(10, 96, 0, 0));
            assert_ne!(ip, Ipv4Addr::new(10, 111, 255, 255));
            used.add(&s);
        }
        assert_eq!(used.ips.len(), 2000);
    }

    #[test]
    fn a_full_range_is_reported() {
        let mut used = InUse::default();
        let size = 1u32 << (32 - SERVICE_NET_BITS);
        used.ips = (2..size - 1)
            .map(|o| Ipv4Addr::from(SERVICE_NET + o))
            .collect();
        let err = create(svc("web", json!({})), &used).unwrap_err();
        assert!(message(&err).contains("range is full"), "{}", message(&err));
    }

    #[test]
    fn a_requested_ip_must_be_free_and_in_range() {
        let mut used = InUse::default();
        let s = create(svc("a", json!({"clusterIP": "10.96.5.5"})), &used).unwrap();
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.96.5.5"]));
        used.add(&s);
        let err = create(svc("b", json!({"clusterIP": "10.96.5.5"})), &used).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            message(&err),
            r#"Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.5.5"}: failed to allocate IP 10.96.5.5: provided IP is already allocated"#
        );
        let err = create(svc("c", json!({"clusterIP": "10.0.0.7"})), &used).unwrap_err();
        assert!(message(&err).contains("the provided IP (10.0.0.7) is not in the valid range. The range of valid IPs is 10.96.0.0/12"), "{}", message(&err));
        let err = create(svc("d", json!({"clusterIP": "nope"})), &used).unwrap_err();
        assert!(
            message(&err).contains(
                "spec.clusterIPs[0]: Invalid value: \"nope\": must be a valid IP address"
            ),
            "{}",
            message(&err)
        );
        // The kubernetes Service may take its reserved address when it asks for it.
        let k = create(svc("kubernetes", json!({"clusterIP": "10.96.0.1"})), &used).unwrap();
        assert_eq!(ip_of(&k), KUBERNETES_SERVICE_IP);
        // clusterIPs alone is a request too; both must agree.
        let s = create(svc("e", json!({"clusterIPs": ["10.96.7.7"]})), &used).unwrap();
        assert_eq!(s["spec"]["clusterIP"], "10.96.7.7");
        let err = create(
            svc(
                "f",
                json!({"clusterIP": "10.96.7.8", "clusterIPs": ["10.96.7.9"]}),
            ),
            &used,
        )
        .unwrap_err();
        assert!(message(&err).contains("first value must match `clusterIP`"));
    }

    #[test]
    fn headless_and_external_name_services_get_no_ip() {
        let s = create(svc("h", json!({"clusterIP": "None"})), &InUse::default()).unwrap();
        assert_eq!(s["spec"]["clusterIP"], "None");
        assert_eq!(s["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(s["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut used = InUse::default();
        used.add(&s);
        assert!(used.ips.is_empty());
        let e = create(
            svc(
                "x",
                json!({"type": "ExternalName", "externalName": "example.com"}),
            ),
            &InUse::default(),
        )
        .unwrap();
        assert!(e["spec"].get("clusterIP").is_none());
        assert!(e["spec"].get("clusterIPs").is_none());
        let err = create(
            svc(
                "x",
                json!({"type": "ExternalName", "clusterIP": "10.96.1.1"}),
            ),
            &InUse::default(),
        )
        .unwrap_err();
        assert!(message(&err).contains("may not be set for `ExternalName` services"));
        let err = create(
            svc("n", json!({"type": "NodePort", "clusterIP": "None"})),
            &InUse::default(),
        )
        .unwrap_err();
        assert!(message(&err).contains("may not be set to 'None' for NodePort services"));
    }

    #[test]
    fn node_ports_are_allocated_in_range_and_checked() {
        let spec = json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]});
        let mut used = InUse::default();
        let s = create(svc("np", spec.clone()), &used).unwrap();
        let a = s["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        let b = s["spec"]["ports"][1]["nodePort"].as_i64().unwrap();
        assert!((NODE_PORT_MIN..=NODE_PORT_MAX).contains(&a));
        assert!((NODE_PORT_MIN..=NODE_PORT_MAX).contains(&b));
        assert_ne!(a, b);
        used.add(&s);
        let err = create(
            svc(
                "other",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": a}]}),
            ),
            &used,
        )
        .unwrap_err();
        assert_eq!(
            message(&err),
            format!(
                r#"Service "other" is invalid: spec.ports[0].nodePort: Invalid value: {a}: provided port is already allocated"#
            )
        );
        let err = create(
            svc(
                "low",
                json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}),
            ),
            &used,
        )
        .unwrap_err();
        assert!(message(&err).contains(
            "provided port is not in the valid range. The range of valid ports is 30000-32767"
        ));
        let err = create(
            svc("cip", json!({"ports": [{"port": 80, "nodePort": 30001}]})),
            &used,
        )
        .unwrap_err();
        assert!(message(&err).contains(
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        ));
        // One number for TCP and UDP of the same Service is fine, twice the same protocol is not.
        let dual = json!({"type": "NodePort", "ports": [
            {"name": "t", "port": 53, "protocol": "TCP", "nodePort": 30053},
            {"name": "u", "port": 53, "protocol": "UDP", "nodePort": 30053}]});
        create(svc("dns", dual), &used).unwrap();
        let dup = json!({"type": "NodePort", "ports": [
            {"name": "a", "port": 1, "nodePort": 30054}, {"name": "b", "port": 2, "nodePort": 30054}]});
        assert!(message(&create(svc("dup", dup), &used).unwrap_err()).contains("Duplicate value"));
        // LoadBalancer gets node ports unless it opts out.
        let lb = create(
            svc(
                "lb",
                json!({"type": "LoadBalancer", "ports": [{"port": 80}]}),
            ),
            &used,
        )
        .unwrap();
        assert!(lb["spec"]["ports"][0]["nodePort"].as_i64().is_some());
        let lb = create(svc("lb2", json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]})), &used).unwrap();
        assert!(lb["spec"]["ports"][0].get("nodePort").is_none());
    }

    #[test]
    fn many_node_ports_never_collide() {
        let mut used = InUse::default();
        for i in 0..500 {
            let s = create(
                svc(
                    &format!("n{i}"),
                    json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}),
                ),
                &used,
            )
            .unwrap();
            for p in ports(&s) {
                assert!(!used.node_ports.contains(&p["nodePort"].as_i64().unwrap()));
            }
            used.add(&s);
        }
        assert_eq!(used.node_ports.len(), 1000);
    }

    fn update(old: &Value, mut new: Value, used: &InUse) -> Result<Value, Status> {
        allocate_update(services(), old, &mut new, used).map(|()| new)
    }

    #[test]
    fn the_cluster_ip_is_immutable_on_update() {
        let old = create(
            svc("web", json!({"ports": [{"port": 80}]})),
            &InUse::default(),
        )
        .unwrap();
        let ip = cluster_ip(&old).to_owned();
        // Unchanged, or left out: kept.
        let same = update(&old, old.clone(), &InUse::default()).unwrap();
        assert_eq!(cluster_ip(&same), ip);
        let cleared = update(
            &old,
            svc("web", json!({"clusterIP": "", "ports": [{"port": 80}]})),
            &InUse::default(),
        )
        .unwrap();
        assert_eq!(cluster_ip(&cleared), ip);
        assert_eq!(cleared["spec"]["clusterIPs"], json!([ip]));
        // Changed (a patch of clusterIP alone moves clusterIPs with it): refused.
        let mut changed = old.clone();
        changed["spec"]["clusterIP"] = json!("10.96.9.9");
        let err = update(&old, changed, &InUse::default()).unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(
            message(&err),
            r#"Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.9.9"}: may not change once set"#
        );
    }

    #[test]
    fn type_changes_allocate_and_drop() {
        let used = InUse::default();
        // ExternalName -> ClusterIP fills the empty IP.
        let ext = create(
            svc(
                "e",
                json!({"type": "ExternalName", "externalName": "a.example"}),
            ),
            &used,
        )
        .unwrap();
        let cip = update(
            &ext,
            svc("e", json!({"type": "ClusterIP", "ports": [{"port": 80}]})),
            &used,
        )
        .unwrap();
        assert!(in_service_range(ip_of(&cip)));
        // ClusterIP -> NodePort gets node ports and keeps its IP.
        let np = update(
            &cip,
            svc(
                "e",
                json!({"type": "NodePort", "clusterIP": cluster_ip(&cip), "ports": [{"port": 80}]}),
            ),
            &used,
        )
        .unwrap();
        assert_eq!(cluster_ip(&np), cluster_ip(&cip));
        let node_port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
        // A client that leaves the nodePort out keeps it (matched by port name).
        let again = update(
            &np,
            svc("e", json!({"type": "NodePort", "ports": [{"port": 80}]})),
            &used,
        )
        .unwrap();
        assert_eq!(again["spec"]["ports"][0]["nodePort"], node_port);
        // Its own port is not "already allocated" to itself.
        let mut others = InUse::default();
        others.add(&np);
        let kept = update(
            &np,
            np.clone(),
            &InUse::from_services([&np], Some(("default", "e"))),
        )
        .unwrap();
        assert_eq!(kept["spec"]["ports"][0]["nodePort"], node_port);
        // NodePort -> ClusterIP with the ports unchanged drops them.
        let mut back = np.clone();
        back["spec"]["type"] = json!("ClusterIP");
        let back = update(&np, back, &used).unwrap();
        assert!(back["spec"]["ports"][0].get("nodePort").is_none());
        // ClusterIP -> ExternalName with the IP unchanged releases it.
        let mut ext2 = back.clone();
        ext2["spec"]["type"] = json!("ExternalName");
        ext2["spec"]["externalName"] = json!("b.example");
        let ext2 = update(&back, ext2, &used).unwrap();
        assert!(ext2["spec"].get("clusterIP").is_none());
        assert!(ext2["spec"].get("ipFamilies").is_none());
    }

    #[test]
    fn in_use_skips_the_service_being_updated() {
        let a = svc(
            "a",
            json!({"clusterIP": "10.96.1.1", "clusterIPs": ["10.96.1.1"], "type": "NodePort", "ports": [{"nodePort": 30100}]}),
        );
        let b = svc("b", json!({"clusterIP": "None"}));
        let all = InUse::from_services([&a, &b], None);
        assert!(all.ips.contains(&Ipv4Addr::new(10, 96, 1, 1)));
        assert!(all.node_ports.contains(&30100));
        let except = InUse::from_services([&a, &b], Some(("default", "a")));
        assert_eq!(except, InUse::default());
    }
}
