//! kgate-cluster: the parts of the cluster that are clients of the API, as in Kubernetes: the
//! scheduler ([`scheduler`]), the controllers ([`controllers`]) and the simulated nodes
//! ([`nodes`]). Each works only through the API (kube-rs watches, reflectors and controllers,
//! `pods/binding`, status subresources), never by reaching into the store, so it sees what any
//! other client sees and is held to RBAC like one.
//!
//! Each component is started with a [`kube::Client`] and runs until its task is aborted; a
//! failed watch or request is logged and retried, never the end of the component.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod controllers;
pub mod nodes;
pub mod scheduler;
