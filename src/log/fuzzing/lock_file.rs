//! Body of the `lock_file` fuzz target: a store whose segments are sound and whose lock file
//! (`log.lock`, log-format.md "Lock file") holds arbitrary bytes, or the page the log wrote with
//! some of its words changed.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use super::template::{self, template, Template, KIND};
use crate::error::Error;
use crate::log::lock_file::{LOCK_FILE, LOCK_FILE_LEN};
use crate::log::RecoveryMode;
use crate::types::RecordKind;

/// Writes the template store into `dir` with a lock file made from `data`, opens it and checks
/// the contract: opening fails with an error naming the lock file, or the log holds exactly the
/// template's records, verifies, and takes an append that a second open reads back.
///
/// `data[0]`: bit 0 chooses strict recovery; bit 1 takes `data[1..]` as the whole lock file
/// (any length), otherwise the log's own page is edited by the operations in `data[1..]`
/// (`edit`, below).
///
/// # Panics
/// When the contract is broken: that is the finding.
pub fn lock_file(dir: &Path, data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let t = template();
    t.write_to(dir);
    let page = if flags & 2 != 0 { rest.to_vec() } else { edit(t, rest) };
    let path = dir.join(LOCK_FILE);
    std::fs::write(&path, &page).expect("write the lock file");
    let mode = if flags & 1 != 0 { RecoveryMode::Strict } else { RecoveryMode::TruncateTornTail };
    let log = match template::open(dir, mode) {
        Ok(log) => log,
        Err(Error::CorruptLockFile { path: named, reason }) => {
            assert_eq!(named, path, "{reason}");
            assert!(!reason.is_empty());
            return;
        }
        Err(Error::UnsupportedVersion { path: named, .. }) => {
            assert_eq!(named, path);
            return;
        }
        // A lock page of this boot that says records were synced which the segments lack is
        // evidence of lost acknowledged records: reporting that, naming the segment, offset
        // and LSN, is the answer, never cutting.
        Err(Error::Corruption { reason: crate::error::FrameError::MissingDurable { .. }, .. }) => return,
        Err(e) => panic!("a store with sound segments and this lock file does not open: {e}"),
    };
    let records = template::read_all(&log).expect("read the log");
    assert!(records == t.records, "the lock file changed what the log holds: {} records", records.len());
    log.verify().expect("verify");
    let kind = RecordKind::new(KIND).expect("record kind");
    let lsn = log.append(kind, b"after").expect("append").get();
    drop(log);
    let log = template::open(dir, RecoveryMode::Strict).expect("open again");
    let mut expected = t.records.clone();
    expected.push((lsn, KIND, b"after".to_vec()));
    assert!(template::read_all(&log).expect("read again") == expected, "the appended record reads back");
    log.verify().expect("verify again");
}

/// The log's own lock page with words changed. Operations of 2 bytes or more, until `ops` runs
/// out: `op % 4` (high bits: the word index, modulo 11)
/// - 0: add the next byte (signed) to the word, times 8 for words that hold offsets;
/// - 1: set the word to one of the template's landmarks (segment bases, LSNs, frame offsets);
/// - 2: set the word to the next 8 bytes;
/// - 3: toggle the bit chosen by the next byte.
///
/// Bytes 88.. stay as written (zero) unless the page is cut: an operation on word 11 cuts the
/// page to a multiple of 8 bytes chosen by the next byte.
fn edit(t: &Template, ops: &[u8]) -> Vec<u8> {
    let mut page = t.lock.clone();
    let mut ops = ops.iter().copied();
    let landmarks: Vec<u64> = t
        .segments
        .iter()
        .map(|b| b.get())
        .chain(t.frames.iter().flat_map(|&(_, lsn, offset)| [lsn.get(), lsn.get() + 1, offset]))
        .collect();
    while let (Some(op), Some(arg)) = (ops.next(), ops.next()) {
        let word = usize::from(op >> 2) % 12;
        if word == 11 {
            page.truncate(usize::from(arg) * 8 % LOCK_FILE_LEN);
            continue;
        }
        let at = word * 8;
        let Some(bytes) = page.get_mut(at..at + 8) else { continue };
        let old = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let new = match op % 4 {
            0 => {
                let scale = if matches!(word, 6 | 7 | 10) { 8 } else { 1 };
                old.wrapping_add_signed(i64::from(arg.cast_signed()) * scale)
            }
            1 => landmarks.get(usize::from(arg) % landmarks.len().max(1)).copied().unwrap_or(0),
            2 => {
                let mut v = [arg, 0, 0, 0, 0, 0, 0, 0];
                for b in v.iter_mut().skip(1) {
                    *b = ops.next().unwrap_or(0);
                }
                u64::from_le_bytes(v)
            }
            _ => old ^ (1 << (arg % 64)),
        };
        bytes.copy_from_slice(&new.to_le_bytes());
    }
    page
}
