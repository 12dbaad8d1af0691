//! Compaction: removes the segments the kept snapshots cover, respects durable cursors unless
//! forced, archives on request, is safe to stop at any step, and other handles keep working.

mod common;

use std::collections::BTreeMap;

use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{AgentId, ContextKey, EventFilter, NewTask, Visibility};
use maos_coord::projection::State;
use maos_coord::{Coordinator, Durability, Error, Lsn};
use serde_json::json;

fn options(root: &std::path::Path) -> maos_coord::CoordinatorOptions {
    Coordinator::options(root).durability(Durability::Buffered).snapshot_every(0).segment_size(16384)
}

fn segments(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    common::segment_files(&root.join(".maos/coordination/log"))
}

async fn busy(c: &Coordinator, me: &AgentId, round: u32) {
    for i in 0..40 {
        let t = c.create_task(me, NewTask::new(format!("r{round}-{i}"))).await.unwrap();
        c.claim_next_task(me, &[]).await.unwrap();
        c.complete_task(me, &t.id, vec![]).await.unwrap_or(());
        c.set_context(
            me,
            &ContextKey::new(format!("k{}", i % 3)).unwrap(),
            json!([round, i]),
            Visibility::Shared,
        )
        .await
        .unwrap();
    }
}

/// A store with two snapshots and records after them, over many small segments.
async fn store(root: &std::path::Path) -> (Coordinator, AgentId) {
    let c = options(root).open().unwrap();
    let me = AgentId::new("a").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    for round in 0..3 {
        busy(&c, &me, round).await;
        if round > 0 {
            c.snapshot().unwrap();
        }
    }
    (c, me)
}

fn state(c: &Coordinator) -> State {
    c.read(|s| s.clone()).unwrap()
}

#[tokio::test]
async fn compaction_removes_what_the_oldest_kept_snapshot_covers_and_the_state_stays() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    let before = state(&c);
    let n = segments(root.path()).len();
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(!report.removed.is_empty(), "{report:?}");
    assert!(segments(root.path()).len() < n);
    let first = c.log().first_lsn().unwrap();
    assert!(first > Lsn(1) && first <= report.snapshot.unwrap());
    drop(c);
    let reopened = options(root.path()).open().unwrap();
    assert_eq!(state(&reopened), before);
    reopened.create_task(&me, NewTask::new("after")).await.unwrap();
    reopened.log().verify().unwrap();
    // Reading below the start is a clear answer.
    let err = reopened.log().reader_from(Lsn(1)).err().unwrap();
    assert!(matches!(err, Error::Compacted { first: f, .. } if f == first), "{err}");
}

#[tokio::test]
async fn archived_segments_are_moved_not_deleted() {
    let root = tempfile::tempdir().unwrap();
    let (c, _) = store(root.path()).await;
    let archive = root.path().join("archive");
    let report = c.compact(&CompactOptions { force: false, archive: Some(archive.clone()) }).unwrap();
    let archived: Vec<_> = std::fs::read_dir(&archive).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(archived.len(), report.removed.len());
    assert!(archived.iter().any(|n| n.to_str().unwrap().ends_with(".seg")));
}

#[tokio::test]
async fn a_cursor_behind_blocks_removal_unless_forced_and_then_its_owner_is_told() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    let mut slow = c.subscribe_durable(&me, "slow", EventFilter::all()).unwrap();
    let d = slow.next().await.unwrap();
    slow.ack(d.lsn).unwrap();
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(report.removed.is_empty(), "the cursor at LSN {} holds the log", d.lsn.next());
    assert_eq!(report.held_back_by.as_ref().unwrap().1, d.lsn.next());

    let report = c.compact(&CompactOptions { force: true, archive: None }).unwrap();
    assert!(!report.removed.is_empty());
    let err = c.subscribe_durable(&me, "slow", EventFilter::all()).err().unwrap();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");
    // The owner re-reads the state it needs and moves on from the log's start.
    c.reset_cursor(&me, "slow", c.log().first_lsn().unwrap()).unwrap();
    let mut resumed = c.subscribe_durable(&me, "slow", EventFilter::all()).unwrap();
    assert!(resumed.next().await.unwrap().lsn >= c.log().first_lsn().unwrap());
}

#[tokio::test]
async fn a_compaction_stopped_after_any_step_leaves_a_store_with_the_same_state() {
    let root = tempfile::tempdir().unwrap();
    let (c, _) = store(root.path()).await;
    let before = state(&c);
    let pristine = tempfile::tempdir().unwrap();
    copy_store(root.path(), pristine.path());
    let removed = c.compact(&CompactOptions::default()).unwrap().removed;
    drop(c);
    // Each step removes one file; stop after k of them.
    for k in 0..=removed.len() {
        let dir = tempfile::tempdir().unwrap();
        copy_store(pristine.path(), dir.path());
        for file in &removed[..k] {
            let rel = file.strip_prefix(root.path()).unwrap();
            std::fs::remove_file(dir.path().join(rel)).unwrap();
        }
        let c = options(dir.path()).open().unwrap_or_else(|e| panic!("after {k} steps: {e}"));
        assert_eq!(state(&c), before, "after {k} steps");
    }
}

#[tokio::test]
async fn another_handle_keeps_working_during_and_after_compaction() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    let other = options(root.path()).open().unwrap(); // as another process would
    let mut sub = other.subscribe(&me, EventFilter::all().types(["ping"])).unwrap();
    c.compact(&CompactOptions::default()).unwrap();
    other.emit_event(&me, "ping", json!(1), BTreeMap::new()).await.unwrap();
    assert_eq!(sub.next().await.unwrap().recorded.event.type_name(), "ping");
    busy(&other, &me, 9).await;
    assert_eq!(state(&other), state(&c));
}

fn copy_store(from: &std::path::Path, to: &std::path::Path) {
    for entry in walk(from) {
        let rel = entry.strip_prefix(from).unwrap();
        let target = to.join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
