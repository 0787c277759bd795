//! kgate-controlplane: a compact Kubernetes-compatible API server over a [`store::Store`].

pub mod resources;
pub mod schema;
pub mod store;
