//! Durable subscriptions: a named cursor per agent survives restarts; delivery is at-least-once,
//! in LSN order, without gaps; the cursor exists from the subscription's creation, so compaction
//! never removes what it has not processed (and forced compaction is an error, not a skip); a
//! caught-up filtered subscriber persists how far it scanned; deliveries are counted across
//! restarts and a record handed out too often is dead-lettered; a damaged cursor file is reported.

use maos_coord_test_support as common;

use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

use common::store::{busy, options, segments, store};
use maos_coord::coordinator::{CompactOptions, Delivery, DurableOptions, DurableSubscription};
use maos_coord::model::{AgentId, Event, EventFilter};
use maos_coord::{Coordinator, Durability, Error, Lsn};
use serde_json::json;

async fn emit(c: &Coordinator, me: &AgentId, n: u64) {
    c.emit_event(me, "step", json!(n), BTreeMap::new()).await.unwrap();
}

#[tokio::test]
async fn a_durable_subscription_resumes_after_the_last_acknowledged_event() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("worker").unwrap();
    let steps = || EventFilter::all().types(["step"]);
    let data = |d: &maos_coord::coordinator::Delivery| match &d.recorded.event {
        maos_coord::model::Event::Custom { data, .. } => data.as_u64().unwrap(),
        other => panic!("{other:?}"),
    };
    {
        let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
        c.register_agent(&me, "r", vec![]).await.unwrap();
        for n in 0..5 {
            emit(&c, &me, n).await;
        }
        let mut sub = c.subscribe_durable(&me, "steps", steps()).unwrap();
        let first = sub.next().await.unwrap();
        let second = sub.next().await.unwrap();
        let third = sub.next().await.unwrap();
        assert_eq!([data(&first), data(&second), data(&third)], [0, 1, 2], "from the start, in order");
        sub.ack(second.lsn).unwrap();
        sub.ack(first.lsn).unwrap(); // older: changes nothing
        assert_eq!(sub.resume_position(), second.lsn.next());
        // A second named subscription of the same agent has its own cursor.
        let mut other = c.subscribe_durable(&me, "audit", steps()).unwrap();
        assert_eq!(data(&other.next().await.unwrap()), 0);
    }
    // "Restart": a new process-level handle on the same store.
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    emit(&c, &me, 5).await;
    let mut sub = c.subscribe_durable(&me, "steps", steps()).unwrap();
    let resumed: Vec<u64> = [sub.next().await.unwrap(), sub.next().await.unwrap(), sub.next().await.unwrap()]
        .iter()
        .map(data)
        .collect();
    assert_eq!(resumed, [2, 3, 4], "the unacknowledged third event is delivered again, nothing is skipped");
    assert_eq!(data(&sub.next().await.unwrap()), 5);
}

#[tokio::test]
async fn a_damaged_cursor_file_is_reported_by_name() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("worker").unwrap();
    let c = Coordinator::options(root.path()).durability(Durability::Buffered).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    emit(&c, &me, 0).await;
    let mut sub = c.subscribe_durable(&me, "s", EventFilter::all()).unwrap();
    let d = sub.next().await.unwrap();
    sub.ack(d.lsn).unwrap();
    let cursors = root.path().join(".maos/coordination/cursors");
    let file = std::fs::read_dir(&cursors).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[17] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let err = c.subscribe_durable(&me, "s", EventFilter::all()).err().unwrap();
    assert!(matches!(&err, Error::CorruptCursor { path, .. } if *path == file), "{err}");
    assert!(err.to_string().contains("checksum"));
}

fn orders() -> EventFilter {
    EventFilter::all().types(["order"])
}

async fn order(c: &Coordinator, me: &AgentId, n: u64) -> Lsn {
    c.emit_event(me, "order", json!(n), BTreeMap::new()).await.unwrap()
}

/// `n` records the order filter does not match, about 200 bytes each.
async fn noise(c: &Coordinator, me: &AgentId, n: usize) {
    for i in 0..n {
        c.emit_event(me, "noise", json!([i, "x".repeat(150)]), BTreeMap::new()).await.unwrap();
    }
}

/// A store with small segments and a registered agent.
async fn small_store(root: &std::path::Path) -> (Coordinator, AgentId) {
    let c = options(root).open().unwrap();
    let me = AgentId::new("worker").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    (c, me)
}

fn delivered(d: &Delivery) -> (Lsn, u32) {
    (d.lsn, d.deliveries)
}

#[tokio::test]
async fn a_new_durable_subscription_holds_compaction_back_before_its_first_ack() {
    let root = tempfile::tempdir().unwrap();
    let (first, me) = small_store(root.path()).await;
    // A process subscribes and dies before anything matched.
    drop(first.subscribe_durable(&me, "orders", orders()).unwrap());
    drop(first);
    // Other processes append a match, work on, snapshot and compact.
    let other = options(root.path()).open().unwrap();
    let o = order(&other, &me, 0).await;
    for round in 0..3 {
        busy(&other, &me, round).await;
        other.snapshot().unwrap();
    }
    let n = segments(root.path()).len();
    let held = |report: &maos_coord::coordinator::CompactionReport| {
        assert!(report.removed.is_empty(), "{report:?}");
        report.held_back_by.as_ref().map(|h| h.position)
    };
    let report = other.compact(&CompactOptions::default()).unwrap();
    assert_eq!(held(&report), Some(Lsn::FIRST), "created at the log's start");
    {
        // The subscriber restarts, is handed the match, and dies before acknowledging it.
        let restarted = options(root.path()).open().unwrap();
        let mut sub = restarted.subscribe_durable(&me, "orders", orders()).unwrap();
        assert_eq!(delivered(&sub.next().await.unwrap()), (o, 1));
    }
    let report = other.compact(&CompactOptions::default()).unwrap();
    assert_eq!(held(&report), Some(Lsn::FIRST));
    assert_eq!(segments(root.path()).len(), n);
    // Restarted again: the match is handed out again, nothing lost.
    let restarted = options(root.path()).open().unwrap();
    let mut sub = restarted.subscribe_durable(&me, "orders", orders()).unwrap();
    let d = sub.next().await.unwrap();
    assert_eq!(delivered(&d), (o, 2), "counted as a second delivery");
    sub.ack(d.lsn).unwrap();
    assert!(sub.try_next().unwrap().is_none());
    assert_eq!(sub.ack_scanned().unwrap(), restarted.log().next_lsn());
    // Now that it has processed everything, the same compaction removes those segments.
    let report = other.compact(&CompactOptions::default()).unwrap();
    assert!(!report.removed.is_empty() && report.held_back_by.is_none(), "{report:?}");
    assert!(segments(root.path()).len() < n);
}

#[tokio::test]
async fn a_durable_cursor_compacted_away_by_force_is_an_error_not_a_skip() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = store(root.path()).await;
    drop(c.subscribe_durable(&me, "late", orders()).unwrap()); // created, nothing processed
    let report = c.compact(&CompactOptions { force: true, ..Default::default() }).unwrap();
    assert!(!report.removed.is_empty());
    let first = c.log().first_lsn().unwrap();
    for handle in [c.clone(), options(root.path()).open().unwrap()] {
        let err = handle.subscribe_durable(&me, "late", orders()).err().unwrap();
        assert!(matches!(err, Error::Compacted { requested: Lsn::FIRST, first: f } if f == first), "{err}");
    }
    // A subscription created after the compaction starts where the log now starts.
    let fresh = c.subscribe_durable(&me, "fresh", orders()).unwrap();
    assert_eq!(fresh.resume_position(), first);
}

#[tokio::test]
async fn a_caught_up_filtered_subscriber_lets_compaction_remove_what_it_scanned() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let o = order(&c, &me, 0).await;
    let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
    let d = sub.next().await.unwrap();
    sub.ack(d.lsn).unwrap();
    assert_eq!(sub.resume_position(), o.next());
    noise(&c, &me, 400).await;
    assert!(sub.try_next().unwrap().is_none());
    let tail = c.log().next_lsn();
    assert_eq!(sub.scan_position(), tail);
    assert_eq!(sub.resume_position(), o.next(), "400 records: below the automatic threshold");
    c.snapshot().unwrap();
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(report.removed.is_empty(), "the last match holds the log: {report:?}");
    assert_eq!(sub.ack_scanned().unwrap(), tail);
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(!report.removed.is_empty() && report.held_back_by.is_none(), "{report:?}");
    assert!(c.log().first_lsn().unwrap() > o);
}

#[tokio::test]
async fn a_match_appended_after_the_scan_is_still_delivered_after_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    order(&c, &me, 0).await;
    let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
    let d = sub.next().await.unwrap();
    noise(&c, &me, 10).await;
    assert!(sub.try_next().unwrap().is_none());
    let scanned = sub.scan_position();
    // Another process appends a match after the scan, before the acknowledgement.
    let other = options(root.path()).open().unwrap();
    let late = order(&other, &me, 1).await;
    assert_eq!(late, scanned);
    sub.ack(d.lsn).unwrap(); // the last record handed out: the cursor moves to the scan position
    assert_eq!(sub.resume_position(), scanned, "the scan position, not the log's end");
    assert_eq!(sub.ack_scanned().unwrap(), scanned);
    drop(sub);
    let mut sub = other.subscribe_durable(&me, "orders", orders()).unwrap();
    assert_eq!(delivered(&sub.next().await.unwrap()), (late, 1));
}

#[tokio::test]
async fn a_caught_up_subscriber_persists_its_scan_position_before_it_waits() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let opts = DurableOptions { scan_persist_records: 300, ..Default::default() };
    let mut sub = c.subscribe_durable_with(&me, "orders", orders(), opts).unwrap();
    let o = order(&c, &me, 0).await;
    let d = sub.next().await.unwrap();
    sub.ack(d.lsn).unwrap();
    noise(&c, &me, 299).await;
    assert!(poll_next_once(&mut sub).is_none());
    assert_eq!(sub.resume_position(), o.next(), "299 records scanned: not yet");
    noise(&c, &me, 1).await;
    assert!(poll_next_once(&mut sub).is_none());
    let tail = c.log().next_lsn();
    assert_eq!(sub.resume_position(), tail, "300 records scanned: written before waiting");
    drop(sub);
    let other = options(root.path()).open().unwrap();
    assert_eq!(other.subscribe_durable(&me, "orders", orders()).unwrap().resume_position(), tail);
}

/// Polls `next()` once: it scans what the log holds and either delivers or goes to sleep.
fn poll_next_once(sub: &mut DurableSubscription) -> Option<Delivery> {
    let mut next = std::pin::pin!(sub.next());
    match next.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(d) => Some(d.unwrap()),
        Poll::Pending => None,
    }
}

#[tokio::test]
async fn a_record_handed_out_again_after_crashes_counts_its_deliveries() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let (o1, o2) = (order(&c, &me, 1).await, order(&c, &me, 2).await);
    for _ in 0..3 {
        // Opened and dropped without handing anything out: not counted.
        drop(c.subscribe_durable(&me, "orders", orders()).unwrap());
    }
    for n in 1..=3 {
        let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
        assert_eq!(delivered(&sub.next().await.unwrap()), (o1, n));
        // Dropped without acknowledging: as a crash while processing it.
    }
    let other = options(root.path()).open().unwrap();
    let mut sub = other.subscribe_durable(&me, "orders", orders()).unwrap();
    assert_eq!(delivered(&sub.next().await.unwrap()), (o1, 4), "counted in the cursor file");
    sub.ack(o1).unwrap();
    assert_eq!(delivered(&sub.next().await.unwrap()), (o2, 1));
}

#[tokio::test]
async fn acknowledging_part_of_what_was_handed_out_keeps_the_count_of_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let (o1, o2, o3) = (order(&c, &me, 1).await, order(&c, &me, 2).await, order(&c, &me, 3).await);
    {
        let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
        assert_eq!(delivered(&sub.next().await.unwrap()), (o1, 1));
        assert_eq!(delivered(&sub.next().await.unwrap()), (o2, 1));
        assert_eq!(delivered(&sub.next().await.unwrap()), (o3, 1));
        sub.ack(o1).unwrap();
        assert_eq!(sub.resume_position(), o1.next());
    }
    let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
    assert_eq!(delivered(&sub.next().await.unwrap()), (o2, 2), "o2 was handed out before");
    assert_eq!(delivered(&sub.next().await.unwrap()), (o3, 1), "not the head: counted from this run");
}

#[tokio::test]
async fn acknowledging_ahead_of_the_scan_moves_delivery_there_and_a_future_lsn_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let (_, o2, o3) = (order(&c, &me, 1).await, order(&c, &me, 2).await, order(&c, &me, 3).await);
    let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
    sub.ack(o2).unwrap(); // processed elsewhere: nothing handed out yet
    assert_eq!((sub.resume_position(), sub.scan_position()), (o2.next(), o2.next()));
    assert_eq!(delivered(&sub.next().await.unwrap()), (o3, 1));
    let tail = c.log().next_lsn();
    let err = sub.ack(tail).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { name: "lsn", .. }), "{err}");
    assert_eq!(sub.resume_position(), o2.next());
}

#[tokio::test]
async fn a_record_handed_out_max_deliveries_times_is_dead_lettered_and_delivery_goes_on() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let (poison, o2) = (order(&c, &me, 1).await, order(&c, &me, 2).await);
    let opts = DurableOptions { max_deliveries: Some(2), ..Default::default() };
    for n in 1..=2 {
        let mut sub = c.subscribe_durable_with(&me, "orders", orders(), opts.clone()).unwrap();
        assert_eq!(delivered(&sub.next().await.unwrap()), (poison, n));
    }
    let other = options(root.path()).open().unwrap();
    let mut sub = other.subscribe_durable_with(&me, "orders", orders(), opts.clone()).unwrap();
    assert_eq!(delivered(&sub.next().await.unwrap()), (o2, 1), "the poison record is skipped");
    assert_eq!(sub.resume_position(), poison.next());
    let dead_letters = EventFilter::all().types(["DeliveryDeadLettered"]);
    let mut letters = c.subscribe_from(&me, dead_letters, Lsn::FIRST).unwrap();
    let letter = letters.next().await.unwrap();
    assert!(letter.lsn > o2);
    assert_eq!(letter.recorded.actor, me);
    assert_eq!(
        letter.recorded.event,
        Event::DeliveryDeadLettered {
            agent: me.clone(),
            subscription: "orders".into(),
            lsn: poison,
            deliveries: 2
        }
    );
    drop(sub); // o2 unacknowledged: handed out again, the poison record is not
    let mut sub = c.subscribe_durable_with(&me, "orders", orders(), opts.clone()).unwrap();
    assert_eq!(delivered(&sub.next().await.unwrap()), (o2, 2));
    assert!(letters.try_next().unwrap().is_none(), "dead-lettered once");
    let err =
        c.subscribe_durable_with(&me, "x", orders(), DurableOptions { max_deliveries: Some(0), ..opts });
    assert!(matches!(err, Err(Error::InvalidArgument { name: "max_deliveries", .. })));
}

#[tokio::test]
async fn a_version_1_cursor_file_is_read_and_its_position_kept() {
    let root = tempfile::tempdir().unwrap();
    let (c, me) = small_store(root.path()).await;
    let (_, o2) = (order(&c, &me, 1).await, order(&c, &me, 2).await);
    // Version 1, as log-format.md lays it out: position o2 (the first order acknowledged).
    let mut bytes = b"MAOSCUR\0".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&o2.get().to_le_bytes());
    bytes.extend_from_slice(&crc32(&bytes).to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let dir = root.path().join(".maos/coordination/cursors");
    std::fs::create_dir_all(&dir).unwrap();
    // <hex(agent id)>.<hex(name)>.cursor
    let file = dir.join(format!("{}.{}.cursor", hex("worker"), hex("orders")));
    std::fs::write(&file, &bytes).unwrap();
    let mut sub = c.subscribe_durable(&me, "orders", orders()).unwrap();
    assert_eq!(sub.resume_position(), o2);
    assert_eq!(delivered(&sub.next().await.unwrap()), (o2, 1));
    let written = std::fs::read(&file).unwrap();
    assert_eq!((written.len(), &written[8..12]), (40, &2u32.to_le_bytes()[..]), "rewritten in version 2");
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// CRC-32 (IEEE), bit by bit, as the spec names it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[tokio::test]
async fn a_deleted_cursor_no_longer_holds_compaction_back_and_starts_anew() {
    let root = tempfile::tempdir().unwrap();
    let me = AgentId::new("worker").unwrap();
    let c =
        Coordinator::options(root.path()).durability(Durability::Buffered).snapshot_every(0).open().unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    drop(c.subscribe_durable(&me, "once", EventFilter::all()).unwrap());
    for n in 0..3 {
        emit(&c, &me, n).await;
    }
    c.snapshot().unwrap();
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(report.held_back_by.is_some(), "the cursor at LSN 1 holds compaction back: {report:?}");
    c.delete_cursor(&me, "once").unwrap();
    let report = c.compact(&CompactOptions::default()).unwrap();
    assert!(report.held_back_by.is_none(), "{report:?}");
    let err = c.delete_cursor(&me, "once").unwrap_err();
    assert!(matches!(&err, Error::UnknownCursor { name, .. } if name == "once"), "{err}");
    assert_eq!(err.kind(), maos_coord::ErrorKind::NotFound);
    let again = c.subscribe_durable(&me, "once", EventFilter::all()).unwrap();
    assert_eq!(again.resume_position(), c.log().first_lsn().unwrap(), "created anew at the log's start");
    let next = c.log().next_lsn();
    assert!(matches!(c.reset_cursor(&me, "once", next.next()), Err(Error::InvalidArgument { .. })));
    assert!(matches!(c.reset_cursor(&me, "once", Lsn::new(0)), Err(Error::InvalidArgument { .. })));
    c.reset_cursor(&me, "once", next).unwrap();
}
