//! Background threads of a log (the flusher of `Durability::Flush`, the appender of async
//! callers) end once the last handle is dropped. Alone in its test binary, so that no other
//! test's threads are counted.

use maos_coord_test_support as common;

use std::time::{Duration, Instant};

use common::{kind, read_all, small};
use maos_coord::Durability;

fn log_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|name| name.starts_with("maos-log"))
        .count()
}

#[test]
fn dropping_the_last_handle_ends_the_background_threads() {
    let dir = tempfile::tempdir().unwrap();
    let flushed = small(dir.path()).durability(Durability::Flush(Duration::from_millis(1))).open().unwrap();
    let other = tempfile::tempdir().unwrap();
    let synced = small(other.path()).durability(Durability::Sync).open().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(flushed.append_async(kind(), b"x")).unwrap();
    runtime.block_on(synced.append_async(kind(), b"y")).unwrap();
    assert_eq!(log_threads(), 2, "the flusher of one log, the appender of the other (async Sync callers)");
    let clone = synced.clone();
    drop(synced);
    drop(flushed);
    // The flusher ends once it notices (no fixed wait: a generous bound only guards a hang).
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_threads() > 1 {
        assert!(Instant::now() < deadline, "the flusher outlived its log");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(log_threads(), 1, "a clone keeps its log open");
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_threads() > 0 {
        assert!(Instant::now() < deadline, "background threads outlived the log");
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = small(dir.path()).open().unwrap();
    assert_eq!(read_all(&log).len(), 1);
}
