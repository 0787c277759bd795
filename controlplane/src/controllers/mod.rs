//! The controllers that run inside the control plane, beside the API server: today the
//! ClusterRole aggregation controller ([`aggregation`]).
//!
//! They work on the [`Store`] directly (list, watch, compare-and-swap), as trusted parts of the
//! server. [`Controllers`] owns their tasks: it is kept by the API server, and dropping it (with
//! the last handle of the API server) stops them. A controller holds the store only while it
//! works, never while it waits, so that closing the store after the server is not held up.

pub mod aggregation;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::store::Store;

/// The running controllers; dropping this stops them.
#[derive(Debug)]
pub struct Controllers {
    tasks: Vec<JoinHandle<()>>,
}

impl Controllers {
    /// Starts every controller over `store`, and returns once each has made its first pass (so
    /// that what the server serves from its first request is already reconciled).
    pub async fn start(store: &Arc<dyn Store>) -> Controllers {
        let tasks = vec![aggregation::spawn(Arc::downgrade(store)).await];
        Controllers { tasks }
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
