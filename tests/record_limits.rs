//! Nothing unreadable is written: every JSON value that goes into a record passes the limits the
//! decoder applies, and the kinds the coordinator owns cannot be appended through the raw log
//! API. A refused command appends nothing, and the store stays readable by every later open.

use std::collections::BTreeMap;

use maos_coord::coordinator::PipelineStage;
use maos_coord::log::Built;
use maos_coord::model::limits::MAX_VALUE_DEPTH;
use maos_coord::model::{AgentId, ContextKey, NewTask, Visibility};
use maos_coord::{Coordinator, Durability, Error, RecordKind};
use serde_json::Value;

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |v, _| Value::Array(vec![v]))
}

fn open(root: &std::path::Path) -> Coordinator {
    Coordinator::options(root).durability(Durability::Buffered).open().unwrap()
}

#[tokio::test]
async fn a_value_nested_too_deep_is_refused_naming_it_and_the_store_stays_readable() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let deep = nested(1100);
    let before = c.log().next_lsn();
    let key = ContextKey::new("deep").unwrap();
    let errors = [
        c.set_context(&a, &key, deep.clone(), Visibility::Shared).await.unwrap_err(),
        c.emit_event(&a, "deep", deep.clone(), BTreeMap::new()).await.unwrap_err(),
        c.create_task(&a, NewTask::new("t").metadata(deep.clone())).await.unwrap_err(),
        c.create_pipeline(
            &a,
            "p",
            vec![PipelineStage { name: "s".into(), tasks: vec![NewTask::new("t").metadata(deep.clone())] }],
        )
        .await
        .unwrap_err(),
    ];
    let names = ["context key deep", "event data", "task metadata", "metadata of pipeline task 1"];
    for (err, name) in errors.iter().zip(names) {
        assert!(
            matches!(err, Error::ValueTooDeep { what, depth: 1100, max } if what == name && *max == MAX_VALUE_DEPTH),
            "{err}"
        );
    }
    assert_eq!(c.log().next_lsn(), before, "refused commands append nothing");

    // At the limit, every kind of value is stored, and reads back after reopening (snapshot too).
    let at_limit = nested(MAX_VALUE_DEPTH);
    c.set_context(&a, &key, at_limit.clone(), Visibility::Shared).await.unwrap();
    c.emit_event(&a, "deep", at_limit.clone(), BTreeMap::new()).await.unwrap();
    let t = c.create_task(&a, NewTask::new("t").metadata(at_limit.clone())).await.unwrap();
    c.snapshot().unwrap();
    drop(c);
    let c = open(root.path());
    assert_eq!(c.get_context(&a, &key).unwrap().unwrap().value, at_limit);
    assert_eq!(c.get_task(&t.id).unwrap().unwrap().metadata, at_limit);
    std::fs::remove_dir_all(c.store_dir().join("snapshots")).unwrap();
    assert_eq!(open(root.path()).get_context(&a, &key).unwrap().unwrap().value, at_limit);
}

#[tokio::test]
async fn coordination_record_kinds_cannot_be_appended_through_the_raw_log_api() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let before = c.log().next_lsn();
    let junk: &[u8] = b"\xff\xfe\xc3\x28 not msgpack";
    for kind in [1u16, 2, 15] {
        let kind = RecordKind::new(kind).unwrap();
        let log = c.local_log().unwrap();
        let errors = [
            c.log().append(kind, junk).unwrap_err(),
            c.log()
                .append_records(vec![(RecordKind::new(16).unwrap(), junk.to_vec()), (kind, junk.to_vec())])
                .unwrap_err(),
            c.log().compare_and_append(Box::new(move |_| Ok(vec![(kind, junk.to_vec())]))).await.unwrap_err(),
            log.append(kind, junk).unwrap_err(),
            log.append_async(kind, junk).await.unwrap_err(),
            log.append_records([(RecordKind::new(16).unwrap(), junk), (kind, junk)]).unwrap_err(),
            log.append_with(move |_| Ok(Built { records: vec![(kind, junk.to_vec())], value: () }))
                .unwrap_err(),
        ];
        for err in errors {
            assert!(matches!(err, Error::ReservedKind { kind: k } if k == kind.get()), "{err}");
        }
    }
    assert_eq!(c.log().next_lsn(), before, "nothing appended, not even the allowed half of a batch");
    c.log().append(RecordKind::new(16).unwrap(), junk).unwrap();
    drop(c);
    let c = open(root.path());
    assert!(c.agent(&a).unwrap().is_some(), "the store opens: other kinds are not the coordinator's");
}

#[tokio::test]
async fn an_application_event_may_not_take_the_type_of_the_stores_own_records() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path());
    let a = AgentId::new("a").unwrap();
    c.register_agent(&a, "r", vec![]).await.unwrap();
    let before = c.log().next_lsn();
    for name in maos_coord::model::COORDINATION_TYPES {
        let err = c.emit_event(&a, name, Value::Null, BTreeMap::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }) && err.to_string().contains(name), "{err}");
    }
    assert_eq!(c.log().next_lsn(), before, "nothing appended");
    c.emit_event(&a, "TaskClaimedByHand", Value::Null, BTreeMap::new()).await.unwrap();
}
