//! Waiting for records: appends in this process and in other processes wake a waiting reader.
//! The fallback poll is set to an hour and the waits end long before it (a wait that times out
//! fails the test), so the wake-up must come from the appender or from a file notification.

use maos_coord_test_support as common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::kind;
use maos_coord::{Durability, Log, Lsn};

const HARNESS: &str = env!("CARGO_BIN_EXE_maos-log-harness");
const FALLBACK: Duration = Duration::from_secs(3600);
/// Bounds a wait only so that a missing wake-up fails the test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn open(dir: &std::path::Path) -> Log {
    Log::options(dir)
        .segment_size(64 * 1024)
        .max_record_size(4096)
        .durability(Durability::Buffered)
        .wake_fallback(FALLBACK)
        .open()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_this_process_wakes_a_waiter_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_for(Lsn::new(1), HANG_GUARD).await })
    };
    log.append(kind(), b"x").unwrap();
    assert!(waiter.await.unwrap(), "the append did not wake the waiter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_another_process_wakes_a_waiter_through_file_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_for(Lsn::new(1), HANG_GUARD).await })
    };
    let status = Command::new(HARNESS)
        .args(["append", "--dir"])
        .arg(dir.path())
        .args(["--writer", "1", "--count", "1", "--durability", "buffered"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(waiter.await.unwrap(), "no file notification woke the waiter");
    // A waiter that times out says so.
    assert!(!log.wait_for(Lsn::new(5), Duration::from_millis(50)).await);
}
