//! What every compared system offers the workload: one trait, implemented by maos-coord, SQLite
//! and one JSON file per record, and the systems by name.

use std::path::Path;

use serde_json::Value;

use crate::workload::{AgentSpec, TaskSpec};

/// Errors of the benchmark: any error, with a message.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Results of the benchmark.
pub type Result<T> = std::result::Result<T, BoxError>;

/// What the exactly-once check needs to know of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the store has it completed.
    pub completed: bool,
    /// How many times it was claimed.
    pub claims: u32,
}

/// One system's store, opened by one process. Methods are `async` so that maos-coord's async API
/// runs inside one runtime for a whole phase; the other systems do their work synchronously.
/// Every write is one transaction (one command, one atomic file operation under a lock).
pub trait Store: Sized {
    /// What [`Store::add_dependency`] returns and [`Store::mark_ready`] takes.
    type DepId;

    /// Registers `agent` with its capabilities.
    async fn register_agent(&mut self, agent: &AgentSpec) -> Result<()>;
    /// Creates `task`, acting as `actor`.
    async fn create_task(&mut self, actor: &str, task: TaskSpec) -> Result<()>;
    /// Claims the best task `worker` can do with its registered capabilities: highest priority
    /// first, then the oldest, among the pending tasks whose requirements it meets and whose
    /// dependencies are ready. `None` when there is none.
    async fn claim(&mut self, worker: &str) -> Result<Option<String>>;
    /// Completes `task`, which `worker` holds, and claims the next task for `worker` as
    /// [`Store::claim`] does, as one operation (maos-coord: one command; SQLite: one
    /// transaction; JSON files: under one hold of the lock): one per unit of work.
    async fn complete_and_claim(&mut self, worker: &str, task: &str) -> Result<Option<String>>;
    /// Sets context `key` to `value`.
    async fn set_context(&mut self, actor: &str, key: &str, value: Value) -> Result<()>;
    /// Reads context `key`.
    async fn get_context(&mut self, reader: &str, key: &str) -> Result<Option<Value>>;
    /// Registers that `consumer` needs `provider` (cycles refused).
    async fn add_dependency(&mut self, actor: &str, provider: &str, consumer: &str) -> Result<Self::DepId>;
    /// Marks a dependency ready.
    async fn mark_ready(&mut self, actor: &str, dependency: &Self::DepId) -> Result<()>;
    /// Appends an application event of type `event_type`.
    async fn emit_event(&mut self, actor: &str, event_type: &str, data: Value) -> Result<()>;
    /// Reads every event of type `event_type` from the start, in order, handing each one's data
    /// to `seen`, until `expected` were read; an error if fewer are there.
    async fn read_events(
        &mut self,
        reader: &str,
        event_type: &str,
        expected: u64,
        seen: &mut dyn FnMut(&Value) -> Result<()>,
    ) -> Result<()>;
    /// What the store says of task `id`.
    async fn outcome(&mut self, id: &str) -> Result<Outcome>;
    /// Whether a dependency is ready.
    async fn is_ready(&mut self, dependency: &Self::DepId) -> Result<bool>;
    /// Gives back the space a run left behind, as its users would (maos-coord: a snapshot and
    /// a keyed compaction; SQLite: a checkpoint and `VACUUM`). `false` if the system has no such
    /// step.
    async fn compact(&mut self) -> Result<bool>;
    /// Closes the store, reporting what closing found.
    fn close(self) -> Result<()>;
}

/// The compared systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    /// maos-coord, `Durability::Buffered`.
    MaosBuffered,
    /// maos-coord, `Durability::Sync`.
    MaosSync,
    /// SQLite in WAL mode, `synchronous=NORMAL`.
    SqliteNormal,
    /// SQLite in WAL mode, `synchronous=FULL`.
    SqliteFull,
    /// One JSON file per record, no fsync.
    JsonBuffered,
    /// One JSON file per record, file and directory fsynced.
    JsonDurable,
}

impl System {
    /// Every system, in the order the table shows them.
    pub const ALL: [System; 6] = [
        System::MaosBuffered,
        System::MaosSync,
        System::SqliteNormal,
        System::SqliteFull,
        System::JsonBuffered,
        System::JsonDurable,
    ];

    /// The name used on the command line, in the table and in the raw results.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            System::MaosBuffered => "maos-buffered",
            System::MaosSync => "maos-sync",
            System::SqliteNormal => "sqlite-normal",
            System::SqliteFull => "sqlite-full",
            System::JsonBuffered => "json-buffered",
            System::JsonDurable => "json-durable",
        }
    }

    /// The system named `name`.
    ///
    /// # Errors
    /// For a name no system has.
    pub fn parse(name: &str) -> Result<System> {
        System::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("unknown system {name:?} (known: {})", names()).into())
    }

    /// Whether acknowledged writes are on stable storage.
    #[must_use]
    pub fn durable(self) -> bool {
        matches!(self, System::MaosSync | System::SqliteFull | System::JsonDurable)
    }

    /// Whether this is the JSON-files system, which runs a tenth of the workload.
    #[must_use]
    pub fn is_json(self) -> bool {
        matches!(self, System::JsonBuffered | System::JsonDurable)
    }
}

/// Every system's name, comma-separated.
#[must_use]
pub fn names() -> String {
    System::ALL.iter().map(|s| s.name()).collect::<Vec<_>>().join(",")
}

/// How a process opens a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Creates it (the first process of a run).
    Create,
    /// Opens the existing store.
    Open,
    /// Opens it to give back space ([`Store::compact`]).
    Maintain,
}

/// Runs `body` on the store of `system` at `root`, opened by this process as `mode` says,
/// inside a current-thread runtime; closes it afterwards.
///
/// # Errors
/// Those of opening, of `body` and of closing.
pub fn with_store<T>(system: System, root: &Path, mode: Mode, body: impl StoreBody<T>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        match system {
            System::MaosBuffered | System::MaosSync => {
                let mut store = crate::maos::MaosStore::open(root, system.durable(), mode)?;
                let out = body.run(&mut store).await?;
                store.close()?;
                Ok(out)
            }
            System::SqliteNormal | System::SqliteFull => {
                let mut store = crate::sqlite::SqliteStore::open(root, system.durable(), mode)?;
                let out = body.run(&mut store).await?;
                store.close()?;
                Ok(out)
            }
            System::JsonBuffered | System::JsonDurable => {
                let mut store = crate::json_files::JsonStore::open(root, system.durable(), mode)?;
                let out = body.run(&mut store).await?;
                store.close()?;
                Ok(out)
            }
        }
    })
}

/// Work done on an open store of any system (what [`with_store`] runs).
pub trait StoreBody<T> {
    /// Does the work on `store`.
    async fn run<S: Store>(self, store: &mut S) -> Result<T>;
}
