//! Decoding arbitrary bytes as a coordination record, directly and through rmp-serde: no panic,
//! and wherever the direct decoder answers, the same record as rmp-serde.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    maos_coord::model::fuzzing::decode_event(data);
});
