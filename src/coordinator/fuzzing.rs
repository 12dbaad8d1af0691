//! Body of the `ops_vs_model` fuzz target: random task commands (create, claim, complete, fail,
//! release, block, unblock, cancel, stop and register again) run through the coordinator and
//! through a small in-memory model of the task rules; after every command both must agree
//! on whether it succeeded and on every task's status and holder. Here so that
//! `tests/fuzz_regressions.rs` replays saved inputs through the same code.
//!
//! The body of the `json_values` fuzz target is in the submodule `json_values`; that of
//! `cursor_file` moved with the cursor files to [`crate::subscription::fuzzing`] and is
//! re-exported here under its old path.
// A fuzz body: a panic is how it reports a disagreement, so asserting and indexing into its own
// model are the point here.
#![allow(clippy::indexing_slicing, clippy::expect_used)]

mod json_values;

use std::path::Path;

pub use crate::subscription::fuzzing::{cursor_file, repair as repair_cursor_file};
pub use json_values::json_values;

use super::Coordinator;
use crate::log::Durability;
use crate::model::{AgentId, NewTask, TaskId, TaskStatus};

const AGENTS: usize = 3;
const MAX_ATTEMPTS: u32 = 2;

/// The model of one task.
#[derive(Debug, Clone, PartialEq)]
struct ModelTask {
    status: TaskStatus,
    holder: Option<usize>,
    failures: u32,
}

/// Runs the commands encoded in `data` (two bytes each) in a store under `root`.
///
/// # Panics
/// When the coordinator and the model disagree: that is the finding.
pub fn ops_vs_model(root: &Path, data: &[u8]) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    runtime.block_on(run(root, data));
}

async fn run(root: &Path, data: &[u8]) {
    let Ok(c) = Coordinator::options(root).durability(Durability::Buffered).open() else { return };
    let agents: Vec<AgentId> = (0..AGENTS).filter_map(|i| AgentId::new(format!("a{i}")).ok()).collect();
    for a in &agents {
        assert!(c.register_agent(a, "r", vec![]).await.is_ok());
    }
    let mut ids: Vec<TaskId> = Vec::new();
    let mut model: Vec<ModelTask> = Vec::new();
    for pair in data.chunks_exact(2).take(200) {
        let (op, arg) = (pair[0] % 9, pair[1]);
        let who = usize::from(arg) % AGENTS;
        let agent = &agents[who];
        let t = if ids.is_empty() { 0 } else { usize::from(arg / 4) % ids.len() };
        match op {
            0 => {
                let task =
                    c.create_task(agent, NewTask::new("t").max_attempts(MAX_ATTEMPTS)).await.expect("create");
                ids.push(task.id);
                model.push(ModelTask { status: TaskStatus::Pending, holder: None, failures: 0 });
            }
            1 => {
                let claimed = c.claim_next_task(agent, Some(&[])).await.expect("claim").map(|t| t.id);
                let expected = model.iter().position(|m| m.status == TaskStatus::Pending);
                assert_eq!(claimed, expected.map(|i| ids[i].clone()), "claim order");
                if let Some(i) = expected {
                    model[i].status = TaskStatus::InProgress;
                    model[i].holder = Some(who);
                }
            }
            _ if ids.is_empty() => continue,
            2 => {
                let ok = c.complete_task(agent, &ids[t], vec![]).await.is_ok();
                let allowed = holds(&model[t], who);
                assert_eq!(ok, allowed, "complete by {who} of {:?}", model[t]);
                if allowed {
                    model[t].status = TaskStatus::Completed;
                }
            }
            3 => {
                let ok = c.fail_task(agent, &ids[t], "e").await.is_ok();
                let allowed = holds(&model[t], who);
                assert_eq!(ok, allowed, "fail by {who} of {:?}", model[t]);
                if allowed {
                    model[t].failures += 1;
                    model[t].status = if model[t].failures >= MAX_ATTEMPTS {
                        TaskStatus::Failed("attempts exhausted".into())
                    } else {
                        TaskStatus::Pending
                    };
                }
            }
            4 => {
                let ok = c.release_task(agent, &ids[t]).await.is_ok();
                let allowed = holds(&model[t], who);
                assert_eq!(ok, allowed, "release by {who} of {:?}", model[t]);
                if allowed {
                    model[t].status = TaskStatus::Pending;
                }
            }
            5 => {
                let ok = c.update_task_status(agent, &ids[t], TaskStatus::Blocked("b".into())).await.is_ok();
                let allowed = model[t].status == TaskStatus::Pending || holds(&model[t], who);
                assert_eq!(ok, allowed, "block by {who} of {:?}", model[t]);
                if allowed {
                    model[t].status = TaskStatus::Blocked("b".into());
                }
            }
            7 => {
                let ok = c.cancel_task(agent, &ids[t], "c").await.is_ok();
                let allowed = !model[t].status.is_final();
                assert_eq!(ok, allowed, "cancel by {who} of {:?}", model[t]);
                if allowed {
                    model[t].status = TaskStatus::Cancelled("c".into());
                }
            }
            8 => {
                // The agent stops and registers again: every claim it held ends and counts.
                c.stop_agent(agent, "crashed").await.expect("stop");
                c.register_agent(agent, "r", vec![]).await.expect("register again");
                for m in model.iter_mut().filter(|m| holds(m, who)) {
                    m.failures += 1;
                    m.status = if m.failures >= MAX_ATTEMPTS {
                        TaskStatus::Failed("attempts exhausted".into())
                    } else {
                        TaskStatus::Pending
                    };
                }
            }
            _ => {
                let ok = c.update_task_status(agent, &ids[t], TaskStatus::Pending).await.is_ok();
                let allowed = matches!(model[t].status, TaskStatus::Blocked(_)) || holds(&model[t], who);
                assert_eq!(ok, allowed, "unblock/release by {who} of {:?}", model[t]);
                if allowed {
                    model[t].status = TaskStatus::Pending;
                }
            }
        }
        for (id, m) in ids.iter().zip(&model) {
            let task = c.get_task(id).expect("read").expect("task exists");
            assert_eq!(task.status, m.status, "status of {id}");
            if task.status == TaskStatus::InProgress {
                assert_eq!(task.assigned_to.as_ref(), m.holder.map(|h| &agents[h]), "holder of {id}");
            }
        }
    }
}

fn holds(task: &ModelTask, who: usize) -> bool {
    task.status == TaskStatus::InProgress && task.holder == Some(who)
}
