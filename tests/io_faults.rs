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

#[tokio::test]
async fn compaction_relies_only_on_a_snapshot_whose_name_is_durable() {
    let me = AgentId::new("a").unwrap();
    let options = |r: &Path| {
        Coordinator::options(r).durability(Durability::Sync).snapshot_every(0).segment_size(16 << 10)
    };
    let root = tempfile::tempdir().unwrap();
    {
        let c = options(root.path()).open().unwrap();
        c.register_agent(&me, "r", vec![]).await.unwrap();
    }
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let c = options(root.path()).open().unwrap();
    let mut created = Vec::new();
    for i in 0..60 {
        let spec = NewTask::new(format!("t{i}")).description("x".repeat(400));
        created.push(c.create_task(&me, spec).await.unwrap().id);
    }
    // The snapshot is renamed into place; the sync of its directory fails.
    disk.fail_next("fsync directory .maos/coordination/snapshots");
    assert!(c.snapshot().is_err());
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(!report.removed.is_empty(), "compaction removed segments on the strength of that snapshot");
    drop(c);
    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    let c = options(image.path()).open().expect("the store opens after a power cut");
    for id in &created {
        assert!(c.get_task(id).unwrap().is_some(), "acknowledged task {id} is gone");
    }
}
