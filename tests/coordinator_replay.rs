//! Property: random command sequences applied live give exactly the state a fresh replay of the
//! log gives, and exactly the state a snapshot taken half-way plus the tail after it gives
//! (projections are a deterministic fold of the records). Time is an injected clock that the
//! sequence itself moves, so leases lapse (and are noticed by claims and heartbeats) at chosen
//! points, including after backward jumps. Durable subscribers acknowledge deliveries and scan
//! positions in between, and dead-letter records they were handed too often.

use std::collections::BTreeMap;
use std::time::Duration;

use maos_coord::coordinator::DurableOptions;
use maos_coord::model::{
    AgentId, ArtifactType, BarrierName, ClaimPolicy, ContextKey, EventFilter, LockName, NewTask, Priority,
    TaskId, TaskStatus, Visibility,
};
use maos_coord::{Coordinator, Durability, ManualClock, Registration};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
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

fn op() -> impl Strategy<Value = Op> {
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

async fn run(c: &Coordinator, clock: &ManualClock, agents: &[AgentId], ops: &[Op]) {
    let mut tasks: Vec<TaskId> = Vec::new();
    let task = |tasks: &Vec<TaskId>, i: u8| tasks.get(i as usize % tasks.len().max(1)).cloned();
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
                if let Ok(t) = c.create_task(&agents[by], spec).await {
                    tasks.push(t.id);
                }
            }
            Op::Claim { by } => drop(c.claim_next_task(&agents[by], Some(&[])).await),
            Op::Complete { by, task: t } => {
                if let Some(t) = task(&tasks, t) {
                    drop(c.complete_task(&agents[by], &t, vec!["out".into()]).await);
                }
            }
            Op::Fail { by, task: t } => {
                if let Some(t) = task(&tasks, t) {
                    drop(c.fail_task(&agents[by], &t, "e").await);
                }
            }
            Op::Release { by, task: t } => {
                if let Some(t) = task(&tasks, t) {
                    drop(c.release_task(&agents[by], &t).await);
                }
            }
            Op::Block { by, task: t } => {
                if let Some(t) = task(&tasks, t) {
                    drop(c.update_task_status(&agents[by], &t, TaskStatus::Blocked("b".into())).await);
                }
            }
            Op::Unblock { by, task: t } => {
                if let Some(t) = task(&tasks, t) {
                    drop(c.update_task_status(&agents[by], &t, TaskStatus::Pending).await);
                }
            }
            Op::Set { by, key: k, value, private } => {
                let vis = if private { Visibility::Private } else { Visibility::Shared };
                drop(c.set_context(&agents[by], &key(k), serde_json::json!(value), vis).await);
            }
            Op::Cas { by, key: k, version } => {
                drop(c.compare_and_set(&agents[by], &key(k), serde_json::json!(version), version).await)
            }
            Op::Delete { by, key: k } => drop(c.delete_context(&agents[by], &key(k)).await),
            Op::Depend { by, provider, consumer } => {
                if let (Some(p), Some(q)) = (task(&tasks, provider), task(&tasks, consumer)) {
                    drop(c.register_dependency(&agents[by], &p, &q, ArtifactType::Completion).await);
                }
            }
            Op::Barrier { by, signal } => {
                if signal {
                    drop(c.signal_barrier(&agents[by], &barrier, &format!("p{by}")).await);
                } else {
                    drop(
                        c.create_barrier(&agents[by], &barrier, vec!["p0".into(), "p1".into(), "p2".into()])
                            .await,
                    );
                }
            }
            Op::Lock { by, unlock } => {
                if unlock {
                    drop(c.unlock(&agents[by], &lock).await);
                } else {
                    drop(c.try_lock(&agents[by], &lock, Duration::from_millis(100)).await);
                }
            }
            Op::Emit { by } => {
                drop(c.emit_event(&agents[by], "custom", serde_json::json!(by), BTreeMap::new()).await)
            }
            Op::Heartbeat { by } => drop(c.heartbeat(&agents[by]).await),
            Op::Cancel { by, task: t, cascade } => {
                if let Some(t) = task(&tasks, t) {
                    if cascade {
                        drop(c.cancel_task_cascade(&agents[by], &t, "cut").await);
                    } else {
                        drop(c.cancel_task(&agents[by], &t, "cut").await);
                    }
                }
            }
            Op::Register { by, resume } => {
                drop(c.register_agent_with(&agents[by], Registration::new("r").resume(resume)).await)
            }
            Op::Stop { by } => drop(c.stop_agent(&agents[by], "stopped").await),
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
                        (true, Some(lsn)) => drop(sub.ack(lsn)),
                        (true, None) => drop(sub.ack_scanned()),
                        (false, _) => {}
                    }
                }
            }
            Op::Policy { by, aging_ms } => {
                let policy =
                    aging_ms.map_or(ClaimPolicy::Strict, |ms| ClaimPolicy::Aging { every_ms: ms.into() });
                drop(c.set_claim_policy(&agents[by], policy).await);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn live_state_equals_a_fresh_replay(ops in proptest::collection::vec(op(), 1..80)) {
        let root = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let live = runtime.block_on(async {
            let clock = ManualClock::starting_now();
            let c = Coordinator::options(root.path())
                .durability(Durability::Buffered)
                .lease(Duration::from_millis(150))
                .clock(clock.shared())
                .open()
                .unwrap();
            let agents: Vec<AgentId> = (0..3).map(|i| AgentId::new(format!("a{i}")).unwrap()).collect();
            for a in &agents {
                c.register_agent(a, "r", vec![]).await.unwrap();
            }
            let half = ops.len() / 2;
            run(&c, &clock, &agents, &ops[..half]).await;
            c.snapshot().unwrap();
            run(&c, &clock, &agents, &ops[half..]).await;
            c.read(|s| s.clone()).unwrap()
        });
        let with_snapshot = Coordinator::open(root.path()).unwrap().read(|s| s.clone()).unwrap();
        std::fs::remove_dir_all(root.path().join(".maos/coordination/snapshots")).unwrap();
        let full = Coordinator::open(root.path()).unwrap().read(|s| s.clone()).unwrap();
        prop_assert_eq!(&live, &full);
        prop_assert_eq!(&with_snapshot, &full);
        prop_assert_eq!(live.next_lsn, full.next_lsn);
    }
}
