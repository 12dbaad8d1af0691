//! A sound store whose lock file holds arbitrary bytes (`data[0]` bit 1) or the log's own page
//! with words changed: opening fails naming the lock file, or the log holds exactly its records,
//! verifies, and takes an append that reopening reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = maos_coord::log::fuzzing::scratch_dir();
    maos_coord::log::fuzzing::lock_file(dir.path(), data);
});
