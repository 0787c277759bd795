//! Readiness: `/readyz` is 200 only when every registered check has passed, and names the ones
//! still missing otherwise.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A shared set of named readiness checks.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<String, bool>>>,
}

impl Readiness {
    /// Registers a check that is not yet ready.
    pub fn register(&self, name: &str) {
        self.lock().insert(name.to_owned(), false);
    }

    /// Marks a check ready or not.
    pub fn set(&self, name: &str, ready: bool) {
        self.lock().insert(name.to_owned(), ready);
    }

    /// The names of checks not yet ready; empty means ready.
    pub fn missing(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.missing().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, bool>> {
        // A panic while holding this lock cannot leave the map inconsistent: use it anyway.
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_when_every_check_passed() {
        let r = Readiness::default();
        assert!(r.is_ready());
        r.register("rbac");
        r.register("store");
        assert_eq!(r.missing(), ["rbac", "store"]);
        r.set("rbac", true);
        r.set("store", true);
        assert!(r.is_ready());
    }
}
