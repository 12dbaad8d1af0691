//! Log benchmarks: append throughput under `Buffered`, `Sync` latency against a bare
//! write + fdatasync, group commit with 64 callers, and checksummed sequential scans.
//!
//! `cargo bench --bench log`; the README's table lists the medians and ratios of one run.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use maos_coord::{Durability, Log, RecordKind};

const BATCH: usize = 1000;

fn kind() -> RecordKind {
    RecordKind::new(1).expect("kind")
}

fn open(dir: &Path, durability: Durability) -> Log {
    Log::options(dir).durability(durability).open().expect("open log")
}

/// Appends under `Buffered`, in batches of 1000 records and one record at a time. A fresh log per
/// sample keeps disk use bounded.
fn append_buffered(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_buffered");
    // Short samples, each on a fresh log that is deleted afterwards: this measures the append
    // path, not how fast the disk absorbs gigabytes of dirty pages (sustained, writeback
    // throttling caps any buffered writer at the disk's bandwidth, about 0.6 GB/s here).
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for size in [64usize, 256, 4096] {
        let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; size]).collect();
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_with_input(BenchmarkId::new("batch1000", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let log = open(dir.path(), Durability::Buffered);
                let start = Instant::now();
                for _ in 0..iters {
                    log.append_batch(kind(), &payloads).expect("append");
                }
                start.elapsed()
            });
        });
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("single", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let log = open(dir.path(), Durability::Buffered);
                let start = Instant::now();
                for i in 0..iters {
                    log.append(kind(), &payloads[i as usize % BATCH]).expect("append");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// One caller under `Sync` (4 KiB frames) against a bare 4 KiB pwrite + fdatasync on a file
/// preallocated the same way (fallocate), in the same run.
fn sync_one_caller(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_one_caller");
    group.sample_size(20).measurement_time(Duration::from_secs(5));
    group.bench_function("bare_write_fdatasync_4k", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("bare");
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .expect("open");
            let len = (iters + 1) * 4096;
            rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len).expect("fallocate");
            file.sync_all().expect("sync");
            let block = vec![7u8; 4096];
            let start = Instant::now();
            for i in 0..iters {
                file.write_all_at(&block, i * 4096).expect("write");
                file.sync_data().expect("fdatasync");
            }
            start.elapsed()
        });
    });
    let payload = vec![7u8; 4096 - 32]; // one 4 KiB frame
    group.bench_function("log_append_sync_4k", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let log = open(dir.path(), Durability::Sync);
            let start = Instant::now();
            for _ in 0..iters {
                log.append(kind(), &payload).expect("append");
            }
            start.elapsed()
        });
    });
    group.finish();
}

/// Records per second under `Sync` with 1 and with 64 concurrent callers (256 B records).
fn sync_concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync_callers");
    group.sample_size(10).measurement_time(Duration::from_secs(6));
    for callers in [1usize, 64] {
        group.throughput(Throughput::Elements(callers as u64));
        group.bench_with_input(BenchmarkId::from_parameter(callers), &callers, |b, &callers| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let log = open(dir.path(), Durability::Sync);
                let barrier = Arc::new(Barrier::new(callers + 1));
                let threads: Vec<_> = (0..callers)
                    .map(|_| {
                        let (log, barrier) = (log.clone(), barrier.clone());
                        std::thread::spawn(move || {
                            let payload = [3u8; 256];
                            barrier.wait();
                            for _ in 0..iters {
                                log.append(kind(), &payload).expect("append");
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for t in threads {
                    t.join().expect("thread");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// Records per second under `Sync` with 1 and 64 concurrent async tasks (256 B records) on a
/// two-worker tokio runtime: the log's appender thread leads their group commits.
fn sync_tasks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    let mut group = c.benchmark_group("sync_tasks");
    group.sample_size(10).measurement_time(Duration::from_secs(6));
    for tasks in [1usize, 64] {
        group.throughput(Throughput::Elements(tasks as u64));
        group.bench_with_input(BenchmarkId::from_parameter(tasks), &tasks, |b, &tasks| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let log = open(dir.path(), Durability::Sync);
                runtime.block_on(async {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..tasks)
                        .map(|_| {
                            let log = log.clone();
                            tokio::spawn(async move {
                                let payload = [3u8; 256];
                                for _ in 0..iters {
                                    log.append_async(kind(), &payload).await.expect("append");
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.expect("task");
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

/// Sequential scan of 256 MiB of 256 B records, every checksum verified.
fn scan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path(), Durability::Buffered);
    let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 256]).collect();
    let records = 256 * 1024 * 1024 / (256 + 32);
    for _ in 0..records / BATCH {
        log.append_batch(kind(), &payloads).expect("append");
    }
    let bytes = (records / BATCH * BATCH * (256 + 32)) as u64;
    let mut group = c.benchmark_group("scan");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("verify_256MiB_256B_records", |b| {
        b.iter(|| {
            let mut reader = log.reader().expect("reader");
            let mut n = 0u64;
            while let Some(r) = reader.next().expect("read") {
                n += r.payload.len() as u64;
            }
            n
        });
    });
    group.finish();
}

criterion_group!(benches, append_buffered, sync_one_caller, sync_concurrent, sync_tasks, scan);
criterion_main!(benches);
