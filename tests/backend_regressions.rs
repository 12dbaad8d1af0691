//! Rules of the backend traits (ARCHITECTURE.md, "Backends") that the local directory and the
//! memory backend must both keep, each test named for the fault it guards against: reserved
//! record kinds stay reserved, compaction keeps what keyed compaction kept, blobs are named
//! durably, unreadable snapshots are passed over, recorded time never goes back, I/O errors keep
//! their kind, and temporary files of dead writers are swept.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use maos_coord::backend::memory::{MemoryBlobs, MemoryLog};
use maos_coord::backend::Backend;
use maos_coord::coordinator::CompactOptions;
use maos_coord::fs::FaultDisk;
use maos_coord::model::Subject;
use maos_coord::{
    AgentId, Coordinator, Durability, Error, EventFilter, ManualClock, NewTask, RecordKind, Timestamp,
};

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn local(root: &Path) -> Coordinator {
    Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).open().unwrap()
}

fn on_memory(backend: &Backend) -> Coordinator {
    Coordinator::options(".")
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .open_on(backend.clone())
        .unwrap()
}

/// `LogBackend::reserving` and `Log::with_reserved` only add refused kinds: the handle
/// `Coordinator::log()` hands out cannot make itself one that appends coordination records.
#[tokio::test]
async fn the_handed_out_log_cannot_lift_its_own_reservation_on_the_local_store() {
    let root = tempfile::tempdir().unwrap();
    let c = local(root.path());
    let kind = RecordKind::new(1).unwrap();
    let junk: &[u8] = b"\xff\xfe\xc3\x28 not msgpack";
    let before = c.log().next_lsn();

    let through_trait = c.log().reserving(200..=200).append(kind, junk);
    assert!(
        matches!(through_trait, Err(Error::ReservedKind { kind: 1 })),
        "Coordinator::log().reserving(200..=200) appended a coordination record: {through_trait:?}"
    );
    let through_local = c.local_log().unwrap().with_reserved(200..=200).append(kind, junk);
    assert!(
        matches!(through_local, Err(Error::ReservedKind { kind: 1 })),
        "Coordinator::local_log().with_reserved(200..=200) appended a coordination record: {through_local:?}"
    );
    assert_eq!(c.log().next_lsn(), before, "nothing forged went in");
}

#[tokio::test]
async fn the_handed_out_log_cannot_lift_its_own_reservation_on_the_memory_backend() {
    let c = on_memory(&Backend::memory());
    let forged = c.log().reserving(200..=200).append(RecordKind::new(1).unwrap(), b"forged");
    assert!(matches!(forged, Err(Error::ReservedKind { kind: 1 })), "{forged:?}");
}

/// A plain compaction leaves the records an earlier keyed compaction kept (as the file log
/// leaves its compacted-records file; tests/keyed_compaction.rs).
#[tokio::test]
async fn a_plain_compaction_on_the_memory_backend_keeps_what_a_keyed_one_kept() {
    // One snapshot kept, so that the second compaction's limit (the oldest snapshot) moves on.
    let c = Coordinator::options(".")
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .keep_snapshots(1)
        .open_on(Backend::memory())
        .unwrap();
    let me = agent("me");
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let task = c.create_task(&me, NewTask::new("t")).await.unwrap().id;
    c.snapshot().unwrap();
    let report = c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() }).unwrap();
    assert!(report.keyed.unwrap().kept > 0, "{report:?}");
    let subject = Subject::Task(task.to_string());
    let kept: Vec<_> = c.history(&me, &subject).unwrap().into_iter().map(|e| e.lsn).collect();
    assert!(!kept.is_empty(), "keyed compaction kept the task's creation");

    c.create_task(&me, NewTask::new("later")).await.unwrap();
    c.snapshot().unwrap();
    let plain = c.compact(&CompactOptions::default()).unwrap();
    assert!(plain.limit > report.limit, "the plain compaction removed records: {plain:?}");
    let after: Vec<_> = c.history(&me, &subject).unwrap().into_iter().map(|e| e.lsn).collect();
    assert_eq!(after, kept, "a plain compaction dropped the records the keyed one kept");
}

/// The store directory is synced before the first blob of each space, not once per handle: a
/// `cursors/` directory whose creation sync failed is named durably before an acknowledgement
/// counts, even after the handle wrote a snapshot.
#[tokio::test]
async fn an_acknowledged_cursor_survives_a_power_cut_after_its_directory_sync_failed_once() {
    let me = agent("a");
    let options = |r: &Path| Coordinator::options(r).durability(Durability::Sync).snapshot_every(0);
    let root = tempfile::tempdir().unwrap();
    {
        let c = options(root.path()).open().unwrap();
        c.register_agent(&me, "r", vec![]).await.unwrap();
    }
    // A store without its cursor directory yet (a copy that left empty directories out, as in
    // io_faults.rs for the snapshot directory).
    std::fs::remove_dir(root.path().join(".maos/coordination/cursors")).unwrap();
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let c = options(root.path()).open().unwrap();
    c.snapshot().unwrap(); // this handle syncs the store directory here, once
    for i in 0..3 {
        c.create_task(&me, NewTask::new(format!("t{i}"))).await.unwrap();
    }
    // The durable subscription makes `cursors/`; the sync of the store directory naming it fails.
    disk.fail_next("fsync directory .maos/coordination");
    assert!(c.subscribe_durable(&me, "s", EventFilter::all()).is_err());
    assert!(root.path().join(".maos/coordination/cursors").is_dir());
    let mut s = c.subscribe_durable(&me, "s", EventFilter::all()).unwrap();
    let mut last = None;
    while let Some(delivery) = s.try_next().unwrap() {
        last = Some(delivery.lsn);
    }
    let last = last.expect("deliveries");
    s.ack(last).unwrap(); // "durable when this returns"
    drop(s);
    drop(c);

    let image = tempfile::tempdir().unwrap();
    disk.write_image(image.path()).unwrap();
    let (_rebooted, _mounted) = FaultDisk::mount(image.path()).unwrap();
    let c = options(image.path()).open().expect("the store opens after a power cut");
    let s = c.subscribe_durable(&me, "s", EventFilter::all()).unwrap();
    assert_eq!(s.resume_position(), last.next(), "the acknowledged position was lost");
}

/// A snapshot that cannot be opened (here a symbolic-link loop, ELOOP; EACCES or EIO in
/// practice) is skipped, as one that cannot be read is: opening, snapshotting and compaction go
/// on with an older one. (The store's permission check at open refuses the loop itself, so the
/// test meets it after open.)
#[tokio::test]
async fn a_snapshot_that_cannot_be_opened_is_skipped_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    let me = agent("me");
    let c = local(root.path());
    c.register_agent(&me, "r", vec![]).await.unwrap();
    c.snapshot().unwrap();
    c.create_task(&me, NewTask::new("t")).await.unwrap();
    let newer = root
        .path()
        .join(".maos/coordination/snapshots")
        .join(format!("{:020}.snap", c.log().next_lsn().get()));
    std::os::unix::fs::symlink(&newer, &newer).unwrap();
    c.snapshot().expect("a snapshot that cannot be opened is passed over");
    c.compact(&CompactOptions::default()).expect("compaction counts it as not valid, as before");
}

/// Recorded time never goes backwards (tests/leases.rs for the file log): a batch is timed
/// `max(clock, time of the last record)`.
#[tokio::test]
async fn recorded_time_never_goes_backwards_on_the_memory_backend() {
    let clock = ManualClock::starting_now();
    let backend =
        Backend { log: Arc::new(MemoryLog::with_clock(clock.shared())), blobs: Arc::new(MemoryBlobs::new()) };
    let c = Coordinator::options(".").clock(clock.shared()).snapshot_every(0).open_on(backend).unwrap();
    let a = agent("a");
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.create_task(&a, NewTask::new("t")).await.unwrap();
    clock.rewind(Duration::from_secs(10));
    c.create_task(&a, NewTask::new("u")).await.unwrap();
    let mut reader = c.log().reader().unwrap();
    let mut times = Vec::new();
    while let Some(record) = reader.next().unwrap() {
        times.push(record.timestamp);
    }
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "recorded time went backwards: {times:?}");
}

/// A memory backend made with the coordinator's clock (`Backend::memory_with_clock`) times its
/// records by it, so a lease lapses when a test moves that clock.
#[tokio::test]
async fn the_coordinators_clock_decides_on_the_memory_backend() {
    let clock = ManualClock::new(Timestamp::from_micros(1_000_000_000_000_000)); // 2001
    let lease = Duration::from_secs(30);
    let c = Coordinator::options(".")
        .clock(clock.shared())
        .lease(lease)
        .snapshot_every(0)
        .open_on(Backend::memory_with_clock(clock.shared()))
        .unwrap();
    let (a, b) = (agent("a"), agent("b"));
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.register_agent(&b, "r", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap().id;
    let claimed = c.claim_next_task(&a, None).await.unwrap().unwrap();
    assert_eq!(claimed.id, t);
    clock.advance(lease + Duration::from_secs(1));
    assert_eq!(
        c.claim_next_task(&b, None).await.unwrap().map(|t| t.id),
        Some(t),
        "the lease ended by the coordinator's clock"
    );
}

/// A blob write that fails reports the OS error itself (its kind, here a full disk), not a
/// message wrapped in `Other`.
#[tokio::test]
async fn a_snapshot_that_fills_the_disk_reports_the_os_error() {
    let root = tempfile::tempdir().unwrap();
    let me = agent("a");
    {
        let c = local(root.path());
        c.register_agent(&me, "r", vec![]).await.unwrap();
    }
    let (disk, _mounted) = FaultDisk::mount(root.path()).unwrap();
    let c = local(root.path());
    c.create_task(&me, NewTask::new("t")).await.unwrap();
    disk.fill_at(disk.ops() + 1);
    let err = c.snapshot().unwrap_err();
    disk.heal();
    let Error::Io { source, .. } = &err else { panic!("not an I/O error: {err:?}") };
    assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert_eq!(source.raw_os_error(), Some(28), "{err}");
}

/// Every open of a durable subscription sweeps the temporary files of cursor writers that died,
/// not only the first one of a coordinator.
#[tokio::test]
async fn a_durable_subscription_removes_a_dead_cursor_writers_file_whenever_it_opens() {
    let root = tempfile::tempdir().unwrap();
    let c = local(root.path());
    let me = agent("me");
    c.register_agent(&me, "r", vec![]).await.unwrap();
    drop(c.subscribe_durable(&me, "s", EventFilter::all()).unwrap());
    // A writer of this cursor died mid-write (no process holds the file's lock).
    let stale = root.path().join(".maos/coordination/cursors/6d65.73.cursor.999999.0.tmp");
    std::fs::write(&stale, b"half-written").unwrap();
    drop(c.subscribe_durable(&me, "s", EventFilter::all()).unwrap());
    assert!(!stale.exists(), "the dead writer's file stays");
}
