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

    // Same boot, lock file intact: the tail is trusted, the half-written batch is cut.
    let log = Log::open(dir.path()).unwrap();
    assert!(!log.recovery_report().tail_from_segments);
    let torn = log.recovery_report().torn.clone().expect("torn bytes reported");
    assert_eq!((torn.lsn, torn.bytes), (Lsn(21), 48));
    assert_eq!(read_all(&log).len(), 20);
    assert_eq!(log.append(maos_coord::RecordKind::new(1).unwrap(), b"next").unwrap(), Lsn(21));
}
