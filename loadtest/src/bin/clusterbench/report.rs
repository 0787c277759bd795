//! The figures of one cluster size, made from the creates' and the watch's stamps, and the
//! table that prints them side by side.

use crate::pods::{Creates, Stamps};
use kgate_loadtest::percentile;
use std::time::{Duration, Instant};

/// Every figure of one `kgate up --nodes N`; `None` where the run gave no value (nothing
/// scheduled, or not every pod Running before the timeout).
pub struct Figures {
    pub nodes: u32,
    /// From starting kgate to N Ready Nodes.
    pub nodes_ready: Duration,
    pub created: usize,
    pub create_errors: usize,
    pub first_error: Option<String>,
    pub creates_per_second: f64,
    pub scheduled: usize,
    pub running: usize,
    /// Pods over the time from the first create to the last binding seen.
    pub scheduled_per_second: Option<f64>,
    /// Over the middle 80% of the bindings (from the 10th to the 90th percentile binding).
    pub steady_scheduled_per_second: Option<f64>,
    /// From the first create to the last pod Running, if every created pod got there.
    pub all_running: Option<Duration>,
    /// From each create being sent to its binding / its Running, in µs, sorted.
    pub to_scheduled_us: Vec<u64>,
    pub to_running_us: Vec<u64>,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// kgate's CPU from the first create to the end, per created pod.
    pub cpu_ms_per_pod: f64,
    pub reconnects: u32,
    pub relists: u32,
    pub timed_out: bool,
}

/// What a run measured besides the stamps.
pub struct Measured {
    pub nodes: u32,
    pub nodes_ready: Duration,
    pub cpu_seconds: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Pods per second over the time from `origin` to the last of `times`.
fn rate(origin: Instant, times: &[Instant]) -> Option<f64> {
    let last = times.last()?;
    let secs = last.saturating_duration_since(origin).as_secs_f64();
    Some(times.len() as f64 / secs.max(1e-9))
}

/// Pods per second between the 10th and the 90th percentile of sorted `times`.
fn steady_rate(times: &[Instant]) -> Option<f64> {
    let (lo, hi) = (times.len() / 10, times.len() * 9 / 10);
    if hi <= lo || hi >= times.len() {
        return None;
    }
    let secs = times[hi].saturating_duration_since(times[lo]).as_secs_f64();
    (secs > 0.0).then(|| (hi - lo) as f64 / secs)
}

/// From each create being sent to `stamps`' time, in µs, sorted, for the pods that have both.
fn latencies(sent: &[Option<Instant>], stamps: &[Option<Instant>]) -> Vec<u64> {
    let mut out: Vec<u64> = sent
        .iter()
        .zip(stamps)
        .filter_map(|(sent, at)| {
            let micros = at.as_ref()?.saturating_duration_since((*sent)?).as_micros();
            Some(u64::try_from(micros).unwrap_or(u64::MAX))
        })
        .collect();
    out.sort_unstable();
    out
}

/// The stamps of the pods that were created, sorted.
fn sorted(sent: &[Option<Instant>], stamps: &[Option<Instant>]) -> Vec<Instant> {
    let mut out: Vec<Instant> = sent
        .iter()
        .zip(stamps)
        .filter_map(|(sent, at)| sent.and(*at))
        .collect();
    out.sort_unstable();
    out
}

impl Figures {
    pub fn new(creates: &Creates, stamps: &Stamps, measured: Measured) -> Self {
        let scheduled = sorted(&creates.sent, &stamps.scheduled);
        let running = sorted(&creates.sent, &stamps.running);
        let origin = creates.first_sent;
        let all_running = (creates.ok > 0 && running.len() == creates.ok)
            .then(|| running.last().map(|t| t.saturating_duration_since(origin)))
            .flatten();
        Self {
            nodes: measured.nodes,
            nodes_ready: measured.nodes_ready,
            created: creates.ok,
            create_errors: creates.errors,
            first_error: creates.first_error.clone(),
            creates_per_second: creates.per_second(),
            scheduled: scheduled.len(),
            running: running.len(),
            scheduled_per_second: rate(origin, &scheduled),
            steady_scheduled_per_second: steady_rate(&scheduled),
            all_running,
            to_scheduled_us: latencies(&creates.sent, &stamps.scheduled),
            to_running_us: latencies(&creates.sent, &stamps.running),
            rss_kib: measured.rss_kib,
            hwm_kib: measured.hwm_kib,
            cpu_ms_per_pod: measured.cpu_seconds * 1e3 / creates.ok.max(1) as f64,
            reconnects: stamps.reconnects,
            relists: stamps.relists,
            timed_out: stamps.timed_out,
        }
    }
}

/// One line of the table: a label and the value of each run.
type Line = (String, Vec<Option<String>>);

fn num(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

fn quantile_ms(sorted_us: &[u64], p: f64) -> Option<String> {
    (!sorted_us.is_empty()).then(|| num(percentile(sorted_us, p) as f64 / 1e3, 1))
}

fn mib(kib: u64) -> String {
    num(kib as f64 / 1024.0, 1)
}

fn lines(runs: &[Figures], concurrency: usize) -> Vec<Line> {
    let col = |f: &dyn Fn(&Figures) -> Option<String>| runs.iter().map(f).collect::<Vec<_>>();
    vec![
        (
            "nodes Ready after kgate started (s)".into(),
            col(&|r| Some(num(r.nodes_ready.as_secs_f64(), 1))),
        ),
        (
            format!("pods created/s (POST pod, c={concurrency})"),
            col(&|r| (r.created > 0).then(|| num(r.creates_per_second, 0))),
        ),
        (
            "scheduled pods/s (pods / first create → last binding)".into(),
            col(&|r| r.scheduled_per_second.map(|v| num(v, 0))),
        ),
        (
            "scheduled pods/s, steady (middle 80% of the bindings)".into(),
            col(&|r| r.steady_scheduled_per_second.map(|v| num(v, 0))),
        ),
        (
            "first create → all pods Running (s)".into(),
            col(&|r| r.all_running.map(|d| num(d.as_secs_f64(), 2))),
        ),
        (
            "create → scheduled, p50 (ms)".into(),
            col(&|r| quantile_ms(&r.to_scheduled_us, 0.5)),
        ),
        (
            "create → scheduled, p99 (ms)".into(),
            col(&|r| quantile_ms(&r.to_scheduled_us, 0.99)),
        ),
        (
            "create → Running, p50 (ms)".into(),
            col(&|r| quantile_ms(&r.to_running_us, 0.5)),
        ),
        (
            "create → Running, p99 (ms)".into(),
            col(&|r| quantile_ms(&r.to_running_us, 0.99)),
        ),
        (
            "kgate VmRSS after (MiB)".into(),
            col(&|r| Some(mib(r.rss_kib))),
        ),
        (
            "kgate VmHWM, peak of the run (MiB)".into(),
            col(&|r| Some(mib(r.hwm_kib))),
        ),
        (
            "kgate CPU per pod (ms, first create → end)".into(),
            col(&|r| (r.created > 0).then(|| num(r.cpu_ms_per_pod, 2))),
        ),
    ]
}

/// Prints the header, the table (one column per node count) and a line of counts per run.
pub fn print(header: &str, runs: &[Figures], concurrency: usize) {
    println!("{header}");
    println!();
    let titles: Vec<String> = runs.iter().map(|r| format!("{} nodes", r.nodes)).collect();
    println!("| figure | {} |", titles.join(" | "));
    println!("|---|{}", "---|".repeat(runs.len()));
    for (label, values) in lines(runs, concurrency) {
        let cells: Vec<String> = values
            .into_iter()
            .map(|v| v.unwrap_or_else(|| "—".to_owned()))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
    println!();
    for r in runs {
        println!(
            "{} nodes: {} pods created ({} errors), {} scheduled, {} Running{}; watch reopened {} \
             times, relisted {} times",
            r.nodes,
            r.created,
            r.create_errors,
            r.scheduled,
            r.running,
            if r.timed_out {
                " (TIMED OUT before every pod was Running)"
            } else {
                ""
            },
            r.reconnects,
            r.relists
        );
        if let Some(error) = &r.first_error {
            println!("  first create error: {error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_pods_over_time() {
        let t0 = Instant::now();
        let times: Vec<Instant> = (1..=100)
            .map(|i| t0 + Duration::from_millis(10 * i))
            .collect();
        // 100 pods, the last 1 s after the origin.
        let r = rate(t0, &times).unwrap();
        assert!((r - 100.0).abs() < 1e-6, "{r}");
        // From the 10th (110 ms) to the 90th (910 ms): 80 pods in 0.8 s.
        let s = steady_rate(&times).unwrap();
        assert!((s - 100.0).abs() < 1e-6, "{s}");
        assert_eq!(rate(t0, &[]), None);
        assert_eq!(steady_rate(&times[..1]), None);
    }

    #[test]
    fn latencies_pair_each_pod_with_its_create() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let sent = [Some(t0), None, Some(ms(10))];
        let at = [Some(ms(30)), Some(ms(50)), Some(ms(15))];
        assert_eq!(latencies(&sent, &at), vec![5_000, 30_000]);
        assert_eq!(sorted(&sent, &at), vec![ms(15), ms(30)]);
    }
}
