//! The cluster's own components in `kgate up` (see `kgate_cluster`): the simulated nodes, the
//! scheduler and the controllers, started once the gateway serves, as clients of the API through
//! the gateway's pipeline like any other client (in process, without a socket: see
//! [`crate::loopback`]).
//!
//! Each component has its own identity, a client certificate from kgate's CA, so RBAC holds it
//! to what Kubernetes gives its counterpart: the scheduler is `system:kube-scheduler` (bound by
//! the bootstrap policy); the controllers are `system:kube-controller-manager` holding, through
//! `kgate:controller:*` bindings made here, the bootstrap `system:controller:*` roles of the
//! controllers it runs (what kube-controller-manager gets per controller with
//! `--use-service-account-credentials`); the simulated nodes are `system:node:kgate-nodes` in
//! group `system:nodes`, bound by name (not by group) to `kgate:simulated-node`, a role made
//! here with what a simulated node does and nothing else, and to `kgate:simulated-node-lease`
//! in `kube-node-lease`. Kubernetes gives nodes their rights through its Node authorizer, which
//! limits each to its own Node, pods and their secrets; kgate has none, and the bootstrap
//! `system:node` role (every secret, configmap and volume) bound to the whole group would let any
//! certificate in `system:nodes` read every secret.
//!
//! `--nodes N` creates N simulated Nodes at first start (more can be added later with
//! `kgate node add`); `--controllers` picks the components, as kube-controller-manager's flag:
//! a comma-separated list of names, `*` for every one, `-NAME` to leave one out, empty for none.

use clap::Args;
use kgate_cluster::nodes::{NodeSpec, SIMULATED_LABEL};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tokio::task::JoinHandle;

use crate::config::ConfigError;

/// The components `--controllers` can name, in start order.
pub const COMPONENTS: &[&str] = &[
    "nodes",
    "scheduler",
    "replicaset",
    "deployment",
    "endpoints",
    "garbagecollector",
    "nodelifecycle",
];

/// `kgate up`'s cluster flags.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Simulated nodes to create at first start (`kgate-node-1` .. `N`). They run no containers:
    /// pods bound to them are reported Running with an IP, and the Nodes carry the label
    /// `kgate.io/simulated=true`.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    #[command(flatten)]
    pub node_resources: NodeResources,
    /// The components to run: names from nodes, scheduler, replicaset, deployment, endpoints,
    /// garbagecollector, nodelifecycle; `*` for all; `-NAME` to leave one out; empty for none.
    #[arg(long, default_value = "*")]
    pub controllers: String,
    /// How long a node's Lease may go unrenewed before the node is NotReady and its pods are
    /// evicted (kube-controller-manager's flag; a number with s, m or h).
    #[arg(long, default_value = "40s")]
    pub node_monitor_grace_period: String,
    /// Where the simulated nodes write the ServiceAccount token files their pods' volumes project
    /// (`<dir>/<node>/pods/<namespace>_<pod>_<uid>/token`); `DATA_DIR/nodes` by default. Kubelet
    /// keeps such volumes on tmpfs: a folder under /dev/shm does the same here.
    #[arg(long, value_name = "DIR")]
    pub node_state_dir: Option<std::path::PathBuf>,
}

/// The cluster flags after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) components: BTreeSet<&'static str>,
    pub(crate) node_monitor_grace_period: std::time::Duration,
    /// `None`: `DATA_DIR/nodes`.
    pub(crate) node_state_dir: Option<std::path::PathBuf>,
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.into(),
    }
}

/// What each simulated node offers (`kgate up` and `kgate nodes`).
#[derive(Debug, Clone, Args)]
pub struct NodeResources {
    /// Allocatable CPU of each simulated node (cores, or millicores with `m`).
    #[arg(long, default_value = "4")]
    pub node_cpu: String,
    /// Allocatable memory of each simulated node (bytes, or with Ki/Mi/Gi/Ti or k/M/G/T).
    #[arg(long, default_value = "8Gi")]
    pub node_memory: String,
    /// Allocatable pod count of each simulated node.
    #[arg(long, default_value_t = 110)]
    pub node_pods: u32,
}

impl NodeResources {
    /// (CPU millicores, memory bytes, pods), or the flag at fault and why.
    pub(crate) fn parse(&self) -> Result<(u64, u64, u32), (&'static str, String)> {
        let cpu_millis = parse_cpu(&self.node_cpu).map_err(|r| ("node-cpu", r))?;
        let memory_bytes = parse_memory(&self.node_memory).map_err(|r| ("node-memory", r))?;
        if self.node_pods == 0 {
            return Err(("node-pods", "must be at least 1".to_owned()));
        }
        Ok((cpu_millis, memory_bytes, self.node_pods))
    }
}

impl ClusterArgs {
    pub fn validate(self) -> Result<ClusterSettings, ConfigError> {
        let (cpu_millis, memory_bytes, pods) = self
            .node_resources
            .parse()
            .map_err(|(flag, reason)| invalid(flag, reason))?;
        if self.nodes > 5000 {
            return Err(invalid("nodes", "must be at most 5000"));
        }
        let labels = BTreeMap::from([(SIMULATED_LABEL.to_owned(), "true".to_owned())]);
        let nodes = (1..=self.nodes)
            .map(|i| NodeSpec {
                name: format!("kgate-node-{i}"),
                cpu_millis,
                memory_bytes,
                pods,
                labels: labels.clone(),
            })
            .collect();
        let grace = crate::args::parse_duration(&self.node_monitor_grace_period)
            .map_err(|r| invalid("node-monitor-grace-period", r))?;
        let node_monitor_grace_period = std::time::Duration::try_from(grace)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| invalid("node-monitor-grace-period", "must be positive"))?;
        Ok(ClusterSettings {
            node_monitor_grace_period,
            node_state_dir: self.node_state_dir,
            nodes,
            components: parse_components(&self.controllers)
                .map_err(|r| invalid("controllers", r))?,
        })
    }
}

/// `*`, names and `-names`, comma-separated, as kube-controller-manager's `--controllers`.
fn parse_components(text: &str) -> Result<BTreeSet<&'static str>, String> {
    let mut all = false;
    let mut on = BTreeSet::new();
    let mut off = BTreeSet::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item == "*" {
            all = true;
            continue;
        }
        let (set, name) = match item.strip_prefix('-') {
            Some(name) => (&mut off, name),
            None => (&mut on, item),
        };
        let known = COMPONENTS.iter().find(|c| **c == name).ok_or_else(|| {
            format!(
                "unknown component {name:?} (known: {})",
                COMPONENTS.join(", ")
            )
        })?;
        set.insert(*known);
    }
    let mut chosen: BTreeSet<&'static str> = if all {
        COMPONENTS.iter().copied().collect()
    } else {
        on
    };
    chosen.retain(|c| !off.contains(c));
    Ok(chosen)
}

/// CPU as Kubernetes quantities: `4`, `0.5`, `500m`.
pub fn parse_cpu(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a CPU quantity (e.g. 4, 0.5, 500m)");
    if let Some(millis) = text.strip_suffix('m') {
        return millis.parse::<u64>().map_err(|_| bad());
    }
    let cores: f64 = text.parse().map_err(|_| bad())?;
    if !cores.is_finite() || cores <= 0.0 || cores > 1e6 {
        return Err(bad());
    }
    Ok((cores * 1000.0).round() as u64)
}

/// Memory as Kubernetes quantities: bytes, or with a binary (Ki..Ti) or decimal (k..T) suffix.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a memory quantity (e.g. 8Gi, 512Mi, 1G)");
    const SUFFIXES: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| text.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((text, 1));
    let value: u64 = number.parse().map_err(|_| bad())?;
    let bytes = value.checked_mul(factor).ok_or_else(bad)?;
    if bytes == 0 {
        return Err(bad());
    }
    Ok(bytes)
}

/// A kube client with the identity of the kubeconfig at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    client_from(kubeconfig).await
}

async fn client_from(kubeconfig: kube::config::Kubeconfig) -> Result<kube::Client, String> {
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// The scheduler's user, bound to `system:kube-scheduler` by the bootstrap policy.
const SCHEDULER_USER: &str = "system:kube-scheduler";
/// The controllers' user.
const CONTROLLERS_USER: &str = "system:kube-controller-manager";
/// The simulated nodes' user and group.
const NODES_USER: &str = "system:node:kgate-nodes";
const NODES_GROUP: &str = "system:nodes";

/// The bootstrap roles each controller component needs (Kubernetes' per-controller roles).
fn controller_roles(component: &str) -> &'static [&'static str] {
    match component {
        "replicaset" => &["system:controller:replicaset-controller"],
        "deployment" => &["system:controller:deployment-controller"],
        "endpoints" => &[
            "system:controller:endpoint-controller",
            "system:controller:endpointslice-controller",
        ],
        "garbagecollector" => &["system:controller:generic-garbage-collector"],
        "nodelifecycle" => &["system:controller:node-controller"],
        _ => &[],
    }
}

/// Makes the components' clients: certificates from the CA for their users, presented to the
/// pipeline in process.
pub(crate) struct Identities {
    ca: kgate_gateway::pki::CertificateAuthority,
    pipeline: std::sync::Weak<crate::wiring::PipelineService>,
}

impl Identities {
    pub(crate) fn new(
        ca: kgate_gateway::pki::CertificateAuthority,
        pipeline: std::sync::Weak<crate::wiring::PipelineService>,
    ) -> Self {
        Self { ca, pipeline }
    }

    fn client(&self, user: &str, groups: &[&str]) -> Result<kube::Client, String> {
        // In memory only, re-issued at every start: a year is beyond any process lifetime.
        let validity = kgate_gateway::pki::Validity::from_now(time::Duration::days(365));
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let cert = self
            .ca
            .issue_client_cert(user, &groups, validity)
            .map_err(|e| kgate_gateway::error::error_chain(&e))?;
        Ok(crate::loopback::client(
            self.pipeline.clone(),
            cert.cert_der,
        ))
    }
}

/// The simulated nodes' role: their Nodes and statuses, the pods bound to them (read, status,
/// the deletion that ends a graceful one), tokens for their pods' ServiceAccounts, and the
/// lease namespace. Leases are granted in `kube-node-lease` only ([`NODE_LEASE_RULES`]), so a
/// node cannot take the controllers' or the scheduler's leader leases.
const NODE_ROLE: &str = "kgate:simulated-node";
const NODE_LEASE_ROLE: &str = "kgate:simulated-node-lease";
/// The binding that gave the whole group `system:node` before; removed at start.
const OLD_NODES_BINDING: &str = "kgate:simulated-nodes";

fn node_rules() -> serde_json::Value {
    serde_json::json!([
        {"apiGroups": [""], "resources": ["nodes"],
         "verbs": ["get", "list", "watch", "create", "update", "patch"]},
        {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["get", "update", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["get", "update", "patch"]},
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create"]},
    ])
}

/// What [`NODE_LEASE_ROLE`] grants, in `kube-node-lease`.
const NODE_LEASE_RULES: &str = r#"[{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
    "verbs": ["get", "list", "watch", "create", "update", "patch"]}]"#;

/// The API of an rbac.authorization.k8s.io/v1 `kind` (in `namespace` if given).
fn rbac_api(
    admin: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
) -> kube::Api<kube::api::DynamicObject> {
    let resource = kube::discovery::ApiResource {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_ascii_lowercase()),
    };
    match namespace {
        Some(ns) => kube::Api::namespaced_with(admin.clone(), ns, &resource),
        None => kube::Api::all_with(admin.clone(), &resource),
    }
}

/// Creates an RBAC object (`kind` of rbac.authorization.k8s.io/v1, in `namespace` if given)
/// unless one of its name exists.
async fn ensure_rbac_object(
    admin: &kube::Client,
    kind: &str,
    namespace: Option<&str>,
    object: serde_json::Value,
) -> Result<(), String> {
    use kube::api::{DynamicObject, PostParams};
    let api = rbac_api(admin, kind, namespace);
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let object: DynamicObject = serde_json::from_value(object).map_err(|e| e.to_string())?;
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(format!("cannot create the {kind} {name}: {e}")),
    }
}

/// The simulated nodes' roles and bindings ([`NODE_ROLE`]); removes the group binding of
/// earlier versions.
async fn ensure_node_rights(admin: &kube::Client) -> Result<(), String> {
    use kube::api::DeleteParams;
    let labels = serde_json::json!({"kubernetes.io/bootstrapping": "kgate"});
    let rbac = "rbac.authorization.k8s.io";
    let subject = serde_json::json!([{"apiGroup": rbac, "kind": "User", "name": NODES_USER}]);
    let cluster_role = |name: &str, rules: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels}, "rules": rules,
        })
    };
    ensure_rbac_object(
        admin,
        "ClusterRole",
        None,
        cluster_role(NODE_ROLE, node_rules()),
    )
    .await?;
    ensure_binding(admin, NODE_ROLE, NODE_ROLE, "User", NODES_USER).await?;
    let lease_rules: serde_json::Value =
        serde_json::from_str(NODE_LEASE_RULES).map_err(|e| e.to_string())?;
    let lease_role = cluster_role(NODE_LEASE_ROLE, lease_rules);
    ensure_rbac_object(admin, "ClusterRole", None, lease_role).await?;
    ensure_namespace(admin, kgate_cluster::nodes::LEASE_NAMESPACE).await?;
    ensure_rbac_object(
        admin,
        "RoleBinding",
        Some(kgate_cluster::nodes::LEASE_NAMESPACE),
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": NODE_LEASE_ROLE, "labels": labels},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": NODE_LEASE_ROLE},
            "subjects": subject,
        }),
    )
    .await?;
    match rbac_api(admin, "ClusterRoleBinding", None)
        .delete(OLD_NODES_BINDING, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(format!(
            "cannot remove the ClusterRoleBinding {OLD_NODES_BINDING}: {e}"
        )),
    }
}

/// Binds `role` to `subject` (a User or Group) unless a binding of that name exists.
async fn ensure_binding(
    admin: &kube::Client,
    name: &str,
    role: &str,
    subject_kind: &str,
    subject: &str,
) -> Result<(), String> {
    let rbac = "rbac.authorization.k8s.io";
    ensure_rbac_object(
        admin,
        "ClusterRoleBinding",
        None,
        serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "kgate"}},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": rbac, "kind": subject_kind, "name": subject}],
        }),
    )
    .await
}

/// Creates a namespace unless it exists (kube-apiserver makes kube-node-lease itself).
async fn ensure_namespace(admin: &kube::Client, name: &str) -> Result<(), String> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let api: Api<Namespace> = Api::all(admin.clone());
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .map_err(|e| e.to_string())?;
    match api.create(&PostParams::default(), &namespace).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(e) => Err(format!("cannot create the namespace {name}: {e}")),
    }
}

/// The ConfigMap kube-apiserver keeps for the servers of components and extensions: the CA of
/// the client certificates it accepts, so that kube-scheduler or kube-controller-manager (or an
/// aggregated server) can authenticate the same certificates on their own ports; without it
/// they log an error every few seconds. kgate writes `client-ca-file` only: its
/// `--requestheader-client-ca-file` trusts a proxy in front of kgate, which is no reason for
/// others to trust that proxy's headers.
pub const AUTHENTICATION_INFO: (&str, &str) = ("kube-system", "extension-apiserver-authentication");

/// Creates or updates [`AUTHENTICATION_INFO`] with `client_ca_pem`.
pub(crate) async fn publish_authentication_info(
    admin: &kube::Client,
    client_ca_pem: &str,
) -> Result<(), String> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    let (namespace, name) = AUTHENTICATION_INFO;
    let api: Api<ConfigMap> = Api::namespaced(admin.clone(), namespace);
    let data = BTreeMap::from([("client-ca-file".to_owned(), client_ca_pem.to_owned())]);
    let failed = |e: kube::Error| format!("cannot publish the ConfigMap {namespace}/{name}: {e}");
    match api.get_opt(name).await.map_err(failed)? {
        Some(current) if current.data.as_ref() == Some(&data) => Ok(()),
        Some(mut current) => {
            current.data = Some(data);
            api.replace(name, &PostParams::default(), &current)
                .await
                .map(drop)
                .map_err(failed)
        }
        None => {
            let map = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &map).await {
                Ok(_) => Ok(()),
                // Another writer at the same moment: its content is the same CA.
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
                Err(e) => Err(failed(e)),
            }
        }
    }
}

/// Creates the configured Nodes and starts the chosen components, each with its own identity;
/// `admin` makes the bindings and namespaces they need first.
pub(crate) async fn start(
    settings: &ClusterSettings,
    data_dir: &Path,
    admin: &kube::Client,
    identities: &Identities,
) -> Result<Vec<JoinHandle<()>>, String> {
    use kgate_cluster::controllers::shared_pods::SharedPods;
    use kgate_cluster::{controllers, nodes, scheduler};
    let chosen: Vec<&'static str> = COMPONENTS
        .iter()
        .copied()
        .filter(|c| settings.components.contains(c))
        .collect();
    for component in &chosen {
        for role in controller_roles(component) {
            let name = format!(
                "kgate:controller:{}",
                role.trim_start_matches("system:controller:")
            );
            ensure_binding(admin, &name, role, "User", CONTROLLERS_USER).await?;
        }
    }
    if settings.components.contains("nodes") {
        ensure_node_rights(admin).await?;
    }
    let mut tasks = Vec::new();
    // One pod watch and cache for the controllers that follow pods, as kube-controller-manager
    // shares one pod informer; made with the first of them, started once all have subscribed.
    let mut shared_pods: Option<SharedPods> = None;
    for component in &chosen {
        let client = match *component {
            "nodes" => identities.client(NODES_USER, &[NODES_GROUP])?,
            "scheduler" => identities.client(SCHEDULER_USER, &[])?,
            _ => identities.client(CONTROLLERS_USER, &[])?,
        };
        let task = match *component {
            "nodes" => {
                nodes::ensure_nodes(admin, &settings.nodes)
                    .await
                    .map_err(|e| format!("cannot create the simulated nodes: {e}"))?;
                nodes::spawn_manager(
                    client,
                    nodes::NodeManagerOptions {
                        // Where the nodes "mount" their pods' projected ServiceAccount tokens.
                        state_dir: Some(
                            settings
                                .node_state_dir
                                .clone()
                                .unwrap_or_else(|| data_dir.join("nodes")),
                        ),
                        // kgate up owns its cluster: every simulated Node is its own.
                        group: None,
                    },
                )
            }
            "scheduler" => scheduler::spawn(client),
            "replicaset" => {
                let pods = shared_pods.get_or_insert_with(|| SharedPods::new(client.clone()));
                controllers::replicaset::spawn_with_pods(client, pods.store(), pods.subscribe())
            }
            "deployment" => controllers::deployment::spawn(client),
            "endpoints" => {
                let pods = shared_pods.get_or_insert_with(|| SharedPods::new(client.clone()));
                controllers::endpoints::spawn_with_pods(client, pods.store(), pods.subscribe())
            }
            "garbagecollector" => controllers::gc::spawn(client),
            "nodelifecycle" => {
                let pods = shared_pods.get_or_insert_with(|| SharedPods::new(client.clone()));
                let grace = settings.node_monitor_grace_period;
                controllers::node_lifecycle::spawn_with_pods(client, pods.store(), grace)
            }
            _ => continue,
        };
        tracing::info!(component, "cluster component started");
        tasks.push(task);
    }
    if let Some(pods) = shared_pods {
        // Started after every consumer subscribed, so none misses the initial list.
        tasks.push(pods.start());
    }
    Ok(tasks)
}

#[cfg(test)]
// Tests may unwrap: a panic there is a failing test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn components_follow_kube_controller_managers_flag() {
        assert_eq!(parse_components("*").unwrap().len(), COMPONENTS.len());
        assert!(parse_components("").unwrap().is_empty());
        let some = parse_components("*,-nodes,-scheduler").unwrap();
        assert!(!some.contains("nodes") && some.contains("replicaset"));
        assert_eq!(
            parse_components("scheduler").unwrap(),
            BTreeSet::from(["scheduler"])
        );
        assert!(parse_components("kubelet")
            .unwrap_err()
            .contains("unknown component \"kubelet\""));
    }

    #[test]
    fn quantities_parse_as_kubernetes_writes_them() {
        assert_eq!(parse_cpu("4").unwrap(), 4000);
        assert_eq!(parse_cpu("0.5").unwrap(), 500);
        assert_eq!(parse_cpu("250m").unwrap(), 250);
        assert!(parse_cpu("four").is_err() && parse_cpu("-1").is_err());
        assert_eq!(parse_memory("8Gi").unwrap(), 8 << 30);
        assert_eq!(parse_memory("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_memory("1024").unwrap(), 1024);
        assert!(parse_memory("8GB").is_err() && parse_memory("0").is_err());
    }

    #[test]
    fn nodes_are_named_and_labelled_simulated() {
        let settings = ClusterArgs {
            nodes: 2,
            node_resources: NodeResources {
                node_cpu: "2".into(),
                node_memory: "4Gi".into(),
                node_pods: 10,
            },
            controllers: "*".into(),
            node_monitor_grace_period: "40s".into(),
            node_state_dir: None,
        }
        .validate()
        .unwrap();
        let names: Vec<_> = settings.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["kgate-node-1", "kgate-node-2"]);
        assert_eq!(settings.nodes[0].labels[SIMULATED_LABEL], "true");
        assert_eq!(settings.nodes[1].cpu_millis, 2000);
    }
}
