//! Property: a store opened once per command from a snapshot read on demand (as the command
//! line opens it: `check_whole_snapshot(false)`) decides every command and answers every query
//! exactly as one long-lived handle on the same history replayed from the log, and ends in the
//! same state. Time is an injected clock each side moves the same way.

use std::time::Duration;

use maos_coord::model::{AgentId, ContextKey, TaskId};
use maos_coord::{Clock, Coordinator, CoordinatorOptions, Durability, ManualClock};
use proptest::prelude::*;

mod ops;
use ops::{op, run};

fn options(root: &std::path::Path, clock: &ManualClock) -> CoordinatorOptions {
    Coordinator::options(root)
        .durability(Durability::Buffered)
        .lease(Duration::from_millis(150))
        .snapshot_every(0)
        .clock(clock.shared())
}

/// `text` with the id of each task of `tasks` replaced by its place there: the two stores
/// create the same tasks in the same order, under ids of their own (UUIDv7, time-ordered).
fn normalized(text: &str, tasks: &[TaskId]) -> String {
    tasks.iter().enumerate().fold(text.to_owned(), |t, (i, id)| t.replace(id.as_str(), &format!("task#{i}")))
}

fn all_normalized(texts: Vec<String>, tasks: &[TaskId]) -> Vec<String> {
    texts.iter().map(|t| normalized(t, tasks)).collect()
}

/// Copies the directory tree `from` into `to`.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// What the queries a command-line agent asks most answer on `c`, as text.
fn answers(c: &Coordinator, agents: &[AgentId]) -> Vec<String> {
    let mut out = Vec::new();
    for a in agents {
        out.push(format!("{:?}", c.get_ready_tasks(a, None)));
        out.push(format!("{:?}", c.list_context(a, "k")));
        for k in 0..4 {
            out.push(format!("{:?}", c.get_context(a, &ContextKey::new(format!("k{k}")).unwrap())));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn one_command_per_open_decides_as_a_long_lived_handle_on_the_replayed_log(
        before in proptest::collection::vec(op(), 1..60),
        after in proptest::collection::vec(op(), 1..25),
    ) {
        let lazy_root = tempfile::tempdir().unwrap();
        let full_root = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let agents: Vec<AgentId> = (0..3).map(|i| AgentId::new(format!("a{i}")).unwrap()).collect();
        let clock = ManualClock::starting_now();
        let mut tasks = Vec::new();
        runtime.block_on(async {
            let c = options(lazy_root.path(), &clock).open().unwrap();
            for a in &agents {
                c.register_agent(a, "r", vec![]).await.unwrap();
            }
            run(&c, &clock, &agents, &before, &mut tasks).await;
            c.snapshot().unwrap();
            c.close().unwrap();
        });
        copy_tree(lazy_root.path(), full_root.path());
        std::fs::remove_dir_all(full_root.path().join(".maos/coordination/snapshots")).unwrap();

        let (lazy_clock, full_clock) = (ManualClock::new(clock.now()), ManualClock::new(clock.now()));
        let (mut lazy_tasks, mut full_tasks) = (tasks.clone(), tasks);
        let full = options(full_root.path(), &full_clock).open().unwrap();
        for (i, step) in after.iter().enumerate() {
            let lazy = options(lazy_root.path(), &lazy_clock).check_whole_snapshot(false).open().unwrap();
            prop_assert!(lazy.opened_from_snapshot().is_some());
            let (a, b) = runtime.block_on(async {
                let a = run(&lazy, &lazy_clock, &agents, std::slice::from_ref(step), &mut lazy_tasks).await;
                let b = run(&full, &full_clock, &agents, std::slice::from_ref(step), &mut full_tasks).await;
                (a, b)
            });
            prop_assert_eq!(all_normalized(a, &lazy_tasks), all_normalized(b, &full_tasks), "step {} ({:?})", i, step);
            let lazy = options(lazy_root.path(), &lazy_clock).check_whole_snapshot(false).open().unwrap();
            prop_assert_eq!(
                all_normalized(answers(&lazy, &agents), &lazy_tasks),
                all_normalized(answers(&full, &agents), &full_tasks),
                "after step {}", i
            );
            prop_assert!(lazy.damaged_snapshots().is_empty());
        }
        let lazy = options(lazy_root.path(), &lazy_clock).check_whole_snapshot(false).open().unwrap();
        let lazy_state = format!("{:?}", lazy.read(maos_coord::projection::State::to_image).unwrap());
        let full_state = format!("{:?}", full.read(maos_coord::projection::State::to_image).unwrap());
        prop_assert_eq!(normalized(&lazy_state, &lazy_tasks), normalized(&full_state, &full_tasks));
    }
}
