//! The webhook benchmark (`kgate-reviewbench`): TokenReviews and SubjectAccessReviews per second
//! that `kgate webhook` answers on one core, as kube-apiserver calls it: HTTPS, HTTP/1.1
//! keep-alive connections, the client certificate `kgate webhook config` issues.
//!
//! The webhook runs pinned to one CPU (`taskset -c --webhook-cpu`); run the harness on another
//! (`loadtest/reviewbench.sh` pins it to the other core). Figures, each at every
//! `--concurrency`:
//!
//! - **TokenReview, cached**: the same machine token in every review (verified once, then
//!   answered from the verified-token cache; the deny list is still checked on every review);
//! - **TokenReview, uncached**: a new machine token in every review (`--uncached-tokens` of
//!   them, issued in this process beforehand with the webhook's keys), so each review verifies an
//!   RS256 signature;
//! - **SubjectAccessReview**: reviews of varying users and resources against a policy of
//!   `--policy-lines` lines (kgate caches no decision: every review is evaluated).
//!
//! Requests/s, p50 and p99 latency at the client, and the webhook's CPU per review. Each figure
//! is from one run. It is a command, not a test: nothing here asserts a timing.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use http::Method;
use kgate_loadtest::api::Api;
use kgate_loadtest::load::{drive, Load, MakeRequest};
use kgate_loadtest::{free_port, percentile, spawn, tail, wait_for_port, Proc};
use kgate_tokens::machine::{MachineTokenIssuer, MachineTokenSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Parser, Debug)]
#[command(about = "TokenReviews and SubjectAccessReviews per second of kgate webhook on one core")]
struct Args {
    /// The kgate binary (build it with `cargo build --release -p kgate-cli --bin kgate`).
    #[arg(long, default_value = "target/release/kgate")]
    kgate: PathBuf,
    /// The CPU the webhook is pinned to.
    #[arg(long, default_value_t = 0)]
    webhook_cpu: usize,
    /// Connections of each figure, one figure each.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Seconds of each cached and SubjectAccessReview figure.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Tokens of each uncached figure (each used once).
    #[arg(long, default_value_t = 4000)]
    uncached_tokens: u64,
    /// Lines of the authorization policy (one deny line matches some reviews; the rest do not).
    #[arg(long, default_value_t = 20)]
    policy_lines: usize,
}

fn token_review(token: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","metadata":{{"creationTimestamp":null}},"spec":{{"token":"{token}","audiences":["https://kubernetes.default.svc.cluster.local"]}},"status":{{"user":{{}}}}}}"#
    ))
}

fn access_review(seq: u64) -> Bytes {
    let user = format!("user-{}", seq % 100);
    let (verb, resource) = match seq % 4 {
        0 => ("get", "pods"),
        1 => ("list", "configmaps"),
        2 => ("delete", "namespaces"),
        _ => ("watch", "deployments"),
    };
    Bytes::from(format!(
        r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":"{user}","groups":["dev","system:authenticated"],"resourceAttributes":{{"namespace":"team-{}","verb":"{verb}","version":"v1","resource":"{resource}"}}}}}}"#,
        seq % 10
    ))
}

fn policy(lines: usize) -> String {
    let mut text =
        "apiVersion: kgate.io/v1alpha1\nkind: AuthorizationPolicy\npolicies:\n".to_owned();
    text.push_str("  - p, deny, user-1*, *, delete, \"\", namespaces, *, *, *\n");
    for n in 1..lines {
        text.push_str(&format!(
            "  - p, allow, robot-{n}, *, get, apps, deployments, team-{n}, *, *\n"
        ));
    }
    text
}

struct Webhook {
    _proc: Proc,
    pid: u32,
    api: Api,
    dir: tempfile::TempDir,
}

async fn start(args: &Args) -> Result<Webhook> {
    let dir = tempfile::Builder::new()
        .prefix("kgate-reviewbench-")
        .tempdir()?;
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    let port = free_port()?;
    let config = Command::new(&args.kgate)
        .args(["webhook", "config", "--data-dir"])
        .arg(&data)
        .arg("--server")
        .arg(format!("https://127.0.0.1:{port}"))
        .arg("--out")
        .arg(&out)
        .output()
        .context("running kgate webhook config")?;
    if !config.status.success() {
        bail!(
            "kgate webhook config failed: {}",
            String::from_utf8_lossy(&config.stderr)
        );
    }
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, policy(args.policy_lines))?;
    let log = dir.path().join("webhook.log");
    let proc = spawn(
        Command::new("taskset")
            .arg("-c")
            .arg(args.webhook_cpu.to_string())
            .arg(&args.kgate)
            .args(["webhook", "--data-dir"])
            .arg(&data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--authorization-policy-file")
            .arg(&policy_path)
            .env("RUST_LOG", "warn"),
        &log,
    )?;
    if let Err(e) = wait_for_port(port).await {
        bail!("the webhook did not listen: {e}\n{}", tail(&log));
    }
    // taskset execs kgate: the pid is the webhook's.
    let pid = proc.id();
    let api = Api::from_kubeconfig(
        format!("127.0.0.1:{port}").parse()?,
        &out.join("authentication-webhook.kubeconfig"),
    )?;
    Ok(Webhook {
        _proc: proc,
        pid,
        api,
        dir,
    })
}

fn issuer(data: &Path) -> Result<MachineTokenIssuer> {
    let keys = kgate_tokens::KeySet::load(&data.join("machine-tokens").join("keys"))
        .context("the webhook's machine-token keys")?;
    Ok(MachineTokenIssuer::new(kgate_tokens::SharedKeys::new(keys)))
}

fn issue(issuer: &MachineTokenIssuer, n: u64) -> Result<String> {
    Ok(issuer
        .issue(
            &MachineTokenSpec {
                user: format!("robot-{n}"),
                groups: vec!["ci".into()],
                audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
                lifetime: Duration::from_secs(3600),
            },
            SystemTime::now(),
        )?
        .token)
}

fn row(name: &str, concurrency: usize, load: &Load) -> Result<()> {
    if let Some(error) = &load.first_error {
        bail!("{name}: {} errors, the first: {error}", load.errors);
    }
    println!(
        "| {name} | {concurrency} | {:.0} | {} | {} | {:.1} |",
        load.per_second(),
        percentile(&load.latencies_us, 0.5),
        percentile(&load.latencies_us, 0.99),
        load.cpu_us_per_request(),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let webhook = start(&args).await?;
    let issuer = issuer(&webhook.dir.path().join("data"))?;
    let pids = [webhook.pid];
    println!("| figure | connections | reviews/s | p50 µs | p99 µs | webhook CPU µs/review |");
    println!("|---|---|---|---|---|---|");

    let cached = Arc::new(token_review(&issue(&issuer, 0)?));
    for &c in &args.concurrency {
        let body = cached.clone();
        let make: MakeRequest =
            Arc::new(move |_| (Method::POST, "/authenticate".into(), Some((*body).clone())));
        // Warm: the first review verifies and caches.
        drive(&webhook.api, &[], 1, 0..10, None, make.clone()).await?;
        let load = drive(
            &webhook.api,
            &pids,
            c,
            0..u64::MAX,
            Some(args.seconds),
            make,
        )
        .await?;
        row("TokenReview, cached", c, &load)?;
    }
    for &c in &args.concurrency {
        let bodies: Vec<Bytes> = (0..args.uncached_tokens)
            .map(|n| issue(&issuer, n + 1).map(|t| token_review(&t)))
            .collect::<Result<_>>()?;
        let bodies = Arc::new(bodies);
        let make: MakeRequest = Arc::new(move |seq| {
            (
                Method::POST,
                "/authenticate".into(),
                Some(bodies[seq as usize].clone()),
            )
        });
        let load = drive(&webhook.api, &pids, c, 0..args.uncached_tokens, None, make).await?;
        row("TokenReview, uncached", c, &load)?;
    }
    for &c in &args.concurrency {
        let make: MakeRequest =
            Arc::new(|seq| (Method::POST, "/authorize".into(), Some(access_review(seq))));
        let load = drive(
            &webhook.api,
            &pids,
            c,
            0..u64::MAX,
            Some(args.seconds),
            make,
        )
        .await?;
        row("SubjectAccessReview", c, &load)?;
    }
    Ok(())
}
