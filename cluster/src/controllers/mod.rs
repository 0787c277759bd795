//! The controllers of kube-controller-manager that a cluster needs to run workloads.

pub mod deployment;
pub mod endpoints;
pub mod gc;
pub mod node_lifecycle;
pub mod replicaset;
pub mod shared_pods;
pub(crate) mod workloads_common;
