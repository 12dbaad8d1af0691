//! Compaction: removes the segments the kept snapshots cover, respects durable cursors unless
//! forced, archives on request, is safe to stop at any step, and other handles keep working.

use maos_coord_test_support as common;

use common::store::{busy, copy_store, options, segments, state, store};

use std::collections::BTreeMap;

use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{EventFilter, NewTask};
use maos_coord::{Error, Lsn};
use serde_json::json;

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
    assert!(first > Lsn::new(1) && first <= report.snapshot.unwrap());
    drop(c);
    let reopened = options(root.path()).open().unwrap();
    assert_eq!(state(&reopened), before);
    reopened.create_task(&me, NewTask::new("after")).await.unwrap();
    reopened.local_log().expect("a local store").verify().unwrap();
    // Reading below the start is a clear answer.
    let err = reopened.log().reader_from(Lsn::new(1)).err().unwrap();
    assert!(matches!(err, Error::Compacted { first: f, .. } if f == first), "{err}");
}

#[tokio::test]
async fn past_context_versions_go_with_their_segments_and_say_so() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    let k = maos_coord::model::ContextKey::new("k0").unwrap();
    let current = c.read(|s| s.context.version(&k)).unwrap();
    assert!(current > 2);
    assert!(c.get_context_version(&me, &k, 1).unwrap().is_some());
    c.compact(&CompactOptions::default()).unwrap();
    let err = c.get_context_version(&me, &k, 1).unwrap_err();
    assert!(matches!(&err, Error::VersionCompacted { key, version: 1, .. } if key == "k0"), "{err}");
    let text = err.to_string();
    assert!(text.contains("version 1 of context key k0") && text.contains("compacted"), "{text}");
    let latest = c.get_context_version(&me, &k, current).unwrap().unwrap();
    assert_eq!(Some(latest), c.get_context(&me, &k).unwrap(), "the current version stays");
}

#[tokio::test]
async fn archived_segments_are_moved_not_deleted() {
    let root = tempfile::tempdir().unwrap();
    let (c, _) = store(root.path()).await;
    let archive = root.path().join("archive");
    let report = c.compact(&CompactOptions { archive: Some(archive.clone()), ..Default::default() }).unwrap();
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
    assert_eq!(report.held_back_by.as_ref().unwrap().position, d.lsn.next());

    let report = c.compact(&CompactOptions { force: true, ..Default::default() }).unwrap();
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

#[tokio::test]
async fn every_snapshot_damaged_after_compaction_is_an_error_naming_each_file_and_why() {
    use std::os::unix::fs::FileExt;
    let root = tempfile::tempdir().unwrap();
    let (c, _) = store(root.path()).await;
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(!report.removed.is_empty());
    let first = c.log().first_lsn().unwrap();
    drop(c);
    let dir = root.path().join(".maos/coordination/snapshots");
    let mut snaps: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    snaps.sort();
    assert!(!snaps.is_empty());
    for snap in &snaps {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(snap).unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, 100).unwrap();
        file.write_all_at(&[byte[0] ^ 0xff], 100).unwrap(); // inside the body's directory
    }
    let err = options(root.path()).open().err().unwrap();
    let Error::NoUsableSnapshot { first: f, rejected, .. } = &err else { panic!("{err}") };
    assert_eq!(*f, first);
    assert_eq!(rejected.len(), snaps.len(), "{err}");
    for (snap, why) in snaps.iter().rev().zip(rejected) {
        assert!(
            why.starts_with(&snap.display().to_string()) && why.contains("directory checksum mismatch"),
            "{why}"
        );
    }
    assert!(err.to_string().contains("can only be rebuilt from a snapshot"), "{err}");
}
