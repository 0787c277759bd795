//! The scheduling queue, as kube-scheduler's: an active FIFO of pods to try, and the pods that
//! wait, either after an error (back off 1 s, doubling to 10 s) or because no node fit
//! (unschedulable). Unschedulable pods come back when the cluster changes in a way that could
//! make room ([`Queue::cluster_changed`]: a node added or changed, a bound pod gone), but
//! not sooner than their backoff; without such a change they are retried on a slower backoff
//! (5 s doubling to 60 s).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::info::PodKey;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const INITIAL_IDLE_RETRY: Duration = Duration::from_secs(5);
const MAX_IDLE_RETRY: Duration = Duration::from_secs(60);

fn doubling(initial: Duration, max: Duration, attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(16);
    initial.saturating_mul(1 << shift).min(max)
}

#[derive(Debug, Clone)]
struct Waiting {
    due: Instant,
    seq: u64,
    unschedulable: bool,
}

#[derive(Debug, Clone, Copy)]
struct History {
    attempts: u32,
    last: Instant,
}

/// Pods to schedule, by key.
#[derive(Debug, Default)]
pub struct Queue {
    active: VecDeque<PodKey>,
    in_active: HashSet<PodKey>,
    waiting: HashMap<PodKey, Waiting>,
    by_due: BTreeMap<(Instant, u64), PodKey>,
    history: HashMap<PodKey, History>,
    seq: u64,
}

impl Queue {
    /// Queues a new pod (no-op if it is queued or waiting already).
    pub fn add(&mut self, key: &str) {
        if self.in_active.contains(key) || self.waiting.contains_key(key) {
            return;
        }
        self.push_active(key.to_owned());
    }

    /// The pod changed (e.g. its tolerations): try it again now if it was unschedulable.
    pub fn pod_updated(&mut self, key: &str) {
        if self.waiting.get(key).is_some_and(|w| w.unschedulable) {
            self.unwait(key);
            self.push_active(key.to_owned());
        } else {
            self.add(key);
        }
    }

    fn push_active(&mut self, key: PodKey) {
        if self.in_active.insert(key.clone()) {
            self.active.push_back(key);
        }
    }

    fn unwait(&mut self, key: &str) -> Option<Waiting> {
        let waiting = self.waiting.remove(key)?;
        self.by_due.remove(&(waiting.due, waiting.seq));
        Some(waiting)
    }

    fn wait(&mut self, key: &str, due: Instant, unschedulable: bool) {
        self.unwait(key);
        self.seq += 1;
        let seq = self.seq;
        self.by_due.insert((due, seq), key.to_owned());
        self.waiting.insert(
            key.to_owned(),
            Waiting {
                due,
                seq,
                unschedulable,
            },
        );
    }

    /// The next pod to try.
    pub fn pop(&mut self) -> Option<PodKey> {
        let key = self.active.pop_front()?;
        self.in_active.remove(&key);
        Some(key)
    }

    /// Whether a pod is ready to be tried.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// A try failed: no node fit (`unschedulable`) or an API error.
    pub fn failed(&mut self, key: &str, unschedulable: bool, now: Instant) {
        let history = self.history.entry(key.to_owned()).or_insert(History {
            attempts: 0,
            last: now,
        });
        history.attempts += 1;
        history.last = now;
        let attempts = history.attempts;
        let delay = if unschedulable {
            doubling(INITIAL_IDLE_RETRY, MAX_IDLE_RETRY, attempts)
        } else {
            doubling(INITIAL_BACKOFF, MAX_BACKOFF, attempts)
        };
        self.wait(key, now + delay, unschedulable);
    }

    /// The cluster changed so that unschedulable pods might fit: each comes back once its
    /// backoff since the last try has passed.
    pub fn cluster_changed(&mut self, now: Instant) {
        let moves: Vec<(PodKey, Instant)> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.unschedulable)
            .filter_map(|(key, w)| {
                let history = self.history.get(key)?;
                let earliest =
                    history.last + doubling(INITIAL_BACKOFF, MAX_BACKOFF, history.attempts);
                let due = earliest.max(now);
                (due < w.due).then(|| (key.clone(), due))
            })
            .collect();
        for (key, due) in moves {
            self.wait(&key, due, true);
        }
        self.release(now);
    }

    /// Moves the waiting pods whose time has come to the active queue.
    pub fn release(&mut self, now: Instant) {
        while let Some(entry) = self.by_due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.waiting.remove(&key);
            self.push_active(key);
        }
    }

    /// When the next waiting pod is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.by_due.keys().next().map(|(due, _)| *due)
    }

    /// The pod is bound or gone: forget it entirely.
    pub fn remove(&mut self, key: &str) {
        if self.in_active.remove(key) {
            self.active.retain(|k| k != key);
        }
        self.unwait(key);
        self.history.remove(key);
    }

    /// The pod was bound: forget its history (it is in no queue while bound).
    pub fn succeeded(&mut self, key: &str) {
        self.history.remove(key);
    }

    /// Whether the pod is queued or waiting.
    pub fn contains(&self, key: &str) -> bool {
        self.in_active.contains(key) || self.waiting.contains_key(key)
    }

    /// How many pods are queued or waiting.
    pub fn len(&self) -> usize {
        self.active.len() + self.waiting.len()
    }

    /// Whether no pod is queued or waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_without_duplicates() {
        let mut q = Queue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn errors_back_off_and_come_back() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("a");
        q.pop();
        q.failed("a", false, t0);
        q.add("a"); // a watch update while waiting does not skip the backoff
        assert!(!q.has_active());
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        q.release(t0 + Duration::from_millis(999));
        assert!(!q.has_active());
        q.release(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("a"));
        q.failed("a", false, t0 + Duration::from_secs(1));
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(3)));
    }

    #[test]
    fn unschedulable_pods_return_on_cluster_change_after_backoff() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("a");
        q.pop();
        q.failed("a", true, t0);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(5)));
        // Too early: it waits for the end of its 1 s backoff, not the 5 s idle retry.
        q.cluster_changed(t0 + Duration::from_millis(100));
        assert!(!q.has_active());
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(1)));
        q.cluster_changed(t0 + Duration::from_secs(2));
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert!(q.is_empty());
    }

    #[test]
    fn pod_update_retries_an_unschedulable_pod_now() {
        let mut q = Queue::default();
        q.add("a");
        q.pop();
        q.failed("a", true, Instant::now());
        q.pod_updated("a");
        assert_eq!(q.pop().as_deref(), Some("a"));
    }

    #[test]
    fn remove_forgets_everywhere() {
        let mut q = Queue::default();
        q.add("a");
        q.add("b");
        q.remove("a");
        q.failed("b", true, Instant::now());
        q.remove("b");
        assert!(q.is_empty());
        assert_eq!(q.next_due(), None);
        assert!(!q.contains("a"));
    }
}
