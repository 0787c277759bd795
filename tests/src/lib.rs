//! Helpers for the end-to-end tests: start kgate, run kubectl.
