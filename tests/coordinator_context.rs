//! Context through the coordinator: versions, compare-and-set, visibility, expiry, past versions,
//! prefixes, limits.

use std::time::Duration;

use maos_coord::model::{AgentId, ContextKey, SetCondition, Visibility};
use maos_coord::{Coordinator, Durability, Error, SetOptions};
use serde_json::json;

fn agent(name: &str) -> AgentId {
    AgentId::new(name).unwrap()
}

fn key(k: &str) -> ContextKey {
    ContextKey::new(k).unwrap()
}

async fn setup(root: &std::path::Path) -> (Coordinator, AgentId, AgentId, AgentId) {
    let c = Coordinator::options(root).durability(Durability::Buffered).max_value_size(1024).open().unwrap();
    let (a, b, x) = (agent("architect"), agent("backend"), agent("outsider"));
    for id in [&a, &b, &x] {
        c.register_agent(id, "r", vec![]).await.unwrap();
    }
    (c, a, b, x)
}

#[tokio::test]
async fn versions_rise_and_past_versions_stay_readable() {
    let root = tempfile::tempdir().unwrap();
    let (c, a, b, _) = setup(root.path()).await;
    let k = key("api-spec");
    assert_eq!(c.set_context(&a, &k, json!({"v": 1}), Visibility::Shared).await.unwrap(), 1);
    assert_eq!(c.set_context(&a, &k, json!({"v": 2}), Visibility::Shared).await.unwrap(), 2);
    let current = c.get_context(&b, &k).unwrap().unwrap();
    assert_eq!((current.value, current.version, current.owner), (json!({"v": 2}), 2, a.clone()));
    assert_eq!(c.get_context_version(&b, &k, 1).unwrap().unwrap().value, json!({"v": 1}));
    assert_eq!(c.delete_context(&a, &k).await.unwrap(), 3);
    assert!(c.get_context(&b, &k).unwrap().is_none());
    assert_eq!(c.get_context_version(&b, &k, 2).unwrap().unwrap().value, json!({"v": 2}));
}

#[tokio::test]
async fn deleting_a_key_without_a_live_value_is_context_absent_and_appends_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (c, a, _, _) = setup(root.path()).await;
    let k = key("plan");
    let before = c.log().next_lsn();
    let err = c.delete_context(&a, &k).await.unwrap_err();
    assert!(matches!(&err, Error::ContextAbsent { key } if *key == k), "{err}");
    assert_eq!(err.kind(), maos_coord::ErrorKind::NotFound);
    assert_eq!(c.log().next_lsn(), before, "never set: nothing appended");
    c.set_context(&a, &k, json!(1), Visibility::Shared).await.unwrap();
    assert_eq!(c.delete_context(&a, &k).await.unwrap(), 2);
    let before = c.log().next_lsn();
    assert!(matches!(c.delete_context(&a, &k).await, Err(Error::ContextAbsent { .. })));
    assert_eq!(c.log().next_lsn(), before, "deleted already: nothing appended");
}

#[tokio::test]
async fn past_versions_are_read_whole_from_the_log_as_they_were() {
    let root = tempfile::tempdir().unwrap();
    let (c, a, b, _) = setup(root.path()).await;
    let k = key("plan");
    let metadata = std::collections::BTreeMap::from([("step".to_owned(), "1".to_owned())]);
    let private =
        SetOptions { visibility: Visibility::Private, metadata: metadata.clone(), ..SetOptions::default() };
    c.set_context_with(&a, &k, json!("first"), private).await.unwrap();
    c.set_context(&a, &k, json!("second"), Visibility::Shared).await.unwrap();
    c.delete_context(&a, &k).await.unwrap();
    c.set_context(&b, &k, json!("third"), Visibility::Shared).await.unwrap();

    let read_all = |c: &Coordinator| -> Vec<Option<maos_coord::model::ContextEntry>> {
        (1..=5).map(|v| c.get_context_version(&a, &k, v).unwrap()).collect()
    };
    let versions = read_all(&c);
    let first = versions[0].clone().unwrap();
    assert_eq!(
        (&first.value, &first.owner, &first.visibility, &first.metadata, first.version),
        (&json!("first"), &a, &Visibility::Private, &metadata, 1)
    );
    assert_eq!(first.created_at, first.updated_at);
    let second = versions[1].clone().unwrap();
    assert_eq!((second.value, second.version, second.metadata.len()), (json!("second"), 2, 0));
    assert_eq!(second.created_at, first.created_at, "the same life of the key");
    assert!(second.updated_at >= first.updated_at);
    assert!(versions[2].is_none(), "version 3 is the delete");
    let third = versions[3].clone().unwrap();
    assert_eq!(Some(&third), c.get_context(&b, &k).unwrap().as_ref());
    assert_eq!((third.owner.clone(), third.created_at), (b.clone(), third.updated_at), "a new life");
    assert!(versions[4].is_none(), "no version 5");
    let err = c.get_context_version(&b, &k, 1).unwrap_err();
    assert!(matches!(err, Error::NotVisible { .. }), "{err}");

    c.snapshot().unwrap();
    drop(c);
    let reopened = Coordinator::options(root.path()).open().unwrap();
    assert_eq!(read_all(&reopened), versions, "the same after reopening from a snapshot");
}

#[tokio::test]
async fn compare_and_set_succeeds_only_on_the_expected_version() {
    let root = tempfile::tempdir().unwrap();
    let (c, a, _, _) = setup(root.path()).await;
    let k = key("counter");
    let absent = SetOptions { condition: SetCondition::Absent, ..SetOptions::default() };
    assert_eq!(c.set_context_with(&a, &k, json!(0), absent.clone()).await.unwrap(), 1);
    let err = c.set_context_with(&a, &k, json!(0), absent).await.unwrap_err();
    assert!(matches!(&err, Error::VersionMismatch { found: 1, .. }), "{err}");
    assert_eq!(c.compare_and_set(&a, &k, json!(1), 1).await.unwrap(), 2);
    let before = c.log().next_lsn();
    let err = c.compare_and_set(&a, &k, json!(9), 1).await.unwrap_err();
    assert_eq!(err.to_string(), "context key counter: expected version 1, found version 2");
    assert_eq!(c.log().next_lsn(), before, "a failed compare-and-set appends nothing");
}

#[tokio::test]
async fn visibility_is_enforced_for_reads_lists_and_overwrites() {
    let root = tempfile::tempdir().unwrap();
    let (c, a, b, x) = setup(root.path()).await;
    c.set_context(&a, &key("team/private"), json!(1), Visibility::Private).await.unwrap();
    c.set_context(&a, &key("team/restricted"), json!(2), Visibility::Restricted(vec![b.clone()]))
        .await
        .unwrap();
    c.set_context(&a, &key("team/shared"), json!(3), Visibility::Shared).await.unwrap();
    let err = c.get_context(&b, &key("team/private")).unwrap_err();
    assert!(matches!(err, Error::NotVisible { .. }), "{err}");
    assert!(c.get_context(&a, &key("team/private")).unwrap().is_some());
    assert!(c.get_context(&b, &key("team/restricted")).unwrap().is_some());
    assert!(c.get_context(&x, &key("team/restricted")).is_err());
    let listed = |who: &AgentId| -> Vec<String> {
        c.list_context(who, "team/").unwrap().into_iter().map(|e| e.key.to_string()).collect()
    };
    assert_eq!(listed(&a), ["team/private", "team/restricted", "team/shared"]);
    assert_eq!(listed(&b), ["team/restricted", "team/shared"]);
    assert_eq!(listed(&x), ["team/shared"]);
    let err = c.set_context(&x, &key("team/private"), json!(0), Visibility::Shared).await.unwrap_err();
    assert!(matches!(err, Error::NotVisible { .. }), "an agent cannot overwrite what it cannot read");
}

#[tokio::test]
async fn an_expired_key_reads_as_absent() {
    let root = tempfile::tempdir().unwrap();
    let clock = maos_coord::ManualClock::starting_now();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .clock(clock.shared())
        .open()
        .unwrap();
    let a = agent("architect");
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let k = key("short-lived");
    let opts = SetOptions { expires_in: Some(Duration::from_millis(50)), ..SetOptions::default() };
    c.set_context_with(&a, &k, json!("soon gone"), opts).await.unwrap();
    clock.advance(Duration::from_millis(49));
    assert!(c.get_context(&a, &k).unwrap().is_some());
    clock.advance(Duration::from_millis(1));
    assert!(c.get_context(&a, &k).unwrap().is_none());
    assert!(c.list_context(&a, "").unwrap().is_empty());
    let absent = SetOptions { condition: SetCondition::Absent, ..SetOptions::default() };
    assert_eq!(
        c.set_context_with(&a, &k, json!("again"), absent).await.unwrap(),
        2,
        "expired counts as absent"
    );
}

#[tokio::test]
async fn keys_and_values_are_limited() {
    let root = tempfile::tempdir().unwrap();
    let (c, a, _, _) = setup(root.path()).await;
    assert!(ContextKey::new("k".repeat(257)).is_err());
    assert!(ContextKey::new("bad\u{7}key").is_err());
    let before = c.log().next_lsn();
    let err = c.set_context(&a, &key("big"), json!("x".repeat(2000)), Visibility::Shared).await.unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { max: 1024, .. }), "{err}");
    assert!(err.to_string().contains("context key big"));
    assert_eq!(c.log().next_lsn(), before);
    let ghost = agent("ghost");
    assert!(matches!(c.get_context(&ghost, &key("big")), Err(Error::UnknownAgent { .. })));
}
