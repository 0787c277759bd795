//! The load and the clock: creating the pods `pod-0`.. as fast as keep-alive connections allow,
//! stamping when each create was sent; and one watch on the namespace's pods stamping, for each
//! pod, when `spec.nodeName` first appears (scheduled) and when `status.phase` first is
//! `Running`.

use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use http::Method;
use http_body_util::BodyExt;
use kgate_loadtest::api::{Api, Conn};
use serde::Deserialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The name of pod number `seq`.
fn pod_name(seq: usize) -> String {
    format!("pod-{seq}")
}

/// The number of a pod named by [`pod_name`].
fn pod_seq(name: &str) -> Option<usize> {
    name.strip_prefix("pod-")?.parse().ok()
}

/// A small pod: one container, no resource requests (any node with a free pod slot fits it).
fn pod(namespace: &str, seq: usize) -> Bytes {
    let name = pod_name(seq);
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","labels":{{"app":"clusterbench"}}}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.10"}}]}}}}"#
    ))
}

/// The outcome of the creates.
pub struct Creates {
    /// When the create of each pod was sent; `None` where it failed.
    pub sent: Vec<Option<Instant>>,
    pub ok: usize,
    pub errors: usize,
    pub first_error: Option<String>,
    /// The first create sent and the last answer received.
    pub first_sent: Instant,
    pub last_answer: Instant,
}

impl Creates {
    pub fn per_second(&self) -> f64 {
        let secs = self
            .last_answer
            .saturating_duration_since(self.first_sent)
            .as_secs_f64();
        self.ok as f64 / secs.max(1e-9)
    }
}

/// Creates `pods` pods in `namespace` from `concurrency` keep-alive connections (opened first),
/// each issuing its next create as soon as the previous one is answered. `created` counts the
/// successes as they come (for progress lines).
pub async fn create(
    api: &Api,
    namespace: &str,
    pods: usize,
    concurrency: usize,
    created: Arc<AtomicUsize>,
) -> Result<Creates> {
    let mut conns = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        conns.push(api.connect().await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let path: Arc<str> = format!("/api/v1/namespaces/{namespace}/pods").into();
    let namespace: Arc<str> = namespace.into();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let (next, path, namespace, created) = (
                next.clone(),
                path.clone(),
                namespace.clone(),
                created.clone(),
            );
            tokio::spawn(
                async move { creator(conn, &next, pods, &path, &namespace, &created).await },
            )
        })
        .collect();
    let mut out = Creates {
        sent: vec![None; pods],
        ok: 0,
        errors: 0,
        first_error: None,
        first_sent: Instant::now(),
        last_answer: Instant::now(),
    };
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    for task in tasks {
        let part = task.await.context("a creating task panicked")??;
        for (seq, sent) in part.sent {
            out.sent[seq] = Some(sent);
            out.ok += 1;
        }
        out.errors += part.errors;
        if out.first_error.is_none() {
            out.first_error = part.first_error;
        }
        first = first.into_iter().chain(part.first_sent).min();
        last = last.into_iter().chain(part.last_answer).max();
    }
    out.first_sent = first.unwrap_or(out.first_sent);
    out.last_answer = last.unwrap_or(out.last_answer);
    Ok(out)
}

/// What one connection's creates gave.
struct CreatorOut {
    /// (pod number, when its create was sent) of the pods created.
    sent: Vec<(usize, Instant)>,
    errors: usize,
    first_error: Option<String>,
    first_sent: Option<Instant>,
    last_answer: Option<Instant>,
}

async fn creator(
    mut conn: Conn,
    next: &AtomicUsize,
    pods: usize,
    path: &str,
    namespace: &str,
    created: &AtomicUsize,
) -> Result<CreatorOut> {
    let mut out = CreatorOut {
        sent: Vec::new(),
        errors: 0,
        first_error: None,
        first_sent: None,
        last_answer: None,
    };
    loop {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        if seq >= pods {
            return Ok(out);
        }
        let body = pod(namespace, seq);
        let sent = Instant::now();
        out.first_sent.get_or_insert(sent);
        let (status, answer) = conn.call(Method::POST, path, Some(body)).await?;
        out.last_answer = Some(Instant::now());
        if status.is_success() {
            out.sent.push((seq, sent));
            created.fetch_add(1, Ordering::Relaxed);
        } else {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| {
                format!(
                    "POST {path} ({}): {status}: {}",
                    pod_name(seq),
                    String::from_utf8_lossy(&answer)
                )
            });
        }
    }
}

/// What the watch saw, per pod number.
pub struct Stamps {
    /// When `spec.nodeName` was first seen set.
    pub scheduled: Vec<Option<Instant>>,
    /// When `status.phase` was first seen `Running`.
    pub running: Vec<Option<Instant>>,
    scheduled_count: usize,
    running_count: usize,
    /// Watches reopened after the server ended one.
    pub reconnects: u32,
    /// Relists after the watch's resourceVersion was too old (410): the pods found scheduled or
    /// Running then are stamped with the relist's time.
    pub relists: u32,
    /// The deadline passed before every created pod was Running.
    pub timed_out: bool,
}

impl Stamps {
    fn new(pods: usize) -> Self {
        Self {
            scheduled: vec![None; pods],
            running: vec![None; pods],
            scheduled_count: 0,
            running_count: 0,
            reconnects: 0,
            relists: 0,
            timed_out: false,
        }
    }

    pub fn scheduled_count(&self) -> usize {
        self.scheduled_count
    }

    pub fn running_count(&self) -> usize {
        self.running_count
    }

    /// Records what one pod's state says, at `now`, unless already recorded.
    fn see(&mut self, pod: &PodView, now: Instant) {
        let Some(seq) = pod_seq(&pod.metadata.name) else {
            return;
        };
        if seq >= self.scheduled.len() {
            return;
        }
        if pod.spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
            && self.scheduled[seq].is_none()
        {
            self.scheduled[seq] = Some(now);
            self.scheduled_count += 1;
        }
        if pod.status.get("phase").and_then(|p| p.as_str()) == Some("Running")
            && self.running[seq].is_none()
        {
            // A pod seen Running unbound (never, with a real node agent) counts as scheduled then.
            if self.scheduled[seq].is_none() {
                self.scheduled[seq] = Some(now);
                self.scheduled_count += 1;
            }
            self.running[seq] = Some(now);
            self.running_count += 1;
        }
    }
}

/// The fields read from a watch event's object: a Pod, or the Status of an ERROR event (whose
/// `status` is a string, hence a JSON value here: one parse fits both).
#[derive(Deserialize, Default)]
struct PodView {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: serde_json::Value,
    /// The HTTP code of an ERROR event's Status.
    #[serde(default)]
    code: Option<u16>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "resourceVersion")]
    resource_version: String,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    object: PodView,
}

#[derive(Deserialize)]
struct PodList {
    metadata: Meta,
    #[serde(default)]
    items: Vec<PodView>,
}

/// The watch, running in its own task until every created pod is Running or the deadline.
pub struct Watcher {
    task: JoinHandle<Result<Stamps>>,
    /// How many pods were created, once known: the watch ends when that many are Running.
    target: watch::Sender<Option<usize>>,
}

impl Watcher {
    /// Lists the pods of `namespace` and watches them from the list's resourceVersion; the
    /// watch is open (its response headers received) when this returns. Progress lines go to
    /// stderr every 5 s, with `created` as the creates count.
    pub async fn start(
        api: &Api,
        namespace: &str,
        pods: usize,
        deadline: Instant,
        created: Arc<AtomicUsize>,
    ) -> Result<Self> {
        let mut stamps = Stamps::new(pods);
        let collection = format!("/api/v1/namespaces/{namespace}/pods");
        let rv = relist(api, &collection, &mut stamps).await?;
        let stream = open(api, &collection, &rv).await?;
        let (target, target_rx) = watch::channel(None);
        let state = WatchState {
            api: api.clone(),
            collection,
            rv,
            stamps,
            deadline,
            created,
        };
        let task = tokio::spawn(state.run(stream, target_rx));
        Ok(Self { task, target })
    }

    /// Tells the watch how many pods were created and waits until they are all Running (or
    /// the deadline).
    pub async fn finish(self, created: usize) -> Result<Stamps> {
        let _ = self.target.send(Some(created));
        self.task.await.context("the watch task panicked")?
    }
}

/// An open watch: its streaming body, and the connection it came on (kept while it streams).
struct Stream {
    body: hyper::body::Incoming,
    _conn: Conn,
}

/// Opens a watch from `rv`.
async fn open(api: &Api, collection: &str, rv: &str) -> Result<Stream> {
    let mut conn = api.connect().await?;
    // The server would end a watch after its own random time; ask for longer than any run.
    let path = format!("{collection}?watch=true&resourceVersion={rv}&timeoutSeconds=3600");
    let resp = conn.send(Method::GET, &path, None).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(Stream {
        body: resp.into_body(),
        _conn: conn,
    })
}

/// Lists the collection, stamps what it shows with the current time, and returns the list's
/// resourceVersion.
async fn relist(api: &Api, collection: &str, stamps: &mut Stamps) -> Result<String> {
    let body = api
        .connect()
        .await?
        .expect(Method::GET, collection, None)
        .await?;
    let now = Instant::now();
    let list: PodList = serde_json::from_slice(&body).context("the pod list is not JSON")?;
    for pod in &list.items {
        stamps.see(pod, now);
    }
    if list.metadata.resource_version.is_empty() {
        bail!("the pod list of {collection} has no resourceVersion");
    }
    Ok(list.metadata.resource_version)
}

struct WatchState {
    api: Api,
    collection: String,
    /// The last resourceVersion seen, to reopen the watch from.
    rv: String,
    stamps: Stamps,
    deadline: Instant,
    created: Arc<AtomicUsize>,
}

/// What an event line asks of the watch loop.
enum Next {
    Continue,
    /// 410 Gone: the resourceVersion is too old; relist.
    Relist,
}

impl WatchState {
    async fn run(
        mut self,
        mut stream: Stream,
        mut target: watch::Receiver<Option<usize>>,
    ) -> Result<Stamps> {
        let mut progress = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(5),
            Duration::from_secs(5),
        );
        let mut buf = BytesMut::new();
        loop {
            if target
                .borrow()
                .is_some_and(|t| self.stamps.running_count >= t)
            {
                return Ok(self.stamps);
            }
            let frame = tokio::select! {
                frame = stream.body.frame() => frame,
                changed = target.changed() => {
                    if changed.is_err() {
                        bail!("the watch's owner went away");
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(self.deadline.into()) => {
                    self.stamps.timed_out = true;
                    return Ok(self.stamps);
                }
                _ = progress.tick() => {
                    eprintln!(
                        "  {} created, {} scheduled, {} Running",
                        self.created.load(Ordering::Relaxed),
                        self.stamps.scheduled_count,
                        self.stamps.running_count
                    );
                    continue;
                }
            };
            let data = match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                // The server ended the watch, or the connection broke: reopen from the last
                // resourceVersion seen.
                Some(Err(_)) | None => {
                    self.stamps.reconnects += 1;
                    if self.stamps.reconnects > 100 {
                        bail!("the pod watch ended more than 100 times");
                    }
                    buf.clear();
                    stream = open(&self.api, &self.collection, &self.rv).await?;
                    continue;
                }
            };
            let now = Instant::now();
            buf.extend_from_slice(&data);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line = buf.split_to(end + 1);
                match apply(&mut self.stamps, &mut self.rv, &line, now)? {
                    Next::Continue => {}
                    Next::Relist => {
                        self.stamps.relists += 1;
                        if self.stamps.relists > 10 {
                            bail!("the pod watch expired more than 10 times");
                        }
                        buf.clear();
                        self.rv = relist(&self.api, &self.collection, &mut self.stamps).await?;
                        stream = open(&self.api, &self.collection, &self.rv).await?;
                        break;
                    }
                }
            }
        }
    }
}

/// Stamps what one event line shows, and moves `rv` to its object's resourceVersion.
fn apply(stamps: &mut Stamps, rv: &mut String, line: &[u8], now: Instant) -> Result<Next> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Next::Continue);
    }
    let event: Event = serde_json::from_slice(line).with_context(|| {
        format!(
            "a watch line is not an event: {}",
            String::from_utf8_lossy(line)
        )
    })?;
    let pod = event.object;
    if event.kind == "ERROR" {
        if pod.code == Some(410) {
            return Ok(Next::Relist);
        }
        bail!("the pod watch failed: {}", String::from_utf8_lossy(line));
    }
    if event.kind == "ADDED" || event.kind == "MODIFIED" {
        stamps.see(&pod, now);
    }
    if !pod.metadata.resource_version.is_empty() {
        *rv = pod.metadata.resource_version;
    }
    Ok(Next::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_numbered_by_name() {
        assert_eq!(pod_seq(&pod_name(42)), Some(42));
        assert_eq!(pod_seq("web-1"), None);
        let manifest: serde_json::Value = serde_json::from_slice(&pod("bench", 7)).unwrap();
        assert_eq!(manifest["metadata"]["name"], "pod-7");
        assert!(manifest["spec"]["containers"][0]["resources"].is_null());
    }

    #[test]
    fn stamps_record_the_first_binding_and_the_first_running() {
        let mut stamps = Stamps::new(2);
        let view = |json: &str| -> PodView { serde_json::from_str(json).unwrap() };
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        stamps.see(&view(r#"{"metadata":{"name":"pod-1"},"spec":{}}"#), t0);
        assert_eq!(stamps.scheduled_count(), 0);
        stamps.see(
            &view(r#"{"metadata":{"name":"pod-1"},"spec":{"nodeName":"n1"}}"#),
            t0,
        );
        stamps.see(
            &view(r#"{"metadata":{"name":"pod-1"},"spec":{"nodeName":"n1"},"status":{"phase":"Running"}}"#),
            t1,
        );
        stamps.see(
            &view(r#"{"metadata":{"name":"pod-1"},"spec":{"nodeName":"n1"},"status":{"phase":"Running"}}"#),
            t1 + Duration::from_secs(1),
        );
        // Not ours, or out of range: ignored.
        stamps.see(
            &view(r#"{"metadata":{"name":"pod-9"},"spec":{"nodeName":"n1"}}"#),
            t1,
        );
        stamps.see(
            &view(r#"{"metadata":{"name":"x"},"spec":{"nodeName":"n1"}}"#),
            t1,
        );
        assert_eq!(stamps.scheduled, vec![None, Some(t0)]);
        assert_eq!(stamps.running, vec![None, Some(t1)]);
        assert_eq!((stamps.scheduled_count(), stamps.running_count()), (1, 1));
    }

    #[test]
    fn events_are_parsed_and_gone_asks_for_a_relist() -> Result<()> {
        let mut stamps = Stamps::new(1);
        let mut rv = "1".to_owned();
        let now = Instant::now();
        let line = br#"{"type":"MODIFIED","object":{"metadata":{"name":"pod-0","resourceVersion":"7"},"spec":{"nodeName":"n"}}}
"#;
        assert!(matches!(
            apply(&mut stamps, &mut rv, line, now)?,
            Next::Continue
        ));
        assert_eq!(rv, "7");
        assert_eq!(stamps.scheduled_count(), 1);
        let gone = br#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","reason":"Expired","code":410}}"#;
        assert!(matches!(
            apply(&mut stamps, &mut rv, gone, now)?,
            Next::Relist
        ));
        let other = br#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","code":500}}"#;
        assert!(apply(&mut stamps, &mut rv, other, now).is_err());
        assert!(apply(&mut stamps, &mut rv, b"garbage", now).is_err());
        assert!(matches!(
            apply(&mut stamps, &mut rv, b"\n", now)?,
            Next::Continue
        ));
        Ok(())
    }
}
