//! Body of the `index_file` fuzz target: a sealed segment's sparse index file (log-format.md,
//! "Index files") holding arbitrary bytes, as they are and with their checksum repaired.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use super::template::{self, template};
use crate::format;
use crate::log::index::{self, SparseIndex};
use crate::log::RecoveryMode;
use crate::types::Lsn;

const HEADER: usize = 40;

/// Writes the template store into `dir`, replaces the index file of one sealed segment
/// (`data[0]` chooses which; `data[1]` an LSN to seek to first) with `data[2..]` (and then with
/// the same bytes with count, base LSN and checksum repaired), and checks the contract:
/// - the decoder accepts exactly what re-encodes to the same bytes, and loading the file agrees;
/// - whatever the index says, a seek to any LSN of the segment reads exactly the records the
///   segments hold, and so does a full read;
/// - once a reader has read the segment to its end, the index file on disk is a valid one.
///
/// # Panics
/// When the contract is broken: that is the finding.
pub fn index_file(dir: &Path, data: &[u8]) {
    let [which, seek, bytes @ ..] = data else { return };
    let t = template();
    // Every segment but the newest is sealed.
    let sealed = t.segments.len().saturating_sub(1).max(1);
    let Some(&base) = t.segments.get(usize::from(*which) % sealed) else { return };
    check(dir, base, *seek, bytes);
    let repaired = repair(bytes, base);
    if repaired != bytes {
        check(dir, base, *seek, &repaired);
    }
}

/// `bytes` with the entry count set to what its length holds, the base LSN set to `base` and
/// the checksum recomputed, so that mutations reach the checks behind the checksum.
fn repair(bytes: &[u8], base: Lsn) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() < HEADER + 4 {
        return out;
    }
    let entries = (out.len() - HEADER - 4) / 16;
    let Ok(count) = u32::try_from(entries) else { return out };
    out.truncate(HEADER + 16 * entries);
    format::put(&mut out, 12, &count.to_le_bytes());
    format::put(&mut out, 16, &base.get().to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn check(dir: &Path, base: Lsn, seek: u8, bytes: &[u8]) {
    let t = template();
    t.write_to(dir);
    let _ = std::fs::remove_file(dir.join(crate::log::lock_file::LOCK_FILE));
    let segment = dir.join(format::segment_file_name(base));
    let path = index::index_path(&segment);
    std::fs::write(&path, bytes).expect("write the index file");

    let decoded = SparseIndex::decode(bytes, base);
    if let Some(ix) = &decoded {
        assert_eq!(ix.encode(base), bytes, "an accepted index file re-encodes to other bytes");
        assert_eq!(SparseIndex::decode(&ix.encode(base), base).as_ref(), Some(ix));
    }
    assert_eq!(index::load(&segment, base), decoded, "loading the file and decoding its bytes disagree");

    let log = template::open(dir, RecoveryMode::Strict).expect("open the template store");
    // Only seeks into this segment use its index: to each of its records, and to the first of
    // the next segment.
    let end = t.segments.iter().copied().find(|&b| b > base).unwrap_or(log.next_lsn()).get();
    let chosen = base.get() + u64::from(seek) % (end - base.get() + 1);
    for lsn in std::iter::once(chosen).chain(base.get()..=end) {
        let mut reader = log.reader_from(Lsn(lsn)).expect("seek");
        let mut got = Vec::new();
        while let Some(r) = reader.next().expect("read after a seek") {
            got.push((r.lsn.get(), r.kind.get(), r.payload.to_vec()));
            if got.len() == 3 {
                break;
            }
        }
        let mut expected = t.records_from(lsn);
        expected.truncate(3);
        assert!(got == expected, "a seek to LSN {lsn} read other records");
    }
    assert!(template::read_all(&log).expect("read everything") == t.records, "a full read differs");
    let saved = std::fs::read(&path).expect("the index file is there after a full read");
    assert!(SparseIndex::decode(&saved, base).is_some(), "the index file left after a full read is invalid");
}
