//! Readiness: `/readyz` is 200 only when every registered check has passed. Each check keeps
//! why it fails (a check that only knows "not yet" says `not ready`), for the log only: the
//! health endpoint answers anyone and prints check names alone (see [`crate::layers::health`]).
//! A check that starts failing, changes its reason or recovers is logged once, with the reason.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A shared set of named readiness checks.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// Check name to its problem; `None` once it passed.
    checks: Arc<Mutex<BTreeMap<String, Option<String>>>>,
}

const NOT_READY: &str = "not ready";

impl Readiness {
    /// Registers a check that is not yet ready.
    pub fn register(&self, name: &str) {
        self.lock()
            .insert(name.to_owned(), Some(NOT_READY.to_owned()));
    }

    /// Marks a check ready or not.
    pub fn set(&self, name: &str, ready: bool) {
        let problem = (!ready).then(|| NOT_READY.to_owned());
        self.lock().insert(name.to_owned(), problem);
    }

    /// Marks a check ready (`None`) or failing, with why. A change is logged (the reason goes
    /// to the log, never to `/readyz`).
    pub fn set_problem(&self, name: &str, problem: Option<String>) {
        let previous = self.lock().insert(name.to_owned(), problem.clone());
        match (previous.flatten(), problem) {
            (before, Some(reason)) if before.as_deref() != Some(reason.as_str()) => {
                tracing::warn!(check = name, %reason, "readiness check failing");
            }
            (Some(_), None) => tracing::info!(check = name, "readiness check passed"),
            _ => {}
        }
    }

    /// Drops the checks under `prefix` that `keep` does not name (a reloaded configuration
    /// removed what they checked).
    pub fn retain_under(&self, prefix: &str, keep: &[String]) {
        self.lock()
            .retain(|name, _| !name.starts_with(prefix) || keep.contains(name));
    }

    /// The checks not yet ready, each with its problem.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter_map(|(name, problem)| Some((name.clone(), problem.clone()?)))
            .collect()
    }

    /// Every check, by name, with its problem (`None` once it passed).
    pub fn checks(&self) -> Vec<(String, Option<String>)> {
        self.lock()
            .iter()
            .map(|(name, problem)| (name.clone(), problem.clone()))
            .collect()
    }

    /// The names of checks not yet ready; empty means ready.
    pub fn missing(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, problem)| problem.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.missing().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Option<String>>> {
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

    #[test]
    fn failures_carry_their_problem_and_reloads_drop_stale_checks() {
        let r = Readiness::default();
        r.set_problem("oidc:jwt[0]", Some("discovery: connection refused".into()));
        r.set_problem("oidc:jwt[1]", None);
        r.register("rbac");
        assert_eq!(
            r.failures(),
            [
                (
                    "oidc:jwt[0]".to_owned(),
                    "discovery: connection refused".to_owned()
                ),
                ("rbac".to_owned(), "not ready".to_owned()),
            ]
        );
        assert_eq!(
            r.checks(),
            [
                (
                    "oidc:jwt[0]".to_owned(),
                    Some("discovery: connection refused".to_owned())
                ),
                ("oidc:jwt[1]".to_owned(), None),
                ("rbac".to_owned(), Some("not ready".to_owned())),
            ]
        );
        r.retain_under("oidc:", &["oidc:jwt[1]".to_owned()]);
        assert_eq!(r.missing(), ["rbac"]);
    }
}
