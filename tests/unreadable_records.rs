//! A store that already holds a coordination record it cannot decode (written by an older
//! version, by hand, or by a bug) is never bricked: opening names the record's place, `repair`
//! records a tombstone that every reader passes over, and the record's bytes stay for audit.

use maos_coord::coordinator::{find_unreadable, open_store_log, skip_unreadable};
use maos_coord::model::{AgentId, EventFilter, NewTask, Subject, EVENT_RECORD_KIND};
use maos_coord::{Coordinator, Durability, Error, Log, RecordKind};

const JUNK: &[u8] = b"\xff\xfe\xc3\x28 not msgpack";

fn open(root: &std::path::Path) -> maos_coord::Result<Coordinator> {
    Coordinator::options(root).durability(Durability::Buffered).open()
}

/// A store with a task, then a coordination record that does not decode (returns its LSN).
async fn damaged_store(root: &std::path::Path) -> u64 {
    let c = open(root).unwrap();
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "r", vec![]).await.unwrap();
    c.create_task(&a, NewTask::new("before")).await.unwrap();
    // Not through the coordinator's log handle, which refuses the kind.
    let raw = Log::options(c.store_dir().join("log")).open().unwrap();
    raw.append(RecordKind::new(EVENT_RECORD_KIND).unwrap(), JUNK).unwrap().get()
}

#[tokio::test]
async fn opening_a_store_with_an_undecodable_record_names_its_lsn_segment_and_offset() {
    let root = tempfile::tempdir().unwrap();
    let bad = damaged_store(root.path()).await;
    let err = open(root.path()).err().unwrap();
    match &err {
        Error::UndecodableRecord { lsn, segment, offset, .. } => {
            assert_eq!(lsn.get(), bad);
            assert!(segment.ends_with("00000000000000000001.seg"), "{}", segment.display());
            assert!(*offset >= 64, "a frame offset past the segment header: {offset}");
        }
        other => panic!("expected UndecodableRecord, got {other}"),
    }
    assert!(err.to_string().contains("maos-coord repair"), "{err}");
}

#[tokio::test]
async fn a_tombstone_gets_every_reader_past_an_undecodable_record_and_keeps_its_bytes() {
    let root = tempfile::tempdir().unwrap();
    let bad = damaged_store(root.path()).await;
    let log = open_store_log(root.path()).unwrap();
    let found = find_unreadable(&log).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].lsn.get(), found[0].skipped), (bad, false));
    let before = log.next_lsn();
    assert_eq!(skip_unreadable(&log, &found).unwrap().iter().map(|l| l.get()).collect::<Vec<_>>(), [bad]);
    assert_eq!(log.next_lsn().get(), before.get() + 1, "one tombstone");
    assert!(find_unreadable(&log).unwrap()[0].skipped);
    assert!(skip_unreadable(&log, &find_unreadable(&log).unwrap()).unwrap().is_empty(), "idempotent");
    drop(log);

    // Every reader passes over it: open, commands, subscriptions, audit, snapshots.
    let c = open(root.path()).unwrap();
    let a = AgentId::new("a").unwrap();
    let t = c.create_task(&a, NewTask::new("after")).await.unwrap();
    let mut all = c.subscribe_from(&a, EventFilter::all(), maos_coord::Lsn::new(1)).unwrap();
    let mut seen = Vec::new();
    while let Some(d) = all.try_next().unwrap() {
        seen.push(d.lsn.get());
    }
    assert!(!seen.contains(&bad) && seen.len() >= 3, "{seen:?}");
    assert_eq!(c.history(&a, &Subject::Task(t.id.to_string())).unwrap().len(), 1);
    c.snapshot().unwrap();
    drop(c);
    std::fs::remove_dir_all(root.path().join(".maos/coordination/snapshots")).unwrap();
    let c = open(root.path()).unwrap();
    assert_eq!(c.list_tasks(None).unwrap().len(), 2);
    // The bytes stay, for audit.
    let mut reader = c.log().reader_from(maos_coord::Lsn::new(bad)).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().payload, JUNK);
}
