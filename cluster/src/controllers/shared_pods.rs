//! One pod watch shared by the controllers, as kube-controller-manager shares one pod informer
//! among its controllers: [`SharedPods`] owns the only `watcher` of Pods (all namespaces) and
//! the only pod cache, a reflector [`Store`], instead of each controller decoding every pod
//! event and holding every pod itself.
//!
//! Every watch event updates the store first and is then handed, as one
//! `Arc<watcher::Event<Pod>>`, to each subscriber through its own bounded channel. Sending waits
//! for room (a slow subscriber holds the watch back rather than missing events), and a
//! subscriber that went away is dropped. Watch errors are logged here and retried with backoff,
//! not forwarded.

use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{stream, Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::watcher::{self, watcher, Event};
use kube::runtime::WatchStreamExt;
use kube::Client;
use std::future::Future;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many events a subscriber may lag behind before the watch waits for it.
const CAPACITY: usize = 1024;

type Sender = mpsc::Sender<Arc<Event<Pod>>>;

/// The shared pod watch and cache; subscribe the consumers, then [`start`](Self::start) it.
pub struct SharedPods {
    client: Client,
    store: Store<Pod>,
    writer: Writer<Pod>,
    subscribers: Vec<Sender>,
}

impl SharedPods {
    /// A pod watch with `client`'s identity (it needs list and watch on pods), not yet started.
    pub fn new(client: Client) -> Self {
        let (store, writer) = reflector::store();
        SharedPods {
            client,
            store,
            writer,
            subscribers: Vec::new(),
        }
    }

    /// Every event of the watch, from the initial list on, after the store has taken it in.
    /// The stream ends when the watch task does.
    pub fn subscribe(&mut self) -> PodEvents {
        let (tx, events) = channel();
        self.subscribers.push(tx);
        events.boxed()
    }

    /// The pod cache (ready once the initial list is in).
    pub fn store(&self) -> Store<Pod> {
        self.store.clone()
    }

    /// Starts the watch; it runs until the task is aborted.
    pub fn start(self) -> JoinHandle<()> {
        let events =
            watcher(Api::<Pod>::all(self.client), watcher::Config::default()).default_backoff();
        tokio::spawn(fan_out(events, self.writer, self.subscribers))
    }
}

/// A subscription to a [`SharedPods`].
pub type PodEvents = BoxStream<'static, Arc<Event<Pod>>>;

/// Spawns a component that follows pods with a [`SharedPods`] of its own (`kgate up` passes
/// one shared by several instead); the watch stops with the component's task.
pub(crate) fn spawn_with_own_pods<F, Fut>(client: Client, run: F) -> JoinHandle<()>
where
    F: FnOnce(Client, Store<Pod>, PodEvents) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut shared = SharedPods::new(client.clone());
    let events = shared.subscribe();
    let pods = shared.store();
    let watch = AbortOnDrop(shared.start());
    tokio::spawn(async move {
        let _watch = watch;
        run(client, pods, events).await;
    })
}

/// Aborts the task when dropped: ties a watch task to the component that started it.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A subscriber's channel: the sending half and the receiving half as a stream.
fn channel() -> (Sender, impl Stream<Item = Arc<Event<Pod>>> + Send + 'static) {
    let (tx, mut rx) = mpsc::channel(CAPACITY);
    (tx, stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Reflects `events` into `writer`, then sends each to every subscriber still there.
async fn fan_out<S>(events: S, writer: Writer<Pod>, mut subscribers: Vec<Sender>)
where
    S: Stream<Item = Result<Event<Pod>, watcher::Error>>,
{
    let mut events = std::pin::pin!(events.reflect(writer));
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => Arc::new(event),
            Err(e) => {
                tracing::warn!(error = %e, "shared pod watch failed; retrying");
                continue;
            }
        };
        let mut open = Vec::with_capacity(subscribers.len());
        for tx in subscribers {
            if tx.send(event.clone()).await.is_ok() {
                open.push(tx);
            }
        }
        subscribers = open;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::ObjectRef;
    use kube::ResourceExt;

    fn pod(name: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.metadata.namespace = Some("default".into());
        pod
    }

    fn name(event: &Event<Pod>) -> String {
        match event {
            Event::Apply(p) | Event::InitApply(p) => format!("apply {}", p.name_any()),
            Event::Delete(p) => format!("delete {}", p.name_any()),
            Event::Init => "init".into(),
            Event::InitDone => "init done".into(),
        }
    }

    /// More events than a channel holds, so a dropped subscriber would block if it were kept.
    fn events() -> Vec<Event<Pod>> {
        let mut events = vec![Event::Init, Event::InitApply(pod("a")), Event::InitDone];
        for i in 0..CAPACITY + 10 {
            events.push(Event::Apply(pod(&format!("p{i}"))));
        }
        events.push(Event::Delete(pod("a")));
        events
    }

    /// Reads `events` to the end, checking the store already shows each apply and delete.
    async fn receive(
        events: impl Stream<Item = Arc<Event<Pod>>>,
        store: Store<Pod>,
    ) -> Vec<String> {
        let mut events = std::pin::pin!(events);
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            match &*event {
                Event::Apply(p) | Event::InitApply(p) if p.name_any() != "a" => {
                    assert!(store.get(&ObjectRef::from_obj(p)).is_some());
                }
                Event::Delete(p) => assert!(store.get(&ObjectRef::from_obj(p)).is_none()),
                _ => {}
            }
            seen.push(name(&event));
        }
        seen
    }

    #[tokio::test]
    async fn every_subscriber_sees_every_event_in_order_after_the_store() {
        let (store, writer) = reflector::store();
        let (tx1, rx1) = channel();
        let (tx2, rx2) = channel();
        let (tx3, rx3) = channel();
        drop(rx3);
        let input = events();
        let expected: Vec<String> = input.iter().map(name).collect();
        let watch = stream::iter(input.into_iter().map(Ok))
            .chain(stream::iter([Err(watcher::Error::NoResourceVersion)]));
        let task = tokio::spawn(fan_out(watch, writer, vec![tx1, tx3, tx2]));
        let (seen1, seen2) = tokio::join!(receive(rx1, store.clone()), receive(rx2, store.clone()));
        task.await.unwrap();
        assert_eq!(seen1, expected);
        assert_eq!(seen2, expected);
        assert_eq!(store.state().len(), CAPACITY + 10);
        assert!(store.get(&ObjectRef::new("a").within("default")).is_none());
    }
}
