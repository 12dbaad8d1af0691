//! Time travel (`state_at`): the state as of any LSN or time equals the live state the
//! coordinator showed at that point, whether it is folded from the start or from a snapshot at
//! or before the point, through the coordinator or a read-only history; and a point whose
//! records compaction removed is refused, not answered with a partial fold.

use std::time::Duration;

use maos_coord::coordinator::{AsOf, CompactOptions};
use maos_coord::model::{AgentId, ContextKey, NewTask, TaskId, Visibility};
use maos_coord::projection::State;
use maos_coord::{Coordinator, Durability, Error, Lsn, ManualClock, Timestamp};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create,
    Claim { by: usize },
    Complete { by: usize, task: u8 },
    Set { by: usize, key: u8, private: bool },
    Heartbeat { by: usize },
    Advance { ms: u16 },
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Create),
        3 => (0usize..2).prop_map(|by| Op::Claim { by }),
        2 => (0usize..2, 0u8..6).prop_map(|(by, task)| Op::Complete { by, task }),
        2 => (0usize..2, 0u8..3, any::<bool>()).prop_map(|(by, key, private)| Op::Set { by, key, private }),
        1 => (0usize..2).prop_map(|by| Op::Heartbeat { by }),
        3 => (0u16..400).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Snapshot),
    ]
}

/// Runs `ops`, returning the live state after each of them (and the one before the first).
async fn run(c: &Coordinator, clock: &ManualClock, agents: &[AgentId], ops: &[Op]) -> Vec<State> {
    let mut tasks: Vec<TaskId> = Vec::new();
    let mut seen = vec![c.read(|s| s.clone()).unwrap()];
    for op in ops {
        match op {
            Op::Create => tasks.push(c.create_task(&agents[0], NewTask::new("t")).await.unwrap().id),
            Op::Claim { by } => drop(c.claim_next_task(&agents[*by], Some(&[])).await),
            Op::Complete { by, task } => {
                if let Some(t) = tasks.get(*task as usize % tasks.len().max(1)) {
                    drop(c.complete_task(&agents[*by], t, vec!["out".into()]).await);
                }
            }
            Op::Set { by, key, private } => {
                let visibility = if *private { Visibility::Private } else { Visibility::Shared };
                let key = ContextKey::new(format!("k{key}")).unwrap();
                drop(c.set_context(&agents[*by], &key, serde_json::json!(seen.len()), visibility).await);
            }
            Op::Heartbeat { by } => drop(c.heartbeat(&agents[*by]).await),
            Op::Advance { ms } => clock.advance(Duration::from_millis(u64::from(*ms))),
            Op::Snapshot => drop(c.snapshot().unwrap()),
        }
        seen.push(c.read(|s| s.clone()).unwrap());
    }
    c.wait_for_snapshots();
    seen
}

/// The state a fold of the records up to `time` gives: the last live state all of whose records
/// were appended by then.
fn expected_at(seen: &[State], time: Timestamp) -> &State {
    seen.iter().rev().find(|s| s.last_time <= time).unwrap_or(&seen[0])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_state_at_every_point_is_the_live_state_seen_there(
        ops in proptest::collection::vec(op(), 1..60),
        snapshot_every in 0u64..6,
    ) {
        let root = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let clock = ManualClock::starting_now();
        let c = Coordinator::options(root.path())
            .durability(Durability::Buffered)
            .lease(Duration::from_millis(300))
            .snapshot_every(snapshot_every)
            .clock(clock.shared())
            .open()
            .unwrap();
        let agents: Vec<AgentId> = (0..2).map(|i| AgentId::new(format!("a{i}")).unwrap()).collect();
        let seen = runtime.block_on(async {
            for a in &agents {
                c.register_agent(a, "r", vec![]).await.unwrap();
            }
            run(&c, &clock, &agents, &ops).await
        });
        let history = Coordinator::options(root.path()).open_history().unwrap();
        for state in &seen {
            let point = AsOf::Lsn(Lsn::new(state.next_lsn.get() - 1));
            prop_assert_eq!(&c.state_at(point).unwrap(), state, "through the coordinator, {}", point);
            prop_assert_eq!(&history.state_at(point).unwrap(), state, "read-only, {}", point);
            let at = AsOf::Time(state.last_time);
            prop_assert_eq!(&history.state_at(at).unwrap(), expected_at(&seen, state.last_time), "{}", at);
        }
        let before = Timestamp::from_micros(seen[1].last_time.as_micros() - 1);
        prop_assert_eq!(history.state_at(AsOf::Time(before)).unwrap(), State::new());
        prop_assert_eq!(history.state_at(AsOf::Lsn(Lsn::new(0))).unwrap(), State::new());
        let tail = c.log().next_lsn();
        let past = history.state_at(AsOf::Lsn(tail)).unwrap_err();
        prop_assert!(matches!(past, Error::InvalidArgument { .. }), "{past}");
        let later = Timestamp::from_micros(seen.last().unwrap().last_time.as_micros() + 1_000_000);
        prop_assert_eq!(&history.state_at(AsOf::Time(later)).unwrap(), seen.last().unwrap());
    }
}

#[tokio::test]
async fn a_point_that_compaction_removed_is_refused_and_later_ones_start_from_the_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let c = Coordinator::options(root.path())
        .durability(Durability::Buffered)
        .segment_size(8192)
        .snapshot_every(0)
        .open()
        .unwrap();
    let me = AgentId::new("me").unwrap();
    c.register_agent(&me, "r", vec![]).await.unwrap();
    let mut seen = Vec::new();
    for i in 0..200 {
        let key = ContextKey::new(format!("k{}", i % 7)).unwrap();
        c.set_context(&me, &key, serde_json::json!({"i": i, "pad": "x".repeat(100)}), Visibility::Shared)
            .await
            .unwrap();
        seen.push(c.read(|s| s.clone()).unwrap());
    }
    let snapshot = c.snapshot().unwrap();
    let report = c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() }).unwrap();
    assert!(!report.removed.is_empty(), "segments went");
    let first = c.log().first_lsn().unwrap();
    assert!(first > Lsn::new(2) && first <= snapshot);
    let history = Coordinator::options(root.path()).open_history().unwrap();
    for state in &seen {
        let point = AsOf::Lsn(Lsn::new(state.next_lsn.get() - 1));
        match history.state_at(point) {
            Ok(at) => {
                assert!(state.next_lsn >= snapshot, "{point} is answered only from the snapshot on");
                assert_eq!(&at, state, "{point}");
            }
            Err(Error::Compacted { requested, first: from }) => {
                assert!(state.next_lsn < snapshot, "{point}");
                assert_eq!((requested, from), (Lsn::new(state.next_lsn.get() - 1), first));
            }
            Err(e) => panic!("{point}: {e}"),
        }
    }
}
