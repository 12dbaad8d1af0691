//! maos-coord through its public API, one coordinator per process, `Buffered` or `Sync`.

use std::collections::BTreeMap;
use std::path::Path;

use maos_coord::coordinator::CompactOptions;
use maos_coord::model::{ArtifactType, DependencyId, DependencyStatus};
use maos_coord::{
    AgentId, ContextKey, Coordinator, Durability, Event, EventFilter, Lsn, NewTask, Priority, TaskId,
    TaskStatus, Visibility,
};
use serde_json::Value;

use crate::store::{Mode, Outcome, Result, Store};
use crate::workload::{AgentSpec, TaskSpec};

/// A coordinator on the store at a project root. Clones share one handle (the coordinator's
/// clones share its state and log).
#[derive(Clone)]
pub struct MaosStore {
    c: Coordinator,
}

impl MaosStore {
    /// Opens (creating if needed) the store under `root` with `Sync` or `Buffered` durability.
    /// To maintain it, it keeps one snapshot (the default is two): the one [`Store::compact`]
    /// takes, so that compaction may remove every sealed segment before it.
    ///
    /// # Errors
    /// Those of [`Coordinator::open`].
    pub fn open(root: &Path, sync: bool, mode: Mode) -> Result<MaosStore> {
        let durability = if sync { Durability::Sync } else { Durability::Buffered };
        let mut options = Coordinator::options(root).durability(durability);
        if mode == Mode::Maintain {
            options = options.keep_snapshots(1);
        }
        Ok(MaosStore { c: options.open()? })
    }
}

fn priority(p: u8) -> Priority {
    match p {
        0 => Priority::Low,
        1 => Priority::Normal,
        2 => Priority::High,
        _ => Priority::Critical,
    }
}

impl Store for MaosStore {
    type DepId = DependencyId;

    async fn register_agent(&mut self, agent: &AgentSpec) -> Result<()> {
        self.c.register_agent(&AgentId::new(&agent.id)?, "worker", agent.capabilities.clone()).await?;
        Ok(())
    }

    async fn create_task(&mut self, actor: &str, task: TaskSpec) -> Result<()> {
        let mut spec = NewTask::new(task.name)
            .id(TaskId::new(task.id)?)
            .priority(priority(task.priority))
            .metadata(task.metadata);
        for capability in task.required {
            spec = spec.requires(capability);
        }
        self.c.create_task(&AgentId::new(actor)?, spec).await?;
        Ok(())
    }

    async fn claim(&mut self, worker: &str) -> Result<Option<String>> {
        let task = self.c.claim_next_task(&AgentId::new(worker)?, None).await?;
        Ok(task.map(|t| t.id.as_str().to_owned()))
    }

    async fn complete_and_claim(&mut self, worker: &str, task: &str) -> Result<Option<String>> {
        let (worker, task) = (AgentId::new(worker)?, TaskId::new(task)?);
        let next = self.c.complete_and_claim_next(&worker, &task, vec![], None).await?;
        Ok(next.map(|t| t.id.as_str().to_owned()))
    }

    async fn set_context(&mut self, actor: &str, key: &str, value: Value) -> Result<()> {
        self.c.set_context(&AgentId::new(actor)?, &ContextKey::new(key)?, value, Visibility::Shared).await?;
        Ok(())
    }

    async fn get_context(&mut self, reader: &str, key: &str) -> Result<Option<Value>> {
        let entry = self.c.get_context(&AgentId::new(reader)?, &ContextKey::new(key)?)?;
        Ok(entry.map(|e| e.value))
    }

    async fn add_dependency(&mut self, actor: &str, provider: &str, consumer: &str) -> Result<DependencyId> {
        let (provider, consumer) = (TaskId::new(provider)?, TaskId::new(consumer)?);
        let actor = AgentId::new(actor)?;
        Ok(self.c.register_dependency(&actor, &provider, &consumer, ArtifactType::Completion).await?)
    }

    async fn mark_ready(&mut self, actor: &str, dependency: &DependencyId) -> Result<()> {
        self.c.mark_dependency_ready(&AgentId::new(actor)?, dependency, None).await?;
        Ok(())
    }

    async fn emit_event(&mut self, actor: &str, event_type: &str, data: Value) -> Result<()> {
        self.c.emit_event(&AgentId::new(actor)?, event_type, data, BTreeMap::new()).await?;
        Ok(())
    }

    async fn read_events(
        &mut self,
        reader: &str,
        event_type: &str,
        expected: u64,
        seen: &mut dyn FnMut(&Value) -> Result<()>,
    ) -> Result<()> {
        let filter = EventFilter::all().types([event_type]);
        let mut subscription = self.c.subscribe_from(&AgentId::new(reader)?, filter, Lsn::FIRST)?;
        let mut read = 0;
        while read < expected {
            let Some(delivery) = subscription.try_next()? else {
                return Err(format!("only {read} of {expected} events in the log").into());
            };
            let Event::Custom { data, .. } = &delivery.recorded.event else {
                return Err(format!("record {} is not an application event", delivery.lsn).into());
            };
            seen(data)?;
            read += 1;
        }
        Ok(())
    }

    async fn outcome(&mut self, id: &str) -> Result<Outcome> {
        let task = self.c.get_task(&TaskId::new(id)?)?.ok_or_else(|| format!("no task {id}"))?;
        // The state machine lets a task complete once; `attempts` counts its claims.
        Ok(Outcome { completed: task.status == TaskStatus::Completed, claims: task.attempts })
    }

    async fn is_ready(&mut self, dependency: &DependencyId) -> Result<bool> {
        let dep = self.c.get_dependency(dependency)?.ok_or_else(|| format!("no dependency {dependency}"))?;
        Ok(dep.status == DependencyStatus::Ready)
    }

    async fn compact(&mut self) -> Result<bool> {
        // A snapshot at the tail lets compaction remove every sealed segment before it; keyed
        // compaction keeps the records nothing superseded (every application event included).
        self.c.snapshot()?;
        self.c.compact(&CompactOptions { keyed: true, ..CompactOptions::default() })?;
        Ok(true)
    }

    fn close(self) -> Result<()> {
        Ok(self.c.close()?)
    }
}
