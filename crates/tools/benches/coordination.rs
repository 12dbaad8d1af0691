//! Coordination benchmarks in one process: set and get of context (a get is answered from the
//! projections in memory), and claim + complete cycles. Multi-process claim throughput is
//! `crates/tools/src/bench_coord.rs` (`maos-bench-coord`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use maos_coord::model::{AgentId, ContextKey, NewTask, Visibility};
use maos_coord::{Coordinator, Durability};
use serde_json::json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn context(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let coord = Coordinator::options(dir.path()).durability(Durability::Buffered).open().expect("open");
    let me = AgentId::new("bench").expect("id");
    let keys: Vec<ContextKey> =
        (0..1000).map(|i| ContextKey::new(format!("key-{i}")).expect("key")).collect();
    rt.block_on(async {
        coord.register_agent(&me, "bench", vec![]).await.expect("register");
        for k in &keys {
            coord.set_context(&me, k, json!({"v": 0}), Visibility::Shared).await.expect("set");
        }
    });
    let mut group = c.benchmark_group("context");
    group.throughput(Throughput::Elements(1));
    group.bench_function("get", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            coord.get_context(&me, &keys[i % keys.len()]).expect("get")
        });
    });
    group.bench_function("set_buffered", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            rt.block_on(coord.set_context(&me, &keys[i % keys.len()], json!({"v": i}), Visibility::Shared))
                .expect("set")
        });
    });
    group.finish();
}

fn claim_complete(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("claim_complete_1_process");
    group.sample_size(10).measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [("buffered", Durability::Buffered), ("sync", Durability::Sync)] {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let coord = Coordinator::options(dir.path()).durability(durability).open().expect("open");
                let me = AgentId::new("bench").expect("id");
                rt.block_on(async {
                    coord.register_agent(&me, "bench", vec![]).await.expect("register");
                    for i in 0..iters {
                        coord.create_task(&me, NewTask::new(format!("t{i}"))).await.expect("create");
                    }
                    let start = Instant::now();
                    for _ in 0..iters {
                        let task =
                            coord.claim_next_task(&me, Some(&[])).await.expect("claim").expect("a task");
                        coord.complete_task(&me, &task.id, vec![]).await.expect("complete");
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, context, claim_complete);
criterion_main!(benches);
