//! The API client of the harness: the shared one of the load harnesses' library.

pub use kgate_loadtest::api::{Api, Conn};
