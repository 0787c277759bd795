//! The storage benchmark (`kgate-storebench`): the same harness, in one run, against `kgate up`
//! on its embedded store, `kgate up --etcd-servers` on a local etcd the harness starts, and the
//! real kube-apiserver on etcd (`scripts/kube-reference.sh`), the peer kgate is held against.
//!
//! Everything is measured through the API, over HTTPS with HTTP/1.1 keep-alive connections and
//! the admin client certificate of the admin kubeconfig, so each figure includes the gateway,
//! authentication, RBAC, the API server and the store. The backends run one after the other (not
//! side by side) on the same machine as the load generator. Per backend, in this order:
//!
//! 1. **idle memory**: VmRSS of the server process (kgate, or kube-apiserver) once it is ready;
//! 2. **creates/s**: `POST` of a small one-container Pod into `default` from `--concurrency`
//!    connections for `--seconds` (or `--creates` or `--pods` pods, if fewer), with the median
//!    and p99 latency and the server CPU per create (the server plus etcd, from /proc);
//! 3. **gets/s**: `GET` of those pods by name, spread over all of them, the same way; then `GET`
//!    of one pod at each of `--get-one-concurrency` (requests/s, p50, p99, server CPU per
//!    request); then **TokenRequests/s**: `POST .../serviceaccounts/bench/token` the same way;
//! 4. **list**: `--list-objects` configmaps are created in `bench-list`, then the collection is
//!    listed whole and in pages of `--page-size` (`limit` + `continue`), `--list-repeats` times
//!    each on one connection; the median time to the last byte is reported;
//! 5. **watch latency**: `--watchers` connections watch the configmaps of `bench-watch` from its
//!    current resourceVersion, then one connection creates `--watch-events` configmaps one after
//!    another, `--watch-spacing-ms` apart. For every (watcher, event) pair two times are taken:
//!    from the write being sent to the event line reaching the watcher, and from the write's 201
//!    reaching the writer to the event line reaching the watcher (negative when the watcher
//!    heard first, which is common: the store fans the event out before the response is
//!    written). The median and p99 over all pairs are reported;
//! 6. **memory**: more pods are created until `default` holds `--pods`, then VmRSS and VmHWM of
//!    the server process (and of etcd) are read from /proc/PID/status. The store then also holds
//!    the list and watch configmaps; VmHWM includes the peaks of the earlier steps.
//!
//! Each figure is from one run. It is a command, not a test: nothing here asserts a timing.

mod api;
mod backend;
mod figures;

use anyhow::{bail, Context, Result};
use backend::{Backend, Kind};
use bytes::Bytes;
use clap::Parser;
use figures::{Load, MakeRequest};
use http::Method;
use kgate_loadtest::{percentile, status_kib};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    about = "Storage benchmark: kgate up on the embedded store, on etcd, and kube-apiserver, through the API"
)]
struct Args {
    /// The kgate binary (build it with `cargo build --release -p kgate-cli --bin kgate`).
    #[arg(long, default_value = "target/release/kgate")]
    kgate: PathBuf,
    /// The etcd binary (Debian's etcd-server).
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// `scripts/kube-reference.sh`, which builds and starts kube-apiserver (the kube-apiserver
    /// backend).
    #[arg(long, default_value = "scripts/kube-reference.sh")]
    kube_reference: PathBuf,
    /// The backends to measure, in this order, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "embedded,etcd,kube-apiserver"
    )]
    backends: Vec<Kind>,
    /// Connections of the "GET one pod" figures, one figure each.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    get_one_concurrency: Vec<usize>,
    /// Seconds of the creates/s and of the gets/s figures.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop the creates/s figure after this many pods, if before --seconds (it also stops at
    /// --pods).
    #[arg(long)]
    creates: Option<u64>,
    /// Connections issuing creates and gets (and creating the listed configmaps); the pods for
    /// the memory figure are created over twice as many.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Configmaps in the listed collection.
    #[arg(long, default_value_t = 10_000)]
    list_objects: u64,
    /// Page size of the paged list.
    #[arg(long, default_value_t = 500)]
    page_size: usize,
    /// Repetitions of each list (the median is reported).
    #[arg(long, default_value_t = 5)]
    list_repeats: usize,
    /// Concurrent watch connections.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Writes whose events the watchers time.
    #[arg(long, default_value_t = 200)]
    watch_events: usize,
    /// Pause between two watched writes, in ms.
    #[arg(long, default_value_t = 5)]
    watch_spacing_ms: u64,
    /// Pods stored when memory is read.
    #[arg(long, default_value_t = 100_000)]
    pods: u64,
    /// Where the backends' data and logs go (a temporary directory under it per backend, removed
    /// afterwards); the system temporary directory by default.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// Every figure of one backend.
struct Figures {
    idle_rss_kib: u64,
    creates: Load,
    gets: Load,
    /// `GET` of one pod, per concurrency.
    get_one: Vec<(usize, Load)>,
    /// TokenRequests for one ServiceAccount (RS256 signing dominates).
    tokens: Load,
    list: figures::ListTimes,
    watch: figures::WatchTimes,
    /// Creating the pods up to `--pods` after the other steps.
    fill: Load,
    pods: u64,
    server_rss_kib: u64,
    server_hwm_kib: u64,
    etcd_rss_kib: Option<u64>,
    etcd_hwm_kib: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0
        || args.page_size == 0
        || args.list_repeats == 0
        || args.get_one_concurrency.contains(&0)
    {
        bail!(
            "--concurrency, --page-size, --list-repeats and --get-one-concurrency must be at least 1"
        );
    }
    if args.backends.contains(&Kind::Etcd) && !backend::kgate_has_etcd(&args.kgate)? {
        bail!(
            "{} up has no --etcd-servers flag: rebuild kgate, or measure only --backends embedded",
            args.kgate.display()
        );
    }
    let mut results = Vec::new();
    for &kind in &args.backends {
        let figures = run_backend(kind, &args)
            .await
            .with_context(|| format!("measuring the {} backend", kind.name()))?;
        results.push((kind, figures));
    }
    print_report(&args, &results);
    Ok(())
}

/// Starts one backend, takes every figure from it, and stops it.
async fn run_backend(kind: Kind, args: &Args) -> Result<Figures> {
    let name = kind.name();
    eprintln!("[{name}] starting");
    let backend = backend::start(
        kind,
        &args.kgate,
        &args.etcd,
        &args.kube_reference,
        args.work_dir.as_deref(),
    )
    .await?;
    let api = &backend.api;
    let pids = backend.pids();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = status_kib(backend.server_pid, "VmRSS")?;

    // kube-apiserver's ServiceAccount admission refuses pods until their namespace's `default`
    // ServiceAccount exists (kube-controller-manager makes it; none runs here). kgate makes it
    // itself: there this is a 409.
    let mut setup = api.connect().await?;
    let account = r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default"}}"#;
    let (status, body) = setup
        .call(
            Method::POST,
            "/api/v1/namespaces/default/serviceaccounts",
            Some(Bytes::from_static(account.as_bytes())),
        )
        .await?;
    if !status.is_success() && status != http::StatusCode::CONFLICT {
        bail!(
            "creating the default ServiceAccount: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    eprintln!("[{name}] creates: {} s", args.seconds);
    let creates = drive_pods(
        &backend,
        args.concurrency,
        // Never more than --pods, so every backend holds the same pods when memory is read.
        0..args.creates.unwrap_or(u64::MAX).min(args.pods),
        Some(args.seconds),
    )
    .await
    .context("creating pods")?;
    let created = creates.issued();

    eprintln!("[{name}] gets: {} s over {created} pods", args.seconds);
    let make: MakeRequest = Arc::new(move |seq| {
        // A multiplicative hash spreads the gets over every pod.
        let i = seq.wrapping_mul(2_654_435_761) % created.max(1);
        (
            Method::GET,
            format!("/api/v1/namespaces/default/pods/pod-{i}"),
            None,
        )
    });
    let gets = figures::drive(
        api,
        &pids,
        args.concurrency,
        0..u64::MAX,
        Some(args.seconds),
        make,
    )
    .await
    .context("getting pods")?;

    let mut get_one = Vec::new();
    for &concurrency in &args.get_one_concurrency {
        eprintln!(
            "[{name}] GET one pod at c={concurrency}: {} s",
            args.seconds
        );
        let make: MakeRequest = Arc::new(|_| {
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/pod-0".to_owned(),
                None,
            )
        });
        let load = figures::drive(
            api,
            &pids,
            concurrency,
            0..u64::MAX,
            Some(args.seconds),
            make,
        )
        .await
        .context("getting one pod")?;
        get_one.push((concurrency, load));
    }

    eprintln!("[{name}] token requests: {} s", args.seconds);
    // A new connection: the first one has idled through the figures above.
    let mut conn = api.connect().await?;
    let account = r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"bench"}}"#;
    conn.expect(
        Method::POST,
        "/api/v1/namespaces/default/serviceaccounts",
        Some(Bytes::from_static(account.as_bytes())),
    )
    .await
    .context("creating the ServiceAccount")?;
    let make: MakeRequest = Arc::new(|_| {
        let body = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}"#;
        (
            Method::POST,
            "/api/v1/namespaces/default/serviceaccounts/bench/token".to_owned(),
            Some(Bytes::from_static(body.as_bytes())),
        )
    });
    let tokens = figures::drive(
        api,
        &pids,
        args.concurrency,
        0..u64::MAX,
        Some(args.seconds),
        make,
    )
    .await
    .context("requesting tokens")?;

    eprintln!("[{name}] list: creating {} configmaps", args.list_objects);
    figures::create_namespace(api, "bench-list").await?;
    figures::create_configmaps(api, args.concurrency, "bench-list", args.list_objects).await?;
    eprintln!("[{name}] list: listing");
    let list = figures::list_times(
        api,
        "/api/v1/namespaces/bench-list/configmaps",
        usize::try_from(args.list_objects)?,
        args.page_size,
        args.list_repeats,
    )
    .await
    .context("listing configmaps")?;

    eprintln!(
        "[{name}] watch: {} watchers, {} writes",
        args.watchers, args.watch_events
    );
    figures::create_namespace(api, "bench-watch").await?;
    let watch = figures::watch_times(
        api,
        "bench-watch",
        args.watchers,
        args.watch_events,
        Duration::from_millis(args.watch_spacing_ms),
    )
    .await
    .context("timing watch events")?;

    eprintln!(
        "[{name}] memory: creating pods up to {} (have {created})",
        args.pods
    );
    let fill = drive_pods(&backend, args.concurrency * 2, created..args.pods, None)
        .await
        .context("creating pods for the memory figure")?;
    let pods = creates.ok + fill.ok;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let etcd = |field| {
        backend
            .etcd_pid
            .map(|pid| status_kib(pid, field))
            .transpose()
    };
    Ok(Figures {
        idle_rss_kib,
        pods,
        server_rss_kib: status_kib(backend.server_pid, "VmRSS")?,
        server_hwm_kib: status_kib(backend.server_pid, "VmHWM")?,
        etcd_rss_kib: etcd("VmRSS")?,
        etcd_hwm_kib: etcd("VmHWM")?,
        creates,
        gets,
        get_one,
        tokens,
        list,
        watch,
        fill,
    })
}

/// Creates the pods `pod-<seq>` for `seq` in `seqs` in `default`.
async fn drive_pods(
    backend: &Backend,
    concurrency: usize,
    seqs: std::ops::Range<u64>,
    seconds: Option<f64>,
) -> Result<Load> {
    let make: MakeRequest = Arc::new(|seq| {
        (
            Method::POST,
            "/api/v1/namespaces/default/pods".to_owned(),
            Some(figures::pod("default", &format!("pod-{seq}"))),
        )
    });
    if seqs.is_empty() {
        return Ok(Load {
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
            latencies_us: Vec::new(),
            cpu_seconds: 0.0,
        });
    }
    let start = Instant::now();
    let load = figures::drive(
        &backend.api,
        &backend.pids(),
        concurrency,
        seqs,
        seconds,
        make,
    )
    .await?;
    if load.ok == 0 {
        bail!(
            "no pod was created in {:?}: {}",
            start.elapsed(),
            load.first_error.as_deref().unwrap_or("no request was made")
        );
    }
    Ok(load)
}

/// Whether a larger figure is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// One row of the table: the figure of one backend.
struct Row {
    label: String,
    value: Option<f64>,
    better: Better,
    decimals: usize,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn signed_ms(us: i64) -> f64 {
    us as f64 / 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The rows of one backend, in table order (the same labels for every backend).
fn rows(args: &Args, f: &Figures) -> Vec<Row> {
    let c = args.concurrency;
    let row = |label: String, value: Option<f64>, better, decimals| Row {
        label,
        value,
        better,
        decimals,
    };
    use Better::{Higher, Lower};
    let mut get_one = Vec::new();
    for (n, load) in &f.get_one {
        get_one.push(row(
            format!("GET one pod, c={n}: requests/s"),
            Some(load.per_second()),
            Higher,
            0,
        ));
        get_one.push(row(
            format!("GET one pod, c={n}: p50 (µs)"),
            Some(percentile(&load.latencies_us, 0.5) as f64),
            Lower,
            0,
        ));
        get_one.push(row(
            format!("GET one pod, c={n}: p99 (µs)"),
            Some(percentile(&load.latencies_us, 0.99) as f64),
            Lower,
            0,
        ));
        get_one.push(row(
            format!("GET one pod, c={n}: server CPU per request (µs, server+etcd)"),
            Some(load.cpu_us_per_request()),
            Lower,
            0,
        ));
    }
    let mut rows = vec![
        row(
            format!("creates/s (POST pod, c={c})"),
            Some(f.creates.per_second()),
            Higher,
            0,
        ),
        row(
            "create latency p50 (ms)".into(),
            Some(ms(percentile(&f.creates.latencies_us, 0.5))),
            Lower,
            2,
        ),
        row(
            "create latency p99 (ms)".into(),
            Some(ms(percentile(&f.creates.latencies_us, 0.99))),
            Lower,
            2,
        ),
        row(
            "server CPU per create (µs, server+etcd)".into(),
            Some(f.creates.cpu_us_per_request()),
            Lower,
            0,
        ),
        row(
            format!("TokenRequests/s (POST serviceaccounts/token, c={c})"),
            Some(f.tokens.per_second()),
            Higher,
            0,
        ),
        row(
            "server CPU per TokenRequest (µs, server+etcd)".into(),
            Some(f.tokens.cpu_us_per_request()),
            Lower,
            0,
        ),
        row(
            format!("gets/s (GET pod by name, c={c})"),
            Some(f.gets.per_second()),
            Higher,
            0,
        ),
        row(
            "get latency p50 (ms)".into(),
            Some(ms(percentile(&f.gets.latencies_us, 0.5))),
            Lower,
            2,
        ),
        row(
            "get latency p99 (ms)".into(),
            Some(ms(percentile(&f.gets.latencies_us, 0.99))),
            Lower,
            2,
        ),
        row(
            "server CPU per get (µs, server+etcd)".into(),
            Some(f.gets.cpu_us_per_request()),
            Lower,
            0,
        ),
    ];
    rows.extend(get_one);
    rows.extend([
        row(
            format!(
                "list {} configmaps, one request (ms, median of {})",
                args.list_objects, args.list_repeats
            ),
            Some(median(&f.list.whole_ms)),
            Lower,
            1,
        ),
        row(
            format!(
                "list {} configmaps, limit={} + continue (ms, median of {})",
                args.list_objects, args.page_size, args.list_repeats
            ),
            Some(median(&f.list.paged_ms)),
            Lower,
            1,
        ),
        row(
            format!(
                "watch: write sent → event at each of {} watchers, p50 (ms)",
                args.watchers
            ),
            Some(ms(percentile(&f.watch.from_sent_us, 0.5))),
            Lower,
            2,
        ),
        row(
            "watch: write sent → event, p99 (ms)".into(),
            Some(ms(percentile(&f.watch.from_sent_us, 0.99))),
            Lower,
            2,
        ),
        row(
            "watch: write's 201 → event, p50 (ms, < 0: event first)".into(),
            Some(signed_ms(percentile(&f.watch.from_response_us, 0.5))),
            Lower,
            2,
        ),
        row(
            "watch: write's 201 → event, p99 (ms)".into(),
            Some(signed_ms(percentile(&f.watch.from_response_us, 0.99))),
            Lower,
            2,
        ),
        row(
            format!(
                "creates/s while filling up to {} pods (c={})",
                args.pods,
                2 * c
            ),
            (f.fill.ok > 0).then(|| f.fill.per_second()),
            Higher,
            0,
        ),
        row(
            "server VmRSS, idle (MiB)".into(),
            Some(mib(f.idle_rss_kib)),
            Lower,
            1,
        ),
        row(
            format!("server VmRSS with {} pods (MiB)", args.pods),
            Some(mib(f.server_rss_kib)),
            Lower,
            1,
        ),
        row(
            "server VmHWM, peak of the run (MiB)".into(),
            Some(mib(f.server_hwm_kib)),
            Lower,
            1,
        ),
        row("etcd VmRSS (MiB)".into(), f.etcd_rss_kib.map(mib), Lower, 1),
        row("etcd VmHWM (MiB)".into(), f.etcd_hwm_kib.map(mib), Lower, 1),
        row(
            "server + etcd VmRSS (MiB)".into(),
            Some(mib(f.server_rss_kib + f.etcd_rss_kib.unwrap_or(0))),
            Lower,
            1,
        ),
    ]);
    rows
}

fn cell(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) => format!("{v:.decimals$}"),
        None => "—".to_owned(),
    }
}

fn print_report(args: &Args, results: &[(Kind, Figures)]) {
    let tables: Vec<(Kind, Vec<Row>)> = results
        .iter()
        .map(|(kind, f)| (*kind, rows(args, f)))
        .collect();
    let Some((_, labels)) = tables.first() else {
        return;
    };
    let names: Vec<&str> = tables.iter().map(|(k, _)| k.name()).collect();
    println!(
        "{} through the API (HTTPS, HTTP/1.1 keep-alive, admin client certificate); Debian's etcd {} \
         for kgate's etcd backend, etcd 3.6 (fsync on) under kube-apiserver; {} s per rate, {} \
         configmaps listed, {} watchers × {} writes {} ms apart, {} pods for memory; one run, the \
         load generator on the same machine",
        names.join(" vs "),
        etcd_version(&args.etcd),
        args.seconds,
        args.list_objects,
        args.watchers,
        args.watch_events,
        args.watch_spacing_ms,
        args.pods
    );
    println!();
    // Ratios: the embedded store (kgate's default) against each other backend.
    let embedded = tables.iter().find(|(k, _)| *k == Kind::Embedded);
    let others: Vec<&(Kind, Vec<Row>)> = match embedded {
        Some(_) => tables
            .iter()
            .filter(|(k, _)| *k != Kind::Embedded)
            .collect(),
        None => Vec::new(),
    };
    let mut header = String::from("| figure |");
    for name in &names {
        header.push_str(&format!(" {name} |"));
    }
    for (kind, _) in &others {
        header.push_str(&format!(
            " embedded vs {} (×, >1 = embedded better) |",
            kind.name()
        ));
    }
    println!("{header}");
    println!("|{}", "---|".repeat(1 + names.len() + others.len()));
    for (i, label) in labels.iter().enumerate() {
        let mut line = format!("| {} |", label.label);
        for (_, rows) in &tables {
            line.push_str(&format!(" {} |", cell(rows[i].value, label.decimals)));
        }
        if let Some((_, e)) = embedded {
            for (_, rows) in &others {
                let ratio = match (e[i].value, rows[i].value, label.better) {
                    (Some(e), Some(d), Better::Higher) if d > 0.0 => Some(e / d),
                    // A ratio of times means nothing unless both are positive.
                    (Some(e), Some(d), Better::Lower) if e > 0.0 && d > 0.0 => Some(d / e),
                    _ => None,
                };
                line.push_str(&format!(
                    " {} |",
                    ratio.map_or("—".to_owned(), |r| format!("{r:.2}×"))
                ));
            }
        }
        println!("{line}");
    }
    println!();
    for (kind, f) in results {
        println!(
            "{}: {} pods created in the creates figure ({} errors), {} gets ({} errors), {} pods \
             filled in {:.1} s ({} errors), {} pods stored when memory was read; whole list {} bytes; watch pairs timed {}, missing {}, \
             event before the write's response {}",
            kind.name(),
            f.creates.ok,
            f.creates.errors,
            f.gets.ok,
            f.gets.errors,
            f.fill.ok,
            f.fill.elapsed.as_secs_f64(),
            f.fill.errors,
            f.pods,
            f.list.bytes,
            f.watch.from_response_us.len(),
            f.watch.missing,
            f.watch.before_response,
        );
        let one = f
            .get_one
            .iter()
            .map(|(n, l)| format!("c={n}: {} ({} errors)", l.ok, l.errors));
        println!("  GET one pod: {}", one.collect::<Vec<_>>().join(", "));
        for error in [&f.creates, &f.gets, &f.fill]
            .into_iter()
            .chain(f.get_one.iter().map(|(_, l)| l))
            .filter_map(|l| l.first_error.as_deref())
        {
            println!("  first error: {error}");
        }
    }
}

/// `etcd --version`'s first line, for the report header.
fn etcd_version(etcd: &std::path::Path) -> String {
    std::process::Command::new(etcd)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version: ").to_owned())
        })
        .unwrap_or_default()
}
