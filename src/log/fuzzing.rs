//! Bodies of the fuzz targets (`fuzz/fuzz_targets/`), here so that `tests/fuzz_regressions.rs`
//! replays saved inputs through exactly the same code.
//!
//! The targets for files beside the segments (`lock_file`, `index_file`, `compacted_file`) write
//! a small sound store ([`template`]) around the file they fuzz. A panic is how they report a
//! broken contract, so asserting is the point there.

mod compacted_file;
mod index_file;
mod lock_file;
pub mod template;

pub use compacted_file::{compacted_file, repair as repair_compacted_file};
pub use index_file::index_file;
pub use lock_file::lock_file;

/// A temporary directory for one fuzz input, on a memory filesystem where there is one
/// (`/dev/shm`): the bodies create and sync files, which on a disk costs more than the rest of a
/// run and would cut the executions per second tenfold.
///
/// # Panics
/// When no temporary directory can be created at all.
#[must_use]
pub fn scratch_dir() -> tempfile::TempDir {
    #[allow(clippy::expect_used)] // the fuzz targets cannot run without one
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("a temporary directory")
}

use std::path::Path;

use super::scan::{self, ScanStart};
use super::{Log, RecoveryMode};
use crate::format::{self, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::types::{Lsn, Timestamp};

const MAX_PAYLOAD: u32 = 1 << 16;

/// Decodes `data[8..]` as a frame, a segment header, a compacted-records header and a run of
/// frames, expecting the LSN in `data[..8]`.
pub fn decode_record(data: &[u8]) {
    let lsn = Lsn(format::u64_at(data, 0));
    let rest = data.get(8..).unwrap_or_default();
    let _ = format::decode_frame(rest, lsn, MAX_PAYLOAD);
    let _ = format::decode_frame_after(rest, lsn, MAX_PAYLOAD);
    let _ = SegmentHeader::decode(rest);
    let _ = super::compacted_file::CompactedHeader::decode(rest);
    let start = ScanStart { offset: 0, lsn, time: Timestamp(0), last_frame: 0 };
    let scanned = scan::scan(rest, start, MAX_PAYLOAD, |_, _| {});
    let _ = scan::valid_frame_follows(rest, 0, lsn.next(), MAX_PAYLOAD);
    let _ = scan::nonzero_end(rest, scanned.committed_offset);
}

/// Writes `data` as the only segment of a store in `dir` and as its compacted-records file,
/// opens it in both recovery modes and reads and verifies everything.
pub fn open_segment(dir: &Path, data: &[u8]) {
    let (base, capacity) = match SegmentHeader::decode(data) {
        Ok(h) => (h.base_lsn, h.capacity),
        Err(_) => (Lsn(1), 0),
    };
    // The header's capacity is preallocated on recovery; keep the fuzzer's disk use small.
    if capacity > 1 << 20 || data.len() > 1 << 20 {
        return;
    }
    let name = format::segment_file_name(base);
    if std::fs::write(dir.join(name), data).is_err()
        || std::fs::write(dir.join(super::compacted_file::COMPACTED_FILE), data).is_err()
    {
        return;
    }
    for mode in [RecoveryMode::Strict, RecoveryMode::TruncateTornTail] {
        let _ = std::fs::remove_file(dir.join(super::lock_file::LOCK_FILE));
        #[allow(clippy::cast_possible_truncation)] // a constant: the header is 64 bytes
        let opened = Log::options(dir)
            .segment_size(8192)
            .max_record_size(MAX_PAYLOAD.min(8192 - 2 * SEGMENT_HEADER_LEN as u32))
            .recovery_mode(mode)
            .open();
        if let Ok(log) = opened {
            let _ = log.verify();
            if let Ok(mut reader) = log.reader() {
                while let Ok(Some(_)) = reader.next() {}
            }
            if let Ok(mut reader) = log.audit_reader() {
                while let Ok(Some(_)) = reader.next() {}
            }
        }
    }
}
