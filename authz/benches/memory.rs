//! Memory the RBAC authorizer holds for 10,000 bindings (the workload of `decision.rs`): the
//! bytes allocated and not freed while they are inserted into an authorizer that already holds
//! the bootstrap policy, counted by an instrumented global allocator. The JSON objects are built
//! before counting starts; parsing them is part of what is counted, but what it frees is too.
//! Run with `cargo bench -p kgate-authz --bench memory`.

#[path = "support/workload.rs"]
mod workload;

use kgate_authz::RbacAuthorizer;
use serde_json::Value;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes held after upserting `objects` into `rbac`.
fn held_after_upserting(rbac: &RbacAuthorizer, objects: &[Value]) -> isize {
    let region = Region::new(GLOBAL);
    for o in objects {
        rbac.upsert(o).expect("workload object");
    }
    let change = region.change();
    // stats_alloc already counts a realloc's growth as allocated and its shrinking as freed.
    change.bytes_allocated as isize - change.bytes_deallocated as isize
}

fn main() {
    // `cargo bench` passes `--bench`; this target has no filters.
    let n = 10_000;
    let rbac = RbacAuthorizer::new();
    let bootstrap = workload::bootstrap_objects();
    let baseline = held_after_upserting(&rbac, &bootstrap);
    let bindings = workload::bindings(n);
    let held = held_after_upserting(&rbac, &bindings);
    println!("rbac_memory/bootstrap_policy: {baseline} bytes");
    println!(
        "rbac_memory/bindings/{n}: {held} bytes ({:.1} MiB, {} bytes per binding)",
        held as f64 / (1024.0 * 1024.0),
        held / n as isize
    );
    // Replacing every binding once (a relist) leaves the same amount held: nothing leaks.
    let again = held_after_upserting(&rbac, &bindings);
    println!("rbac_memory/upsert_again/{n}: {again} bytes");
}
