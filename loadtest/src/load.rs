//! Closed-loop load over keep-alive connections: `concurrency` connections issuing requests
//! back to back, each request made from a sequence number; shared by the harnesses.

use crate::api::{Api, Conn};
use crate::cpu_seconds;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::Method;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A request made from a sequence number: method, path and body.
pub type MakeRequest = Arc<dyn Fn(u64) -> (Method, String, Option<Bytes>) + Send + Sync>;

/// The outcome of a closed-loop load: `concurrency` connections issuing requests back to back.
pub struct Load {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered otherwise.
    pub errors: u64,
    /// The status and body of the first error, if any.
    pub first_error: Option<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of every request in µs, sorted.
    pub latencies_us: Vec<u64>,
    /// User+system CPU of the server processes over the load, in seconds.
    pub cpu_seconds: f64,
}

impl Load {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU per request, in µs.
    pub fn cpu_us_per_request(&self) -> f64 {
        let total = (self.ok + self.errors).max(1);
        self.cpu_seconds * 1e6 / total as f64
    }

    /// How many sequence numbers were used (each by one request).
    pub fn issued(&self) -> u64 {
        self.ok + self.errors
    }
}

/// Runs `make(seq)` for `seq` in `seqs` over `concurrency` keep-alive connections (opened before
/// the clock starts), until the sequence numbers run out or `seconds` pass. `pids` are the server
/// processes whose CPU is counted.
pub async fn drive(
    api: &Api,
    pids: &[u32],
    concurrency: usize,
    seqs: Range<u64>,
    seconds: Option<f64>,
    make: MakeRequest,
) -> Result<Load> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(api.connect().await?);
    }
    let next = Arc::new(AtomicU64::new(seqs.start));
    let cpu_before: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    let start = Instant::now();
    let deadline = seconds.map(|s| start + Duration::from_secs_f64(s));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| tokio::spawn(worker(conn, next.clone(), seqs.end, deadline, make.clone())))
        .collect();
    let mut load = Load {
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        cpu_seconds: 0.0,
    };
    for task in tasks {
        let out = task.await.context("a load worker panicked")??;
        load.ok += out.ok;
        load.errors += out.errors;
        load.latencies_us.extend(out.latencies_us);
        if load.first_error.is_none() {
            load.first_error = out.first_error;
        }
    }
    load.elapsed = start.elapsed();
    load.cpu_seconds = pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu_before;
    load.latencies_us.sort_unstable();
    Ok(load)
}

struct WorkerOut {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u64>,
}

async fn worker(
    mut conn: Conn,
    next: Arc<AtomicU64>,
    end: u64,
    deadline: Option<Instant>,
    make: MakeRequest,
) -> Result<WorkerOut> {
    let mut out = WorkerOut {
        ok: 0,
        errors: 0,
        first_error: None,
        latencies_us: Vec::new(),
    };
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let seq = next.fetch_add(1, Ordering::Relaxed);
        if seq >= end {
            break;
        }
        let (method, path, body) = make(seq);
        let start = Instant::now();
        let (status, body) = conn.call(method.clone(), &path, body).await?;
        out.latencies_us.push(start.elapsed().as_micros() as u64);
        if status.is_success() {
            out.ok += 1;
        } else {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| {
                format!(
                    "{method} {path}: {status}: {}",
                    String::from_utf8_lossy(&body)
                )
            });
        }
    }
    Ok(out)
}
