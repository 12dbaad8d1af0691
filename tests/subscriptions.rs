//! Live subscriptions and context watches through the coordinator.

use maos_coord_test_support as common;

use common::graph::setup;
use std::collections::BTreeMap;

use maos_coord::model::{ContextKey, EventFilter, NewTask, Visibility};
use serde_json::json;
#[tokio::test]
async fn subscriptions_deliver_matching_events_in_order() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let mut tasks = c.subscribe(&a, EventFilter::all().types(["TaskCreated", "TaskCompleted"])).unwrap();
    let mut custom = c.subscribe(&a, EventFilter::all().types(["deploy"]).metadata("env", "prod")).unwrap();
    let t = c.create_task(&a, NewTask::new("t")).await.unwrap();
    c.emit_event(&a, "deploy", json!({"v": 1}), BTreeMap::from([("env".into(), "dev".into())]))
        .await
        .unwrap();
    let prod = c
        .emit_event(&a, "deploy", json!({"v": 2}), BTreeMap::from([("env".into(), "prod".into())]))
        .await
        .unwrap();
    c.claim_next_task(&a, Some(&[])).await.unwrap();
    c.complete_task(&a, &t.id, vec![]).await.unwrap();
    assert_eq!(tasks.next().await.unwrap().recorded.event.type_name(), "TaskCreated");
    assert_eq!(tasks.next().await.unwrap().recorded.event.type_name(), "TaskCompleted");
    assert!(tasks.try_next().unwrap().is_none());
    let d = custom.next().await.unwrap();
    assert_eq!(d.lsn, prod);
    assert!(custom.try_next().unwrap().is_none());
}

#[tokio::test]
async fn watch_context_yields_every_later_update_in_order() {
    let root = tempfile::tempdir().unwrap();
    let (c, a) = setup(root.path()).await;
    let k = ContextKey::new("spec").unwrap();
    c.set_context(&a, &k, json!(1), Visibility::Shared).await.unwrap();
    let mut from_start = c.watch_context(&a, &k, Some(1)).unwrap();
    let mut live = c.watch_context(&a, &k, None).unwrap();
    c.set_context(&a, &k, json!(2), Visibility::Shared).await.unwrap();
    c.set_context(&a, &ContextKey::new("other").unwrap(), json!(0), Visibility::Shared).await.unwrap();
    c.delete_context(&a, &k).await.unwrap();
    let watched = [
        from_start.next().await.unwrap(),
        from_start.next().await.unwrap(),
        from_start.next().await.unwrap(),
    ];
    for (version, entry) in &watched {
        assert_eq!(entry, &c.get_context_version(&a, &k, *version).unwrap(), "the entry the state made");
    }
    let versions: Vec<(u64, Option<serde_json::Value>)> =
        watched.into_iter().map(|(v, e)| (v, e.map(|e| e.value))).collect();
    assert_eq!(versions, [(1, Some(json!(1))), (2, Some(json!(2))), (3, None)]);
    assert_eq!(live.next().await.unwrap().0, 2);
    assert_eq!(live.next().await.unwrap().0, 3);
}
