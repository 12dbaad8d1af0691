//! Torn tails versus corruption in the newest segment, and leftovers of interrupted segment
//! creation.

mod common;

use std::os::unix::fs::FileExt;

use common::{forget_tail, kind, payload, read_all, segment_files, small};
use maos_coord::{Error, Lsn, RecoveryMode};

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
    assert_eq!((torn.segment, torn.offset, torn.bytes, torn.lsn), (seg.clone(), end, 12, Lsn(next)));
    assert_eq!(read_all(&log).len(), 10);
    assert!(std::fs::read(&seg).unwrap()[end as usize..].iter().all(|&b| b == 0), "cut bytes are zero");
    log.append(kind(), b"next").unwrap();
    assert_eq!(read_all(&log).len(), 11);
}

#[test]
fn a_damaged_record_followed_by_valid_ones_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 5);
    let seg = segment_files(dir.path()).pop().unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&seg).unwrap();
    // Damage the payload of the second record (first frame is 64..64+len).
    let mut len = [0u8; 4];
    file.read_exact_at(&mut len, 64).unwrap();
    let second = 64 + (32 + u32::from_le_bytes(len) as u64).next_multiple_of(8);
    file.write_all_at(&[0xFF], second + 33).unwrap();
    forget_tail(dir.path());
    let err = small(dir.path()).open().unwrap_err();
    match err {
        Error::Corruption { segment, offset, lsn, .. } => {
            assert_eq!((segment, offset, lsn), (seg, second, Lsn(2)));
        }
        other => panic!("{other}"),
    }
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
    assert_eq!(log.append(kind(), b"x").unwrap(), Lsn(next));
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
        assert!(log.recovery_report().cold, "{later} records later");
        let expected: Vec<(u64, Vec<u8>)> = (1..=20 + later).map(|i| (i, payload(i))).collect();
        assert_eq!(read_all(&log), expected, "{later} records later");
        assert_eq!(log.append(kind(), b"next").unwrap(), Lsn(21 + later));
        drop(log);
        let log = small(copy.path()).recovery_mode(RecoveryMode::Strict).open().unwrap();
        assert_eq!(read_all(&log).len() as u64, 21 + later);
        log.verify().unwrap();
    }
}
