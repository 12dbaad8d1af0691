//! Random command sequences over a coordinator, shared by the property tests that compare
//! the states different ways of opening a store give.

use std::collections::BTreeMap;
use std::time::Duration;

use maos_coord::coordinator::DurableOptions;
use maos_coord::model::{
    AgentId, ArtifactType, BarrierName, ClaimPolicy, ContextKey, EventFilter, LockName, NewTask, Priority,
    TaskId, TaskStatus, Visibility,
};
use maos_coord::{Coordinator, ManualClock, Registration};
use proptest::prelude::*;

#[derive(Debug, Clone)]
pub enum Op {
    Create { by: usize, key: Option<u8>, priority: u8 },
    Claim { by: usize },
    Complete { by: usize, task: u8 },
    Fail { by: usize, task: u8 },
    Release { by: usize, task: u8 },
    Block { by: usize, task: u8 },
    Unblock { by: usize, task: u8 },
    Set { by: usize, key: u8, value: i64, private: bool },
    Cas { by: usize, key: u8, version: u64 },
    Delete { by: usize, key: u8 },
    Depend { by: usize, provider: u8, consumer: u8 },
    Barrier { by: usize, signal: bool },
    Lock { by: usize, unlock: bool },
    Emit { by: usize },
    Heartbeat { by: usize },
    Cancel { by: usize, task: u8, cascade: bool },
    Register { by: usize, resume: bool },
    Stop { by: usize },
    Advance { ms: u16, backwards: bool },
    Policy { by: usize, aging_ms: Option<u16> },
    Subscribe { by: usize, take: u8, ack: bool },
}

pub fn op() -> impl Strategy<Value = Op> {
    let by = 0usize..3;
    prop_oneof![
        3 => (by.clone(), proptest::option::of(0u8..4), 0u8..4).prop_map(|(by, key, priority)| Op::Create {
            by,
            key,
            priority
        }),
        4 => by.clone().prop_map(|by| Op::Claim { by }),
        2 => (by.clone(), 0u8..8).prop_map(|(by, task)| Op::Complete { by, task }),
        1 => (by.clone(), 0u8..8).prop_map(|(by, task)| Op::Fail { by, task }),
        1 => (by.clone(), 0u8..8).prop_map(|(by, task)| Op::Release { by, task }),
        1 => (by.clone(), 0u8..8).prop_map(|(by, task)| Op::Block { by, task }),
        1 => (by.clone(), 0u8..8).prop_map(|(by, task)| Op::Unblock { by, task }),
        1 => (by.clone(), 0u8..4, any::<i64>(), any::<bool>()).prop_map(|(by, key, value, private)| Op::Set {
            by,
            key,
            value,
            private
        }),
        1 => (by.clone(), 0u8..4, 0u64..4).prop_map(|(by, key, version)| Op::Cas { by, key, version }),
        1 => (by.clone(), 0u8..4).prop_map(|(by, key)| Op::Delete { by, key }),
        1 => (by.clone(), 0u8..8, 0u8..8).prop_map(|(by, provider, consumer)| Op::Depend {
            by,
            provider,
            consumer
        }),
        1 => (by.clone(), any::<bool>()).prop_map(|(by, signal)| Op::Barrier { by, signal }),
        1 => (by.clone(), any::<bool>()).prop_map(|(by, unlock)| Op::Lock { by, unlock }),
        1 => by.clone().prop_map(|by| Op::Emit { by }),
        2 => by.clone().prop_map(|by| Op::Heartbeat { by }),
        1 => (by.clone(), 0u8..8, any::<bool>()).prop_map(|(by, task, cascade)| Op::Cancel { by, task, cascade }),
        1 => (by.clone(), any::<bool>()).prop_map(|(by, resume)| Op::Register { by, resume }),
        1 => by.clone().prop_map(|by| Op::Stop { by }),
        4 => (0u16..300, proptest::bool::weighted(0.2)).prop_map(|(ms, backwards)| Op::Advance { ms, backwards }),
        1 => (by.clone(), proptest::option::of(1u16..500)).prop_map(|(by, aging_ms)| Op::Policy { by, aging_ms }),
        3 => (by, 0u8..4, any::<bool>()).prop_map(|(by, take, ack)| Op::Subscribe { by, take, ack }),
    ]
}

/// Runs `ops` on `c`; `tasks` holds the ids of the tasks created so far (ops name tasks by
/// their index in it). Returns each command's answer, as text.
pub async fn run(
    c: &Coordinator,
    clock: &ManualClock,
    agents: &[AgentId],
    ops: &[Op],
    tasks: &mut Vec<TaskId>,
) -> Vec<String> {
    let mut answers = Vec::new();
    let task = |tasks: &[TaskId], i: u8| tasks.get(i as usize % tasks.len().max(1)).cloned();
    let key = |i: u8| ContextKey::new(format!("k{i}")).unwrap();
    let barrier = BarrierName::new("b").unwrap();
    let lock = LockName::new("l").unwrap();
    for op in ops {
        // Errors are part of the game: an invalid command must simply append nothing.
        match op.clone() {
            Op::Create { by, key, priority } => {
                let priority =
                    [Priority::Low, Priority::Normal, Priority::High, Priority::Critical][priority as usize];
                let mut spec = NewTask::new("t").priority(priority).max_attempts(2);
                if let Some(k) = key {
                    spec = spec.idempotency_key(format!("key{k}"));
                }
                let created = c.create_task(&agents[by], spec).await;
                answers.push(format!("{created:?}"));
                if let Ok(t) = created {
                    tasks.push(t.id);
                }
            }
            Op::Claim { by } => {
                answers.push(format!("{:?}", c.claim_next_task(&agents[by], Some(&[])).await))
            }
            Op::Complete { by, task: t } => {
                if let Some(t) = task(tasks, t) {
                    answers.push(format!("{:?}", c.complete_task(&agents[by], &t, vec!["out".into()]).await));
                }
            }
            Op::Fail { by, task: t } => {
                if let Some(t) = task(tasks, t) {
                    answers.push(format!("{:?}", c.fail_task(&agents[by], &t, "e").await));
                }
            }
            Op::Release { by, task: t } => {
                if let Some(t) = task(tasks, t) {
                    answers.push(format!("{:?}", c.release_task(&agents[by], &t).await));
                }
            }
            Op::Block { by, task: t } => {
                if let Some(t) = task(tasks, t) {
                    answers.push(format!(
                        "{:?}",
                        c.update_task_status(&agents[by], &t, TaskStatus::Blocked("b".into())).await
                    ));
                }
            }
            Op::Unblock { by, task: t } => {
                if let Some(t) = task(tasks, t) {
                    answers.push(format!(
                        "{:?}",
                        c.update_task_status(&agents[by], &t, TaskStatus::Pending).await
                    ));
                }
            }
            Op::Set { by, key: k, value, private } => {
                let vis = if private { Visibility::Private } else { Visibility::Shared };
                answers.push(format!(
                    "{:?}",
                    c.set_context(&agents[by], &key(k), serde_json::json!(value), vis).await
                ));
            }
            Op::Cas { by, key: k, version } => answers.push(format!(
                "{:?}",
                c.compare_and_set(&agents[by], &key(k), serde_json::json!(version), version).await
            )),
            Op::Delete { by, key: k } => {
                answers.push(format!("{:?}", c.delete_context(&agents[by], &key(k)).await))
            }
            Op::Depend { by, provider, consumer } => {
                if let (Some(p), Some(q)) = (task(tasks, provider), task(tasks, consumer)) {
                    answers.push(format!(
                        "{:?}",
                        c.register_dependency(&agents[by], &p, &q, ArtifactType::Completion).await
                    ));
                }
            }
            Op::Barrier { by, signal } => {
                if signal {
                    answers.push(format!(
                        "{:?}",
                        c.signal_barrier(&agents[by], &barrier, &format!("p{by}")).await
                    ));
                } else {
                    answers.push(format!(
                        "{:?}",
                        c.create_barrier(&agents[by], &barrier, vec!["p0".into(), "p1".into(), "p2".into()])
                            .await,
                    ));
                }
            }
            Op::Lock { by, unlock } => {
                if unlock {
                    answers.push(format!("{:?}", c.unlock(&agents[by], &lock).await));
                } else {
                    answers.push(format!(
                        "{:?}",
                        c.try_lock(&agents[by], &lock, Duration::from_millis(100)).await
                    ));
                }
            }
            Op::Emit { by } => answers.push(format!(
                "{:?}",
                c.emit_event(&agents[by], "custom", serde_json::json!(by), BTreeMap::new()).await
            )),
            Op::Heartbeat { by } => answers.push(format!("{:?}", c.heartbeat(&agents[by]).await)),
            Op::Cancel { by, task: t, cascade } => {
                if let Some(t) = task(tasks, t) {
                    if cascade {
                        answers.push(format!("{:?}", c.cancel_task_cascade(&agents[by], &t, "cut").await));
                    } else {
                        answers.push(format!("{:?}", c.cancel_task(&agents[by], &t, "cut").await));
                    }
                }
            }
            Op::Register { by, resume } => answers.push(format!(
                "{:?}",
                c.register_agent_with(&agents[by], Registration::new("r").resume(resume)).await
            )),
            Op::Stop { by } => answers.push(format!("{:?}", c.stop_agent(&agents[by], "stopped").await)),
            Op::Advance { ms, backwards } => {
                let d = Duration::from_millis(u64::from(ms));
                if backwards {
                    clock.rewind(d);
                } else {
                    clock.advance(d);
                }
            }
            Op::Subscribe { by, take, ack } => {
                // A durable subscriber that takes a few events and acknowledges the last one, or
                // only its scan position; a head handed out twice unacknowledged is dead-lettered
                // (a record the replay must apply too).
                let filter = EventFilter::all().types(["TaskCreated", "custom"]);
                let opts = DurableOptions { max_deliveries: Some(2), ..DurableOptions::default() };
                if let Ok(mut sub) = c.subscribe_durable_with(&agents[by], "s", filter, opts) {
                    let mut last = None;
                    for _ in 0..take {
                        if let Ok(Some(d)) = sub.try_next() {
                            last = Some(d.lsn);
                        }
                    }
                    match (ack, last) {
                        (true, Some(lsn)) => answers.push(format!("{:?}", sub.ack(lsn))),
                        (true, None) => answers.push(format!("{:?}", sub.ack_scanned())),
                        (false, _) => {}
                    }
                }
            }
            Op::Policy { by, aging_ms } => {
                let policy =
                    aging_ms.map_or(ClaimPolicy::Strict, |ms| ClaimPolicy::Aging { every_ms: ms.into() });
                answers.push(format!("{:?}", c.set_claim_policy(&agents[by], policy).await));
            }
        }
    }
    answers
}
