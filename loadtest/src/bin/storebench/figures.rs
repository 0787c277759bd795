//! The measurements, each through the API over TLS as the admin: closed-loop load (creates and
//! gets), large lists (whole and paged), and watch delivery latency to many watchers.

use crate::api::{Api, Conn};
use anyhow::{bail, Context, Result};
use bytes::{Bytes, BytesMut};
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
pub use kgate_loadtest::load::{drive, Load, MakeRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A small, realistic Pod: one container with a port, resources and an environment variable.
pub fn pod(namespace: &str, name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{namespace}","labels":{{"app":"bench","pod-template-hash":"5d8f9c7b6"}}}},"spec":{{"containers":[{{"name":"app","image":"registry.k8s.io/pause:3.10","ports":[{{"containerPort":8080,"protocol":"TCP"}}],"env":[{{"name":"MODE","value":"bench"}}],"resources":{{"requests":{{"cpu":"10m","memory":"16Mi"}},"limits":{{"memory":"32Mi"}}}}}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30}}}}"#
    ))
}

/// A small ConfigMap.
pub fn configmap(namespace: &str, name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","namespace":"{namespace}","labels":{{"app":"bench"}}}},"data":{{"name":"{name}","config.yaml":"log-level: info\nlisten: 0.0.0.0:8080\n"}}}}"#
    ))
}

/// Creates a namespace (already existing is fine).
pub async fn create_namespace(api: &Api, name: &str) -> Result<()> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    let (status, body) = api
        .connect()
        .await?
        .call(Method::POST, "/api/v1/namespaces", Some(body.into()))
        .await?;
    if !status.is_success() && status != http::StatusCode::CONFLICT {
        bail!(
            "creating namespace {name}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// Creates `count` configmaps `cm-0`.. in `namespace`, failing on any error.
pub async fn create_configmaps(
    api: &Api,
    concurrency: usize,
    namespace: &str,
    count: u64,
) -> Result<Load> {
    let ns = namespace.to_owned();
    let make: MakeRequest = Arc::new(move |seq| {
        (
            Method::POST,
            format!("/api/v1/namespaces/{ns}/configmaps"),
            Some(configmap(&ns, &format!("cm-{seq}"))),
        )
    });
    let load = drive(api, &[], concurrency, 0..count, None, make).await?;
    if let Some(error) = &load.first_error {
        bail!(
            "{} of {count} configmaps failed, the first: {error}",
            load.errors
        );
    }
    Ok(load)
}

/// Times of listing one collection, in ms, one per repetition, sorted.
pub struct ListTimes {
    /// One request for the whole collection.
    pub whole_ms: Vec<f64>,
    /// Pages of `limit` followed by `continue` tokens.
    pub paged_ms: Vec<f64>,
    /// The size of the whole list response.
    pub bytes: usize,
}

/// Lists `path` `repeats` times whole and `repeats` times in pages of `page`, on one keep-alive
/// connection, and checks every list returned `expected` items (after the clock stops).
pub async fn list_times(
    api: &Api,
    path: &str,
    expected: usize,
    page: usize,
    repeats: usize,
) -> Result<ListTimes> {
    let mut conn = api.connect().await?;
    let mut times = ListTimes {
        whole_ms: Vec::new(),
        paged_ms: Vec::new(),
        bytes: 0,
    };
    for _ in 0..repeats {
        let start = Instant::now();
        let body = conn.expect(Method::GET, path, None).await?;
        times.whole_ms.push(start.elapsed().as_secs_f64() * 1e3);
        times.bytes = body.len();
        let items = count_items(&body)?;
        if items != expected {
            bail!("listing {path} returned {items} items, not {expected}");
        }
    }
    for _ in 0..repeats {
        let mut pages = Vec::new();
        let mut token: Option<String> = None;
        let start = Instant::now();
        loop {
            let mut url = format!("{path}?limit={page}");
            if let Some(token) = &token {
                url.push_str("&continue=");
                url.extend(percent_encoding::utf8_percent_encode(
                    token,
                    percent_encoding::NON_ALPHANUMERIC,
                ));
            }
            let body = conn.expect(Method::GET, &url, None).await?;
            token = continue_token(&body);
            pages.push(body);
            if token.is_none() {
                break;
            }
            if pages.len() > expected / page.max(1) + 10 {
                bail!("listing {path} in pages of {page} does not end");
            }
        }
        times.paged_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let mut items = 0;
        for body in &pages {
            items += count_items(body)?;
        }
        if items != expected {
            bail!(
                "listing {path} in {} pages of {page} returned {items} items, not {expected}",
                pages.len()
            );
        }
    }
    times.whole_ms.sort_unstable_by(|a, b| a.total_cmp(b));
    times.paged_ms.sort_unstable_by(|a, b| a.total_cmp(b));
    Ok(times)
}

fn count_items(body: &[u8]) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct List {
        items: Vec<serde::de::IgnoredAny>,
    }
    let list: List = serde_json::from_slice(body).context("the list is not a JSON list")?;
    Ok(list.items.len())
}

/// The `metadata.continue` of a list, found without parsing the items: the list metadata comes
/// before them, so only the start of the body is searched.
fn continue_token(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = br#""continue":""#;
    let head = &body[..body.len().min(4096)];
    let start = head.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = head[start..].iter().position(|b| *b == b'"')?;
    let token = std::str::from_utf8(&head[start..start + len]).ok()?;
    (!token.is_empty()).then(|| token.to_owned())
}

/// Watch delivery latencies over every (watcher, event) pair, in µs, sorted.
pub struct WatchTimes {
    /// From the write being sent to the event line arriving at the watcher.
    pub from_sent_us: Vec<u64>,
    /// From the write's response arriving at the writer to the event line arriving at the
    /// watcher: negative when the watcher heard of the write before the writer did.
    pub from_response_us: Vec<i64>,
    /// Pairs whose event arrived before the write's response.
    pub before_response: u64,
    /// Pairs whose event never arrived (within 10 s of the last write).
    pub missing: u64,
}

/// Opens `watchers` watches on the configmaps of `namespace` from its current resourceVersion,
/// then creates `events` configmaps one after another, `spacing` apart, and times each event's
/// arrival at each watcher.
pub async fn watch_times(
    api: &Api,
    namespace: &str,
    watchers: usize,
    events: usize,
    spacing: Duration,
) -> Result<WatchTimes> {
    let collection = format!("/api/v1/namespaces/{namespace}/configmaps");
    let mut writer = api.connect().await?;
    let list = writer
        .expect(Method::GET, &format!("{collection}?limit=1"), None)
        .await?;
    let rv = resource_version(&list)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut readers = Vec::with_capacity(watchers);
    let watch_path = format!("{collection}?watch=true&resourceVersion={rv}");
    for i in 0..watchers {
        let mut conn = api.connect().await?;
        let resp = conn
            .send(Method::GET, &watch_path, None)
            .await
            .with_context(|| format!("opening watch {i}"))?;
        if !resp.status().is_success() {
            bail!("watch {i}: {}", resp.status());
        }
        readers.push(tokio::spawn(read_lines(
            conn,
            resp.into_body(),
            events,
            stop_rx.clone(),
        )));
    }
    // Let every watch register with the store before the first write.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut sent = Vec::with_capacity(events);
    let mut answered = Vec::with_capacity(events);
    for i in 0..events {
        let body = configmap(namespace, &format!("watch-{i}"));
        sent.push(Instant::now());
        writer.expect(Method::POST, &collection, Some(body)).await?;
        answered.push(Instant::now());
        tokio::time::sleep(spacing).await;
    }
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let _ = stop_tx.send(true);
    });

    let mut times = WatchTimes {
        from_response_us: Vec::with_capacity(watchers * events),
        from_sent_us: Vec::with_capacity(watchers * events),
        before_response: 0,
        missing: 0,
    };
    for reader in readers {
        let lines = reader.await.context("a watcher panicked")??;
        let mut seen = vec![false; events];
        for (arrived, line) in lines {
            let Some(i) = added_index(&line)? else {
                continue;
            };
            let Some(slot) = seen.get_mut(i) else {
                continue;
            };
            if std::mem::replace(slot, true) {
                continue;
            }
            let from_response = if arrived < answered[i] {
                times.before_response += 1;
                -(answered[i].duration_since(arrived).as_micros() as i64)
            } else {
                arrived.duration_since(answered[i]).as_micros() as i64
            };
            times.from_response_us.push(from_response);
            times
                .from_sent_us
                .push(arrived.saturating_duration_since(sent[i]).as_micros() as u64);
        }
        times.missing += seen.iter().filter(|s| !**s).count() as u64;
    }
    stopper.abort();
    times.from_response_us.sort_unstable();
    times.from_sent_us.sort_unstable();
    Ok(times)
}

/// Reads a watch body, stamping each complete line with the time its last chunk arrived, until
/// `expected` lines or a stop. Nothing is parsed here, to keep the watcher fast.
async fn read_lines(
    conn: Conn,
    mut body: Incoming,
    expected: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Vec<(Instant, Bytes)>> {
    let mut lines = Vec::with_capacity(expected);
    let mut buf = BytesMut::new();
    while lines.len() < expected {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = stop.changed() => break,
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame.context("reading a watch")?.into_data() else {
            continue;
        };
        let now = Instant::now();
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            lines.push((now, buf.split_to(end + 1).freeze()));
        }
    }
    drop(conn);
    Ok(lines)
}

/// The index `i` of an ADDED event for configmap `watch-<i>`; `None` for any other event.
fn added_index(line: &[u8]) -> Result<Option<usize>> {
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        object: Object,
    }
    #[derive(serde::Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Metadata,
    }
    #[derive(serde::Deserialize, Default)]
    struct Metadata {
        #[serde(default)]
        name: String,
    }
    let event: Event = serde_json::from_slice(line).with_context(|| {
        format!(
            "a watch line is not an event: {}",
            String::from_utf8_lossy(line)
        )
    })?;
    if event.kind != "ADDED" {
        return Ok(None);
    }
    Ok(event
        .object
        .metadata
        .name
        .strip_prefix("watch-")
        .and_then(|i| i.parse().ok()))
}

/// `metadata.resourceVersion` of a list.
fn resource_version(list: &[u8]) -> Result<String> {
    let list: serde_json::Value = serde_json::from_slice(list).context("the list is not JSON")?;
    list.pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .context("the list has no metadata.resourceVersion")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_is_read_from_the_list_metadata() {
        let body = br#"{"kind":"ConfigMapList","metadata":{"resourceVersion":"9","continue":"eyJ2IjoxfQ=="},"items":[]}"#;
        assert_eq!(continue_token(body).as_deref(), Some("eyJ2IjoxfQ=="));
        let last = br#"{"kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[]}"#;
        assert_eq!(continue_token(last), None);
        let empty = br#"{"metadata":{"continue":""},"items":[]}"#;
        assert_eq!(continue_token(empty), None);
    }

    #[test]
    fn added_events_of_watch_objects_are_indexed() -> Result<()> {
        let added = br#"{"type":"ADDED","object":{"metadata":{"name":"watch-17"}}}"#;
        assert_eq!(added_index(added)?, Some(17));
        let modified = br#"{"type":"MODIFIED","object":{"metadata":{"name":"watch-17"}}}"#;
        assert_eq!(added_index(modified)?, None);
        let other = br#"{"type":"ADDED","object":{"metadata":{"name":"cm-1"}}}"#;
        assert_eq!(added_index(other)?, None);
        assert!(added_index(b"not json").is_err());
        Ok(())
    }

    #[test]
    fn manifests_are_json() -> Result<()> {
        let pod: serde_json::Value = serde_json::from_slice(&pod("default", "pod-1"))?;
        assert_eq!(pod["metadata"]["name"], "pod-1");
        let cm: serde_json::Value = serde_json::from_slice(&configmap("ns", "cm-1"))?;
        assert_eq!(
            cm["data"]["config.yaml"],
            "log-level: info\nlisten: 0.0.0.0:8080\n"
        );
        Ok(())
    }
}
