//! The load harness (`kgate-load`): measures `GET <path>` with keep-alive at several concurrencies
//! through four front doors of the same kind of control plane, in one run:
//!
//! - `direct`: straight to `kgate controlplane` (mutual TLS with the front-proxy certificate and
//!   the identity headers the gateway would send);
//! - `kgate`: through `kgate gateway` in front of that control plane (TLS, client-certificate
//!   authentication, RBAC, proxy over mutual TLS);
//! - `nginx`: through nginx as a plain TLS reverse proxy in front of the same control plane (no
//!   authentication, no authorization: the floor a proxy costs);
//! - `kgate-up`: `kgate up`, gateway and control plane in one process, without simulated nodes,
//!   scheduler or controllers (`--nodes 0 --controllers ''`), so it serves what the others serve;
//! - `kgate-up-cluster`: `kgate up` as a user starts it (3 simulated nodes, the scheduler and the
//!   controllers in the same process): what the cluster's background work adds.
//!
//! For each it reports requests/s, p50 and p99 latency, and the server-side CPU time per request
//! (utime+stime of the server processes from /proc, so the load generator's own CPU is excluded).
//! It is a command, not a test: nothing here asserts a timing.

use anyhow::{Context, Result};
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use kgate_loadtest::{
    children, client_tls, cpu_seconds, free_port, percentile, spawn, wait_for_port,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::TlsConnector;

#[derive(Parser, Debug)]
#[command(about = "Load harness: kgate vs direct vs nginx, GET with keep-alive")]
struct Args {
    /// The kgate binary (build it with `cargo build --release -p kgate-cli --bin kgate`).
    #[arg(long, default_value = "target/release/kgate")]
    kgate: PathBuf,
    /// The nginx binary.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
    /// Seconds of measurement per target and concurrency.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrencies (connections), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    concurrency: Vec<usize>,
    /// The path requested.
    #[arg(long, default_value = "/api/v1/namespaces/default/pods")]
    path: String,
}

/// How a client reaches one front door.
struct Target {
    name: &'static str,
    port: u16,
    ca: PathBuf,
    client_cert: Option<(PathBuf, PathBuf)>,
    headers: Vec<(&'static str, &'static str)>,
    /// The server processes whose CPU counts for this target.
    pids: Vec<u32>,
}

struct Measurement {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
    cpu_seconds: f64,
}

fn tls_config(target: &Target) -> Result<Arc<rustls::ClientConfig>> {
    let roots = CertificateDer::pem_file_iter(&target.ca)?.collect::<Result<Vec<_>, _>>()?;
    let client = match &target.client_cert {
        Some((cert, key)) => Some((
            CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?,
            PrivateKeyDer::from_pem_file(key)?,
        )),
        None => None,
    };
    // HTTP/1.1 keep-alive everywhere, so the front doors are compared on one protocol.
    client_tls(roots, client)
}

/// One keep-alive connection issuing requests back to back until `deadline`.
async fn worker(
    target: Arc<Target>,
    tls: Arc<rustls::ClientConfig>,
    path: Arc<str>,
    deadline: Instant,
) -> Result<(u64, u64, Vec<u64>)> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", target.port)).await?;
    tcp.set_nodelay(true)?;
    let stream = TlsConnector::from(tls)
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
    while Instant::now() < deadline {
        let mut req = http::Request::get(&*path).header("host", "localhost");
        for (k, v) in &target.headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Empty::<Bytes>::new())?;
        let start = Instant::now();
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        latencies.push(start.elapsed().as_micros() as u64);
        if status.is_success() {
            ok += 1;
        } else {
            errors += 1;
        }
    }
    Ok((ok, errors, latencies))
}

async fn measure(
    target: Arc<Target>,
    path: &str,
    concurrency: usize,
    seconds: u64,
) -> Result<Measurement> {
    let tls = tls_config(&target)?;
    let path: Arc<str> = Arc::from(path);
    // Warm up: connections, caches, the allocator.
    let warm = Instant::now() + Duration::from_millis(500);
    worker(target.clone(), tls.clone(), path.clone(), warm).await?;

    let cpu_before: f64 = target.pids.iter().map(|p| cpu_seconds(*p)).sum();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(worker(target.clone(), tls.clone(), path.clone(), deadline)))
        .collect();
    let mut m = Measurement {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
        cpu_seconds: 0.0,
    };
    for task in tasks {
        let (ok, errors, lat) = task.await??;
        m.requests += ok;
        m.errors += errors;
        m.latencies_us.extend(lat);
    }
    m.elapsed = start.elapsed();
    m.cpu_seconds = target.pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>() - cpu_before;
    m.latencies_us.sort_unstable();
    Ok(m)
}

fn nginx_config(dir: &Path, port: u16, upstream: u16, pki: &Path) -> String {
    let p = |f: &str| pki.join(f).display().to_string();
    format!(
        r#"worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream controlplane {{ server 127.0.0.1:{upstream}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {serving_crt};
    ssl_certificate_key {serving_key};
    keepalive_requests 1000000;
    location / {{
      proxy_pass https://controlplane;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Remote-User kubernetes-admin;
      proxy_set_header X-Remote-Group system:masters;
      proxy_ssl_certificate {fp_crt};
      proxy_ssl_certificate_key {fp_key};
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
      proxy_buffering off;
    }}
  }}
}}
"#,
        dir = dir.display(),
        serving_crt = p("serving.crt"),
        serving_key = p("serving.key"),
        fp_crt = p("front-proxy-client.crt"),
        fp_key = p("front-proxy-client.key"),
        ca = p("ca.crt"),
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let split_dir = tmp.path().join("split");
    let up_dir = tmp.path().join("up");
    let nginx_dir = tmp.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    let cluster_dir = tmp.path().join("up-cluster");
    let (cp_port, gw_port, up_port, nginx_port, cluster_port) = (
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
        free_port()?,
    );

    let cp = spawn(
        Command::new(&args.kgate)
            .arg("controlplane")
            .arg("--data-dir")
            .arg(&split_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{cp_port}")),
        &tmp.path().join("controlplane.log"),
    )?;
    wait_for_port(cp_port).await?;
    let gw = spawn(
        Command::new(&args.kgate)
            .arg("gateway")
            .arg("--data-dir")
            .arg(&split_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{gw_port}"))
            .arg("--upstream")
            .arg(format!("https://127.0.0.1:{cp_port}")),
        &tmp.path().join("gateway.log"),
    )?;
    let up = spawn(
        Command::new(&args.kgate)
            .arg("up")
            .arg("--data-dir")
            .arg(&up_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{up_port}"))
            .arg("--nodes")
            .arg("0")
            .arg("--controllers")
            .arg(""),
        &tmp.path().join("up.log"),
    )?;
    let pki = split_dir.join("pki");
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        nginx_config(&nginx_dir, nginx_port, cp_port, &pki),
    )?;
    let nginx = spawn(
        Command::new(&args.nginx)
            .arg("-c")
            .arg(nginx_dir.join("nginx.conf"))
            .arg("-p")
            .arg(&nginx_dir)
            .arg("-g")
            .arg("daemon off;"),
        &tmp.path().join("nginx.log"),
    )?;
    for port in [gw_port, up_port, nginx_port] {
        wait_for_port(port).await?;
    }
    // Readiness (RBAC synced) of the gateways: retry the first request until it succeeds.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let nginx_pids = {
        let mut pids = vec![nginx.id(), cp.id()];
        pids.extend(children(nginx.id()));
        pids
    };
    let admin = |dir: &Path| Some((dir.join("pki/admin.crt"), dir.join("pki/admin.key")));
    let targets = vec![
        Target {
            name: "direct",
            port: cp_port,
            ca: pki.join("ca.crt"),
            client_cert: Some((
                pki.join("front-proxy-client.crt"),
                pki.join("front-proxy-client.key"),
            )),
            headers: vec![
                ("x-remote-user", "kubernetes-admin"),
                ("x-remote-group", "system:masters"),
            ],
            pids: vec![cp.id()],
        },
        Target {
            name: "kgate",
            port: gw_port,
            ca: pki.join("ca.crt"),
            client_cert: admin(&split_dir),
            headers: vec![],
            pids: vec![gw.id(), cp.id()],
        },
        Target {
            name: "nginx",
            port: nginx_port,
            ca: pki.join("ca.crt"),
            client_cert: None,
            headers: vec![],
            pids: nginx_pids,
        },
        Target {
            name: "kgate-up",
            port: up_port,
            ca: up_dir.join("pki/ca.crt"),
            client_cert: admin(&up_dir),
            headers: vec![],
            pids: vec![up.id()],
        },
    ];

    println!(
        "GET {} with keep-alive, {} s per row, 2 cores shared with the load generator",
        args.path, args.seconds
    );
    println!();
    println!("| front door | concurrency | requests/s | p50 µs | p99 µs | server CPU µs/request | errors |");
    println!("|---|---|---|---|---|---|---|");
    for target in targets {
        print_rows(target, &args).await?;
    }
    // Started last, alone: its nodes and controllers would otherwise add their background work
    // to the other rows' processes' share of the two cores.
    drop((nginx, up, gw, cp));
    let up_cluster = spawn(
        Command::new(&args.kgate)
            .arg("up")
            .arg("--data-dir")
            .arg(&cluster_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{cluster_port}")),
        &tmp.path().join("up-cluster.log"),
    )?;
    wait_for_port(cluster_port).await?;
    // Readiness, and the nodes registered and the controllers started.
    tokio::time::sleep(Duration::from_secs(5)).await;
    print_rows(
        Target {
            name: "kgate-up-cluster",
            port: cluster_port,
            ca: cluster_dir.join("pki/ca.crt"),
            client_cert: admin(&cluster_dir),
            headers: vec![],
            pids: vec![up_cluster.id()],
        },
        &args,
    )
    .await?;
    drop(up_cluster);
    Ok(())
}

/// Measures `target` at each concurrency and prints its rows.
async fn print_rows(target: Target, args: &Args) -> Result<()> {
    let target = Arc::new(target);
    for &c in &args.concurrency {
        let m = measure(target.clone(), &args.path, c, args.seconds)
            .await
            .with_context(|| format!("measuring {} at concurrency {c}", target.name))?;
        let total = m.requests + m.errors;
        let rps = total as f64 / m.elapsed.as_secs_f64();
        let cpu_us = if total > 0 {
            m.cpu_seconds * 1e6 / total as f64
        } else {
            0.0
        };
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.0} | {} |",
            target.name,
            c,
            rps,
            percentile(&m.latencies_us, 0.50),
            percentile(&m.latencies_us, 0.99),
            cpu_us,
            m.errors
        );
    }
    Ok(())
}
