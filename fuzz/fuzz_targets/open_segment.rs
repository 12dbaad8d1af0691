//! Opening and recovering a store whose newest segment holds arbitrary bytes, then reading and
//! verifying everything: no panic, no hang, no unbounded allocation; errors are fine.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temporary directory");
    maos_coord::log::fuzzing::open_segment(dir.path(), data);
});
