//! Decoding arbitrary bytes as a record frame, a run of frames and a segment header: no panic,
//! no hang, no allocation driven by the input. The first 8 bytes choose the expected LSN.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maos_coord::log::fuzzing::decode_record(data);
});
