//! `kgate node`: list the cluster's Nodes, add a simulated one, stop or start a simulated node's
//! agent. It is a client of a running kgate through a kubeconfig (default the data directory's
//! admin kubeconfig); the running kgate's node manager (`kgate_cluster::nodes`) does the rest:
//! it picks up an added Node and pauses or resumes an agent when the annotation
//! [`AGENT_STOPPED_ANNOTATION`] is set or removed.
//!
//! Errors are one line each, for the terminal (the binary exits 1).

use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{Node, Taint};
use kgate_cluster::nodes::{
    self, is_simulated, is_stopped, NodeSpec, AGENT_STOPPED_ANNOTATION, SIMULATED_LABEL,
};
use kube::api::{Api, ListParams, Patch, PatchParams};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use thiserror::Error;

use crate::cluster::{client_from_kubeconfig, parse_cpu, parse_memory};

/// `kgate node`.
#[derive(Debug, Clone, Args)]
pub struct NodeOptions {
    #[command(subcommand)]
    pub command: NodeCommand,
    /// The kubeconfig of the cluster (default: DATA_DIR/admin.kubeconfig).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The data directory of the running kgate, whose admin kubeconfig is used.
    #[arg(long, global = true, default_value = "./.kgate")]
    pub data_dir: PathBuf,
}

/// The `kgate node` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum NodeCommand {
    /// List the Nodes: readiness, agent state (simulated nodes), resources, addresses.
    List,
    /// Add a simulated Node; the running kgate starts its agent.
    Add(NodeAddArgs),
    /// Stop a simulated node's agent: no more Lease renewals or pod updates, so the node
    /// turns NotReady after the node monitor grace period.
    Stop {
        /// The Node's name.
        name: String,
    },
    /// Start a stopped simulated node's agent again.
    Start {
        /// The Node's name.
        name: String,
    },
}

/// `kgate node add`.
#[derive(Debug, Clone, Args)]
pub struct NodeAddArgs {
    /// The Node's name.
    pub name: String,
    /// Allocatable CPU (cores, or millicores with `m`).
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Allocatable memory (bytes, or with Ki/Mi/Gi/Ti or k/M/G/T).
    #[arg(long, default_value = "8Gi")]
    pub memory: String,
    /// Allocatable pod count.
    #[arg(long, default_value_t = 110)]
    pub pods: u32,
    /// A label KEY=VALUE; repeat for several.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// A taint KEY[=VALUE]:EFFECT (NoSchedule, PreferNoSchedule or NoExecute); repeat for
    /// several.
    #[arg(long = "taint", value_name = "KEY[=VALUE]:EFFECT")]
    pub taints: Vec<String>,
}

/// Why a `kgate node` command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeCliError {
    /// An argument or flag is malformed.
    #[error("{what}: {reason}")]
    Argument { what: &'static str, reason: String },
    /// The kubeconfig cannot be read or used.
    #[error("cannot use the kubeconfig {}: {reason}", path.display())]
    Kubeconfig { path: PathBuf, reason: String },
    /// No Node has that name.
    #[error("node {0:?} not found")]
    NotFound(String),
    /// The Node is not simulated: there is no kgate agent to stop or start.
    #[error("node {0:?} is not a simulated node (it has no label {SIMULATED_LABEL}=true), so kgate runs no agent for it")]
    NotSimulated(String),
    /// A Node with that name exists already.
    #[error("node {0:?} already exists")]
    AlreadyExists(String),
    /// The API refused the request or could not be reached.
    #[error("cannot {action}: {reason}")]
    Api { action: String, reason: String },
}

/// A one-line reason from a kube error: the API's message, or the error and its causes.
fn reason_of(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        return status.message.clone();
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> NodeCliError {
    let action = action.into();
    move |error| NodeCliError::Api {
        action,
        reason: reason_of(&error),
    }
}

/// Runs a `kgate node` command, writing its output to `out`.
pub async fn run(options: NodeOptions, out: &mut dyn Write) -> Result<(), NodeCliError> {
    // Arguments are checked before any connection, so a typo fails fast.
    let add = match &options.command {
        NodeCommand::Add(args) => Some(parse_add(args)?),
        _ => None,
    };
    let path = options
        .kubeconfig
        .clone()
        .unwrap_or_else(|| options.data_dir.join("admin.kubeconfig"));
    let client =
        client_from_kubeconfig(&path)
            .await
            .map_err(|reason| NodeCliError::Kubeconfig {
                path: path.clone(),
                reason,
            })?;
    let api: Api<Node> = Api::all(client.clone());
    let written = match options.command {
        NodeCommand::List => {
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(api_error("list the nodes"))?;
            out.write_all(table(&list.items).as_bytes())
        }
        NodeCommand::Add(_) => {
            let Some((spec, taints)) = add else {
                return Ok(());
            };
            match nodes::create_node(&client, &spec, &taints).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    return Err(NodeCliError::AlreadyExists(spec.name));
                }
                Err(error) => return Err(api_error(format!("create node {:?}", spec.name))(error)),
            }
            writeln!(
                out,
                "node/{} created (simulated: cpu {}, memory {}, pods {})",
                spec.name,
                nodes::status::cpu_quantity(spec.cpu_millis),
                nodes::status::memory_quantity(spec.memory_bytes),
                spec.pods
            )
        }
        NodeCommand::Stop { name } => {
            set_stopped(&api, &name, true).await?;
            writeln!(
                out,
                "node/{name} agent stopped (no Lease renewals or pod updates until `kgate node start {name}`)"
            )
        }
        NodeCommand::Start { name } => {
            set_stopped(&api, &name, false).await?;
            writeln!(out, "node/{name} agent started")
        }
    };
    written.map_err(|e| NodeCliError::Argument {
        what: "output",
        reason: e.to_string(),
    })
}

/// Sets or removes the agent-stopped annotation of a simulated Node.
async fn set_stopped(api: &Api<Node>, name: &str, stopped: bool) -> Result<(), NodeCliError> {
    let node = api
        .get_opt(name)
        .await
        .map_err(api_error(format!("read node {name:?}")))?
        .ok_or_else(|| NodeCliError::NotFound(name.to_owned()))?;
    if !is_simulated(&node) {
        return Err(NodeCliError::NotSimulated(name.to_owned()));
    }
    let value = if stopped {
        serde_json::Value::String("true".into())
    } else {
        serde_json::Value::Null
    };
    let patch = serde_json::json!({"metadata": {"annotations": {AGENT_STOPPED_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(api_error(format!("update node {name:?}")))?;
    Ok(())
}

/// The NodeSpec and taints of `kgate node add`.
fn parse_add(args: &NodeAddArgs) -> Result<(NodeSpec, Vec<Taint>), NodeCliError> {
    let argument = |what, reason: String| NodeCliError::Argument { what, reason };
    if !is_dns_subdomain(&args.name) {
        return Err(argument(
            "NAME",
            format!(
                "{:?} is not a valid node name (lowercase letters, digits, '-' and '.')",
                args.name
            ),
        ));
    }
    let cpu_millis = parse_cpu(&args.cpu).map_err(|r| argument("--cpu", r))?;
    if cpu_millis == 0 {
        return Err(argument("--cpu", "must be positive".into()));
    }
    let memory_bytes = parse_memory(&args.memory).map_err(|r| argument("--memory", r))?;
    if args.pods == 0 {
        return Err(argument("--pods", "must be at least 1".into()));
    }
    let mut labels = BTreeMap::new();
    for label in &args.labels {
        let (key, value) = label
            .split_once('=')
            .filter(|(k, _)| !k.trim().is_empty())
            .ok_or_else(|| argument("--label", format!("{label:?} is not KEY=VALUE")))?;
        labels.insert(key.trim().to_owned(), value.trim().to_owned());
    }
    labels.insert(SIMULATED_LABEL.to_owned(), "true".to_owned());
    let taints = args
        .taints
        .iter()
        .map(|t| parse_taint(t).map_err(|r| argument("--taint", r)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        NodeSpec {
            name: args.name.clone(),
            cpu_millis,
            memory_bytes,
            pods: args.pods,
            labels,
        },
        taints,
    ))
}

/// `KEY[=VALUE]:EFFECT`, as `kubectl taint` writes taints.
fn parse_taint(text: &str) -> Result<Taint, String> {
    let bad = |why: &str| format!("{text:?} is not KEY[=VALUE]:EFFECT ({why})");
    let (key_value, effect) = text.rsplit_once(':').ok_or_else(|| bad("no effect"))?;
    if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
        return Err(bad(
            "the effect is NoSchedule, PreferNoSchedule or NoExecute",
        ));
    }
    let (key, value) = match key_value.split_once('=') {
        Some((key, value)) => (key, Some(value.to_owned())),
        None => (key_value, None),
    };
    if key.is_empty() {
        return Err(bad("no key"));
    }
    Ok(Taint {
        key: key.to_owned(),
        value,
        effect: effect.to_owned(),
        ..Taint::default()
    })
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// The Ready column, as kubectl shows it.
fn readiness(node: &Node) -> String {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.as_str());
    let mut text = match ready {
        Some("True") => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }
    .to_owned();
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        text.push_str(",SchedulingDisabled");
    }
    text
}

/// The `kgate node list` table.
fn table(nodes: &[Node]) -> String {
    let mut rows = vec![[
        "NAME",
        "STATUS",
        "AGENT",
        "CPU",
        "MEMORY",
        "PODS",
        "POD-CIDR",
        "INTERNAL-IP",
    ]
    .map(str::to_owned)];
    for node in nodes {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        let resource = |key: &str| {
            allocatable
                .and_then(|a| a.get(key))
                .map_or_else(|| "-".to_owned(), |q| q.0.clone())
        };
        let agent = match (is_simulated(node), is_stopped(node)) {
            (false, _) => "-",
            (true, false) => "running",
            (true, true) => "stopped",
        };
        rows.push([
            node.metadata.name.clone().unwrap_or_default(),
            readiness(node),
            agent.to_owned(),
            resource("cpu"),
            resource("memory"),
            resource("pods"),
            node.spec
                .as_ref()
                .and_then(|s| s.pod_cidr.clone())
                .unwrap_or_else(|| "-".to_owned()),
            nodes::status::reported_internal_ip(node)
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(line.join("   ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
// Tests may unwrap: a panic there is a failing test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn add_args(name: &str) -> NodeAddArgs {
        NodeAddArgs {
            name: name.into(),
            cpu: "2".into(),
            memory: "4Gi".into(),
            pods: 10,
            labels: vec!["zone=a".into()],
            taints: vec!["gpu=true:NoSchedule".into(), "spot:PreferNoSchedule".into()],
        }
    }

    #[test]
    fn add_arguments_become_a_simulated_node_spec() {
        let (spec, taints) = parse_add(&add_args("extra-1")).unwrap();
        assert_eq!(spec.name, "extra-1");
        assert_eq!(spec.cpu_millis, 2000);
        assert_eq!(spec.memory_bytes, 4 << 30);
        assert_eq!(spec.labels["zone"], "a");
        assert_eq!(spec.labels[SIMULATED_LABEL], "true");
        assert_eq!(taints[0].key, "gpu");
        assert_eq!(taints[0].value.as_deref(), Some("true"));
        assert_eq!(taints[1].value, None);
        assert_eq!(taints[1].effect, "PreferNoSchedule");
    }

    #[test]
    fn bad_add_arguments_are_refused_with_one_line() {
        let refuse = |args: NodeAddArgs| parse_add(&args).unwrap_err().to_string();
        assert!(refuse(add_args("Bad_Name")).contains("not a valid node name"));
        let mut args = add_args("n");
        args.cpu = "lots".into();
        assert!(refuse(args).starts_with("--cpu: "));
        let mut args = add_args("n");
        args.labels = vec!["novalue".into()];
        assert!(refuse(args).contains("is not KEY=VALUE"));
        let mut args = add_args("n");
        args.taints = vec!["k=v:Sometimes".into()];
        assert!(refuse(args).contains("NoSchedule, PreferNoSchedule or NoExecute"));
        let mut args = add_args("n");
        args.pods = 0;
        assert_eq!(refuse(args), "--pods: must be at least 1");
    }

    #[test]
    fn the_table_shows_readiness_and_agent_state() {
        let (spec, _) = parse_add(&add_args("n1")).unwrap();
        let mut node = nodes::status::new_node(&spec, &[]);
        node.metadata.annotations = Some(BTreeMap::from([(
            AGENT_STOPPED_ANNOTATION.to_owned(),
            "true".to_owned(),
        )]));
        let mut plain = Node::default();
        plain.metadata.name = Some("real".into());
        let text = table(&[node, plain]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cells[..6], ["n1", "Unknown", "stopped", "2", "4Gi", "10"]);
        let cells: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cells[..3], ["real", "Unknown", "-"]);
    }
}
