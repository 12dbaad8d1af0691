//! Regression tests for the faults the crash-consistency sweep (`tests/crash_consistency.rs`)
//! found, each on its own: what a power cut leaves after an I/O error the store got and
//! survived. The disk is [`FaultDisk`]; the image of a power cut is opened under a new one (a new
//! boot).

use maos_coord_test_support as common;

use std::path::Path;

use common::{kind, read_all};
use maos_coord::coordinator::CompactOptions;
use maos_coord::fs::FaultDisk;
use maos_coord::model::{AgentId, NewTask};
use maos_coord::{Coordinator, Durability, Log, LogOptions};

fn log_options(dir: &Path) -> LogOptions {
    Log::options(dir).segment_size(8192).max_record_size(1024).durability(Durability::Sync)
}

/// Writes what a power cut leaves of the disk into `to` and reads the log there, under a new
/// disk (a new boot).
fn log_after_power_cut(disk: &FaultDisk, to: &Path) -> Vec<(u64, Vec<u8>)> {
    disk.write_image(to).unwrap();
    let (_rebooted, _mounted) = FaultDisk::mount(to).unwrap();
    let log = log_options(&to.join("log")).open().unwrap();
    read_all(&log)
}

/// Appends records of 1000 bytes numbered `0..n` (two go into each 8 KiB segment's worth of
/// rollovers quickly); returns those acknowledged.
fn appends(log: &Log, n: u8) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i; 1000]).filter(|p| log.append(kind(), p).is_ok()).collect()
}

#[test]
fn a_failed_segment_sync_makes_the_next_sync_write_the_bytes_again() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let log = log_options(&root.path().join("log")).open().unwrap();
    log.append(kind(), b"first").unwrap();
    let from = disk.ops();
    log.append(kind(), b"probe").unwrap();
    // The operations of one append: its write, then its sync.
    assert_eq!(disk.ops(), from + 2, "{:?}", disk.trace(4));
    disk.fail_at(disk.ops() + 2);
    assert!(log.append(kind(), b"second").is_err(), "its sync failed: not acknowledged");
    log.append(kind(), b"third").unwrap();
    drop(log);
    let image = tempfile::tempdir().unwrap();
    let records = log_after_power_cut(&disk, image.path());
    let payloads: Vec<&[u8]> = records.iter().map(|(_, p)| p.as_slice()).collect();
    // Linux forgets the pages a failed sync could not write: the sync of the third record is
    // only good if the second record's bytes were written again first.
    assert_eq!(payloads, [&b"first"[..], b"probe", b"second", b"third"]);
}

#[test]
fn a_rollover_whose_directory_sync_failed_is_not_used_before_its_name_is_durable() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let log = log_options(&root.path().join("log")).open().unwrap();
    // The next segment is renamed into place; the sync of the directory fails.
    disk.fail_next("fsync directory log");
    // Seven records fill a segment: the twelve end in the next one, before another rollover
    // would sync the directory anyway.
    let acked = appends(&log, 12);
    assert!(disk.trace(usize::MAX).iter().any(|l| l.ends_with("failed: Input/output error (os error 5)")));
    assert_eq!(acked.len(), 11, "the append that rolled over failed");
    drop(log);
    let image = tempfile::tempdir().unwrap();
    let records = log_after_power_cut(&disk, image.path());
    for p in &acked {
        assert!(records.iter().any(|(_, r)| r == p), "acknowledged record {} is gone", p[0]);
    }
}

fn small_segments(root: &Path) -> maos_coord::CoordinatorOptions {
    Coordinator::options(root).durability(Durability::Sync).snapshot_every(0).segment_size(16 << 10)
}

/// A store at `root` with agent `me` registered (outside any fault disk).
async fn registered_store(root: &Path, me: &AgentId) {
    let c = small_segments(root).open().unwrap();
    c.register_agent(me, "r", vec![]).await.unwrap();
}

/// Creates 60 tasks of about 400 bytes (a few 16 KiB segments' worth); returns their ids.
async fn sixty_tasks(c: &Coordinator, me: &AgentId) -> Vec<maos_coord::TaskId> {
    let mut created = Vec::new();
    for i in 0..60 {
        let spec = NewTask::new(format!("t{i}")).description("x".repeat(400));
        created.push(c.create_task(me, spec).await.unwrap().id);
    }
    created
}

/// Compacts (which must remove segments), then reopens what a power cut leaves, under a new
/// disk: every task of `created` must be there.
fn compact_cut_power_and_check(c: Coordinator, disk: &FaultDisk, created: &[maos_coord::TaskId]) {
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(!report.removed.is_empty(), "compaction removed segments on the strength of that snapshot");
    drop(c);
    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    let c = small_segments(image.path()).open().expect("the store opens after a power cut");
    for id in created {
        assert!(c.get_task(id).unwrap().is_some(), "acknowledged task {id} is gone");
    }
}

#[tokio::test]
async fn compaction_relies_only_on_a_snapshot_whose_name_is_durable() {
    let me = AgentId::new("a").unwrap();
    let root = tempfile::tempdir().unwrap();
    registered_store(root.path(), &me).await;
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let c = small_segments(root.path()).open().unwrap();
    let created = sixty_tasks(&c, &me).await;
    // The snapshot is renamed into place; the sync of its directory fails.
    disk.fail_next("fsync directory .maos/coordination/snapshots");
    assert!(c.snapshot().is_err());
    compact_cut_power_and_check(c, &disk, &created);
}

#[tokio::test]
async fn a_snapshot_directory_whose_creation_was_not_synced_is_named_durably_before_compaction_relies_on_it()
{
    let me = AgentId::new("a").unwrap();
    let root = tempfile::tempdir().unwrap();
    registered_store(root.path(), &me).await;
    // A store without its snapshot directory yet (a copy that left empty directories out).
    std::fs::remove_dir(root.path().join(".maos/coordination/snapshots")).unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let c = small_segments(root.path()).open().unwrap();
    let created = sixty_tasks(&c, &me).await;
    // The first snapshot makes the directory; the sync of the store directory that names it
    // fails, and so does the snapshot. The directory stays, its name not durable.
    disk.fail_next("fsync directory .maos/coordination");
    assert!(c.snapshot().is_err());
    assert!(root.path().join(".maos/coordination/snapshots").is_dir());
    c.snapshot().unwrap();
    compact_cut_power_and_check(c, &disk, &created);
}

#[test]
fn a_failed_sync_in_one_handle_is_written_again_before_another_handle_acknowledges() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let a = log_options(&root.path().join("log")).durability(Durability::Buffered).open().unwrap();
    a.append(kind(), b"one").unwrap();
    disk.fail_next("fdatasync log/00000000000000000001.seg");
    assert!(a.sync().is_err());
    // Another open (as another process: it shares nothing with `a`, and the kernel would not
    // report the failed sync to it) acknowledges a record as durable.
    let b = log_options(&root.path().join("log")).open().unwrap();
    b.append(kind(), b"two").unwrap();
    drop((a, b));
    let image = tempfile::tempdir().unwrap();
    let records = log_after_power_cut(&disk, image.path());
    let payloads: Vec<&[u8]> = records.iter().map(|(_, p)| p.as_slice()).collect();
    assert_eq!(payloads, [&b"one"[..], b"two"], "{:?}", disk.trace(12));
}

#[test]
fn a_sync_after_a_failed_one_writes_the_bytes_again_first() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let log = log_options(&root.path().join("log")).durability(Durability::Buffered).open().unwrap();
    let first = log.append(kind(), b"one").unwrap();
    disk.fail_next("fdatasync log/00000000000000000001.seg");
    assert!(log.sync().is_err());
    assert!(log.durable_lsn() <= first, "nothing became durable");
    assert_eq!(log.unrepaired_sync_failures(), 1);
    // Nobody holds the append lock: the sync takes it, writes the bytes again, then syncs.
    log.sync().unwrap();
    assert!(log.durable_lsn() > first);
    assert_eq!(log.unrepaired_sync_failures(), 0);
    let image = tempfile::tempdir().unwrap();
    assert_eq!(log_after_power_cut(&disk, image.path()).len(), 1, "{:?}", disk.trace(8));
}

#[test]
fn failed_syncs_in_two_handles_are_all_written_again_before_anything_is_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let dir = root.path().join("log");
    let a = log_options(&dir).durability(Durability::Buffered).open().unwrap();
    let b = log_options(&dir).durability(Durability::Buffered).open().unwrap();
    // Records in two segments, the first sealed by a rollover whose seal is not synced yet
    // only if it fails: each handle's sync fails once.
    for i in 0..9u8 {
        a.append(kind(), &[i; 1000]).unwrap();
    }
    disk.fail_next("fdatasync log/00000000000000000008.seg");
    assert!(a.sync().is_err());
    b.append(kind(), b"after").unwrap();
    disk.fail_next("fdatasync log/00000000000000000008.seg");
    assert!(b.sync().is_err());
    let c = log_options(&dir).open().unwrap();
    c.append(kind(), b"acknowledged").unwrap();
    drop((a, b, c));
    let image = tempfile::tempdir().unwrap();
    let records = log_after_power_cut(&disk, image.path());
    assert_eq!(records.len(), 11, "{:?}", disk.trace(16));
}

#[test]
fn a_read_only_open_takes_an_all_zero_lock_file_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_options(dir.path()).open().unwrap();
    log.append(kind(), b"kept").unwrap();
    drop(log);
    std::fs::write(dir.path().join("log.lock"), vec![0u8; 4096]).unwrap();
    let log = Log::open_read_only(dir.path()).unwrap();
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn a_log_directory_whose_parent_sync_failed_is_synced_before_records_are_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    // The log directory is made; the sync of the directory holding it fails.
    disk.fail_next("fsync directory ");
    assert!(log_options(&root.path().join("log")).open().is_err(), "{:?}", disk.trace(5));
    let log = log_options(&root.path().join("log")).open().unwrap();
    log.append(kind(), b"acked").unwrap();
    drop(log);
    let image = tempfile::tempdir().unwrap();
    assert_eq!(log_after_power_cut(&disk, image.path()).len(), 1, "{:?}", disk.trace(12));
}

#[test]
fn a_lock_file_whose_first_sync_failed_is_initialised_again() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    disk.fail_next("fdatasync log/log.lock");
    assert!(log_options(&root.path().join("log")).open().is_err(), "{:?}", disk.trace(5));
    let lock = root.path().join("log/log.lock");
    assert_eq!(std::fs::metadata(&lock).unwrap().len(), 0, "emptied, never a page with a magic");
    let log = log_options(&root.path().join("log")).open().unwrap();
    log.append(kind(), b"acked").unwrap();
    drop(log);
    let image = tempfile::tempdir().unwrap();
    assert_eq!(log_after_power_cut(&disk, image.path()).len(), 1);
}

#[test]
fn an_all_zero_lock_file_is_a_new_one_not_corruption() {
    // What a filesystem may keep of a lock file a power cut caught before its first sync: its
    // length, zeros.
    let dir = tempfile::tempdir().unwrap();
    let log = log_options(dir.path()).open().unwrap();
    log.append(kind(), b"kept").unwrap();
    drop(log);
    std::fs::write(dir.path().join("log.lock"), vec![0u8; 4096]).unwrap();
    let log = log_options(dir.path()).open().unwrap();
    assert_eq!(read_all(&log).len(), 1);
}

#[test]
fn closing_the_last_handle_from_a_builder_returns() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_options(dir.path()).open().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(log.append_async(kind(), b"synced")).unwrap();
    let inner = log.clone();
    let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    let (done, closed) = std::sync::mpsc::channel();
    let append = async move {
        log.append_with_async(move |_| {
            wait_for_go.recv().unwrap();
            // The builder holds the append lock; closing the last handle writes the durable
            // mark, which takes that lock.
            done.send(inner.close()).unwrap();
            Ok(maos_coord::log::Built { records: vec![], value: () })
        })
        .await
    };
    // The caller gives up at once: its future, and the handle in it, are dropped, so the
    // builder's clone is the last handle.
    runtime.block_on(async {
        tokio::select! {
            biased;
            _ = append => {}
            () = tokio::task::yield_now() => {}
        }
    });
    go.send(()).unwrap();
    // A bound that only turns a hang (the deadlock this guards against) into a failure.
    let result = closed.recv_timeout(std::time::Duration::from_secs(60));
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
}

#[test]
fn the_directories_holding_the_log_are_synced_at_the_first_open_of_a_boot_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("log");
    drop(log_options(&dir).open().unwrap());
    let syncs =
        |disk: &FaultDisk| disk.trace(usize::MAX).iter().filter(|l| l.contains("fsync directory")).count();
    // A new disk is a new boot: the first open syncs the log directory and its parent.
    let (disk, mounted) = FaultDisk::mount(root.path()).unwrap();
    drop(log_options(&dir).open().unwrap());
    assert_eq!(syncs(&disk), 2, "{:?}", disk.trace(8));
    drop(log_options(&dir).open().unwrap());
    assert_eq!(syncs(&disk), 2, "a later open of the same boot syncs nothing: {:?}", disk.trace(8));
    drop(mounted);
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    drop(log_options(&dir).open().unwrap());
    assert_eq!(syncs(&disk), 2, "after a reboot: {:?}", disk.trace(8));
}

#[test]
fn a_log_in_new_nested_directories_keeps_its_records_after_a_power_cut() {
    let root = tempfile::tempdir().unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    // Three directories made by the open: each new name is synced.
    let log = log_options(&root.path().join(".maos/coordination/log")).open().unwrap();
    log.append(kind(), b"acked").unwrap();
    drop(log);
    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    let log = log_options(&image.path().join(".maos/coordination/log")).open().unwrap();
    assert_eq!(read_all(&log).len(), 1, "{:?}", disk.trace(12));
}

#[tokio::test]
async fn a_coordinator_open_syncs_the_store_parents_even_after_a_log_only_open_of_the_boot() {
    let root = tempfile::tempdir().unwrap();
    drop(Coordinator::open(root.path()).unwrap());
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    drop(log_options(&root.path().join(".maos/coordination/log")).open().unwrap());
    assert!(!disk.trace(usize::MAX).iter().any(|l| l.ends_with("fsync directory .maos")));
    drop(Coordinator::open(root.path()).unwrap());
    let trace = disk.trace(usize::MAX);
    assert!(trace.iter().any(|l| l.ends_with("fsync directory .maos")), "{trace:?}");
    assert!(trace.iter().any(|l| l.ends_with("fsync directory ")), "the project root: {trace:?}");
}
