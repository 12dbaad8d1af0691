//! JSON values of every shape (deep, wide, extreme numbers, long and odd strings, empty
//! containers) through set_context, emit_event and task metadata: each call succeeds or is
//! refused as too deep or too large, appending nothing; accepted values read back identical
//! live, after a full replay and from a snapshot.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = maos_coord::log::fuzzing::scratch_dir();
    maos_coord::coordinator::fuzzing::json_values(dir.path(), data);
});
