//! Torn tails versus corruption in the newest segment, and leftovers of interrupted segment
//! creation.

use maos_coord_test_support as common;

use std::os::unix::fs::FileExt;

use common::{forget_tail, kind, payload, read_all, segment_files, small};
use maos_coord::{Durability, Error, Lsn, RecoveryMode};

fn log_with(dir: &std::path::Path, n: u64) -> u64 {
    let log = small(dir).open().unwrap();
    for i in 1..=n {
        log.append(kind(), &payload(i)).unwrap();
    }
    log.next_lsn().get()
}

/// Offset just past the last record of a segment file.
fn end_of_records(bytes: &[u8]) -> usize {
    let mut at = 64;
    while bytes[at..at + 32].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += (32 + len).next_multiple_of(8);
    }
    at
}

#[test]
fn garbage_after_the_last_record_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let next = log_with(dir.path(), 10);
    let seg = segment_files(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&seg).unwrap();
    let end = end_of_records(&bytes) as u64;
    let file = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    file.write_all_at(b"half a frame", end).unwrap();
    forget_tail(dir.path());

    let err = small(dir.path()).recovery_mode(RecoveryMode::Strict).open().unwrap_err();
    assert!(matches!(err, Error::TornTail { offset, bytes: 12, .. } if offset == end), "{err}");

    let log = small(dir.path()).open().unwrap();
    let torn = log.recovery_report().torn.clone().unwrap();
    assert_eq!((torn.segment, torn.offset, torn.bytes, torn.lsn), (seg.clone(), end, 12, Lsn::new(next)));
    assert_eq!(read_all(&log).len(), 10);
    assert!(std::fs::read(&seg).unwrap()[end as usize..].iter().all(|&b| b == 0), "cut bytes are zero");
    log.append(kind(), b"next").unwrap();
    assert_eq!(read_all(&log).len(), 11);
}

/// Offset of the frame of record `n` (1-based) in a segment that starts with record 1.
fn frame_offset(bytes: &[u8], n: usize) -> u64 {
    let mut at = 64;
    for _ in 1..n {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += (32 + len).next_multiple_of(8);
    }
    at as u64
}

#[test]
fn damage_below_the_durable_watermark_is_corruption_not_a_torn_tail() {
    for (record, cold) in [(5, true), (5, false), (2, true)] {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
            for i in 1..=5 {
                log.append(kind(), &payload(i)).unwrap(); // acknowledged as durable
            }
        }
        let seg = segment_files(dir.path()).pop().unwrap();
        let at = frame_offset(&std::fs::read(&seg).unwrap(), record);
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
        let mut b = [0u8];
        file.read_exact_at(&mut b, at + 40).unwrap();
        file.write_all_at(&[b[0] ^ 0x04], at + 40).unwrap();
        if cold {
            forget_tail(dir.path()); // as after a reboot: the segment's durable mark decides
        }
        let damaged = std::fs::read(&seg).unwrap();
        for mode in [RecoveryMode::TruncateTornTail, RecoveryMode::Strict] {
            match small(dir.path()).recovery_mode(mode).open() {
                Err(Error::Corruption { segment, offset, lsn, .. }) => {
                    assert_eq!(
                        (&segment, offset, lsn),
                        (&seg, at, Lsn::new(record as u64)),
                        "record {record}, cold {cold}"
                    );
                }
                other => panic!("record {record}, cold {cold}, {mode:?}: {other:?}"),
            }
            assert_eq!(std::fs::read(&seg).unwrap(), damaged, "nothing was cut");
        }
    }
}

#[test]
fn out_of_order_pages_after_a_power_cut_are_a_torn_tail_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
        for i in 1..=3 {
            log.append(kind(), &payload(i)).unwrap();
        }
        // Written after the last sync: never acknowledged as durable.
        let unsynced = small(dir.path()).open().unwrap();
        for i in 4..=8 {
            unsynced.append(kind(), &payload(i)).unwrap();
        }
    }
    let seg = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let (fourth, fifth) = (frame_offset(&bytes, 4) as usize, frame_offset(&bytes, 5) as usize);
    bytes[fourth..fifth].fill(0); // the page of record 4 never reached the disk; later ones did
    std::fs::write(&seg, &bytes).unwrap();
    forget_tail(dir.path());

    let err = small(dir.path()).recovery_mode(RecoveryMode::Strict).open().unwrap_err();
    assert!(
        matches!(err, Error::TornTail { offset, lsn, .. } if offset == fourth as u64 && lsn == Lsn::new(4)),
        "{err}"
    );
    let log = small(dir.path()).open().unwrap();
    let torn = log.recovery_report().torn.clone().unwrap();
    assert_eq!((torn.offset, torn.lsn, torn.last_intact), (fourth as u64, Lsn::new(4), Some(Lsn::new(8))));
    assert_eq!(read_all(&log).len(), 3, "every acknowledged record, nothing after the hole");
    let journal = log.recovery_journal(10).unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!((journal[0].offset, journal[0].first_lsn, journal[0].last_lsn), (fourth as u64, 4, Some(8)));
}

#[test]
fn stale_records_beyond_a_zero_gap_are_erased_on_recovery() {
    // After a machine crash, pages written after the last sync may reach the disk out of order,
    // leaving valid-looking records beyond a hole. They were never acknowledged as durable and
    // must not resurface once new records fill the hole.
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 6);
    let seg = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut len = [0u8; 4];
    len.copy_from_slice(&bytes[64..68]);
    let second = 64 + (32 + u32::from_le_bytes(len) as usize).next_multiple_of(8);
    let mut l2 = [0u8; 4];
    l2.copy_from_slice(&bytes[second..second + 4]);
    let third = second + (32 + u32::from_le_bytes(l2) as usize).next_multiple_of(8);
    bytes[second..third].fill(0); // record 2 never reached the disk
    std::fs::write(&seg, &bytes).unwrap();
    forget_tail(dir.path());
    let log = small(dir.path()).open().unwrap();
    assert_eq!(read_all(&log).len(), 1);
    assert!(log.recovery_report().torn.is_some());
    for i in 2..=6 {
        log.append(kind(), &payload(i + 100)).unwrap();
    }
    let records = read_all(&log);
    assert_eq!(records.len(), 6);
    assert!(records[1..].iter().zip(2..).all(|((_, p), i)| *p == payload(i + 100)));
}

#[test]
fn leftovers_of_an_interrupted_segment_creation_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let next = log_with(dir.path(), 3);
    std::fs::write(dir.path().join(format!("{next:020}.seg.tmp")), b"partial").unwrap();
    std::fs::write(dir.path().join(format!("{next:020}.seg")), b"short").unwrap();
    forget_tail(dir.path());
    let log = small(dir.path()).open().unwrap();
    assert_eq!(log.recovery_report().removed.len(), 2);
    assert_eq!(read_all(&log).len(), 3);
    assert_eq!(log.append(kind(), b"x").unwrap(), Lsn::new(next));
}

#[test]
fn a_missing_middle_segment_is_reported_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 120);
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1]).unwrap();
    let log = small(dir.path()).open().unwrap();
    let mut reader = log.reader().unwrap();
    let err = loop {
        match reader.next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the gap went unnoticed"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, Error::SegmentGap { .. }), "{err}");
}

#[test]
fn a_lock_file_older_than_the_segments_hides_no_record() {
    // A store copied while in use: the lock file was copied before later appends reached the
    // segments, within the newest segment and past a rollover. Its tail matches a record of the
    // segments, but trusting it would hide the records after it and let the next append
    // overwrite them: the log is recovered from its segments instead.
    for later in [3, 120] {
        let dir = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        let log = small(dir.path()).open().unwrap();
        for i in 1..=20 {
            log.append(kind(), &payload(i)).unwrap();
        }
        let stale = std::fs::read(dir.path().join("log.lock")).unwrap();
        for i in 21..=20 + later {
            log.append(kind(), &payload(i)).unwrap();
        }
        common::copy_dir(dir.path(), copy.path());
        std::fs::write(copy.path().join("log.lock"), &stale).unwrap();
        drop(log);

        let log = small(copy.path()).recovery_mode(RecoveryMode::Strict).open().unwrap();
        assert!(log.recovery_report().tail_from_segments, "{later} records later");
        let expected: Vec<(u64, Vec<u8>)> = (1..=20 + later).map(|i| (i, payload(i))).collect();
        assert_eq!(read_all(&log), expected, "{later} records later");
        assert_eq!(log.append(kind(), b"next").unwrap(), Lsn::new(21 + later));
        drop(log);
        let log = small(copy.path()).recovery_mode(RecoveryMode::Strict).open().unwrap();
        assert_eq!(read_all(&log).len() as u64, 21 + later);
        log.verify().unwrap();
    }
}
