//! The workload every system runs: its sizes at a scale, and each of its items generated from a
//! fixed seed and the item's index, so that any process can make any item without holding the
//! others (and every system gets the same items).

use serde_json::{json, Value};

/// The capabilities tasks require and agents have.
pub const CAPABILITIES: [&str; 4] = ["rust", "python", "web", "docs"];

/// The type of the application events emitted and read back.
pub const EVENT_TYPE: &str = "progress";

/// Operations of each part of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Agents registered (the first `workers` of them claim tasks).
    pub agents: u64,
    /// Tasks created, then claimed and completed.
    pub tasks: u64,
    /// Worker processes claiming and completing.
    pub workers: u64,
    /// Context sets.
    pub context_sets: u64,
    /// Distinct context keys the sets go to.
    pub context_keys: u64,
    /// Context gets.
    pub context_gets: u64,
    /// Dependencies registered, then marked ready.
    pub dependencies: u64,
    /// Application events emitted.
    pub events: u64,
    /// Subscriber processes reading every event back.
    pub readers: u64,
}

impl Sizes {
    /// The sizes at `scale` (1.0: 100,000 tasks, 50,000 context sets over 1,000 keys of 1 KiB,
    /// 200,000 gets, 10,000 dependencies, 100,000 events; 16 agents, 8 workers and 4 readers at
    /// every scale). Every count is at least 1.
    #[must_use]
    pub fn at(scale: f64) -> Sizes {
        let n = |full: f64| ((full * scale).round() as u64).max(1);
        Sizes {
            agents: 16,
            tasks: n(100_000.0),
            workers: 8,
            context_sets: n(50_000.0),
            context_keys: n(1_000.0),
            context_gets: n(200_000.0),
            dependencies: n(10_000.0),
            events: n(100_000.0),
            readers: 4,
        }
    }
}

/// An agent to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// Its id.
    pub id: String,
    /// Its capabilities.
    pub capabilities: Vec<String>,
}

/// A task to create.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// Its id (the same in every system).
    pub id: String,
    /// Its name.
    pub name: String,
    /// 0 (low) to 3 (critical); claims take the highest first, then the oldest.
    pub priority: u8,
    /// Capabilities a worker needs to claim it.
    pub required: Vec<String>,
    /// About 200 bytes of JSON.
    pub metadata: Value,
}

/// The two claim phases, each with tasks of its own: worker processes, and concurrent workers in
/// one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claims {
    /// Worker processes (`task-NNNNNNN`).
    Processes,
    /// Concurrent workers in one process (`solo-NNNNNNN`).
    InProcess,
}

impl Claims {
    fn prefix(self) -> &'static str {
        match self {
            Claims::Processes => "task-",
            Claims::InProcess => "solo-",
        }
    }
}

/// A dependency of the DAG: `consumer` needs `provider` (indexes of DAG tasks, provider first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Index of the providing DAG task.
    pub provider: u64,
    /// Index of the consuming DAG task (always greater than the provider's).
    pub consumer: u64,
}

/// The workload at one scale and seed.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// The seed every item is derived from.
    pub seed: u64,
    /// How many of each.
    pub sizes: Sizes,
}

/// splitmix64: a well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Text of `len` letters drawn from `h`.
fn filler(mut h: u64, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() < len {
        h = mix(h);
        s.push(char::from(b'a' + (h % 26) as u8));
    }
    s
}

impl Workload {
    /// A random value for item `index` of stream `stream`.
    fn hash(&self, stream: u64, index: u64) -> u64 {
        mix(mix(self.seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F)) ^ index)
    }

    /// Agent `i`: `agent-ii`, with two adjacent capabilities of [`CAPABILITIES`].
    #[must_use]
    pub fn agent(&self, i: u64) -> AgentSpec {
        let at = |k: u64| CAPABILITIES[((i + k) % 4) as usize].to_owned();
        AgentSpec { id: format!("agent-{i:02}"), capabilities: vec![at(0), at(1)] }
    }

    /// The agent acting for operation `i` of a single-caller phase (round robin).
    #[must_use]
    pub fn actor(&self, i: u64) -> String {
        format!("agent-{:02}", i % self.sizes.agents)
    }

    /// Task `i` of the claim phase of the worker processes. Its requirements are always met by some worker: none (40%),
    /// one capability (40%) or two adjacent ones (20%).
    #[must_use]
    pub fn task(&self, i: u64) -> TaskSpec {
        self.claim_task(Claims::Processes, i)
    }

    /// The id of task `i` of the claim phase `claims`.
    #[must_use]
    pub fn claim_task_id(&self, claims: Claims, i: u64) -> String {
        format!("{}{i:07}", claims.prefix())
    }

    /// The index of `claims`'s task `id`, if it is one.
    #[must_use]
    pub fn claim_task_index(&self, claims: Claims, id: &str) -> Option<u64> {
        id.strip_prefix(claims.prefix())?.parse().ok().filter(|i| *i < self.sizes.tasks)
    }

    /// Task `i` of the claim phase `claims` (the same definition in both phases, another id).
    #[must_use]
    pub fn claim_task(&self, claims: Claims, i: u64) -> TaskSpec {
        let h = self.hash(1, i);
        let first = (h >> 8) % 4;
        let required: Vec<String> = match h % 10 {
            0..=3 => vec![],
            4..=7 => vec![CAPABILITIES[first as usize].to_owned()],
            _ => vec![
                CAPABILITIES[first as usize].to_owned(),
                CAPABILITIES[((first + 1) % 4) as usize].to_owned(),
            ],
        };
        let priority = match (h >> 16) % 10 {
            0 => 3,
            1..=2 => 2,
            3..=7 => 1,
            _ => 0,
        };
        let metadata = json!({
            "component": format!("component-{}", (h >> 24) % 50),
            "estimate_minutes": (h >> 32) % 240,
            "labels": ["bench", format!("area-{}", (h >> 40) % 8)],
            "notes": filler(h, 100),
        });
        TaskSpec {
            id: self.claim_task_id(claims, i),
            name: format!("work item {i}"),
            priority,
            required,
            metadata,
        }
    }

    /// The id of DAG task `j`.
    #[must_use]
    pub fn dag_task_id(&self, j: u64) -> String {
        format!("dag-{j:06}")
    }

    /// DAG task `j` (the dependency phase's own tasks, created before it; no requirements).
    #[must_use]
    pub fn dag_task(&self, j: u64) -> TaskSpec {
        let h = self.hash(2, j);
        TaskSpec {
            id: self.dag_task_id(j),
            name: format!("plan step {j}"),
            priority: 1,
            required: vec![],
            metadata: json!({"step": j, "notes": filler(h, 40)}),
        }
    }

    /// Dependency `i`. Consumers come in increasing order; consumer `c` needs `min(c, 4)`
    /// distinct providers among the 64 tasks before it, so the graph is acyclic and a consumer
    /// has no dependents yet when its own dependencies are registered.
    #[must_use]
    pub fn edge(&self, i: u64) -> Edge {
        // Consumers 1, 2 and 3 take 1, 2 and 3 providers (dependencies 0 to 5), then 4 each.
        let (consumer, k) = match i {
            0 => (1, 0),
            1..=2 => (2, i - 1),
            3..=5 => (3, i - 3),
            _ => (4 + (i - 6) / 4, (i - 6) % 4),
        };
        let window = consumer.min(64);
        let base = self.hash(3, consumer) % window;
        Edge { provider: consumer - 1 - (base + k) % window, consumer }
    }

    /// How many DAG tasks the dependencies connect.
    #[must_use]
    pub fn dag_tasks(&self) -> u64 {
        self.edge(self.sizes.dependencies - 1).consumer + 1
    }

    /// Context key `k`.
    #[must_use]
    pub fn key(&self, k: u64) -> String {
        format!("shared/key-{k:05}")
    }

    /// The key context set `i` sets: the first sets go to every key once, the others at random.
    #[must_use]
    pub fn context_set_key(&self, i: u64) -> u64 {
        if i < self.sizes.context_keys {
            i
        } else {
            self.hash(4, i) % self.sizes.context_keys
        }
    }

    /// Context set `i`: the key it sets and a value of 1 KiB of JSON whose `set` is `i`.
    #[must_use]
    pub fn context_set(&self, i: u64) -> (u64, Value) {
        let h = self.hash(4, i);
        let key = self.context_set_key(i);
        let head = json!({"set": i, "by": self.actor(i), "body": ""});
        let body_len = 1024usize.saturating_sub(head.to_string().len());
        (key, json!({"set": i, "by": self.actor(i), "body": filler(h, body_len)}))
    }

    /// The key context get `i` reads.
    #[must_use]
    pub fn context_get(&self, i: u64) -> u64 {
        self.hash(5, i) % self.sizes.context_keys
    }

    /// The data of application event `i` (about 100 bytes of JSON; `seq` is `i`).
    #[must_use]
    pub fn event(&self, i: u64) -> Value {
        json!({"seq": i, "step": self.hash(6, i) % 1000, "message": filler(self.hash(7, i), 60)})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(scale: f64) -> Workload {
        Workload { seed: 42, sizes: Sizes::at(scale) }
    }

    #[test]
    fn every_task_is_claimable_by_some_worker() {
        let w = workload(0.01);
        let workers: Vec<AgentSpec> = (0..w.sizes.workers).map(|i| w.agent(i)).collect();
        for i in 0..w.sizes.tasks {
            let task = w.task(i);
            assert!(
                workers.iter().any(|a| task.required.iter().all(|c| a.capabilities.contains(c))),
                "{task:?}"
            );
        }
    }

    #[test]
    fn dependencies_are_distinct_and_point_forward() {
        let w = workload(0.1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..w.sizes.dependencies {
            let e = w.edge(i);
            assert!(e.provider < e.consumer, "{e:?}");
            assert!(seen.insert((e.provider, e.consumer)), "duplicate {e:?}");
        }
        assert!(w.dag_tasks() > w.sizes.dependencies / 4);
    }

    #[test]
    fn items_depend_only_on_seed_and_index_and_have_their_sizes() {
        let (a, b) = (workload(1.0), workload(1.0));
        assert_eq!(a.task(77), b.task(77));
        assert_ne!(a.task(77), a.task(78));
        let metadata = a.task(5).metadata.to_string().len();
        assert!((150..=260).contains(&metadata), "{metadata}");
        let (key, value) = a.context_set(9);
        assert!(key < a.sizes.context_keys);
        assert_eq!(value.to_string().len(), 1024);
        assert_eq!(Sizes::at(1.0).tasks, 100_000);
        assert_eq!(Sizes::at(0.00001).context_keys, 1);
    }
}
