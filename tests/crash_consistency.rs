//! Crash consistency under injected I/O faults, in the style of redb's
//! `tests/crash_consistency.rs`: a scripted workload (appends across segment rollovers, a
//! durable cursor saved, a snapshot, a keyed compaction) runs once to count the operations it
//! makes on its files, then once for every N with operation N failing (`EIO`), the disk full
//! from operation N on (`ENOSPC`), or the power cut before it (only what was synced survives).
//! Each time the store must reopen without a panic or an error, hold everything that was
//! acknowledged, show the state a replay of its records gives, and take new writes.
//!
//! The disk is [`FaultDisk`]: the files stay real, every change to them goes through it
//! (`maos_coord::fs::Storage`). Real processes killed with SIGKILL are tested in
//! `crates/tools/tests/` and `crates/cli/tests/`.

use maos_coord_test_support as common;

use std::path::Path;

use maos_coord::coordinator::CompactOptions;
use maos_coord::fs::FaultDisk;
use maos_coord::model::{AgentId, ContextKey, EventFilter, NewTask, Recorded, Visibility};
use maos_coord::projection::State;
use maos_coord::{Coordinator, CoordinatorOptions, Durability, Lsn, TaskId, TaskStatus};
use serde_json::json;

/// What the workload was told had happened (and so must survive).
#[derive(Debug, Clone)]
enum Ack {
    Created(TaskId),
    Completed(TaskId),
    Set(ContextKey, u64),
    Acked(Lsn),
}

/// Where the fault strikes.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Fail(u64),
    Fill(u64),
    CutPower(u64),
}

fn options(root: &Path) -> CoordinatorOptions {
    Coordinator::options(root).durability(Durability::Sync).snapshot_every(0).segment_size(16 << 10)
}

fn me() -> AgentId {
    AgentId::new("crash").unwrap()
}

/// A store with the agent registered, made before the disk is mounted (so it all counts as
/// synced).
fn fresh_store(root: &Path) {
    let runtime = runtime();
    let c = options(root).open().unwrap();
    runtime.block_on(c.register_agent(&me(), "worker", vec![])).unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Tasks created, claimed and completed and keys set, with values big enough that a few rounds
/// fill a segment.
async fn rounds(c: &Coordinator, acks: &mut Vec<Ack>, from: u32, to: u32) {
    let me = me();
    let filler = "x".repeat(600);
    for i in from..to {
        if let Ok(task) = c.create_task(&me, NewTask::new(format!("t{i}"))).await {
            acks.push(Ack::Created(task.id.clone()));
            if let Ok(Some(claimed)) = c.claim_next_task(&me, Some(&[])).await {
                if c.complete_task(&me, &claimed.id, vec![]).await.is_ok() {
                    acks.push(Ack::Completed(claimed.id));
                }
            }
        }
        let key = ContextKey::new(format!("k{}", i % 3)).unwrap();
        if let Ok(version) = c.set_context(&me, &key, json!([i, filler]), Visibility::Shared).await {
            acks.push(Ack::Set(key, version));
        }
    }
}

/// The scripted workload; stops at nothing (every step after a failure is tried too).
async fn workload(c: &Coordinator, acks: &mut Vec<Ack>) {
    rounds(c, acks, 0, 12).await;
    if let Ok(mut sub) = c.subscribe_durable(&me(), "audit", EventFilter::default()) {
        let mut last = None;
        while let Ok(Some(delivery)) = sub.try_next() {
            last = Some(delivery.lsn);
        }
        if let Some(lsn) = last {
            if sub.ack(lsn).is_ok() {
                acks.push(Ack::Acked(lsn));
            }
        }
    }
    rounds(c, acks, 12, 18).await;
    let _ = c.snapshot();
    rounds(c, acks, 18, 24).await;
    let _ = c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() });
    rounds(c, acks, 24, 28).await;
}

/// A second handle opened after the first one's failures (as another process would be: it
/// shares nothing with the first, and the kernel reports an earlier failed sync to it as
/// nothing), which retries the snapshot and the compaction.
async fn second_handle(root: &Path, acks: &mut Vec<Ack>) {
    let Ok(c) = options(root).open() else { return };
    rounds(&c, acks, 28, 31).await;
    let _ = c.snapshot();
    let _ = c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() });
    rounds(&c, acks, 31, 33).await;
}

/// The state a replay gives, from the oldest start the store keeps: the empty state if the log
/// still begins at LSN 1, else the oldest snapshot that reads (the one compaction kept). A
/// reopened store starts from the newest snapshot instead, so the two meet only if snapshots,
/// compaction and recovery agree.
fn replayed(c: &Coordinator, root: &Path) -> State {
    let first = c.log().first_lsn().unwrap();
    let (mut state, from) = if first == Lsn::new(1) {
        (State::default(), first)
    } else {
        let blobs = maos_coord::backend::DirBlobs::new(&root.join(".maos/coordination"));
        let snapshots = maos_coord::snapshot::Snapshots::new(std::sync::Arc::new(blobs), usize::MAX);
        let oldest = snapshots
            .list()
            .unwrap()
            .into_iter()
            .rev()
            .find_map(|(_, name)| snapshots.read(&name).and_then(Result::ok).filter(|i| i.next_lsn >= first))
            .expect("a compacted log keeps a snapshot at or past its first LSN");
        let from = oldest.next_lsn;
        (State::from_image(oldest), from)
    };
    let mut reader = c.log().reader_from(from).unwrap();
    while let Some(r) = reader.next().unwrap() {
        state.apply(Recorded::decode(r.lsn, r.payload).unwrap(), r.lsn, r.timestamp);
    }
    state
}

/// Opens the store at `root` and checks it: everything acknowledged is there, the state is a
/// replay's, and it takes a new task.
fn check(root: &Path, acks: &[Ack], what: &str) {
    let c = options(root).open().unwrap_or_else(|e| panic!("{what}: the store does not reopen: {e}"));
    let runtime = runtime();
    for ack in acks {
        match ack {
            Ack::Created(id) => {
                assert!(c.get_task(id).unwrap().is_some(), "{what}: acknowledged task {id} is gone");
            }
            Ack::Completed(id) => {
                let task = c.get_task(id).unwrap().unwrap();
                assert_eq!(task.status, TaskStatus::Completed, "{what}: task {id} completed, then not");
            }
            Ack::Set(key, version) => {
                let entry = c.get_context(&me(), key).unwrap();
                let found = entry.map_or(0, |e| e.version);
                assert!(found >= *version, "{what}: {key} acknowledged at version {version}, found {found}");
            }
            Ack::Acked(lsn) => {
                let sub = c.subscribe_durable(&me(), "audit", EventFilter::default()).unwrap();
                assert!(sub.resume_position() > *lsn, "{what}: the cursor acknowledged {lsn} went back");
            }
        }
    }
    let state = c.read(Clone::clone).unwrap();
    let replay = replayed(&c, root);
    if state != replay {
        let (a, b) = (format!("{state:#?}"), format!("{replay:#?}"));
        let diff: Vec<_> =
            a.lines().zip(b.lines()).enumerate().filter(|(_, (x, y))| x != y).take(8).collect();
        panic!("{what}: the state differs from a replay of the records: {diff:#?}");
    }
    runtime
        .block_on(c.create_task(&me(), NewTask::new("after")))
        .unwrap_or_else(|e| panic!("{what}: the reopened store takes no new task: {e}"));
}

/// Runs the workload on a copy of `base` with `fault` injected, then checks what reopens.
fn run(base: &Path, fault: Option<Fault>) -> u64 {
    let root = tempfile::tempdir().unwrap();
    common::store::copy_store(base, root.path());
    let (disk, mounted) = FaultDisk::mount(root.path()).unwrap();
    match fault {
        Some(Fault::Fail(n)) => disk.fail_at(n),
        Some(Fault::Fill(n)) => disk.fill_at(n),
        Some(Fault::CutPower(n)) => disk.cut_power_at(n),
        None => {}
    }
    let mut acks = Vec::new();
    let opened = options(root.path()).open();
    if let Ok(c) = &opened {
        runtime().block_on(workload(c, &mut acks));
    }
    drop(opened);
    runtime().block_on(second_handle(root.path(), &mut acks));
    let ops = disk.ops();
    let what = format!("{fault:?} (of {ops} operations; last: {:?})", disk.trace(4));
    // What a power cut leaves (at the cut, or now if there was none): the acknowledged
    // records must be on the disk, not only in the page cache (a failed sync must not let a
    // later one acknowledge records whose bytes it no longer writes).
    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    if !disk.power_cut() {
        // The same process, the same boot, the disk healed.
        disk.heal();
        check(root.path(), &acks, &what);
    }
    drop(mounted);
    // Opened under a disk of its own: another boot, as after a real power cut.
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    check(image.path(), &acks, &format!("{what}, after a power cut"));
    ops
}

/// The workload without faults: every step succeeds, and the operations it makes are counted.
fn base_and_count() -> (tempfile::TempDir, u64) {
    let base = tempfile::tempdir().unwrap();
    fresh_store(base.path());
    count(base)
}

fn count(base: tempfile::TempDir) -> (tempfile::TempDir, u64) {
    let ops = run(base.path(), None);
    assert!(ops > 100, "the workload makes {ops} operations");
    (base, ops)
}

#[test]
fn every_acknowledged_change_survives_a_power_cut_at_any_operation() {
    let (base, ops) = base_and_count();
    for n in 1..=ops {
        run(base.path(), Some(Fault::CutPower(n)));
    }
}

/// As [`fresh_store`], with the spare segment made too (log-format.md, "Spare segment"), so that
/// the first rollover of every run takes it.
fn store_with_spare() -> (tempfile::TempDir, u64) {
    let base = tempfile::tempdir().unwrap();
    fresh_store(base.path());
    let log = maos_coord::Log::options(base.path().join(".maos/coordination/log"))
        .segment_size(16 << 10)
        .max_record_size(4096)
        .prefill_segments(false)
        .open()
        .unwrap();
    log.wait_for_spare_segment();
    let _made = log.prepare_spare_segment().unwrap();
    drop(log);
    assert!(base.path().join(".maos/coordination/log/segment.spare").exists());
    count(base)
}

/// A rollover that takes a spare made before the disk was mounted, and a power cut at every
/// operation. (With the spare thread on, which was then the default for `Sync` logs, the sweep
/// above failed now and then: the record synced into the segment just taken from the spare was
/// acknowledged, and missing after the power cut. The cause was the fault disk, not the log: the
/// appender's `fdatasync` was still running when the spare thread's next operation cut the power,
/// and it returned `Ok` after the image was taken. `FaultDisk` now fails a sync that the power cut
/// short: `a_sync_still_running_when_another_thread_cuts_the_power_fails_and_keeps_nothing`.)
#[test]
fn every_acknowledged_change_survives_a_power_cut_while_rolling_into_a_spare_segment() {
    let (base, ops) = store_with_spare();
    for n in 1..=ops {
        run(base.path(), Some(Fault::CutPower(n)));
    }
}

#[test]
fn a_failed_write_or_sync_at_any_operation_loses_nothing_acknowledged() {
    let (base, ops) = base_and_count();
    for n in 1..=ops {
        run(base.path(), Some(Fault::Fail(n)));
    }
}

#[test]
fn a_full_disk_from_any_operation_on_loses_nothing_acknowledged_and_bricks_nothing() {
    let (base, ops) = base_and_count();
    for n in 1..=ops {
        run(base.path(), Some(Fault::Fill(n)));
    }
}
