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
    // Batches of 3 records of 40 bytes leave 88 bytes at the end of the first segment (8 KiB,
    // a 64th of the segment size but at least 8 KiB): room for the next record, so only
    // finishing the rollover keeps it out of the sealed segment.
    let lock = std::fs::read(dir.path().join("log.lock")).unwrap();
    let tail_offset = u64::from_le_bytes(lock[48..56].try_into().unwrap());
    let first =
        std::fs::metadata(dir.path().join(maos_coord::format::segment_file_name(Lsn::new(1)))).unwrap();
    assert_eq!(first.len() - tail_offset, 88);

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

/// Runs one harness appender of `count` records (batches of 3, waiting for the spare segment
/// before each) with `fault` armed; returns whether it aborted and the records it acknowledged.
fn append_with_fault(dir: &std::path::Path, count: u64, fault: &[&str]) -> (bool, u64) {
    let out = Command::new(HARNESS)
        .args(["append", "--dir"])
        .arg(dir)
        .args(["--writer", "1", "--count", &count.to_string(), "--batch", "3", "--wait-for-spare"])
        .args(fault)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let acked = stdout.lines().last().map_or(0, |l| l.split(' ').nth(3).unwrap().parse::<u64>().unwrap() + 1);
    (!out.status.success(), acked)
}

/// Opens the log in `dir` (as the harness does), checks that it holds the `acked` records of
/// writer 1 in order, plus at most the batch of 3 the appender was writing when it died (written,
/// not yet acknowledged: a dead process loses nothing it wrote), nothing of a temporary file, and
/// that it takes a new record.
fn holds_the_acknowledged(dir: &std::path::Path, acked: u64, what: &str) {
    let log = Log::options(dir).segment_size(64 * 1024).max_record_size(4096).open().unwrap();
    let records = read_all(&log);
    let held = records.len() as u64;
    assert!((acked..=acked + 3).contains(&held), "{what}: {held} records, {acked} acknowledged");
    for (i, (lsn, payload)) in records.iter().enumerate() {
        let (writer, seq): (u32, u64) = rmp_serde::from_slice(payload).unwrap();
        assert_eq!((*lsn, writer, seq), (i as u64 + 1, 1, i as u64), "{what}");
    }
    let names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{what}: a temporary file stays: {names:?}");
    let kind = maos_coord::RecordKind::new(1).unwrap();
    assert_eq!(log.append(kind, b"after").unwrap(), Lsn::new(held + 1), "{what}");
    log.verify().unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// A copy of the log directory `from` without its lock file: what recovery after a reboot
/// sees (cold, from the segment files alone).
fn cold_copy(from: &std::path::Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "log.lock" {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

#[test]
fn a_crash_while_a_segment_is_being_zero_filled_loses_no_record() {
    // Chunk 1 is the new store's first segment; chunk 2 the first spare (after the first
    // append); chunk 3 the next spare, after the first rollover.
    for chunk in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let (aborted, acked) =
            append_with_fault(dir.path(), 2000, &["--abort-zero-fill-after", &chunk.to_string()]);
        assert!(aborted, "the appender died zero-filling chunk {chunk}");
        if chunk > 2 {
            // The first spare is asked for by the first append, which may or may not be
            // acknowledged before the thread dies in it; the second follows the first rollover.
            assert!(acked > 0, "records were acknowledged before the spare was made");
        }
        let cold = cold_copy(dir.path());
        holds_the_acknowledged(
            dir.path(),
            acked,
            &format!("killed in zero-fill chunk {chunk}, reopened warm"),
        );
        holds_the_acknowledged(
            cold.path(),
            acked,
            &format!("killed in zero-fill chunk {chunk}, reopened cold"),
        );
    }
}

#[test]
fn a_crash_while_the_spare_becomes_the_next_segment_loses_no_record() {
    for step in 1..=2 {
        let dir = tempfile::tempdir().unwrap();
        let (aborted, acked) =
            append_with_fault(dir.path(), 2000, &["--abort-at-spare-step", &step.to_string()]);
        assert!(aborted, "the appender died taking the spare (step {step})");
        assert!(acked > 0);
        let spare = dir.path().join("segment.spare");
        let next = dir.path().join(maos_coord::format::segment_file_name(Lsn::new(acked + 1)));
        assert_eq!((spare.exists(), next.exists()), (step == 1, step == 2), "after step {step}");
        let cold = cold_copy(dir.path());
        holds_the_acknowledged(dir.path(), acked, &format!("killed at spare step {step}, reopened warm"));
        holds_the_acknowledged(cold.path(), acked, &format!("killed at spare step {step}, reopened cold"));
    }
}
