//! kgate-controlplane: a compact Kubernetes-compatible API server over a [`store::Store`], and
//! the controllers that run beside it ([`ControlPlane`] owns both).

pub mod apiserver;
mod control_plane;
pub mod controllers;
pub mod resources;
pub mod schema;
pub mod store;

pub use apiserver::{ApiServer, ApiServerError};
pub use control_plane::ControlPlane;
