//! Arbitrary bytes as a sealed segment's index file (`data[0]` picks the segment, `data[1]` a
//! first LSN to seek to), as they are and with count, base and checksum repaired: an accepted
//! index re-encodes to the same bytes, and whatever it says, every seek reads exactly the
//! records the segments hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = maos_coord::log::fuzzing::scratch_dir();
    maos_coord::log::fuzzing::index_file(dir.path(), data);
});
