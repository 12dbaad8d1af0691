//! Append latency across segment rollovers under `Buffered`: the append that fills a segment
//! seals it with an `fdatasync` of the whole segment. With writeback started every few MiB
//! (`LogOptions::writeback_every`, 2 MiB by default) little is left to sync then; without it, the
//! whole segment's dirty pages are. Both are measured in the same run, alternating, each on a
//! fresh store. `cargo run --release --bin maos-bench-rollover [-- --megabytes 512 --every-kib 0,2048]`

use std::time::Instant;

use clap::Parser;
use maos_coord::log::DEFAULT_WRITEBACK_EVERY;
use maos_coord::{Durability, Log, RecordKind};

#[derive(Parser)]
struct Args {
    /// Bytes of payload appended per run, in MiB (64 MiB segments: one rollover per 64).
    #[arg(long, default_value_t = 512)]
    megabytes: u64,
    /// Payload size of each record (one record per append).
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// Runs of each configuration.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Writeback intervals to compare, in KiB (0: off).
    #[arg(long, value_delimiter = ',', default_values_t = [0, DEFAULT_WRITEBACK_EVERY >> 10])]
    every_kib: Vec<u64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut results: Vec<(u64, Vec<f64>)> = args.every_kib.iter().map(|&kib| (kib, Vec::new())).collect();
    for _ in 0..args.rounds {
        for (kib, latencies) in results.iter_mut() {
            latencies.extend(run(&args, *kib << 10)?);
        }
    }
    println!("| writeback every | appends | p50 | p99 | p99.9 | max | over 1 ms | over 5 ms | total |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (kib, mut latencies) in results {
        let total: f64 = latencies.iter().sum();
        latencies.sort_by(f64::total_cmp);
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        let over = |limit: f64| latencies.iter().filter(|&&l| l > limit).count();
        let config = if kib == 0 { "off".to_owned() } else { format!("{kib} KiB") };
        println!(
            "| {config} | {} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} ms | {} | {} | {:.2} s |",
            latencies.len(),
            at(0.5) * 1e6,
            at(0.99) * 1e6,
            at(0.999) * 1e6,
            at(1.0) * 1e3,
            over(1e-3),
            over(5e-3),
            total
        );
    }
    println!();
    println!(
        "| writeback every | batches of 1000 x 256 B, a burst of 200 on a fresh store (median of {}) |",
        args.rounds
    );
    println!("| --- | --- |");
    for &kib in &args.every_kib {
        let mut times = (0..args.rounds).map(|_| burst(kib << 10)).collect::<Result<Vec<f64>, _>>()?;
        times.sort_by(f64::total_cmp);
        let config = if kib == 0 { "off".to_owned() } else { format!("{kib} KiB") };
        println!("| {config} | {:.1} µs per batch |", times[times.len() / 2] * 1e6);
    }
    Ok(())
}

/// Seconds per batch of a short burst of batched appends (the cost of queueing writeback,
/// without the seal it saves: 50 MB do not fill a segment).
fn burst(writeback_every: u64) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log =
        Log::options(dir.path()).durability(Durability::Buffered).writeback_every(writeback_every).open()?;
    let kind = RecordKind::new(7)?;
    let batch = vec![vec![0x5a_u8; 256]; 1000];
    let started = Instant::now();
    for _ in 0..200 {
        log.append_batch(kind, &batch)?;
    }
    Ok(started.elapsed().as_secs_f64() / 200.0)
}

/// Seconds each append took, on a fresh store.
fn run(args: &Args, writeback_every: u64) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log =
        Log::options(dir.path()).durability(Durability::Buffered).writeback_every(writeback_every).open()?;
    let kind = RecordKind::new(7)?;
    let payload = vec![0x5a; args.payload];
    let appends = args.megabytes * (1 << 20) / args.payload as u64;
    let mut latencies = Vec::with_capacity(appends as usize);
    for _ in 0..appends {
        let started = Instant::now();
        log.append(kind, &payload)?;
        latencies.push(started.elapsed().as_secs_f64());
    }
    Ok(latencies)
}
