//! The cluster benchmark (`kgate-clusterbench`): how fast `kgate up`'s own scheduler and
//! simulated nodes take pods from created to Running, with 100 and with 1,000 nodes.
//!
//! For each node count N of `--nodes-list`, one after the other on the same machine as the
//! load generator:
//!
//! 1. `kgate up --nodes N --node-pods P` starts in a new temporary directory; the harness waits
//!    for its ready line, then until N Nodes have the condition Ready=True;
//! 2. one connection lists the pods of the bench namespace and watches them from the list's
//!    resourceVersion, stamping for each pod when `spec.nodeName` first appears (scheduled)
//!    and when `status.phase` first is `Running`;
//! 3. `--pods` small pods (one container, no resource requests) are created from
//!    `--concurrency` keep-alive connections as fast as they are answered, each create's
//!    sending time kept;
//! 4. once every created pod is Running (or `--timeout` seconds after the first create), the
//!    harness reads kgate's CPU time and VmRSS/VmHWM from /proc and stops kgate.
//!
//! Figures: creates/s; scheduled pods/s over the first create to the last binding, and over the
//! middle 80% of the bindings (the steady rate); the time from the first create to all Running;
//! p50/p99 of create→scheduled and create→Running; kgate's memory after, and its CPU per pod.
//! Everything goes through the API over HTTPS with the admin client certificate. Each figure is
//! from one run; it is a command, not a test: nothing here asserts a timing.

// Tests may unwrap: a panic there is a failing test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod cluster;
mod pods;
mod report;

use anyhow::{bail, Context, Result};
use clap::Parser;
use kgate_loadtest::{cpu_seconds, status_kib};
use report::{Figures, Measured};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    about = "Cluster benchmark: scheduling throughput and time to Running with kgate up's simulated nodes"
)]
struct Args {
    /// The kgate binary (build it with `cargo build --release -p kgate-cli --bin kgate`).
    #[arg(long, default_value = "target/release/kgate")]
    kgate: PathBuf,
    /// The node counts to measure, in this order, comma separated (`kgate up --nodes N`).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    nodes_list: Vec<u32>,
    /// Allocatable pods of each simulated node (`kgate up --node-pods`).
    #[arg(long, default_value_t = 110)]
    node_pods: u32,
    /// Pods to create and wait for.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// Connections creating the pods.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to wait for kgate's ready line, for the N Ready nodes, and from the first create
    /// for every pod to be Running; past it the run stops with a message saying how far it got.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The namespace of the pods.
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// One more `kgate up` flag (repeatable), e.g. `--kgate-arg=--node-monitor-grace-period=5m`.
    #[arg(long = "kgate-arg", allow_hyphen_values = true)]
    kgate_args: Vec<String>,
    /// Where each run's kgate data and log go (a temporary directory under it per run, removed
    /// afterwards); the system temporary directory by default.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.pods == 0 || args.nodes_list.is_empty() {
        bail!("--concurrency, --pods and --nodes-list must not be 0 or empty");
    }
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for &nodes in &args.nodes_list {
        match run(&args, nodes).await {
            Ok(figures) => {
                if figures.timed_out {
                    failures.push(format!("{nodes} nodes: timed out"));
                }
                runs.push(figures);
            }
            Err(e) => {
                eprintln!("[{nodes} nodes] failed: {e:#}");
                failures.push(format!("{nodes} nodes: {e:#}"));
            }
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let header = format!(
        "kgate up --nodes N (simulated nodes, --node-pods {}, its own scheduler and controllers): \
         {} pods (one container, no requests) created from {} HTTPS keep-alive connections as the \
         admin, one watch stamping bindings and Running; one run per node count, the load \
         generator on the same {cores}-core machine",
        args.node_pods, args.pods, args.concurrency
    );
    if !runs.is_empty() {
        report::print(&header, &runs, args.concurrency);
    }
    if !failures.is_empty() {
        bail!("not every run completed: {}", failures.join("; "));
    }
    Ok(())
}

/// Measures one node count: starts kgate, waits for its nodes, creates the pods and waits until
/// they all run (or the timeout), then stops kgate.
async fn run(args: &Args, nodes: u32) -> Result<Figures> {
    let timeout = Duration::from_secs(args.timeout);
    eprintln!("[{nodes} nodes] starting kgate up --nodes {nodes}");
    let setup = cluster::Setup {
        kgate: &args.kgate,
        node_pods: args.node_pods,
        extra: &args.kgate_args,
        work_dir: args.work_dir.as_deref(),
        timeout,
    };
    let cluster = cluster::start(&setup, nodes)
        .await
        .context("starting kgate up")?;
    eprintln!("[{nodes} nodes] kgate is ready; waiting for {nodes} Ready nodes");
    cluster::wait_nodes_ready(&cluster, nodes, cluster.started + timeout).await?;
    let nodes_ready = cluster.started.elapsed();
    let api = cluster.api();
    cluster::create_namespace(api, &args.namespace).await?;

    eprintln!(
        "[{nodes} nodes] {nodes} nodes Ready after {:.1} s; creating {} pods",
        nodes_ready.as_secs_f64(),
        args.pods
    );
    let created = Arc::new(AtomicUsize::new(0));
    // The deadline counts from (just before) the first create.
    let deadline = Instant::now() + timeout;
    let watcher = pods::Watcher::start(api, &args.namespace, args.pods, deadline, created.clone())
        .await
        .context("watching the pods")?;
    let cpu_before = cpu_seconds(cluster.pid());
    let creates = pods::create(api, &args.namespace, args.pods, args.concurrency, created)
        .await
        .context("creating the pods")?;
    eprintln!(
        "[{nodes} nodes] {} pods created ({} errors) at {:.0}/s; waiting for them to run",
        creates.ok,
        creates.errors,
        creates.per_second()
    );
    let stamps = watcher.finish(creates.ok).await?;
    let cpu = cpu_seconds(cluster.pid()) - cpu_before;
    if stamps.timed_out {
        eprintln!(
            "[{nodes} nodes] TIMED OUT {} s after the first create: of {} pods created, {} were \
             scheduled and {} Running (are the scheduler and the simulated nodes of `kgate up \
             --nodes` running?); kgate's log ends with:\n{}",
            args.timeout,
            creates.ok,
            stamps.scheduled_count(),
            stamps.running_count(),
            cluster.log_tail()
        );
    }
    let measured = Measured {
        nodes,
        nodes_ready,
        cpu_seconds: cpu,
        rss_kib: status_kib(cluster.pid(), "VmRSS")?,
        hwm_kib: status_kib(cluster.pid(), "VmHWM")?,
    };
    Ok(Figures::new(&creates, &stamps, measured))
}
