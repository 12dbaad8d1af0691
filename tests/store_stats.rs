//! The store's figures (`Coordinator::stats`) on a store built here with a manual clock, so
//! that every time is exact: records by kind, task waits and runs, dependency resolution,
//! lapsed leases, snapshot age, cursor lag, context sizes.

use std::time::Duration;

use maos_coord::backend::{BlobStore, DirBlobs};
use maos_coord::model::{AgentId, ArtifactType, ContextKey, EventFilter, NewTask, Visibility};
use maos_coord::{Coordinator, Durability, ManualClock, Timestamp};
use serde_json::json;

const START: i64 = 1_800_000_000_000_000;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test]
async fn every_figure_is_exact_under_a_manual_clock() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_micros(START));
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .snapshot_every(0)
        .lease(secs(60))
        .heartbeat_timeout(secs(600))
        .clock(clock.shared())
        .open()
        .unwrap();
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    // t1: waits 10 s, runs 30 s.
    let t1 = c.create_task(&a, NewTask::new("t1")).await.unwrap();
    clock.advance(secs(10));
    assert_eq!(c.claim_next_task(&a, None).await.unwrap().unwrap().id, t1.id);
    clock.advance(secs(30));
    c.complete_task(&a, &t1.id, vec![]).await.unwrap();
    // t2: waits 20 s, its lease lapses (recorded by a heartbeat 120 s after the claim), waits
    // 5 s more, runs 10 s. t3 depends on t2 from t2's creation on.
    let t2 = c.create_task(&a, NewTask::new("t2")).await.unwrap();
    let t3 = c.create_task_depending_on(&a, NewTask::new("t3"), vec![t2.id.clone()]).await.unwrap();
    clock.advance(secs(20));
    assert_eq!(c.claim_next_task(&a, None).await.unwrap().unwrap().id, t2.id);
    clock.advance(secs(120));
    // Every lease the agent held had ended: the lapse is recorded, and the heartbeat says so.
    let lost = c.heartbeat(&a).await.unwrap_err();
    assert!(matches!(lost, maos_coord::Error::LeaseLost { .. }), "{lost}");
    clock.advance(secs(5));
    assert_eq!(c.claim_next_task(&a, None).await.unwrap().unwrap().id, t2.id);
    clock.advance(secs(10));
    c.complete_task(&a, &t2.id, vec![]).await.unwrap();
    // t4 is cancelled; a dependency on it registered 7 s before fails then.
    let t4 = c.create_task(&a, NewTask::new("t4")).await.unwrap();
    c.register_dependency(&a, &t4.id, &t3.id, ArtifactType::File).await.unwrap();
    clock.advance(secs(7));
    c.cancel_task(&a, &t4.id, "not needed").await.unwrap();
    // Context: two keys, one set twice.
    let (k1, k2) = (ContextKey::new("big").unwrap(), ContextKey::new("small").unwrap());
    c.set_context(&a, &k1, json!("0123456789"), Visibility::Shared).await.unwrap();
    c.set_context(&a, &k2, json!(1), Visibility::Shared).await.unwrap();
    c.set_context(&a, &k2, json!(12), Visibility::Shared).await.unwrap();
    // A snapshot, then records after it, 90 s later; a cursor that acknowledged one event.
    let snap = c.snapshot().unwrap();
    clock.advance(secs(90));
    c.emit_event(&a, "note", json!({}), Default::default()).await.unwrap();
    let mut sub = c.subscribe_durable(&a, "reader", EventFilter::default()).unwrap();
    let first = sub.next().await.unwrap();
    sub.ack(first.lsn).unwrap();
    drop(sub);

    let s = c.stats().unwrap();
    assert_eq!(s.now, Timestamp::from_micros(START).plus(secs(10 + 30 + 20 + 120 + 5 + 10 + 7 + 90)));
    let r = &s.records;
    assert_eq!((r.first_lsn.get(), r.records), (1, r.next_lsn.get() - 1));
    assert_eq!(r.by_kind.get(&1).copied(), Some(r.records), "only coordination records");
    let ev = |name: &str| r.by_event.get(name).copied().unwrap_or(0);
    assert_eq!((ev("TaskCreated"), ev("TaskClaimed"), ev("TaskCompleted")), (4, 3, 2));
    assert_eq!((ev("TaskLeaseLapsed"), ev("ContextUpdated"), ev("Custom")), (1, 3, 1));
    assert!(r.payload_bytes > 0 && r.stored_bytes > r.payload_bytes);
    let files = s.files.as_ref().expect("a local store");
    assert_eq!(files.segments, 1);

    let t = &s.tasks;
    assert_eq!(t.by_status.get("Completed"), Some(&2));
    assert_eq!(t.by_status.get("Blocked"), Some(&1), "t3: its dependency on t4 failed");
    assert_eq!(t.by_status.get("Cancelled"), Some(&1));
    assert_eq!(t.completion_rate, Some(2.0 / 3.0));
    assert_eq!((t.pending_to_claimed.count, t.pending_to_claimed.median), (3, Some(secs(10))), "10, 20, 5");
    assert_eq!(t.pending_to_claimed.max, Some(secs(20)));
    assert_eq!(t.claimed_to_completed.median, Some(secs(20)), "the mean of 30 and 10");
    assert_eq!(
        t.created_to_completed.median,
        Some(Duration::from_millis(97_500)),
        "40 and 155 (t2: 20 + 120 + 5 + 10)"
    );
    let d = &s.dependencies;
    assert_eq!((d.total, d.unresolved), (2, 0));
    assert_eq!((d.ready.count, d.ready.median), (1, Some(secs(20 + 120 + 5 + 10))), "t2's completion");
    assert_eq!((d.failed.count, d.failed.median), (1, Some(secs(7))), "t4's cancellation");
    assert_eq!(s.leases.lapses_recorded, 1);
    assert!(s.leases.tasks_past_lease.is_empty() && s.leases.locks_past_lease.is_empty());

    assert_eq!(s.snapshot.lsn, Some(snap));
    assert_eq!(s.snapshot.age, Some(secs(90)));
    assert_eq!(s.snapshot.records_since, s.records.next_lsn.get() - snap.get());
    assert_eq!(s.cursors.len(), 1);
    let cursor = &s.cursors[0];
    assert_eq!((cursor.cursor.agent.as_str(), cursor.cursor.name.as_str()), ("a", "reader"));
    assert_eq!(cursor.lag, Some(s.records.next_lsn.get() - 2), "acknowledged LSN 1: at LSN 2");

    let ctx = &s.context;
    assert_eq!((ctx.keys, ctx.value_bytes, ctx.expired), (2, 12 + 2, 0));
    assert_eq!(ctx.largest, [("big".to_owned(), 12, 1), ("small".to_owned(), 2, 2)]);
}

#[tokio::test]
async fn a_lease_past_its_end_and_a_damaged_cursor_are_shown() {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Timestamp::from_micros(START));
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .lease(secs(60))
        .clock(clock.shared())
        .open()
        .unwrap();
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "worker", vec![]).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.claim_next_task(&a, None).await.unwrap();
    let lock = maos_coord::LockName::new("l").unwrap();
    c.try_lock(&a, &lock, secs(30)).await.unwrap();
    drop(c.subscribe_durable(&a, "s", EventFilter::default()).unwrap());
    let blobs = DirBlobs::new(&root.path().join(".maos/coordination"));
    let name = blobs.list(maos_coord::backend::BlobSpace::Cursors).unwrap().pop().unwrap();
    let path = blobs.location(maos_coord::backend::BlobSpace::Cursors, &name);
    std::fs::write(&path, b"not a cursor").unwrap();
    clock.advance(secs(61));
    let s = c.stats().unwrap();
    let until = Timestamp::from_micros(START).plus(secs(60));
    assert_eq!(s.leases.tasks_past_lease, [(t.id, a.clone(), until)]);
    assert_eq!(s.leases.locks_past_lease, [(lock, a, Timestamp::from_micros(START).plus(secs(30)))]);
    assert_eq!(s.leases.lapses_recorded, 0, "no command noticed yet");
    assert_eq!(s.cursors[0].lag, None);
    assert!(s.cursors[0].cursor.damage.as_deref().is_some_and(|d| d.contains("magic")), "{:?}", s.cursors);
}
