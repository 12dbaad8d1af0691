//! Appenders killed mid-append: every acknowledged record survives exactly once and in order,
//! nothing unacknowledged appears in the middle, and the torn bytes a dead appender leaves are
//! cut by whoever appends next.

use maos_coord_test_support as common;

use std::process::Command;

use common::read_all;
use maos_coord::{Log, Lsn};

const HARNESS: &str = env!("CARGO_BIN_EXE_maos-log-harness");

#[test]
fn appenders_killed_at_random_moments_lose_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(HARNESS)
        .args(["crash", "--dir"])
        .arg(dir.path())
        .args(["--rounds", "12", "--writers", "3", "--max-ms", "150"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("verified 12 rounds"), "{stdout}");
    let acked: u64 = last.split(' ').nth(3).unwrap().parse().unwrap();
    assert!(acked > 0, "{stdout}");
}

#[test]
fn a_write_torn_by_a_dying_appender_is_cut_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(HARNESS)
        .args(["append", "--dir"])
        .arg(dir.path())
        .args(["--writer", "1", "--count", "100", "--batch", "4", "--abort-after", "20"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the appender aborted mid-write");

    // The torn write: the 48 bytes copied at the published tail offset (word 48 of log.lock).
    // Recovery reports the bytes it zeroes, up to the last non-zero one (log-format.md,
    // "Recovery"): zero bytes at the end of the copied prefix (the second frame's CRC, which
    // covers the time of the append, can end in zero bytes) are not part of it.
    let lock = std::fs::read(dir.path().join("log.lock")).unwrap();
    let tail_offset = u64::from_le_bytes(lock[48..56].try_into().unwrap());
    let segment = std::fs::read(dir.path().join(maos_coord::format::segment_file_name(Lsn::new(1)))).unwrap();
    let at = usize::try_from(tail_offset).unwrap();
    let copied = &segment[at..at + 48];
    assert!(segment[at + 48..].iter().all(|&b| b == 0), "nothing was written past the 48 bytes");
    let torn_len = copied.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;
    assert!(torn_len > 40, "the first frame (40 bytes) and the next one's length are non-zero");

    // Same boot, lock file intact: the tail is trusted, the half-written batch is cut.
    let log = Log::open(dir.path()).unwrap();
    assert!(!log.recovery_report().tail_from_segments);
    let torn = log.recovery_report().torn.clone().expect("torn bytes reported");
    assert_eq!((torn.lsn, torn.offset, torn.bytes), (Lsn::new(21), tail_offset, torn_len));
    assert_eq!(read_all(&log).len(), 20);
    assert_eq!(log.append(maos_coord::RecordKind::new(1).unwrap(), b"next").unwrap(), Lsn::new(21));
}

#[test]
fn a_rollover_left_unpublished_by_a_dying_appender_is_finished_by_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Log::options(dir.path()).segment_size(64 * 1024).max_record_size(4096);
    // An appender that stays open through the other one's death.
    let log = options().open().unwrap();
    let out = Command::new(HARNESS)
        .args(["append", "--dir"])
        .arg(dir.path())
        .args(["--writer", "1", "--count", "5000", "--batch", "3", "--abort-in-rollover"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the appender aborted in its first rollover");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let acked: u64 = stdout.lines().last().unwrap().split(' ').nth(3).unwrap().parse::<u64>().unwrap() + 1;
    // It died with the next segment created (and named by the tail LSN) but not published.
    let next = Lsn::new(acked + 1);
    assert!(dir.path().join(maos_coord::format::segment_file_name(next)).is_file());
    assert_eq!(log.next_lsn(), next);
    // Batches of 3 records of 40 bytes leave 72 bytes at the end of the first segment: room
    // for the next record, so only finishing the rollover keeps it out of the sealed segment.
    let lock = std::fs::read(dir.path().join("log.lock")).unwrap();
    let tail_offset = u64::from_le_bytes(lock[48..56].try_into().unwrap());
    assert_eq!(64 * 1024 - tail_offset, 72);

    let kind = maos_coord::RecordKind::new(1).unwrap();
    assert_eq!(log.append(kind, b"after").unwrap(), next);
    let records = read_all(&log);
    assert_eq!(records.len() as u64, acked + 1);
    assert_eq!(records.last().unwrap(), &(next.get(), b"after".to_vec()));
    drop(log);

    // With the lock file gone, recovery trusts the newest segment alone: the record is in it.
    std::fs::remove_file(dir.path().join("log.lock")).unwrap();
    let reopened = options().open().unwrap();
    assert!(reopened.recovery_report().tail_from_segments);
    assert_eq!(reopened.next_lsn(), Lsn::new(next.get() + 1));
    let records = read_all(&reopened);
    assert_eq!(records.len() as u64, acked + 1);
    assert_eq!(records.last().unwrap(), &(next.get(), b"after".to_vec()));
}
