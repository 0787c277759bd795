//! The `quantity` target: see [`kgate_fuzz::quantity`]. A libFuzzer target under `cargo fuzz`; built
//! otherwise, it replays the files and folders given as arguments.

#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kgate_fuzz::quantity::run(data);
});

#[cfg(not(fuzzing))]
fn main() {
    kgate_fuzz::replay_main(kgate_fuzz::quantity::run);
}
