//! SQLite through rusqlite (compiled in), set up as an expert would for this workload: WAL mode,
//! `synchronous=NORMAL` or `FULL`, a busy timeout that retries often ([`short_waits`]), foreign
//! keys, a partial index that serves the
//! claim query in claim order, cached prepared statements, and one `BEGIN IMMEDIATE`
//! transaction per write (so a writer never has to upgrade a read lock and fail).
//!
//! Capabilities are stored as names (JSON) and, for the claim query, as a bit mask over the
//! workload's vocabulary ([`CAPABILITIES`]): a task is claimable by a worker when its mask is
//! within the worker's.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::Value;

use crate::store::{Mode, Outcome, Result, Store};
use crate::workload::{AgentSpec, TaskSpec, CAPABILITIES};

/// How long a claim holds a task before another worker may take it back (as maos-coord's
/// default lease).
const LEASE_MICROS: i64 = 300_000_000;

const SCHEMA: &str = "
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    capabilities TEXT NOT NULL,
    caps_mask INTEGER NOT NULL,
    registered_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE tasks (
    seq INTEGER PRIMARY KEY,            -- creation order: among equal priorities the oldest first
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    priority INTEGER NOT NULL,
    required TEXT NOT NULL,
    required_mask INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    agent TEXT REFERENCES agents(id),
    lease_until INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    completions INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL REFERENCES agents(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- The claim query walks this index in claim order and stops at the first match.
CREATE INDEX tasks_claim ON tasks(priority DESC, seq) WHERE status = 'pending';
-- Claims whose lease may have ended.
CREATE INDEX tasks_lease ON tasks(lease_until) WHERE status = 'in_progress';
CREATE TABLE deps (
    provider TEXT NOT NULL REFERENCES tasks(id),
    consumer TEXT NOT NULL REFERENCES tasks(id),
    status TEXT NOT NULL,
    artifact_path TEXT,
    PRIMARY KEY (provider, consumer)
) WITHOUT ROWID;
CREATE INDEX deps_waiting ON deps(consumer) WHERE status <> 'ready';
CREATE TABLE context (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_by TEXT NOT NULL REFERENCES agents(id),
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    agent TEXT NOT NULL REFERENCES agents(id),
    data TEXT NOT NULL,
    time INTEGER NOT NULL
);
";

/// The claim: takes back claims whose lease ended, then the first claimable task in claim order.
const CLAIM: &str = "
UPDATE tasks SET status = 'in_progress', agent = ?1, lease_until = ?2 + ?3, attempts = attempts + 1,
       updated_at = ?2
WHERE seq = (
    SELECT seq FROM tasks
    WHERE status = 'pending' AND (required_mask & ?4) = required_mask
      AND NOT EXISTS (SELECT 1 FROM deps WHERE deps.consumer = tasks.id AND deps.status <> 'ready')
    ORDER BY priority DESC, seq
    LIMIT 1
)
RETURNING id";

/// The file of the database under a system's root.
#[must_use]
pub fn database(root: &Path) -> PathBuf {
    root.join("coordination.sqlite")
}

/// One connection to the database.
pub struct SqliteStore {
    conn: Connection,
    /// The capability mask of each worker, read once from its registration.
    masks: std::collections::HashMap<String, i64>,
}

fn mask(capabilities: &[String]) -> i64 {
    capabilities
        .iter()
        .map(|c| CAPABILITIES.iter().position(|k| k == c).map_or(0, |bit| 1i64 << bit))
        .fold(0, |a, b| a | b)
}

/// The busy timeout: while another connection holds the write lock, try again every 50 µs,
/// for at least a minute. SQLite's default handler (`busy_timeout`) sleeps longer and longer
/// between tries, up to 100 ms, which leaves the lock idle while processes contend for it.
fn short_waits(tries: i32) -> bool {
    std::thread::sleep(Duration::from_micros(50));
    tries < 1_200_000
}

fn now_micros() -> Result<i64> {
    Ok(i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())?)
}

impl SqliteStore {
    /// Opens the database under `root` (creating it and its schema with [`Mode::Create`]),
    /// with `synchronous=FULL` if `full`, else `NORMAL`.
    ///
    /// # Errors
    /// Those of SQLite.
    pub fn open(root: &Path, full: bool, mode: Mode) -> Result<SqliteStore> {
        if mode == Mode::Create {
            std::fs::create_dir_all(root)?;
        }
        let mut conn = Connection::open(database(root))?;
        conn.busy_handler(Some(short_waits))?;
        let journal: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if journal != "wal" {
            return Err(format!("journal_mode is {journal}, not wal").into());
        }
        conn.execute_batch(if full { "PRAGMA synchronous = FULL;" } else { "PRAGMA synchronous = NORMAL;" })?;
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        conn.set_prepared_statement_cache_capacity(32);
        if mode == Mode::Create {
            conn.execute_batch(SCHEMA)?;
        }
        Ok(SqliteStore { conn, masks: std::collections::HashMap::new() })
    }

    /// The capability mask of `worker`, from its registration.
    fn mask_of(&mut self, worker: &str) -> Result<i64> {
        if let Some(mask) = self.masks.get(worker) {
            return Ok(*mask);
        }
        let mask: i64 = self
            .conn
            .prepare_cached("SELECT caps_mask FROM agents WHERE id = ?1")?
            .query_row([worker], |r| r.get(0))
            .optional()?
            .ok_or_else(|| format!("unknown agent {worker}"))?;
        self.masks.insert(worker.to_owned(), mask);
        Ok(mask)
    }

    /// Whether `ancestor` can be reached from `task` along dependencies (provider to consumer).
    fn reaches(tx: &rusqlite::Transaction<'_>, task: &str, ancestor: &str) -> Result<bool> {
        let found = tx
            .prepare_cached(
                "WITH RECURSIVE down(id) AS (
                     SELECT ?1 UNION SELECT deps.consumer FROM deps JOIN down ON deps.provider = down.id
                 )
                 SELECT 1 FROM down WHERE id = ?2 LIMIT 1",
            )?
            .query_row([task, ancestor], |_| Ok(()))
            .optional()?;
        Ok(found.is_some())
    }
}

/// In `tx`: takes back claims whose lease ended, then claims the first claimable task for
/// `worker` (capability mask `mask`) at `now`.
fn claim_in(tx: &rusqlite::Transaction<'_>, worker: &str, mask: i64, now: i64) -> Result<Option<String>> {
    tx.prepare_cached(
        "UPDATE tasks SET status = 'pending', agent = NULL, lease_until = NULL, updated_at = ?1
         WHERE status = 'in_progress' AND lease_until < ?1",
    )?
    .execute([now])?;
    Ok(tx
        .prepare_cached(CLAIM)?
        .query_row(params![worker, now, LEASE_MICROS, mask], |r| r.get(0))
        .optional()?)
}

/// In `tx`: completes `task`, which `worker` must hold under a live lease at `now`; what it
/// provides is ready.
fn complete_in(tx: &rusqlite::Transaction<'_>, worker: &str, task: &str, now: i64) -> Result<()> {
    let changed = tx
        .prepare_cached(
            "UPDATE tasks SET status = 'completed', completions = completions + 1, updated_at = ?3
             WHERE id = ?1 AND status = 'in_progress' AND agent = ?2 AND lease_until >= ?3",
        )?
        .execute(params![task, worker, now])?;
    if changed != 1 {
        return Err(format!("{worker} does not hold {task} under a live lease").into());
    }
    tx.prepare_cached("UPDATE deps SET status = 'ready' WHERE provider = ?1 AND status <> 'ready'")?
        .execute([task])?;
    Ok(())
}

impl Store for SqliteStore {
    /// Provider and consumer.
    type DepId = (String, String);

    async fn register_agent(&mut self, agent: &AgentSpec) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO agents (id, capabilities, caps_mask, registered_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET capabilities = excluded.capabilities,
                 caps_mask = excluded.caps_mask, registered_at = excluded.registered_at",
        )?
        .execute(params![
            agent.id,
            serde_json::to_string(&agent.capabilities)?,
            mask(&agent.capabilities),
            now_micros()?
        ])?;
        tx.commit()?;
        Ok(())
    }

    async fn create_task(&mut self, actor: &str, task: TaskSpec) -> Result<()> {
        let now = now_micros()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO tasks (id, name, priority, required, required_mask, metadata, status,
                                created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?8)",
        )?
        .execute(params![
            task.id,
            task.name,
            task.priority,
            serde_json::to_string(&task.required)?,
            mask(&task.required),
            serde_json::to_string(&task.metadata)?,
            actor,
            now
        ])?;
        tx.commit()?;
        Ok(())
    }

    async fn claim(&mut self, worker: &str) -> Result<Option<String>> {
        let mask = self.mask_of(worker)?;
        let now = now_micros()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = claim_in(&tx, worker, mask, now)?;
        tx.commit()?;
        Ok(id)
    }

    async fn complete_and_claim(&mut self, worker: &str, task: &str) -> Result<Option<String>> {
        // As an expert would: one transaction completes the task and claims the next.
        let mask = self.mask_of(worker)?;
        let now = now_micros()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        complete_in(&tx, worker, task, now)?;
        let id = claim_in(&tx, worker, mask, now)?;
        tx.commit()?;
        Ok(id)
    }

    async fn set_context(&mut self, actor: &str, key: &str, value: Value) -> Result<()> {
        let now = now_micros()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO context (key, value, version, updated_by, updated_at) VALUES (?1, ?2, 1, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = version + 1,
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )?
        .execute(params![key, serde_json::to_string(&value)?, actor, now])?;
        tx.commit()?;
        Ok(())
    }

    async fn get_context(&mut self, _reader: &str, key: &str) -> Result<Option<Value>> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM context WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    }

    async fn add_dependency(
        &mut self,
        _actor: &str,
        provider: &str,
        consumer: &str,
    ) -> Result<(String, String)> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if SqliteStore::reaches(&tx, consumer, provider)? {
            return Err(format!("{provider} -> {consumer} would close a cycle").into());
        }
        // Ready at once on a completed provider; the foreign key refuses an unknown consumer.
        let added = tx
            .prepare_cached(
                "INSERT INTO deps (provider, consumer, status)
                 SELECT ?1, ?2, CASE status WHEN 'completed' THEN 'ready' ELSE 'pending' END
                 FROM tasks WHERE id = ?1
                 ON CONFLICT (provider, consumer) DO NOTHING",
            )?
            .execute([provider, consumer])?;
        if added == 0 {
            let exists = tx
                .prepare_cached("SELECT 1 FROM deps WHERE provider = ?1 AND consumer = ?2")?
                .query_row([provider, consumer], |_| Ok(()))
                .optional()?;
            if exists.is_none() {
                return Err(format!("no task {provider}").into());
            }
        }
        tx.commit()?;
        Ok((provider.to_owned(), consumer.to_owned()))
    }

    async fn mark_ready(&mut self, _actor: &str, dependency: &(String, String)) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx
            .prepare_cached("UPDATE deps SET status = 'ready' WHERE provider = ?1 AND consumer = ?2")?
            .execute([&dependency.0, &dependency.1])?;
        if changed != 1 {
            return Err(format!("no dependency {} -> {}", dependency.0, dependency.1).into());
        }
        tx.commit()?;
        Ok(())
    }

    async fn emit_event(&mut self, actor: &str, event_type: &str, data: Value) -> Result<()> {
        let now = now_micros()?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT INTO events (type, agent, data, time) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![event_type, actor, serde_json::to_string(&data)?, now])?;
        tx.commit()?;
        Ok(())
    }

    async fn read_events(
        &mut self,
        _reader: &str,
        event_type: &str,
        expected: u64,
        seen: &mut dyn FnMut(&Value) -> Result<()>,
    ) -> Result<()> {
        // As a subscriber polls: pages of events after the last one it saw.
        let mut statement = self.conn.prepare_cached(
            "SELECT seq, data FROM events WHERE seq > ?1 AND type = ?2 ORDER BY seq LIMIT 1000",
        )?;
        let (mut after, mut read) = (0i64, 0u64);
        while read < expected {
            let mut rows = statement.query(params![after, event_type])?;
            let mut page = 0;
            while let Some(row) = rows.next()? {
                after = row.get(0)?;
                let data: Value = serde_json::from_str(row.get_ref(1)?.as_str()?)?;
                seen(&data)?;
                page += 1;
            }
            if page == 0 {
                return Err(format!("only {read} of {expected} events in the table").into());
            }
            read += page;
        }
        Ok(())
    }

    async fn outcome(&mut self, id: &str) -> Result<Outcome> {
        let (status, claims, completions): (String, u32, u32) = self
            .conn
            .prepare_cached("SELECT status, attempts, completions FROM tasks WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(Outcome { completed: status == "completed" && completions == 1, claims })
    }

    async fn is_ready(&mut self, dependency: &(String, String)) -> Result<bool> {
        let status: String = self
            .conn
            .prepare_cached("SELECT status FROM deps WHERE provider = ?1 AND consumer = ?2")?
            .query_row([&dependency.0, &dependency.1], |r| r.get(0))?;
        Ok(status == "ready")
    }

    async fn compact(&mut self) -> Result<bool> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(true)
    }

    fn close(self) -> Result<()> {
        self.conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim's inner query walks the partial index in claim order: no scan of the table and
    /// no sort.
    #[test]
    fn the_claim_query_is_served_by_the_claim_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path(), false, Mode::Create).expect("open");
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLAIM}"))
            .expect("prepare")
            .query_map(params!["w", 0, 0, 0], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<std::result::Result<_, _>>()
            .expect("rows");
        let plan = plan.join("\n");
        assert!(plan.contains("USING INDEX tasks_claim"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        assert!(!plan.contains("SCAN tasks\n") && !plan.ends_with("SCAN tasks"), "{plan}");
    }
}
