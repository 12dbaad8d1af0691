//! Arbitrary bytes as the compacted-records file beside a sound log, as they are and with every
//! checksum and the length repaired: errors name the file; an accepted file rewrites to the same
//! body; audits read its records and then the log from the end of its range.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = maos_coord::log::fuzzing::scratch_dir();
    maos_coord::log::fuzzing::compacted_file(dir.path(), data);
});
