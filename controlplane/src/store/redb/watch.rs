//! Watch streams: replay from the event log, then live events from the writer's broadcast.
//!
//! The stream subscribes to the broadcast *before* it reads the log, so every revision committed
//! after the replay's snapshot arrives live; live events at or below the last revision already
//! covered are dropped. That gives no gap and no duplicate. A watcher that falls behind the
//! broadcast (it lagged) is not dropped: it subscribes again and re-reads the missed revisions
//! from the log. Only if those have been compacted meanwhile does the stream end with
//! `Compacted`, which the API turns into 410 Gone and clients answer by relisting.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use ::redb::Database;
use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};

use super::read::log_chunk;
use super::writer::Batch;
use crate::store::{Revision, StoreError, WatchEvent, WatchStream};

/// Log entries read per replay step; bounds memory and how long one read transaction lives.
const REPLAY_CHUNK: usize = 512;

struct Watch {
    db: Weak<Database>,
    sender: broadcast::WeakSender<Batch>,
    rx: broadcast::Receiver<Batch>,
    prefix: String,
    /// Every revision up to here has been delivered or skipped as outside the prefix.
    pos: Revision,
    ready: VecDeque<WatchEvent>,
    replaying: bool,
    done: bool,
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store was closed".into())
}

impl Watch {
    /// Reads the next chunk of the log after `pos`; leaves replay when it reached the latest.
    async fn replay(&mut self) -> Result<(), StoreError> {
        let db = self.db.upgrade().ok_or_else(closed)?;
        let (prefix, after) = (self.prefix.clone(), self.pos);
        let chunk =
            tokio::task::spawn_blocking(move || log_chunk(&db, &prefix, after, REPLAY_CHUNK))
                .await
                .map_err(|e| StoreError::Backend(format!("watch replay task failed: {e}")))??;
        self.pos = chunk.scanned_to;
        self.ready.extend(chunk.events);
        if chunk.scanned_to >= chunk.current {
            self.replaying = false;
        }
        Ok(())
    }

    /// Waits for the next committed batch and keeps its new events under the prefix.
    async fn live(&mut self) -> Result<(), StoreError> {
        match self.rx.recv().await {
            Ok(batch) => {
                for event in batch.iter() {
                    let rev = event.revision();
                    if rev <= self.pos {
                        continue; // already replayed
                    }
                    if rev != self.pos + 1 {
                        // Cannot happen with subscribe-before-replay; if it does, the log has it.
                        self.replaying = true;
                        return Ok(());
                    }
                    self.pos = rev;
                    if event.kv.key.starts_with(&self.prefix) {
                        self.ready.push_back(event.clone());
                    }
                }
                Ok(())
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, prefix = %self.prefix, "slow watcher catches up from the log");
                let sender = self.sender.upgrade().ok_or_else(closed)?;
                self.rx = sender.subscribe();
                self.replaying = true;
                Ok(())
            }
            Err(RecvError::Closed) => Err(closed()),
        }
    }

    async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let step = if self.replaying {
                self.replay().await
            } else {
                self.live().await
            };
            if let Err(error) = step {
                self.done = true;
                return Some(Err(error));
            }
        }
    }
}

/// Starts a watch of `prefix` after revision `after`. The first replay step runs here, so a
/// compacted start revision fails the call itself rather than the stream.
pub(super) async fn start(
    db: &Arc<Database>,
    sender: &broadcast::WeakSender<Batch>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StoreError> {
    let rx = sender.upgrade().ok_or_else(closed)?.subscribe();
    let mut watch = Watch {
        db: Arc::downgrade(db),
        sender: sender.clone(),
        rx,
        prefix: prefix.to_owned(),
        pos: after.max(0),
        ready: VecDeque::new(),
        replaying: true,
        done: false,
    };
    watch.replay().await?;
    Ok(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next().await?;
        Some((item, watch))
    })
    .boxed())
}
