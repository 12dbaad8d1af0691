//! Body of the `cursor_file` fuzz target: a durable subscription's cursor file (log-format.md,
//! "Cursor files") holding arbitrary bytes, as they are and with their checksum repaired.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use super::cursor::{read as read_cursor, write as write_cursor};
use crate::backend::{BlobSpace, BlobStore, DirBlobs};
use crate::error::Error;
use crate::format::{put, u32_at};

/// Writes `data` (then `data` with its checksum repaired for the version it names) as a cursor
/// file in `dir` and reads it: an error is `CorruptCursor` naming the file, and an accepted
/// cursor is written again, reading back the same (the same bytes, for a version-2 file).
///
/// # Panics
/// When the contract is broken: that is the finding.
pub fn cursor_file(dir: &Path, data: &[u8]) {
    check(dir, data);
    let repaired = repair(data);
    if repaired != data {
        check(dir, &repaired);
    }
}

/// `bytes` with the checksum of the version at bytes 8..12 (1 or 2) recomputed.
#[must_use]
pub fn repair(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let crc_at = match u32_at(bytes, 8) {
        1 => 24,
        2 => 32,
        _ => return out,
    };
    if out.len() >= crc_at + 4 {
        let crc = crc32fast::hash(&out[..crc_at]);
        put(&mut out, crc_at, &crc.to_le_bytes());
    }
    out
}

fn check(dir: &Path, bytes: &[u8]) {
    let blobs = DirBlobs::new(dir);
    let name = "6167656e74.6f7264657273.cursor";
    let path = blobs.location(BlobSpace::Cursors, name);
    std::fs::create_dir_all(blobs.space_location(BlobSpace::Cursors)).expect("cursor directory");
    std::fs::write(&path, bytes).expect("write the cursor file");
    let state = match read_cursor(&blobs, name) {
        Ok(Some(state)) => state,
        Ok(None) => panic!("the cursor file is there"),
        Err(Error::CorruptCursor { path: named, reason }) => {
            assert_eq!(named, path);
            assert!(!reason.is_empty());
            let message = Error::CorruptCursor { path: named, reason }.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            return;
        }
        Err(e) => panic!("reading a cursor file fails otherwise: {e}"),
    };
    let again = blobs.location(BlobSpace::Cursors, "again.cursor");
    write_cursor(&blobs, "again.cursor", state).expect("write the cursor again");
    assert_eq!(
        read_cursor(&blobs, "again.cursor").expect("read it again"),
        Some(state),
        "a cursor written again reads back another"
    );
    let written = std::fs::read(&again).expect("read the written bytes");
    if u32_at(bytes, 8) == 2 {
        assert_eq!(written, bytes, "an accepted version-2 cursor file is written again as other bytes");
    }
}
