//! A small, one-process version of `maos-bench-compare` (`crates/tools/src/bench_compare/`), so
//! that regressions against SQLite and one JSON file per record show in criterion's history: each
//! single-caller phase of its workload (create tasks, claim + complete, context set and get, add
//! dependencies, emit and read events) on maos-coord `Buffered`, SQLite `synchronous=NORMAL` and
//! buffered JSON files, each sample on a fresh store. The durable modes and the multi-process
//! phases are the binary's. `cargo bench --bench compare` (about a minute).

// The stores and the workload are the benchmark binary's modules: this uses part of them, and
// not their unit tests (which lint checks of this target compile without running).
#![allow(dead_code, unused_imports)]

#[path = "../src/bench_compare/json_files.rs"]
mod json_files;
#[path = "../src/bench_compare/maos.rs"]
mod maos;
#[path = "../src/bench_compare/sqlite.rs"]
mod sqlite;
#[path = "../src/bench_compare/store.rs"]
mod store;
#[path = "../src/bench_compare/workload.rs"]
mod workload;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use store::{with_store, Mode, Result, Store, StoreBody, System};
use workload::{Sizes, Workload, EVENT_TYPE};

const SYSTEMS: [System; 3] = [System::MaosBuffered, System::SqliteNormal, System::JsonBuffered];

const PHASES: [&str; 7] =
    ["create", "claim_complete", "context_set", "context_get", "dep_add", "event_emit", "event_read"];

/// `iters` operations of `phase` on a fresh store, after what they need (not timed).
struct Timed {
    phase: &'static str,
    iters: u64,
}

impl StoreBody<Duration> for Timed {
    async fn run<S: Store>(self, s: &mut S) -> Result<Duration> {
        let n = self.iters;
        let mut sizes = Sizes::at(1.0);
        (sizes.tasks, sizes.context_sets, sizes.context_gets, sizes.dependencies, sizes.events) =
            (n, n, n, n, n);
        sizes.context_keys = n.clamp(1, 1000);
        let w = Workload { seed: 7, sizes };
        for i in 0..sizes.agents {
            s.register_agent(&w.agent(i)).await?;
        }
        let me = w.agent(0).id;
        let started = match self.phase {
            "create" => {
                let tasks: Vec<_> = (0..n).map(|i| w.task(i)).collect();
                let started = Instant::now();
                for task in tasks {
                    s.create_task(&me, task).await?;
                }
                started
            }
            "claim_complete" => {
                // Every task claimable by agent 0, whatever it requires.
                for i in 0..n {
                    let mut task = w.task(i);
                    task.required.clear();
                    s.create_task(&me, task).await?;
                }
                let started = Instant::now();
                // One operation per unit of work, as the binary's workers.
                let mut next = s.claim(&me).await?;
                while let Some(task) = next {
                    next = s.complete_and_claim(&me, &task).await?;
                }
                started
            }
            "context_set" | "context_get" => {
                let sets: Vec<_> = (0..n).map(|i| w.context_set(i)).collect();
                let started = Instant::now();
                for (key, value) in sets {
                    s.set_context(&me, &w.key(key), value).await?;
                }
                if self.phase == "context_set" {
                    started
                } else {
                    let keys: Vec<_> = (0..n).map(|i| w.key(w.context_get(i))).collect();
                    let started = Instant::now();
                    for key in keys {
                        s.get_context(&me, &key).await?.ok_or("a key never set")?;
                    }
                    started
                }
            }
            "dep_add" => {
                for j in 0..w.dag_tasks() {
                    s.create_task(&me, w.dag_task(j)).await?;
                }
                let started = Instant::now();
                for i in 0..n {
                    let edge = w.edge(i);
                    s.add_dependency(&me, &w.dag_task_id(edge.provider), &w.dag_task_id(edge.consumer))
                        .await?;
                }
                started
            }
            _ => {
                let started = Instant::now();
                for i in 0..n {
                    s.emit_event(&me, EVENT_TYPE, w.event(i)).await?;
                }
                if self.phase == "event_emit" {
                    started
                } else {
                    let started = Instant::now();
                    s.read_events(&me, EVENT_TYPE, n, &mut |_| Ok(())).await?;
                    started
                }
            }
        };
        Ok(started.elapsed())
    }
}

fn compare(c: &mut Criterion) {
    for phase in PHASES {
        let mut group = c.benchmark_group(format!("compare_{phase}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        group.throughput(Throughput::Elements(1));
        for system in SYSTEMS {
            group.bench_function(BenchmarkId::from_parameter(system.name()), |b| {
                b.iter_custom(|iters| {
                    let dir = tempfile::tempdir().expect("tempdir");
                    with_store(system, dir.path(), Mode::Create, Timed { phase, iters }).expect("the phase")
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, compare);
criterion_main!(benches);
