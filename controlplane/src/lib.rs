//! kgate-controlplane: a compact Kubernetes-compatible API server over a [`store::Store`].

pub mod apiserver;
pub mod controllers;
pub mod resources;
pub mod schema;
pub mod store;

pub use apiserver::{ApiServer, ApiServerError};
