//! Waiting for records: appends in this process and in other processes wake a waiting reader
//! long before the fallback poll would (here set to 10 s), so the wake-up must come from the
//! appender or from a file notification.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kind;
use maos_coord::{Durability, Log, Lsn};

const HARNESS: &str = env!("CARGO_BIN_EXE_maos-log-harness");
const FALLBACK: Duration = Duration::from_secs(10);

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
        tokio::spawn(async move { log.wait_for(Lsn(1), Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let appended = Instant::now();
    log.append(kind(), b"x").unwrap();
    assert!(waiter.await.unwrap());
    assert!(appended.elapsed() < Duration::from_secs(5), "woken by the fallback poll, not the append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_another_process_wakes_a_waiter_through_file_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_for(Lsn(1), Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let status = Command::new(HARNESS)
        .args(["append", "--dir"])
        .arg(dir.path())
        .args(["--writer", "1", "--count", "1", "--durability", "buffered"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(waiter.await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(5), "woken by the fallback poll, not a notification");
    // A waiter that times out says so.
    assert!(!log.wait_for(Lsn(5), Duration::from_millis(50)).await);
}
