//! Background threads of a log (the flusher of `Durability::Flush`, the appender of async
//! `Sync` callers, the early writeback thread): `Log::close` on the last handle ends them and
//! waits for them, so each test counts them right after it returns. A thread of the log runs
//! under its name once the call that started it returned, so the counts before are exact too.
//! Alone in its test binary, so that no other test's threads are counted; the tests here take
//! turns ([`alone`]).

use maos_coord_test_support as common;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::{kind, read_all, small};
use maos_coord::{Coordinator, Durability, Log};

/// `PF_EXITING` in the flags of `/proc/<pid>/task/<tid>/stat`: the thread began to exit.
const PF_EXITING: u64 = 0x4;

/// Threads of this process whose name starts with `maos-log`, not counting those that began to
/// exit. A joined thread may still be listed for a moment (the kernel wakes the joiner before
/// it removes the thread from `/proc`), but it has `PF_EXITING` set by then: it is set before
/// anything else of the exit.
fn log_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.unwrap().path();
            let name = std::fs::read_to_string(path.join("comm")).ok()?;
            let stat = std::fs::read_to_string(path.join("stat")).ok()?;
            Some((name, stat))
        })
        .filter(|(name, stat)| name.starts_with("maos-log") && !exiting(stat))
        .count()
}

/// Whether a thread's `stat` line says it is exiting. The flags are the ninth field, the
/// seventh after the name (in parentheses, which may hold spaces).
fn exiting(stat: &str) -> bool {
    let after_name = &stat[stat.rfind(')').unwrap() + 1..];
    let flags: u64 = after_name.split_whitespace().nth(6).unwrap().parse().unwrap();
    flags & PF_EXITING != 0
}

/// Makes the tests of this binary run one at a time: each counts every log thread of the process.
fn alone() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

#[test]
fn closing_the_last_handle_ends_the_background_threads() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let flushed = small(dir.path()).durability(Durability::Flush(Duration::from_millis(1))).open().unwrap();
    let other = tempfile::tempdir().unwrap();
    let synced = small(other.path()).durability(Durability::Sync).open().unwrap();
    let runtime = runtime();
    runtime.block_on(flushed.append_async(kind(), b"x")).unwrap();
    runtime.block_on(synced.append_async(kind(), b"y")).unwrap();
    assert_eq!(log_threads(), 2, "the flusher of one log, the appender of the other (async Sync callers)");
    let clone = synced.clone();
    synced.close().unwrap();
    flushed.close().unwrap();
    assert_eq!(log_threads(), 1, "the flusher ended with its log; a clone keeps the other open");
    clone.close().unwrap();
    assert_eq!(log_threads(), 0, "the appender ended with the last handle");
    let log = small(dir.path()).open().unwrap();
    assert_eq!(read_all(&log), vec![(1, b"x".to_vec())]);
    let log = small(other.path()).open().unwrap();
    assert_eq!(read_all(&log), vec![(1, b"y".to_vec())]);
}

#[test]
fn closing_the_last_handle_ends_the_writeback_thread() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::options(dir.path())
        .segment_size(64 << 20) // a first segment of 1 MiB: the 100 KB below stay in it
        .max_record_size(4096)
        .durability(Durability::Buffered)
        .writeback_every(1)
        .open()
        .unwrap();
    let record = [7u8; 1000];
    for _ in 0..100 {
        log.append(kind(), &record).unwrap(); // past the first 64 KiB page run
    }
    assert_eq!(log_threads(), 1, "the writeback thread");
    log.close().unwrap();
    assert_eq!(log_threads(), 0);
    let log = Log::options(dir.path()).segment_size(64 << 20).max_record_size(4096).open().unwrap();
    assert_eq!(log.verify().unwrap().records, 100);
}

#[test]
fn closing_one_clone_leaves_the_others_appending() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let log = small(dir.path()).durability(Durability::Sync).open().unwrap();
    let (a, b) = (log.clone(), log.clone());
    let runtime = runtime();
    runtime.block_on(a.append_async(kind(), b"1")).unwrap();
    a.close().unwrap();
    log.close().unwrap();
    assert_eq!(log_threads(), 1, "the appender serves the remaining clone");
    runtime.block_on(b.append_async(kind(), b"2")).unwrap();
    b.append(kind(), b"3").unwrap();
    assert_eq!(read_all(&b).len(), 3);
    b.close().unwrap();
    assert_eq!(log_threads(), 0);
    assert_eq!(read_all(&small(dir.path()).open().unwrap()).len(), 3);
}

#[test]
fn dropping_the_last_handle_ends_the_flush_thread() {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    // An interval no test reaches: the flusher never holds the log, so the test's drop is the
    // last and ends the thread, waiting for it, before it returns.
    let log = small(dir.path()).durability(Durability::Flush(Duration::from_secs(3600))).open().unwrap();
    log.append(kind(), b"x").unwrap();
    assert_eq!(log_threads(), 1, "the flusher");
    drop(log);
    assert_eq!(log_threads(), 0);
    assert_eq!(read_all(&small(dir.path()).open().unwrap()).len(), 1);
}

#[test]
fn closing_a_coordinator_closes_its_log() {
    let _alone = alone();
    let root = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::options(root.path())
        .durability(Durability::Flush(Duration::from_millis(1)))
        .open()
        .unwrap();
    let clone = coordinator.clone();
    assert_eq!(log_threads(), 1, "the flusher");
    coordinator.close().unwrap();
    assert_eq!(log_threads(), 1, "a clone keeps the log open");
    clone.close().unwrap();
    assert_eq!(log_threads(), 0);
}
