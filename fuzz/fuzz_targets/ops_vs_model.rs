//! Random task commands through the coordinator and through a small model of the task rules;
//! both must agree after every command.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temporary directory");
    maos_coord::coordinator::fuzzing::ops_vs_model(dir.path(), data);
});
