//! One JSON file per record, made safe: every file is replaced whole (written to a temporary file
//! in the same directory, then renamed over it), every read-modify-write holds an exclusive
//! `flock` on the lock file of its collection, and in the durable mode each written file and
//! its directory are fsynced before the operation returns (buffered: no fsync at all).
//!
//! Layout under the root: `agents/ID.json`; `tasks/ID.json` and the claim queue `queue/`, one
//! empty file per pending task named so that names sort in claim order (`P` `SEQ` `-ID`, `P` = 3
//! minus the priority, `SEQ` the creation sequence from `tasks.seq`); `deps/PROVIDER/CONSUMER.json`
//! (a task counts the dependencies it still waits on); `context/KEY.json`; `events/SEQ.json`
//! (sequence from `events.seq`). `tasks.lock` guards tasks, the queue and dependencies together,
//! `context.lock` and `events.lock` their collections. Claims whose lease ended are not taken
//! back: finding them would mean reading every claimed task's file on each claim.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::store::{Mode, Outcome, Result, Store};
use crate::workload::{AgentSpec, TaskSpec};

/// As maos-coord's default lease.
const LEASE_MICROS: i64 = 300_000_000;

const DIRS: [&str; 6] = ["agents", "tasks", "queue", "deps", "context", "events"];

#[derive(Serialize, Deserialize)]
struct TaskFile {
    id: String,
    name: String,
    priority: u8,
    required: Vec<String>,
    metadata: Value,
    status: String,
    agent: Option<String>,
    lease_until: Option<i64>,
    attempts: u32,
    completions: u32,
    /// Dependencies not ready yet.
    waiting_on: u32,
    seq: u64,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, Deserialize)]
struct DepFile {
    provider: String,
    consumer: String,
    status: String,
}

/// The store's directory, opened by one process.
pub struct JsonStore {
    root: PathBuf,
    durable: bool,
    tasks_lock: Rc<File>,
    context_lock: Rc<File>,
    events_lock: Rc<File>,
    temporaries: u64,
    capabilities: HashMap<String, Vec<String>>,
}

/// An exclusive `flock`, released when dropped.
struct Locked<'a>(&'a File);

impl<'a> Locked<'a> {
    fn new(file: &'a File) -> Result<Locked<'a>> {
        flock(file, FlockOperation::LockExclusive)?;
        Ok(Locked(file))
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Closing the file would release it too; an unlock of a held lock does not fail.
        let _ = flock(self.0, FlockOperation::Unlock);
    }
}

fn now_micros() -> Result<i64> {
    Ok(i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())?)
}

/// A context key as a file name.
fn key_file(key: &str) -> String {
    format!("{}.json", key.replace('%', "%25").replace('/', "%2F"))
}

/// The contents of `path`, `None` if there is no such file.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = read_optional(path)?.ok_or_else(|| format!("no file {}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The names in `dir` (none if it does not exist), temporary files left out.
fn list(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display()).into()),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry?.file_name().into_string().map_err(|n| format!("file name {n:?}"))?;
        if !name.starts_with('.') {
            names.push(name);
        }
    }
    Ok(names)
}

impl JsonStore {
    /// Opens the store under `root` (creating its directories with [`Mode::Create`]); `durable`:
    /// fsync files and directories.
    ///
    /// # Errors
    /// If a directory or lock file cannot be created or opened.
    pub fn open(root: &Path, durable: bool, mode: Mode) -> Result<JsonStore> {
        if mode == Mode::Create {
            for dir in DIRS {
                std::fs::create_dir_all(root.join(dir))?;
            }
        }
        let lock =
            |name: &str| OpenOptions::new().create(true).append(true).open(root.join(name)).map(Rc::new);
        let store = JsonStore {
            root: root.to_owned(),
            durable,
            tasks_lock: lock("tasks.lock")?,
            context_lock: lock("context.lock")?,
            events_lock: lock("events.lock")?,
            temporaries: 0,
            capabilities: HashMap::new(),
        };
        if mode == Mode::Create && durable {
            store.sync_dir(root)?;
        }
        Ok(store)
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        if self.durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Replaces `dir/name` with `bytes`: a temporary file renamed over it (both fsynced when
    /// durable).
    fn write_atomic(&mut self, dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
        self.temporaries += 1;
        let temporary = dir.join(format!(".tmp-{}-{}", std::process::id(), self.temporaries));
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        if self.durable {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temporary, dir.join(name))?;
        self.sync_dir(dir)
    }

    fn write_task(&mut self, task: &TaskFile) -> Result<()> {
        let dir = self.root.join("tasks");
        self.write_atomic(&dir, &format!("{}.json", task.id), &serde_json::to_vec(task)?)
    }

    fn task(&self, id: &str) -> Result<TaskFile> {
        read_json(&self.root.join("tasks").join(format!("{id}.json")))
    }

    /// The next value of the counter in file `name` (from 1), written back.
    fn next_seq(&mut self, name: &str) -> Result<u64> {
        let path = self.root.join(name);
        let last: u64 = match read_optional(&path)? {
            Some(bytes) => std::str::from_utf8(&bytes)?.trim().parse()?,
            None => 0,
        };
        let root = self.root.clone();
        self.write_atomic(&root, name, (last + 1).to_string().as_bytes())?;
        Ok(last + 1)
    }

    fn capabilities_of(&mut self, worker: &str) -> Result<Vec<String>> {
        if let Some(caps) = self.capabilities.get(worker) {
            return Ok(caps.clone());
        }
        let agent: Value = read_json(&self.root.join("agents").join(format!("{worker}.json")))?;
        let caps: Vec<String> = serde_json::from_value(agent["capabilities"].clone())?;
        self.capabilities.insert(worker.to_owned(), caps.clone());
        Ok(caps)
    }

    /// Whether `target` can be reached from `task` along dependencies (provider to consumer).
    fn reaches(&self, task: &str, target: &str) -> Result<bool> {
        let mut stack = vec![task.to_owned()];
        let mut seen = std::collections::HashSet::new();
        while let Some(t) = stack.pop() {
            if t == target {
                return Ok(true);
            }
            if seen.insert(t.clone()) {
                for name in list(&self.root.join("deps").join(&t))? {
                    stack.push(name.trim_end_matches(".json").to_owned());
                }
            }
        }
        Ok(false)
    }

    /// Marks `provider -> consumer` ready (under the tasks lock): the consumer waits on one less.
    /// Claims for `worker`; the caller holds the tasks lock.
    fn claim_locked(&mut self, worker: &str) -> Result<Option<String>> {
        let capabilities = self.capabilities_of(worker)?;
        let queue = self.root.join("queue");
        let mut names = list(&queue)?;
        names.sort_unstable();
        for name in names {
            let id = name.get(14..).ok_or_else(|| format!("queue entry {name}"))?;
            let mut task = self.task(id)?;
            let meets = task.required.iter().all(|c| capabilities.contains(c));
            if task.status != "pending" || !meets || task.waiting_on > 0 {
                continue;
            }
            let now = now_micros()?;
            task.status = "in_progress".into();
            task.agent = Some(worker.to_owned());
            task.lease_until = Some(now + LEASE_MICROS);
            task.attempts += 1;
            task.updated_at = now;
            self.write_task(&task)?;
            std::fs::remove_file(queue.join(&name))?;
            self.sync_dir(&queue)?;
            return Ok(Some(task.id));
        }
        Ok(None)
    }

    /// Completes `id`, which `worker` holds; the caller holds the tasks lock.
    fn complete_locked(&mut self, worker: &str, id: &str) -> Result<()> {
        let mut task = self.task(id)?;
        let now = now_micros()?;
        let live = task.lease_until.is_some_and(|until| until >= now);
        if task.status != "in_progress" || task.agent.as_deref() != Some(worker) || !live {
            return Err(format!("{worker} does not hold {id} under a live lease").into());
        }
        task.status = "completed".into();
        task.completions += 1;
        task.updated_at = now;
        self.write_task(&task)?;
        // What the task provides is ready now.
        for name in list(&self.root.join("deps").join(id))? {
            self.ready_locked(id, name.trim_end_matches(".json"))?;
        }
        Ok(())
    }

    fn ready_locked(&mut self, provider: &str, consumer: &str) -> Result<()> {
        let dir = self.root.join("deps").join(provider);
        let name = format!("{consumer}.json");
        let mut dep: DepFile = read_json(&dir.join(&name))?;
        let was_ready = dep.status == "ready";
        dep.status = "ready".into();
        self.write_atomic(&dir, &name, &serde_json::to_vec(&dep)?)?;
        if !was_ready {
            let mut task = self.task(consumer)?;
            task.waiting_on = task.waiting_on.saturating_sub(1);
            self.write_task(&task)?;
        }
        Ok(())
    }
}

impl Store for JsonStore {
    /// Provider and consumer.
    type DepId = (String, String);

    async fn register_agent(&mut self, agent: &AgentSpec) -> Result<()> {
        let record =
            json!({"id": agent.id, "capabilities": agent.capabilities, "registered_at": now_micros()?});
        let dir = self.root.join("agents");
        self.write_atomic(&dir, &format!("{}.json", agent.id), &serde_json::to_vec(&record)?)
    }

    async fn create_task(&mut self, actor: &str, task: TaskSpec) -> Result<()> {
        let lock = Rc::clone(&self.tasks_lock);
        let _locked = Locked::new(&lock)?;
        if self.root.join("tasks").join(format!("{}.json", task.id)).exists() {
            return Err(format!("task {} exists", task.id).into());
        }
        let seq = self.next_seq("tasks.seq")?;
        let now = now_micros()?;
        let file = TaskFile {
            id: task.id,
            name: task.name,
            priority: task.priority,
            required: task.required,
            metadata: task.metadata,
            status: "pending".into(),
            agent: None,
            lease_until: None,
            attempts: 0,
            completions: 0,
            waiting_on: 0,
            seq,
            created_by: actor.to_owned(),
            created_at: now,
            updated_at: now,
        };
        self.write_task(&file)?;
        let queue = self.root.join("queue");
        let rank = 3u8.saturating_sub(file.priority);
        File::create_new(queue.join(format!("{rank}{seq:012}-{}", file.id)))?;
        self.sync_dir(&queue)
    }

    async fn claim(&mut self, worker: &str) -> Result<Option<String>> {
        let lock = Rc::clone(&self.tasks_lock);
        let _locked = Locked::new(&lock)?;
        self.claim_locked(worker)
    }

    async fn complete_and_claim(&mut self, worker: &str, id: &str) -> Result<Option<String>> {
        // Under one hold of the lock: the completion, then the claim, as one operation.
        let lock = Rc::clone(&self.tasks_lock);
        let _locked = Locked::new(&lock)?;
        self.complete_locked(worker, id)?;
        self.claim_locked(worker)
    }

    async fn set_context(&mut self, actor: &str, key: &str, value: Value) -> Result<()> {
        let lock = Rc::clone(&self.context_lock);
        let _locked = Locked::new(&lock)?;
        let (dir, name) = (self.root.join("context"), key_file(key));
        let version = match read_optional(&dir.join(&name))? {
            Some(bytes) => serde_json::from_slice::<Value>(&bytes)?["version"].as_u64().unwrap_or(0),
            None => 0,
        };
        let record = json!({
            "key": key, "value": value, "version": version + 1,
            "updated_by": actor, "updated_at": now_micros()?,
        });
        self.write_atomic(&dir, &name, &serde_json::to_vec(&record)?)
    }

    async fn get_context(&mut self, _reader: &str, key: &str) -> Result<Option<Value>> {
        let Some(bytes) = read_optional(&self.root.join("context").join(key_file(key)))? else {
            return Ok(None);
        };
        let mut record: Value = serde_json::from_slice(&bytes)?;
        Ok(Some(record["value"].take()))
    }

    async fn add_dependency(
        &mut self,
        _actor: &str,
        provider: &str,
        consumer: &str,
    ) -> Result<(String, String)> {
        let lock = Rc::clone(&self.tasks_lock);
        let _locked = Locked::new(&lock)?;
        let provider_task = self.task(provider)?;
        let mut consumer_task = self.task(consumer)?;
        let id = (provider.to_owned(), consumer.to_owned());
        let dir = self.root.join("deps").join(provider);
        let name = format!("{consumer}.json");
        if dir.join(&name).exists() {
            return Ok(id);
        }
        if self.reaches(consumer, provider)? {
            return Err(format!("{provider} -> {consumer} would close a cycle").into());
        }
        if !dir.exists() {
            std::fs::create_dir(&dir)?;
            self.sync_dir(&self.root.join("deps"))?;
        }
        let ready = provider_task.status == "completed";
        let status = if ready { "ready" } else { "pending" };
        let dep =
            DepFile { provider: provider.to_owned(), consumer: consumer.to_owned(), status: status.into() };
        self.write_atomic(&dir, &name, &serde_json::to_vec(&dep)?)?;
        if !ready {
            consumer_task.waiting_on += 1;
            self.write_task(&consumer_task)?;
        }
        Ok(id)
    }

    async fn mark_ready(&mut self, _actor: &str, dependency: &(String, String)) -> Result<()> {
        let lock = Rc::clone(&self.tasks_lock);
        let _locked = Locked::new(&lock)?;
        self.ready_locked(&dependency.0, &dependency.1)
    }

    async fn emit_event(&mut self, actor: &str, event_type: &str, data: Value) -> Result<()> {
        let lock = Rc::clone(&self.events_lock);
        let _locked = Locked::new(&lock)?;
        let seq = self.next_seq("events.seq")?;
        let record =
            json!({"seq": seq, "type": event_type, "agent": actor, "data": data, "time": now_micros()?});
        let dir = self.root.join("events");
        self.write_atomic(&dir, &format!("{seq:012}.json"), &serde_json::to_vec(&record)?)
    }

    async fn read_events(
        &mut self,
        _reader: &str,
        event_type: &str,
        expected: u64,
        seen: &mut dyn FnMut(&Value) -> Result<()>,
    ) -> Result<()> {
        let dir = self.root.join("events");
        let mut names = list(&dir)?;
        names.sort_unstable();
        let mut read = 0;
        for name in names {
            if read == expected {
                break;
            }
            let record: Value = read_json(&dir.join(&name))?;
            if record["type"] == event_type {
                seen(&record["data"])?;
                read += 1;
            }
        }
        if read < expected {
            return Err(format!("only {read} of {expected} events in {}", dir.display()).into());
        }
        Ok(())
    }

    async fn outcome(&mut self, id: &str) -> Result<Outcome> {
        let task = self.task(id)?;
        Ok(Outcome { completed: task.status == "completed" && task.completions == 1, claims: task.attempts })
    }

    async fn is_ready(&mut self, dependency: &(String, String)) -> Result<bool> {
        let path = self.root.join("deps").join(&dependency.0).join(format!("{}.json", dependency.1));
        Ok(read_json::<DepFile>(&path)?.status == "ready")
    }

    async fn compact(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn close(self) -> Result<()> {
        Ok(())
    }
}
