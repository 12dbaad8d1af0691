//! Body of the `snapshot_file` fuzz target (`fuzz/fuzz_targets/`), here so that
//! `tests/fuzz_regressions.rs` replays saved inputs through the same code. A panic is how it
//! reports a broken contract, so asserting is the point here.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use super::{decode, read_file, Snapshots, HEADER_LEN};
use crate::format::snapshot_body::{directory_len_of, BLOCK_SIZE, SECTIONS};
use crate::format::{put, u64_at};
use crate::projection::{State, StateImage};
use crate::types::Lsn;

/// Checks `data` as a snapshot file, and then the same bytes with the header's body length and
/// every checksum repaired (so that mutations reach the body decoder):
/// - decoding the bytes and reading the file agree, and an error says what is wrong;
/// - loading the snapshot directory takes a file that reads whole, as the state it describes;
///   it skips one that does not, naming it and why, or (a version-3 snapshot, whose tasks and
///   keys are read on demand) takes it and reading its state whole then fails without a panic;
/// - an accepted image is written again by [`Snapshots::write`] and reads back equal, and the
///   state it describes takes every kind of record without panicking.
///
/// `dir` must be empty; the body runs on a thread with a large stack (a body may nest values
/// as deep as the decoder allows).
///
/// # Panics
/// When the contract is broken: that is the finding.
pub fn snapshot_file(dir: &Path, data: &[u8]) {
    let (dir, data) = (dir.to_owned(), data.to_vec());
    let run = move || {
        check(&dir, &data);
        let repaired = repair(&data);
        if repaired != data {
            check(&dir, &repaired);
        }
    };
    let thread = std::thread::Builder::new().stack_size(64 << 20).spawn(run).expect("spawn");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// `bytes` with the body length and the checksums set to match: those of the header, and for a
/// version-3 body whose directory reads, every block's.
#[must_use]
pub fn repair(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() < HEADER_LEN {
        return out;
    }
    let body_len = (out.len() - HEADER_LEN) as u64;
    let mut body_crc = crc32fast::hash(&out[HEADER_LEN..]);
    if crate::format::u32_at(&out, 8) == 3 {
        if let Ok(dir) = directory_len_of(&out[HEADER_LEN..]) {
            let table = HEADER_LEN + 8 + 16 * SECTIONS + 8;
            let data = HEADER_LEN.saturating_add(dir);
            if data <= out.len()
                && dir == 8 + 16 * SECTIONS + 8 + 4 * (out.len() - data).div_ceil(BLOCK_SIZE as usize)
            {
                let crcs: Vec<u32> = out[data..].chunks(BLOCK_SIZE as usize).map(crc32fast::hash).collect();
                for (i, crc) in crcs.into_iter().enumerate() {
                    put(&mut out, table + 4 * i, &crc.to_le_bytes());
                }
                body_crc = crc32fast::hash(&out[HEADER_LEN..data]);
            }
        }
    }
    put(&mut out, 32, &body_len.to_le_bytes());
    put(&mut out, 40, &body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&out[..44]);
    put(&mut out, 44, &header_crc.to_le_bytes());
    out
}

fn check(dir: &Path, bytes: &[u8]) {
    let snapshots = dir.join("snapshots");
    let _ = std::fs::remove_dir_all(&snapshots);
    std::fs::create_dir_all(&snapshots).expect("snapshot directory");
    let store = Snapshots::new(std::sync::Arc::new(crate::backend::DirBlobs::new(dir)), 2);
    let lsn = u64_at(bytes, 16);
    let path = snapshots.join(format!("{lsn:020}.snap"));
    std::fs::write(&path, bytes).expect("write the snapshot file");

    let decoded = decode(bytes);
    let read = read_file(&path);
    match (&decoded, &read) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "decoding the bytes and reading the file disagree"),
        (Err(a), Err(b)) => assert!(!a.is_empty() && !b.is_empty(), "an error that says nothing"),
        _ => panic!("decoding the bytes and reading the file disagree: {decoded:?} / {read:?}"),
    }

    let (state, skipped) = store.load(Lsn(u64::MAX)).expect("load");
    match (&read, state) {
        (Ok(image), state) if image.next_lsn.get() == lsn => {
            assert!(skipped.is_empty(), "{skipped:?}");
            let state = state.expect("an accepted snapshot is loaded");
            assert_eq!(state.next_lsn, image.next_lsn);
            // Version 3 is read in place, slot by slot; older bodies are decoded into a state
            // (which orders tasks by creation and keeps the first of two with one id).
            if crate::format::u32_at(bytes, 8) == 3 {
                assert!(state.to_image() == *image, "the state loaded on demand reads back another image");
            }
            assert!(state.damage().is_none());
        }
        (_, Some(state)) => {
            // Taken on demand: only what a full read checks beyond the blocks can be wrong.
            assert_eq!(
                crate::format::u32_at(bytes, 8),
                3,
                "a rejected snapshot of an older version was loaded"
            );
            let _ = state.to_image();
        }
        (_, None) => {
            let [skip] = skipped.as_slice() else { panic!("not skipped once: {skipped:?}") };
            assert_eq!(skip.path, path);
            assert!(!skip.reason.is_empty());
        }
    }
    if let Ok(image) = read {
        round_trip(dir, image);
    }
}

/// Writes `image` as a snapshot, reads it back, and replays records of every kind on the state
/// it describes.
fn round_trip(dir: &Path, image: StateImage) {
    let again = dir.join("again");
    let _ = std::fs::remove_dir_all(&again);
    std::fs::create_dir_all(&again).expect("a store directory");
    let blobs = std::sync::Arc::new(crate::backend::DirBlobs::new(&again));
    let path = Snapshots::new(blobs, 2).write(&image).expect("write");
    let back = read_file(&path).expect("a snapshot written from an accepted image reads back");
    // Version 3 holds what a state made from the image holds: tasks in creation order, one
    // entry per id and key, agents, barriers and locks by name.
    let expected = State::from_image(image.clone()).to_image();
    assert_eq!(back, expected, "a snapshot written from an accepted image reads back another");

    let mut state = State::from_image(image);
    let _ = state.to_image();
    let start = state.next_lsn.get();
    for (i, recorded) in crate::model::fuzzing::sample_records().into_iter().enumerate() {
        let lsn = Lsn(start.saturating_add(i as u64));
        state.apply(recorded, lsn, crate::types::Timestamp(i64::try_from(i).unwrap_or(i64::MAX)));
    }
    let _ = state.to_image();
}
