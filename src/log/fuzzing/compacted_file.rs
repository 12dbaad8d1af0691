//! Body of the `compacted_file` fuzz target: the compacted-records file (log-format.md,
//! "Compacted records file") holding arbitrary bytes, as they are and with its checksums and
//! length repaired, beside a sound log.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use super::template::{self, template, MAX_RECORD};
use crate::error::Error;
use crate::format::{self, FRAME_HEADER_LEN};
use crate::log::compacted_file::{CompactedFile, CompactedWriter, COMPACTED_FILE, COMPACTED_HEADER_LEN};
use crate::log::{Record, RecoveryMode};
use crate::types::{Lsn, RecordKind, Timestamp};

type Owned = (u64, u16, Vec<u8>);

/// Writes the template store into `dir` with `data` (then `data` repaired: [`repair`]) as its
/// compacted-records file and checks the contract:
/// - opening the file fails naming it, or every record reads, or reading stops at an error
///   naming the file and an offset;
/// - a file whose records all read is written again by [`CompactedWriter`] with the same
///   header fields and the same body bytes, and reads back the same;
/// - the audit reader and verification accept a sound file whose range ends within the log,
///   reading its records and then the log from the end of the range; any other file fails both,
///   naming it; the log proper reads the same either way.
///
/// # Panics
/// When the contract is broken: that is the finding.
pub fn compacted_file(dir: &Path, data: &[u8]) {
    check(dir, data);
    let repaired = repair(data);
    if repaired != data {
        check(dir, &repaired);
    }
}

/// `bytes` with every frame's checksum, the header's body length and its checksum recomputed
/// (frames are found by their length fields), so that mutations reach the checks behind them.
#[must_use]
pub fn repair(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if out.len() < COMPACTED_HEADER_LEN {
        return out;
    }
    let mut at = COMPACTED_HEADER_LEN;
    while let Some(frame) = out.get_mut(at..) {
        if frame.len() < FRAME_HEADER_LEN {
            break;
        }
        let len = format::encoded_frame_len(frame);
        let Some(frame) = frame.get_mut(..len) else { break };
        let lsn = Lsn(format::u64_at(frame, 8));
        let time = Timestamp(format::u64_at(frame, 16).cast_signed());
        let flags = frame[26];
        format::finalize_frame(frame, lsn, time, flags);
        at += len;
    }
    let body_len = (out.len() - COMPACTED_HEADER_LEN) as u64;
    format::put(&mut out, 40, &body_len.to_le_bytes());
    let crc = crc32fast::hash(&out[..60]);
    format::put(&mut out, 60, &crc.to_le_bytes());
    out
}

fn check(dir: &Path, bytes: &[u8]) {
    let t = template();
    t.write_to(dir);
    let _ = std::fs::remove_file(dir.join(crate::log::lock_file::LOCK_FILE));
    let path = dir.join(COMPACTED_FILE);
    std::fs::write(&path, bytes).expect("write the compacted-records file");
    let names_the_file = |e: &Error| {
        let message = e.to_string();
        assert!(message.contains(COMPACTED_FILE), "an error that does not name the file: {message}");
    };

    let kept = match CompactedFile::open(dir, MAX_RECORD) {
        Ok(None) => panic!("the file is there"),
        Err(e) => {
            names_the_file(&e);
            None
        }
        Ok(Some(file)) => {
            let (mut records, mut times) = (Vec::new(), Vec::new());
            let mut failed = None;
            for r in file.records() {
                match r {
                    Ok(r) => {
                        records.push((r.lsn.get(), r.kind.get(), r.payload.to_vec()));
                        times.push(r.timestamp);
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if let Some(e) = failed {
                names_the_file(&e);
                assert!(matches!(e, Error::Corruption { .. }), "{e}");
                None
            } else {
                let header = *file.header();
                rewrite(dir, bytes, &header, &records, &times);
                Some((header.end, records))
            }
        }
    };

    let log = template::open(dir, RecoveryMode::Strict).expect("open the template store");
    assert!(template::read_all(&log).expect("read the log") == t.records, "the log proper changed");
    let audited = audit(&log);
    let verified = log.verify();
    match kept {
        // A range past the log's end: the file belongs to another store.
        Some((end, records)) if end <= log.next_lsn() => {
            let first = t.records.first().map_or(1, |r| r.0);
            let mut expected = records;
            expected.extend(t.records_from(end.get().max(first)));
            assert!(audited.expect("an audit") == expected, "the audit trail differs");
            verified.expect("verify a store with a sound compacted-records file");
        }
        _ => {
            names_the_file(&audited.expect_err("an audit over a damaged compacted-records file"));
            names_the_file(&verified.expect_err("verifying a damaged compacted-records file"));
        }
    }
}

/// Writes the records of an accepted file again, and checks that the new file has the same
/// header fields (but its time) and body, and reads back the same.
fn rewrite(
    dir: &Path,
    bytes: &[u8],
    header: &crate::log::compacted_file::CompactedHeader,
    records: &[Owned],
    times: &[Timestamp],
) {
    let again = dir.join("again");
    std::fs::create_dir_all(&again).expect("create a directory");
    let mut writer = CompactedWriter::create(&again, header.first).expect("create");
    for ((lsn, kind, payload), &timestamp) in records.iter().zip(times) {
        let kind = RecordKind::new(*kind).expect("a kind that was read");
        let record = Record { lsn: Lsn(*lsn), timestamp, kind, payload };
        writer.push(&record).expect("write a record that was read");
    }
    writer.install(header.end).expect("install");
    let written = std::fs::read(again.join(COMPACTED_FILE)).expect("read the rewritten file");
    let file =
        CompactedFile::open(&again, MAX_RECORD).expect("open the rewritten file").expect("it is there");
    let back = *file.header();
    assert_eq!(
        (back.first, back.end, back.records, back.body_len),
        (header.first, header.end, header.records, header.body_len)
    );
    let read: Vec<Owned> = file
        .records()
        .map(|r| r.map(|r| (r.lsn.get(), r.kind.get(), r.payload.to_vec())))
        .collect::<crate::Result<_>>()
        .expect("read the rewritten file");
    assert!(read == records, "the rewritten file reads back other records");
    let body = |b: &[u8]| b.get(COMPACTED_HEADER_LEN..).unwrap_or_default().to_vec();
    assert!(body(&written) == body(bytes), "the rewritten file has another body");
    std::fs::remove_dir_all(&again).expect("remove a directory");
}

fn audit(log: &crate::log::Log) -> crate::Result<Vec<Owned>> {
    let mut reader = log.audit_reader()?;
    let mut out = Vec::new();
    while let Some(r) = reader.next()? {
        out.push((r.lsn.get(), r.kind.get(), r.payload.to_vec()));
    }
    Ok(out)
}
