//! Arbitrary bytes as a snapshot file, as they are and with the header's length and checksums
//! repaired: decoding the bytes and reading the file agree; loading skips a bad file naming it
//! and why; an accepted image writes and reads back equal, and replay on it does not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = maos_coord::log::fuzzing::scratch_dir();
    maos_coord::snapshot::fuzzing::snapshot_file(dir.path(), data);
});
