//! Durable subscriptions: a named cursor per agent survives restarts; delivery is at-least-once,
//! in LSN order, without gaps; a damaged cursor file is reported.

use std::collections::BTreeMap;

use maos_coord::model::{AgentId, EventFilter};
use maos_coord::{Coordinator, Durability, Error};
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
