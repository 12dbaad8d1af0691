//! Arbitrary bytes as a durable subscription's cursor file, as they are and with the checksum
//! repaired: refused as `CorruptCursor` naming the file, or written again reading back the same
//! (the same bytes for version 2).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = maos_coord::log::fuzzing::scratch_dir();
    maos_coord::subscription::fuzzing::cursor_file(dir.path(), data);
});
