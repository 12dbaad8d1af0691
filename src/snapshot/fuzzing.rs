//! Body of the `snapshot_file` fuzz target (`fuzz/fuzz_targets/`), here so that
//! `tests/fuzz_regressions.rs` replays saved inputs through the same code. A panic is how it
//! reports a broken contract, so asserting is the point here.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use super::{decode, read_file, Snapshots, HEADER_LEN};
use crate::format::{put, u64_at};
use crate::projection::{State, StateImage};
use crate::types::Lsn;

/// Checks `data` as a snapshot file, and then the same bytes with the header's body length and
/// both checksums repaired (so that mutations reach the body decoder):
/// - decoding the bytes and reading the file agree, and an error says what is wrong;
/// - loading the snapshot directory takes the file or skips it, naming it and why;
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

/// `bytes` with the body length and both checksums of the header set to match.
#[must_use]
pub fn repair(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() < HEADER_LEN {
        return out;
    }
    let body_len = (out.len() - HEADER_LEN) as u64;
    let body_crc = crc32fast::hash(&out[HEADER_LEN..]);
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
    match &read {
        Ok(image) if image.next_lsn.get() == lsn => {
            assert!(skipped.is_empty(), "{skipped:?}");
            let state = state.expect("an accepted snapshot is loaded");
            assert_eq!(state.next_lsn, image.next_lsn);
        }
        _ => {
            assert!(state.is_none(), "a rejected snapshot was loaded");
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
    assert_eq!(back, image, "a snapshot written from an accepted image reads back another");

    let mut state = State::from_image(image);
    let _ = state.to_image();
    let start = state.next_lsn.get();
    for (i, recorded) in crate::model::fuzzing::sample_records().into_iter().enumerate() {
        let lsn = Lsn(start.saturating_add(i as u64));
        state.apply(recorded, lsn, crate::types::Timestamp(i64::try_from(i).unwrap_or(i64::MAX)));
    }
    let _ = state.to_image();
}
