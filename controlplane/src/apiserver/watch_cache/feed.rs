//! A feed: the one store watch of a resource, its ring buffer and its subscribers' channels,
//! and the task that dispatches the store's events to them (see [`super`] for the guarantees).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::events::{FieldValues, SharedEvent, Update, Updates, WatchCacheConfig, WatchCacheError};
use crate::store::{Revision, StoreError, WatchStream};

/// The shared watch of one resource.
pub(super) struct Feed {
    /// The resource's collection prefix (for logs).
    resource: String,
    state: Mutex<FeedState>,
    /// Wakes the feed task when its last subscriber leaves, to start the idle countdown.
    left: Notify,
}

struct FeedState {
    /// False once the store watch ended or the feed went idle: join a new feed instead.
    running: bool,
    /// The buffer holds every event with a revision in `(floor, progress]`.
    floor: Revision,
    /// The last revision dispatched (or the start revision).
    progress: Revision,
    buffer: VecDeque<Arc<SharedEvent>>,
    subscribers: Subscribers,
    next_id: u64,
    /// Since when the feed has had no subscriber.
    empty_since: Option<Instant>,
}

/// Which events of the feed a subscriber wants.
#[derive(Clone)]
pub(super) struct Interest {
    /// Its key prefix (a namespace's collection, or the whole resource).
    pub(super) prefix: String,
    /// The resource's trigger field and the one value of it the watch requires.
    pub(super) trigger: Option<(&'static str, String)>,
}

impl Interest {
    fn wants(&self, event: &mut Routed<'_>) -> bool {
        event.event.kv.key.starts_with(&self.prefix)
            && self
                .trigger
                .as_ref()
                .is_none_or(|(field, value)| event.has(field, value))
    }
}

/// An event as the subscribers' interests test it: the trigger field's values are looked up once
/// for all of them, not once per subscriber.
struct Routed<'a> {
    event: &'a SharedEvent,
    /// The field looked up and its values (`None`: an object did not decode).
    values: Option<(&'static str, Option<FieldValues<'a>>)>,
}

impl<'a> Routed<'a> {
    fn new(event: &'a SharedEvent) -> Self {
        Routed {
            event,
            values: None,
        }
    }

    /// Whether `field` had or has `value`; true for an event whose objects do not decode.
    fn has(&mut self, field: &'static str, value: &str) -> bool {
        self.values(field).is_none_or(|v| v.contains(value))
    }

    /// The values of `field` after and before the change; `None` when an object does not decode.
    fn values(&mut self, field: &'static str) -> Option<&FieldValues<'a>> {
        if self
            .values
            .as_ref()
            .is_none_or(|(looked_up, _)| *looked_up != field)
        {
            self.values = Some((field, self.event.field_values(field)));
        }
        self.values.as_ref().and_then(|(_, values)| values.as_ref())
    }
}

struct Subscriber {
    interest: Interest,
    /// Events at or below this revision are not for this subscriber (it joined past `progress`).
    after: Revision,
    tx: mpsc::Sender<Update>,
    /// Why its stream ends; set before `tx` is dropped.
    end: Arc<OnceLock<WatchCacheError>>,
    /// The revision its stream has covered (its last event or progress): below the feed's
    /// progress, it is owed a `Progress`.
    covered: Revision,
}

/// The subscribers, indexed so that an event is offered only to those that may want it: a
/// thousand node agents' watches are not each tested for every other node's pod.
#[derive(Default)]
struct Subscribers {
    by_id: HashMap<u64, Subscriber>,
    /// Those without a trigger value: offered every event.
    untriggered: Vec<u64>,
    /// Those with one, by trigger field and value: offered the events whose object had or has
    /// that value (all of that field's, for an event whose objects do not decode).
    triggered: HashMap<&'static str, HashMap<String, Vec<u64>>>,
}

impl Subscribers {
    fn insert(&mut self, id: u64, subscriber: Subscriber) {
        match &subscriber.interest.trigger {
            None => self.untriggered.push(id),
            Some((field, value)) => self
                .triggered
                .entry(field)
                .or_default()
                .entry(value.clone())
                .or_default()
                .push(id),
        }
        self.by_id.insert(id, subscriber);
    }

    fn remove(&mut self, id: u64) -> Option<Subscriber> {
        let subscriber = self.by_id.remove(&id)?;
        match &subscriber.interest.trigger {
            None => self.untriggered.retain(|other| *other != id),
            Some((field, value)) => {
                if let Some(values) = self.triggered.get_mut(field) {
                    if let Some(ids) = values.get_mut(value.as_str()) {
                        ids.retain(|other| *other != id);
                        if ids.is_empty() {
                            values.remove(value.as_str());
                        }
                    }
                    if values.is_empty() {
                        self.triggered.remove(field);
                    }
                }
            }
        }
        Some(subscriber)
    }

    fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The ids of the subscribers `event` may concern; each at most once.
    fn candidates(&self, event: &mut Routed<'_>) -> Vec<u64> {
        let mut ids = self.untriggered.clone();
        for (field, values) in &self.triggered {
            match event.values(field) {
                Some(found) => {
                    let previous = found.previous.as_deref().filter(|p| *p != found.current);
                    for value in std::iter::once(found.current.as_ref()).chain(previous) {
                        ids.extend(values.get(value).into_iter().flatten());
                    }
                }
                // Every watch of the field must hear of an event it cannot route.
                None => ids.extend(values.values().flatten()),
            }
        }
        ids
    }

    fn drain(&mut self) -> impl Iterator<Item = Subscriber> + '_ {
        self.untriggered.clear();
        self.triggered.clear();
        self.by_id.drain().map(|(_, subscriber)| subscriber)
    }
}

pub(super) enum Join {
    Joined(Updates),
    TooOld,
    Stopped,
}

/// A subscriber whose channel was full when an event was offered.
struct Blocked {
    id: u64,
    tx: mpsc::Sender<Update>,
}

impl Feed {
    /// A feed of `stream` (the store watch of `resource` after `start`), its task, and its first
    /// subscriber.
    pub(super) fn start(
        resource: String,
        start: Revision,
        stream: WatchStream,
        interest: &Interest,
        after: Revision,
        config: &WatchCacheConfig,
    ) -> (Arc<Feed>, Updates) {
        let feed = Arc::new(Feed::new(resource, start));
        let first = {
            let mut state = feed.lock();
            feed.register(&mut state, interest, after, config.subscriber_capacity)
        };
        tokio::spawn(run(feed.clone(), stream, config.clone()));
        (feed, first.into_stream())
    }

    fn new(resource: String, start: Revision) -> Feed {
        Feed {
            resource,
            state: Mutex::new(FeedState {
                running: true,
                floor: start,
                progress: start,
                buffer: VecDeque::new(),
                subscribers: Subscribers::default(),
                next_id: 0,
                empty_since: None,
            }),
            left: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FeedState> {
        // The state stays consistent at every unlock, so a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes to a running feed, if `after` is not older than its buffer.
    pub(super) fn join(
        self: &Arc<Self>,
        interest: &Interest,
        after: Revision,
        capacity: usize,
    ) -> Join {
        let mut state = self.lock();
        if !state.running {
            Join::Stopped
        } else if after < state.floor {
            Join::TooOld
        } else {
            Join::Joined(
                self.register(&mut state, interest, after, capacity)
                    .into_stream(),
            )
        }
    }

    /// Adds a subscriber: the buffered events after `after` first, then live ones. Both happen
    /// under the state lock that dispatch takes, so none is missed or sent twice.
    fn register(
        self: &Arc<Self>,
        state: &mut FeedState,
        interest: &Interest,
        after: Revision,
        capacity: usize,
    ) -> Subscription {
        let first = state.buffer.partition_point(|e| e.revision() <= after);
        let backlog = state
            .buffer
            .range(first..)
            .filter(|e| interest.wants(&mut Routed::new(e)))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let end = Arc::new(OnceLock::new());
        let id = state.next_id;
        state.next_id += 1;
        state.subscribers.insert(
            id,
            Subscriber {
                interest: interest.clone(),
                after,
                tx,
                end: end.clone(),
                // The stream starts with the buffered events and the feed's progress.
                covered: after.max(state.progress),
            },
        );
        state.empty_since = None;
        Subscription {
            feed: self.clone(),
            id,
            backlog,
            progress: (state.progress > after).then_some(state.progress),
            rx,
            end,
            done: false,
        }
    }

    fn leave(&self, id: u64) {
        let mut state = self.lock();
        state.subscribers.remove(id);
        if state.subscribers.is_empty() && state.empty_since.is_none() {
            state.empty_since = Some(Instant::now());
            self.left.notify_one();
        }
    }

    /// Buffers `event` and queues it for every matching subscriber with room; returns those
    /// without room.
    fn offer(&self, event: &Arc<SharedEvent>, buffer: usize) -> Vec<Blocked> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let revision = event.revision();
        state.progress = revision;
        state.buffer.push_back(event.clone());
        while state.buffer.len() > buffer {
            if let Some(old) = state.buffer.pop_front() {
                state.floor = old.revision();
            }
        }
        let mut blocked = Vec::new();
        let mut closed = Vec::new();
        let mut routed = Routed::new(event);
        for id in state.subscribers.candidates(&mut routed) {
            let Some(sub) = state.subscribers.by_id.get_mut(&id) else {
                continue;
            };
            if revision <= sub.after || !sub.interest.wants(&mut routed) {
                continue;
            }
            match sub.tx.try_send(Update::Event(event.clone())) {
                Ok(()) => sub.covered = revision,
                Err(TrySendError::Full(_)) => {
                    // Sent by `dispatch`, or the subscriber is cut off.
                    sub.covered = revision;
                    blocked.push(Blocked {
                        id,
                        tx: sub.tx.clone(),
                    });
                }
                Err(TrySendError::Closed(_)) => closed.push(id),
            }
        }
        for id in closed {
            state.subscribers.remove(id);
        }
        blocked
    }

    /// Sends `event` to each subscriber `offer` found full, waiting at most what the budget
    /// allows; cuts off those still full. The feed dispatches nothing else meanwhile, so order
    /// holds for everyone.
    async fn dispatch(&self, event: Arc<SharedEvent>, buffer: usize, budget: &mut TimeBudget) {
        let blocked = self.offer(&event, buffer);
        if blocked.is_empty() {
            return;
        }
        let allowed = budget.take();
        let started = Instant::now();
        let sends = blocked.iter().map(|b| {
            let update = Update::Event(event.clone());
            tokio::time::timeout(allowed, b.tx.send(update))
        });
        let results = futures::future::join_all(sends).await;
        budget.give_back(allowed.saturating_sub(started.elapsed()));
        let slow: Vec<u64> = blocked
            .iter()
            .zip(results)
            .filter(|(_, sent)| sent.is_err())
            .map(|(b, _)| b.id)
            .collect();
        if slow.is_empty() {
            return;
        }
        let mut state = self.lock();
        for id in &slow {
            if let Some(sub) = state.subscribers.remove(*id) {
                // Set before the sender drops: the stream reads it after the queued events.
                let _ = sub.end.set(WatchCacheError::Lagged);
            }
        }
        tracing::info!(
            resource = %self.resource,
            count = slow.len(),
            "watch cache: closed watchers that did not keep up"
        );
    }

    /// Sends `Progress` to the subscribers owed one and with room; a full one has events queued,
    /// and the next flush after them carries the progress.
    fn flush_progress(&self) {
        let mut guard = self.lock();
        let state = &mut *guard;
        let progress = state.progress;
        let mut closed = Vec::new();
        for (id, sub) in &mut state.subscribers.by_id {
            if sub.covered >= progress {
                continue;
            }
            match sub.tx.try_send(Update::Progress(progress)) {
                Ok(()) => sub.covered = progress,
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Closed(_)) => closed.push(*id),
            }
        }
        for id in closed {
            state.subscribers.remove(id);
        }
    }

    /// Resolves when the feed has had no subscriber for `idle` (maybe spuriously: check with
    /// [`Feed::stop_if_idle`]).
    async fn idle_elapsed(&self, idle: Duration) {
        loop {
            let since = self.lock().empty_since;
            match since {
                Some(since) => return tokio::time::sleep_until(since + idle).await,
                // `notify_one` keeps a permit, so a leave between the check and here is not lost.
                None => self.left.notified().await,
            }
        }
    }

    fn stop_if_idle(&self, idle: Duration) -> bool {
        let mut state = self.lock();
        let idle = state.subscribers.is_empty()
            && state
                .empty_since
                .is_some_and(|since| since + idle <= Instant::now());
        if idle {
            state.running = false;
            state.buffer = VecDeque::new();
        }
        idle
    }

    /// Ends every subscriber with `reason` (each after its queued events) and the feed.
    fn shutdown(&self, reason: WatchCacheError) {
        let mut state = self.lock();
        if !state.running {
            return;
        }
        state.running = false;
        state.buffer = VecDeque::new();
        for sub in state.subscribers.drain() {
            let _ = sub.end.set(reason.clone());
        }
    }
}

/// The feed task: dispatches the store's events until the store watch ends or the feed idles.
async fn run(feed: Arc<Feed>, mut stream: WatchStream, config: WatchCacheConfig) {
    // Should this task end any other way (a panic, the runtime shutting down), the subscribers
    // still see their streams end rather than hang.
    let _guard = ShutdownOnDrop(feed.clone());
    let mut budget = TimeBudget::new(config.dispatch_budget);
    // Progress rounds are paced: at the end of a burst if the last round is old enough, else
    // when it is.
    let mut progress_owed = false;
    let mut last_progress: Option<Instant> = None;
    let error = loop {
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None => {
                // A burst is over: tell the subscribers it did not concern how far it went.
                let due = last_progress.map(|at| at + config.progress_every);
                if progress_owed && due.is_none_or(|due| due <= Instant::now()) {
                    feed.flush_progress();
                    progress_owed = false;
                    last_progress = Some(Instant::now());
                }
                let flush_at = due.filter(|_| progress_owed);
                tokio::select! {
                    next = stream.next() => next,
                    () = sleep_until(flush_at) => {
                        feed.flush_progress();
                        progress_owed = false;
                        last_progress = Some(Instant::now());
                        continue;
                    }
                    () = feed.idle_elapsed(config.idle) => {
                        if feed.stop_if_idle(config.idle) {
                            tracing::debug!(
                                resource = %feed.resource,
                                "watch cache: idle feed stopped"
                            );
                            return;
                        }
                        continue;
                    }
                }
            }
        };
        match next {
            Some(Ok(event)) => {
                progress_owed = true;
                feed.dispatch(
                    Arc::new(SharedEvent::new(event)),
                    config.buffer,
                    &mut budget,
                )
                .await
            }
            Some(Err(error)) => break error,
            None => break StoreError::Unavailable("the store's watch stream ended".into()),
        }
    };
    tracing::warn!(
        resource = %feed.resource,
        error = %error,
        "watch cache: the store watch ended; closing its watchers"
    );
    feed.shutdown(WatchCacheError::Store(error));
}

/// Sleeps until `at`; never with `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct ShutdownOnDrop(Arc<Feed>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let stopped = StoreError::Unavailable("the watch cache stopped".into());
        self.0.shutdown(WatchCacheError::Store(stopped));
    }
}

/// kube's `timeBudget`: how long dispatch may wait for full subscribers. It refills at a tenth of
/// the time passed, up to its maximum, so one slow watcher cannot slow the feed down for long.
struct TimeBudget {
    available: Duration,
    max: Duration,
    refilled: Instant,
}

impl TimeBudget {
    fn new(max: Duration) -> TimeBudget {
        TimeBudget {
            available: max,
            max,
            refilled: Instant::now(),
        }
    }

    fn take(&mut self) -> Duration {
        let now = Instant::now();
        self.available = (self.available + (now - self.refilled) / 10).min(self.max);
        self.refilled = now;
        std::mem::take(&mut self.available)
    }

    fn give_back(&mut self, unused: Duration) {
        self.available = (self.available + unused).min(self.max);
    }
}

/// One subscriber's end: the buffered backlog, then its channel, then why it ended.
struct Subscription {
    feed: Arc<Feed>,
    id: u64,
    backlog: VecDeque<Arc<SharedEvent>>,
    /// The feed's progress when it joined, if past its revision.
    progress: Option<Revision>,
    rx: mpsc::Receiver<Update>,
    end: Arc<OnceLock<WatchCacheError>>,
    done: bool,
}

impl Subscription {
    fn into_stream(self) -> Updates {
        futures::stream::unfold(self, |mut sub| async move {
            let item = sub.next().await?;
            Some((item, sub))
        })
        .boxed()
    }

    async fn next(&mut self) -> Option<Result<Update, WatchCacheError>> {
        if self.done {
            return None;
        }
        if let Some(event) = self.backlog.pop_front() {
            return Some(Ok(Update::Event(event)));
        }
        if let Some(progress) = self.progress.take() {
            return Some(Ok(Update::Progress(progress)));
        }
        if let Some(update) = self.rx.recv().await {
            return Some(Ok(update));
        }
        self.done = true;
        let error = self.end.get().cloned().unwrap_or_else(|| {
            WatchCacheError::Store(StoreError::Unavailable("the watch cache stopped".into()))
        });
        Some(Err(error))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.leave(self.id);
    }
}
