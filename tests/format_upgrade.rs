//! Segment format version 2 (the durable watermark in frames and the header's durable mark) next
//! to version 1: frames record the watermark, closing marks the last sync, and a store written in
//! version 1 still opens, reads and takes appends, judged by the rule of
//! version 1 while its newest segment has no mark.

use maos_coord_test_support as common;

use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{forget_tail, kind, payload, read_all, segment_files, small};
use maos_coord::format::{decode_frame, Decoded, DurableMark, FORMAT_VERSION, SEGMENT_VERSION};
use maos_coord::{Durability, Error, Lsn};

fn header(seg: &Path) -> [u8; 64] {
    let mut h = [0u8; 64];
    std::fs::File::open(seg).unwrap().read_exact_at(&mut h, 0).unwrap();
    h
}

/// Rewrites a segment's header as version 1 wrote it (no mark, CRC over bytes 0..60).
fn make_version_1(seg: &Path) {
    let mut h = header(seg);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[40..60].fill(0);
    let crc = crc32fast::hash(&h[..60]);
    h[60..].copy_from_slice(&crc.to_le_bytes());
    std::fs::OpenOptions::new().write(true).open(seg).unwrap().write_all_at(&h, 0).unwrap();
}

/// The durable watermark each frame of a segment records.
fn recorded(seg: &Path) -> Vec<Option<Lsn>> {
    let bytes = std::fs::read(seg).unwrap();
    let base: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let (mut at, mut lsn, mut out) = (64, Lsn::new(base), Vec::new());
    while let Decoded::Frame(f) = decode_frame(&bytes[at..], lsn, 1024) {
        out.push(f.durable_before);
        at += f.len;
        lsn = lsn.next();
    }
    out
}

#[test]
fn frames_record_the_durable_watermark_and_closing_marks_the_last_sync() {
    let dir = tempfile::tempdir().unwrap();
    {
        let buffered = small(dir.path()).open().unwrap();
        buffered.append(kind(), b"not synced").unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    assert_eq!(DurableMark::read(&header(&seg)), DurableMark::Unset, "no sync, no mark");
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    assert_eq!(u32::from_le_bytes(header(&seg)[8..12].try_into().unwrap()), SEGMENT_VERSION);
    for i in 2..=4 {
        log.append(kind(), &payload(i)).unwrap();
    }
    // Records 1 and 2 were written while nothing was synced; 3 and 4 each after the sync of the
    // record before.
    assert_eq!(recorded(&seg), [Some(Lsn::new(1)), Some(Lsn::new(1)), Some(Lsn::new(3)), Some(Lsn::new(4))]);
    assert_eq!(DurableMark::read(&header(&seg)), DurableMark::Unset, "syncs do not touch the header");
    drop(log);
    assert_eq!(
        DurableMark::read(&header(&seg)),
        DurableMark::Below(Lsn::new(5)),
        "closing marks the last sync"
    );
}

#[test]
fn close_marks_the_last_sync_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    for i in 1..=3 {
        log.append(kind(), &payload(i)).unwrap();
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    // A reader keeps the log's state alive: the mark is close's doing, not the drop's.
    let reader = log.reader().unwrap();
    log.close().unwrap();
    assert_eq!(
        DurableMark::read(&header(&seg)),
        DurableMark::Below(Lsn::new(4)),
        "closing marks the last sync"
    );
    drop(reader);
    forget_tail(dir.path());
    let log = small(dir.path()).open().unwrap();
    assert_eq!(log.recovery_report().durable_lsn, Lsn::new(4), "after a reboot the mark says so");
}

#[test]
fn a_version_1_store_opens_reads_and_moves_to_version_2_segment_by_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = small(dir.path()).open().unwrap();
        for i in 1..=5 {
            log.append(kind(), &payload(i)).unwrap();
        }
    }
    let old = segment_files(dir.path()).pop().unwrap();
    make_version_1(&old);
    forget_tail(dir.path());
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    assert!(!log.recovery_report().watermark_known, "a version-1 newest segment has no mark");
    assert_eq!(read_all(&log).len(), 5);
    for i in 6..=80 {
        log.append(kind(), &payload(i)).unwrap();
    }
    assert_eq!(read_all(&log).len(), 80);
    assert_eq!(DurableMark::read(&header(&old)), DurableMark::Unsupported, "version 1 stays version 1");
    let newest = segment_files(dir.path()).pop().unwrap();
    assert_ne!(newest, old);
    assert!(recorded(&newest).iter().all(Option::is_some), "version-2 frames record the watermark");
    let appended_to_version_1 = &recorded(&old)[5..];
    assert!(!appended_to_version_1.is_empty());
    assert!(appended_to_version_1.iter().all(Option::is_none), "frames appended to version 1 do not");
    drop(log);
    forget_tail(dir.path());
    assert_eq!(read_all(&small(dir.path()).open().unwrap()).len(), 80);
}

#[test]
fn a_version_1_newest_segment_keeps_the_version_1_rule() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = small(dir.path()).open().unwrap();
        for i in 1..=5 {
            log.append(kind(), &payload(i)).unwrap();
        }
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    make_version_1(&seg);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    let mut len = [0u8; 4];
    file.read_exact_at(&mut len, 64).unwrap();
    let second = 64 + (32 + u32::from_le_bytes(len) as u64).next_multiple_of(8);
    file.write_all_at(&[0xFF], second + 33).unwrap();
    forget_tail(dir.path());
    // Unknown watermark: a damaged record followed by intact ones might have been acknowledged.
    match small(dir.path()).open() {
        Err(Error::Corruption { segment, offset, lsn, .. }) => {
            assert_eq!((segment, offset, lsn), (seg, second, Lsn::new(2)))
        }
        other => panic!("{:?}", other.map(|l| l.next_lsn())),
    }
}
