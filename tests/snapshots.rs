//! Snapshots: opening with a snapshot plus the tail after it gives exactly the state of a full
//! replay; corrupt snapshots fall back to older ones or to a full replay; old ones are pruned;
//! automatic snapshots happen every N records.

use std::time::Duration;

use maos_coord::model::{AgentId, ContextKey, NewTask, Visibility};
use maos_coord::projection::State;
use maos_coord::{Coordinator, Durability};
use serde_json::json;

fn options(root: &std::path::Path) -> maos_coord::CoordinatorOptions {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .lease(Duration::from_secs(60))
}

fn snapshot_files(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(root.join(".maos/coordination/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    files.sort();
    files
}

async fn work(c: &Coordinator, me: &AgentId, round: u32) {
    for i in 0..20 {
        let t = c.create_task(me, NewTask::new(format!("r{round}-t{i}"))).await.unwrap();
        if i % 2 == 0 {
            c.claim_next_task(me, Some(&[])).await.unwrap();
        }
        if i % 4 == 0 {
            c.complete_task(me, &t.id, vec![format!("out{i}")]).await.unwrap_or(());
        }
        c.set_context(
            me,
            &ContextKey::new(format!("k{}", i % 5)).unwrap(),
            json!([round, i]),
            Visibility::Shared,
        )
        .await
        .unwrap();
    }
}

fn full_replay(root: &std::path::Path) -> State {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join(".maos/coordination/log");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(root.join(".maos/coordination/log")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let c = options(dir.path()).open().unwrap();
    c.read(|s| s.clone()).unwrap()
}

#[tokio::test]
async fn snapshot_plus_tail_equals_a_full_replay() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    {
        let c = options(root.path()).open().unwrap();
        c.register_agent(&me, "r", vec![]).await.unwrap();
        work(&c, &me, 1).await;
        let lsn = c.snapshot().unwrap();
        assert!(lsn.get() > 40);
        work(&c, &me, 2).await;
    }
    assert_eq!(snapshot_files(root.path()).len(), 1);
    let c = options(root.path()).open().unwrap();
    assert!(c.skipped_snapshots().is_empty());
    let from_snapshot = c.read(|s| s.clone()).unwrap();
    assert_eq!(from_snapshot, full_replay(root.path()));
    // And the store goes on working from there.
    c.create_task(&me, NewTask::new("after")).await.unwrap();
}

#[tokio::test]
async fn a_corrupt_snapshot_falls_back_to_the_one_before_or_a_full_replay() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    {
        let c = options(root.path()).keep_snapshots(2).open().unwrap();
        c.register_agent(&me, "r", vec![]).await.unwrap();
        for round in 0..3 {
            work(&c, &me, round).await;
            c.snapshot().unwrap();
        }
    }
    let files = snapshot_files(root.path());
    assert_eq!(files.len(), 2, "only the newest two are kept");
    let expected = full_replay(root.path());

    let mut bytes = std::fs::read(&files[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&files[1], &bytes).unwrap();
    let c = options(root.path()).open().unwrap();
    assert_eq!(c.skipped_snapshots().len(), 1);
    assert!(c.skipped_snapshots()[0].reason.contains("checksum"), "{:?}", c.skipped_snapshots());
    assert_eq!(c.read(|s| s.clone()).unwrap(), expected);
    drop(c);

    std::fs::write(&files[0], b"not a snapshot").unwrap();
    let c = options(root.path()).open().unwrap();
    assert_eq!(c.skipped_snapshots().len(), 2);
    assert_eq!(c.read(|s| s.clone()).unwrap(), expected, "full replay");
}

#[tokio::test]
async fn a_snapshot_ahead_of_the_log_is_not_used() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    {
        let c = options(root.path()).open().unwrap();
        c.register_agent(&me, "r", vec![]).await.unwrap();
        work(&c, &me, 0).await;
        c.snapshot().unwrap();
    }
    // The log is replaced by a shorter one (say, restored from an older backup).
    std::fs::remove_dir_all(root.path().join(".maos/coordination/log")).unwrap();
    let c = options(root.path()).open().unwrap();
    assert!(c.skipped_snapshots()[0].reason.contains("ahead of the log"));
    assert!(c.read(|s| s.tasks.is_empty()).unwrap());
}

#[tokio::test]
async fn snapshots_are_taken_automatically_every_n_records() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    let c = options(root.path()).snapshot_every(50).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let mut taken = Vec::new();
    for round in 0..4 {
        work(&c, &me, round).await;
        // A snapshot due while another is being written is taken by a later command.
        c.wait_for_snapshots();
        c.heartbeat(&me).await.unwrap();
        c.wait_for_snapshots();
        let files = snapshot_files(root.path());
        assert!(files.len() <= 2, "old snapshots are pruned: {files:?}");
        taken.extend(files);
    }
    taken.sort();
    taken.dedup();
    assert!(taken.len() >= 3, "automatic snapshots every 50 records: {taken:?}");
    drop(c);
    let reopened = options(root.path()).open().unwrap();
    assert_eq!(reopened.read(|s| s.clone()).unwrap(), full_replay(root.path()));
}

#[tokio::test]
async fn snapshots_are_taken_automatically_every_m_bytes() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    let c = options(root.path()).snapshot_every_bytes(64 << 10).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    work(&c, &me, 0).await; // ~100 small records: far below 64 KiB
    c.wait_for_snapshots();
    assert!(snapshot_files(root.path()).is_empty(), "no snapshot before 64 KiB of log");
    let big = json!("x".repeat(8 << 10));
    let mut i = 0;
    while snapshot_files(root.path()).is_empty() {
        assert!(i < 10, "no snapshot after {i} values of 8 KiB");
        let key = ContextKey::new(format!("big{i}")).unwrap();
        c.set_context(&me, &key, big.clone(), Visibility::Shared).await.unwrap();
        c.wait_for_snapshots();
        i += 1;
    }
    // 64 KiB of 8 KiB values, less what the small records already counted.
    assert!((6..=8).contains(&i), "a snapshot after {i} values of 8 KiB (threshold 64 KiB)");
}

#[tokio::test]
async fn a_snapshot_never_waits_for_the_live_projections() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    let c = options(root.path()).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    work(&c, &me, 0).await;
    // While the live state is locked (as by a long command), a snapshot still completes.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writer = c.clone();
    c.read(move |live| {
        std::thread::spawn(move || done_tx.send(writer.snapshot().map(|lsn| lsn.get())));
        let lsn =
            done_rx.recv_timeout(Duration::from_secs(10)).expect("the snapshot waited for the state lock");
        assert_eq!(lsn.unwrap(), live.next_lsn.get());
    })
    .unwrap();
    drop(c);
    let reopened = options(root.path()).open().unwrap();
    assert_eq!(reopened.read(|s| s.clone()).unwrap(), full_replay(root.path()));
}

/// Holds the snapshot writer's lock as another process writing a snapshot would.
fn hold_writer_lock(root: &std::path::Path) -> std::fs::File {
    let path = root.join(".maos/coordination/snapshots/writer.lock");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    file.try_lock().unwrap();
    file
}

#[tokio::test]
async fn an_automatic_snapshot_is_left_to_the_process_holding_the_writer_lock() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    let c = options(root.path()).snapshot_every(50).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let held = hold_writer_lock(root.path());
    work(&c, &me, 0).await; // more than 50 records: the trigger fires
    c.wait_for_snapshots();
    assert!(snapshot_files(root.path()).is_empty(), "a second writer wrote a snapshot");
    drop(held);
    // The trigger counts again from where the other writer took over.
    work(&c, &me, 1).await;
    c.wait_for_snapshots();
    assert_eq!(snapshot_files(root.path()).len(), 1, "the lock was free again");
}

#[tokio::test]
async fn an_automatic_snapshot_is_skipped_when_another_process_wrote_a_newer_one() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("a").unwrap();
    let c = options(root.path()).snapshot_every(150).open().unwrap();
    let other = options(root.path()).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    work(&c, &me, 0).await;
    c.wait_for_snapshots();
    assert!(snapshot_files(root.path()).is_empty(), "below the threshold");
    let theirs = other.snapshot().unwrap();
    let mut round = 1;
    let mut lsn = c.read(|s| s.next_lsn.get()).unwrap();
    while lsn < 151 {
        work(&c, &me, round).await;
        round += 1;
        c.wait_for_snapshots();
        lsn = c.read(|s| s.next_lsn.get()).unwrap();
    }
    let files = snapshot_files(root.path());
    assert_eq!(files.len(), 1, "only the other process's snapshot: {files:?}");
    assert!(files[0].ends_with(format!("{:020}.snap", theirs.get())));
    // Counting from the other process's snapshot, the next is this process's.
    while snapshot_files(root.path()).len() == 1 {
        assert!(lsn < theirs.get() + 400, "no snapshot by LSN {lsn}");
        work(&c, &me, round).await;
        round += 1;
        c.wait_for_snapshots();
        lsn = c.read(|s| s.next_lsn.get()).unwrap();
    }
    drop(c);
    let reopened = options(root.path()).open().unwrap();
    assert_eq!(reopened.read(|s| s.clone()).unwrap(), full_replay(root.path()));
}
