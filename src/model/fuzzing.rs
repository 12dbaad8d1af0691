//! Body of the `decode_event` fuzz target (`fuzz/fuzz_targets/`), here so that
//! `tests/fuzz_regressions.rs` replays saved inputs through the same code, and records of every
//! kind to seed it and to test the decoders with.

use std::collections::BTreeMap;

use serde_json::json;

use super::{
    AgentId, ArtifactType, BarrierName, ClaimPolicy, ContextKey, Dependency, DependencyId, DependencyStatus,
    Event, LockName, Priority, Recorded, Task, TaskId, TaskStatus, Visibility,
};
use crate::types::{Lsn, Timestamp};

/// Decodes `data` as a coordination record directly and through rmp-serde, and panics where
/// they disagree: wherever the direct decoder answers, rmp-serde must give the same record, and
/// a payload taken for an application event must be one if it decodes at all.
pub fn decode_event(data: &[u8]) {
    let generic: Option<Recorded> = rmp_serde::from_slice(data).ok();
    if let Some(direct) = super::decode::fast(data) {
        assert_eq!(Some(&direct), generic.as_ref(), "direct and rmp-serde decoding disagree");
    }
    if super::decode::is_custom(data) {
        if let Some(generic) = &generic {
            assert!(matches!(generic.event, Event::Custom { .. }), "taken for a custom event: {generic:?}");
        }
    }
}

/// One or more records of every event kind, with values that take every `MessagePack` width the
/// encoder writes (short and long strings, small and large integers, negative times, nested
/// JSON, empty and full collections, present and absent options).
#[must_use]
pub fn sample_records() -> Vec<Recorded> {
    let agent = |name: &str| AgentId::from_record(name);
    let task_id = |name: &str| TaskId::from_record(name);
    let long = "ü".repeat(200); // 400 bytes: str16
    let metadata: BTreeMap<String, String> = (0..20).map(|i| (format!("k{i}"), format!("v{i}"))).collect(); // map16
    let nested = json!({
        "null": null, "yes": true, "no": false, "small": 7, "negative": -3, "big": u64::MAX,
        "min": i64::MIN, "float": 1.5, "tiny": -1e-300, "text": long, "empty": {}, "list": [],
        "deep": [[[{"a": [1, 2, {"b": "c"}]}]]], "many": (0..40).collect::<Vec<u32>>(),
    });
    let task = |status: TaskStatus, priority: Priority| Task {
        id: task_id("0190c6f2-7a8b-7c3d-9e4f-0123456789ab"),
        name: "build the parser".into(),
        description: long.clone(),
        priority,
        required_capabilities: vec!["rust".into(), "parsing".into()],
        status,
        assigned_to: Some(agent("agent-7")),
        outputs: vec!["out/a".into()],
        metadata: nested.clone(),
        created_at: Timestamp(1_764_000_000_000_000),
        updated_at: Timestamp(-5),
        attempts: 2,
        max_attempts: 70_000,
        failures: 0,
        lease_until: Some(Timestamp(i64::MAX)),
        created_by: agent("planner"),
        idempotency_key: Some("key-1".into()),
        created_lsn: u64::MAX,
    };
    let dependency = |artifact_type: ArtifactType, status: DependencyStatus| Dependency {
        id: DependencyId::from_record("dep-1"),
        provider: task_id("p"),
        consumer: task_id("c"),
        artifact_type,
        artifact_path: Some("target/out".into()),
        status,
    };
    let update = |visibility: Visibility, expires_at: Option<Timestamp>| Event::ContextUpdated {
        key: ContextKey::from_record("api/spec"),
        value: nested.clone(),
        visibility,
        expires_at,
        metadata: metadata.clone(),
        version: 300,
    };
    let mut events = vec![
        Event::AgentStarted {
            agent: agent("agent-7"),
            role: "builder".into(),
            capabilities: vec!["rust".into()],
            heartbeat_timeout_ms: 30_000,
        },
        Event::AgentHeartbeat { agent: agent("agent-7"), lease_until: Timestamp(1_764_000_030_000_000) },
        Event::AgentStopped { agent: agent("agent-7"), reason: String::new() },
        Event::TaskClaimed { task: task_id("t"), agent: agent("a"), lease_until: Timestamp(0) },
        Event::TaskLeaseLapsed { task: task_id("t"), agent: agent("a") },
        Event::TaskReleased { task: task_id("t"), agent: agent("a") },
        Event::TaskBlocked { task: task_id("t"), reason: "waiting".into() },
        Event::TaskUnblocked { task: task_id("t") },
        Event::TaskOutputAdded { task: task_id("t"), output: long.clone() },
        Event::TaskCompleted { task: task_id("t"), outputs: (0..20).map(|i| format!("o{i}")).collect() },
        Event::TaskFailed { task: task_id("t"), error: "boom".into() },
        Event::TaskAttemptFailed { task: task_id("t"), error: "again".into() },
        update(Visibility::Shared, None),
        update(Visibility::Private, Some(Timestamp(99))),
        update(Visibility::Restricted(vec![agent("a"), agent("b")]), None),
        Event::ContextDeleted { key: ContextKey::from_record("api/spec"), version: 0 },
        Event::DependencyReady { dependency: DependencyId::from_record("d"), artifact_path: None },
        Event::DependencyFailed { dependency: DependencyId::from_record("d"), reason: "x".into() },
        Event::BarrierCreated { name: BarrierName::from_record("b"), participants: vec![] },
        Event::BarrierSignalled { name: BarrierName::from_record("b"), participant: "p".into() },
        Event::LockAcquired {
            name: LockName::from_record("l"),
            holder: agent("a"),
            lease_until: Timestamp(-1),
        },
        Event::LockReleased { name: LockName::from_record("l"), holder: agent("a") },
        Event::Custom { event_type: "progress".into(), data: nested.clone(), metadata },
        Event::Custom { event_type: "ping".into(), data: json!(null), metadata: BTreeMap::new() },
        Event::TaskAbandoned { task: task_id("t"), agent: agent("a"), reason: "stopped: crashed".into() },
        Event::TaskCancelled { task: task_id("t"), reason: "no longer needed".into() },
        Event::ClaimPolicySet { policy: ClaimPolicy::Strict },
        Event::ClaimPolicySet { policy: ClaimPolicy::Aging { every_ms: 60_000 } },
    ];
    let statuses = [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Blocked("b".into()),
        TaskStatus::Completed,
        TaskStatus::Failed("f".into()),
        TaskStatus::Cancelled("c".into()),
    ];
    let priorities = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
        Priority::Normal,
        Priority::Low,
    ];
    for (status, priority) in statuses.into_iter().zip(priorities) {
        events.push(Event::TaskCreated { task: Box::new(task(status, priority)) });
    }
    let mut plain = task(TaskStatus::Pending, Priority::Normal);
    (plain.assigned_to, plain.lease_until, plain.idempotency_key) = (None, None, None);
    (plain.metadata, plain.outputs, plain.description) = (json!(null), vec![], String::new());
    events.push(Event::TaskCreated { task: Box::new(plain) });
    let kinds = [
        (ArtifactType::File, DependencyStatus::Pending),
        (ArtifactType::Context, DependencyStatus::InProgress),
        (ArtifactType::Completion, DependencyStatus::Ready),
        (ArtifactType::Other("model".into()), DependencyStatus::Failed("gone".into())),
    ];
    for (artifact_type, status) in kinds {
        events.push(Event::DependencyRegistered { dependency: dependency(artifact_type, status) });
    }
    events.push(Event::DeliveryDeadLettered {
        agent: agent("agent-7"),
        subscription: "orders".into(),
        lsn: Lsn(u64::MAX),
        deliveries: u32::MAX,
    });
    events.into_iter().map(|event| Recorded { actor: agent("actor"), event }).collect()
}
