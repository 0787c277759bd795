//! The system under test: one `kgate up --nodes N` with its built-in components (simulated
//! nodes, scheduler, controllers) in its own temporary directory, stopped when the [`Cluster`] is
//! dropped; and the wait until its N Nodes report Ready.

use anyhow::{bail, Context, Result};
use http::Method;
use kgate_loadtest::api::Api;
use kgate_loadtest::{start_kgate_up, tail, KgateUp};
use serde::Deserialize;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running `kgate up --nodes N`.
pub struct Cluster {
    pub up: KgateUp,
    /// When the process was started.
    pub started: Instant,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn api(&self) -> &Api {
        &self.up.api
    }

    pub fn pid(&self) -> u32 {
        self.up.proc.id()
    }

    /// The last lines of kgate's log, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.up.log)
    }
}

/// How to start each `kgate up`.
pub struct Setup<'a> {
    pub kgate: &'a Path,
    pub node_pods: u32,
    /// More `kgate up` flags, passed as they are.
    pub extra: &'a [String],
    pub work_dir: Option<&'a Path>,
    /// The longest wait for the ready line.
    pub timeout: Duration,
}

/// Starts `kgate up --nodes NODES --node-pods P` in a new directory and waits for its ready line
/// (which it prints once the Nodes are created and its components started).
pub async fn start(setup: &Setup<'_>, nodes: u32) -> Result<Cluster> {
    let builder = tempfile::Builder::new().prefix("clusterbench-").to_owned();
    let dir = match setup.work_dir {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .context("creating a work directory")?;
    let mut extra: Vec<OsString> = vec![
        "--nodes".into(),
        nodes.to_string().into(),
        "--node-pods".into(),
        setup.node_pods.to_string().into(),
    ];
    extra.extend(setup.extra.iter().map(OsString::from));
    let started = Instant::now();
    let up = start_kgate_up(setup.kgate, dir.path(), &extra, setup.timeout).await?;
    Ok(Cluster {
        up,
        started,
        _dir: dir,
    })
}

#[derive(Deserialize)]
struct NodeList {
    #[serde(default)]
    items: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Deserialize, Default)]
struct NodeStatus {
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

/// Nodes in a NodeList, and how many of them have the condition Ready=True.
fn count_ready(list: &[u8]) -> Result<(usize, usize)> {
    let list: NodeList = serde_json::from_slice(list).context("the node list is not JSON")?;
    let ready = list
        .items
        .iter()
        .filter(|n| {
            n.status
                .conditions
                .iter()
                .any(|c| c.kind == "Ready" && c.status == "True")
        })
        .count();
    Ok((list.items.len(), ready))
}

/// Polls `/api/v1/nodes` until at least `nodes` Nodes are Ready; fails clearly at `deadline`.
pub async fn wait_nodes_ready(cluster: &Cluster, nodes: u32, deadline: Instant) -> Result<()> {
    let want = usize::try_from(nodes)?;
    let mut conn = cluster.api().connect().await?;
    let mut last_report = Instant::now();
    loop {
        let body = conn.expect(Method::GET, "/api/v1/nodes", None).await?;
        let (total, ready) = count_ready(&body)?;
        if ready >= want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out waiting for {want} Ready nodes: {total} Nodes exist, {ready} of them \
                 Ready (are the simulated nodes of `kgate up --nodes` running?); kgate's log \
                 ends with:\n{}",
                cluster.log_tail()
            );
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!("  {total} Nodes, {ready} Ready (waiting for {want})");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Creates the namespace the pods go to, in the new kgate (kgate's ServiceAccount controller
/// gives it its `default` ServiceAccount).
pub async fn create_namespace(api: &Api, namespace: &str) -> Result<()> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{namespace}"}}}}"#);
    let mut conn = api.connect().await?;
    conn.expect(Method::POST, "/api/v1/namespaces", Some(body.into()))
        .await
        .with_context(|| format!("creating the namespace {namespace}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_nodes_are_counted_by_their_condition() -> Result<()> {
        let list = br#"{"kind":"NodeList","items":[
            {"metadata":{"name":"a"},"status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}]}},
            {"metadata":{"name":"b"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
            {"metadata":{"name":"c"}}
        ]}"#;
        assert_eq!(count_ready(list)?, (3, 1));
        assert_eq!(count_ready(br#"{"items":[]}"#)?, (0, 0));
        assert!(count_ready(b"nope").is_err());
        Ok(())
    }
}
