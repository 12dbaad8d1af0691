//! Crash and concurrency harness for the log.
//!
//! `append` runs one appender process that prints a line per acknowledged batch;
//! `crash` runs rounds of concurrent `append` processes under `Sync`, kills them with SIGKILL at
//! random moments and verifies the log after every round: every acknowledged record present
//! exactly once and in its writer's order, each writer's records a gap-free prefix of what it
//! tried to append, LSNs dense. Run it for an hour with e.g.
//! `cargo run --release --bin maos-log-harness -- crash --dir /tmp/crash --minutes 60`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use maos_coord::{Durability, Log, RecordKind};

#[derive(Parser)]
#[command(about = "Crash and concurrency harness for the maos-coord log")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Append `count` records tagged (writer, seq) and print `ack WRITER FIRST_SEQ LAST_SEQ LSN`
    /// after each acknowledged batch.
    Append {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        writer: u32,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        batch: u64,
        #[arg(long, value_enum, default_value = "sync")]
        durability: Mode,
        /// Abort the process in the middle of the batch after this many records were acknowledged.
        #[arg(long)]
        abort_after: Option<u64>,
        /// Abort the process at the first segment rollover, once the next segment is created
        /// and before it is published.
        #[arg(long)]
        abort_in_rollover: bool,
        /// Abort the process once this many chunks of zeros were written (zero-filling a new
        /// store's first segment or a spare segment).
        #[arg(long)]
        abort_zero_fill_after: Option<u64>,
        /// Abort the process right after this step of taking the spare as the next segment
        /// (1: header written and synced; 2: renamed into place).
        #[arg(long)]
        abort_at_spare_step: Option<u64>,
        /// Keep a spare segment (`LogOptions::prefill_segments`, off by default) and, before each
        /// batch, wait until the log's spare segment thread is idle (so that the spare is ready
        /// when a batch rolls over).
        #[arg(long)]
        wait_for_spare: bool,
    },
    /// Rounds of concurrent appenders killed at random moments, verified after each round.
    Crash {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 5)]
        rounds: u64,
        /// Keep going for this many minutes instead of a number of rounds.
        #[arg(long)]
        minutes: Option<u64>,
        #[arg(long, default_value_t = 3)]
        writers: u32,
        /// Longest time a round runs before its appenders are killed.
        #[arg(long, default_value_t = 200)]
        max_ms: u64,
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Compare-and-append `times` times: read the counter in the last record, append it plus one.
    Count {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        times: u64,
    },
    /// Check the log in `dir`: every record decodes, each writer's records are 0, 1, 2, ...
    Verify {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Buffered,
    Sync,
}

fn main() -> ExitCode {
    let result = match Args::parse().command {
        Cmd::Append {
            dir,
            writer,
            count,
            batch,
            durability,
            abort_after,
            abort_in_rollover,
            abort_zero_fill_after,
            abort_at_spare_step,
            wait_for_spare,
        } => {
            if abort_in_rollover {
                maos_coord::log::fault::abort_in_rollover();
            }
            if let Some(chunks) = abort_zero_fill_after {
                maos_coord::log::fault::abort_after_zero_chunks(chunks);
            }
            if let Some(step) = abort_at_spare_step {
                maos_coord::log::fault::abort_at_spare_step(step);
            }
            append(&dir, writer, count, batch, durability, abort_after, wait_for_spare)
        }
        Cmd::Crash { dir, rounds, minutes, writers, max_ms, seed } => {
            crash(&dir, rounds, minutes, writers, max_ms, seed)
        }
        Cmd::Count { dir, times } => count(&dir, times),
        Cmd::Verify { dir } => verify(&dir, &BTreeMap::new()).map(|s| println!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("maos-log-harness: {e}");
            ExitCode::FAILURE
        }
    }
}

const KIND: u16 = 1;

fn open(dir: &Path, mode: Mode, prefill: bool) -> Result<Log, String> {
    let durability = match mode {
        Mode::Buffered => Durability::Buffered,
        Mode::Sync => Durability::Sync,
    };
    Log::options(dir)
        .segment_size(64 * 1024)
        .max_record_size(4096)
        .durability(durability)
        .prefill_segments(prefill)
        .open()
        .map_err(|e| e.to_string())
}

fn append(
    dir: &Path,
    writer: u32,
    count: u64,
    batch: u64,
    mode: Mode,
    abort_after: Option<u64>,
    wait_for_spare: bool,
) -> Result<(), String> {
    let log = open(dir, mode, wait_for_spare)?;
    let kind = RecordKind::new(KIND).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut seq = 0;
    while seq < count {
        if abort_after.is_some_and(|n| seq >= n) {
            // Die halfway through the next batch's bytes.
            maos_coord::log::fault::abort_mid_write(48);
        }
        if wait_for_spare {
            log.wait_for_spare_segment();
        }
        let n = batch.min(count - seq);
        let payloads: Vec<Vec<u8>> = (seq..seq + n)
            .map(|s| rmp_serde::to_vec(&(writer, s)).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let appended = log.append_batch(kind, &payloads).map_err(|e| e.to_string())?;
        writeln!(out, "ack {writer} {seq} {} {}", seq + n - 1, appended.first).map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        seq += n;
    }
    Ok(())
}

fn count(dir: &Path, times: u64) -> Result<(), String> {
    let log = open(dir, Mode::Buffered, false)?;
    let kind = RecordKind::new(KIND).map_err(|e| e.to_string())?;
    for _ in 0..times {
        let reader_log = log.clone();
        log.append_with(move |tail| {
            let last = if tail > reader_log.first_lsn()? {
                let mut reader = reader_log.reader_from(maos_coord::Lsn::new(tail.get() - 1))?;
                let record = reader.next()?.ok_or(maos_coord::Error::LsnOutOfRange {
                    requested: tail,
                    first: tail,
                    last: tail,
                })?;
                u64::from_le_bytes(record.payload.try_into().unwrap_or([0; 8]))
            } else {
                0
            };
            Ok(maos_coord::log::Built { records: vec![(kind, (last + 1).to_le_bytes().to_vec())], value: () })
        })
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Reads the log and checks it against the acknowledged sequence numbers per writer.
fn verify(dir: &Path, acked: &BTreeMap<u32, u64>) -> Result<String, String> {
    let log = open(dir, Mode::Buffered, false)?;
    let mut reader = log.reader().map_err(|e| e.to_string())?;
    let mut next_seq: BTreeMap<u32, u64> = BTreeMap::new();
    let mut expected_lsn = log.first_lsn().map_err(|e| e.to_string())?.get();
    let mut total = 0u64;
    while let Some(r) = reader.next().map_err(|e| e.to_string())? {
        if r.lsn.get() != expected_lsn {
            return Err(format!("LSN {} where {expected_lsn} was expected", r.lsn));
        }
        expected_lsn += 1;
        let (writer, seq): (u32, u64) =
            rmp_serde::from_slice(r.payload).map_err(|e| format!("record {} does not decode: {e}", r.lsn))?;
        let want = next_seq.entry(writer).or_insert(0);
        if seq != *want {
            return Err(format!("record {}: writer {writer} seq {seq} where {want} was expected", r.lsn));
        }
        *want += 1;
        total += 1;
    }
    for (writer, &acked) in acked {
        let present = next_seq.get(writer).copied().unwrap_or(0);
        if present < acked {
            return Err(format!("writer {writer}: {acked} records acknowledged, only {present} present"));
        }
    }
    let report = log.recovery_report();
    Ok(format!(
        "{total} records, {} writers, next LSN {}, torn tail cut: {}",
        next_seq.len(),
        log.next_lsn(),
        report.torn.as_ref().map_or("none".into(), |t| format!("{} bytes at {}", t.bytes, t.offset))
    ))
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn crash(
    dir: &Path,
    rounds: u64,
    minutes: Option<u64>,
    writers: u32,
    max_ms: u64,
    seed: Option<u64>,
) -> Result<(), String> {
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let deadline = minutes.map(|m| Instant::now() + Duration::from_secs(m * 60));
    let mut acked: BTreeMap<u32, u64> = BTreeMap::new();
    let mut round = 0u64;
    while deadline.map_or(round < rounds, |d| Instant::now() < d) {
        let mut children = Vec::new();
        for i in 0..writers {
            let writer = (round as u32) * writers + i;
            let batch = 1 + rng.below(8);
            children.push((writer, spawn_appender(&exe, dir, writer, batch)?));
        }
        std::thread::sleep(Duration::from_millis(5 + rng.below(max_ms)));
        for (writer, (mut child, lines)) in children {
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            let acks = lines.join().map_err(|_| "reader thread panicked".to_string())?;
            acked.insert(writer, acks);
        }
        if round % 2 == 1 {
            // As after a reboot: the next open recovers from the segment files alone.
            let _ = std::fs::remove_file(dir.join("log.lock"));
        }
        let summary = verify(dir, &acked).map_err(|e| format!("round {round}: {e}"))?;
        println!("round {round}: {} acknowledged; {summary}", acked.values().sum::<u64>());
        round += 1;
    }
    println!("verified {round} rounds, {} acknowledged records", acked.values().sum::<u64>());
    Ok(())
}

type Acks = std::thread::JoinHandle<u64>;

fn spawn_appender(exe: &Path, dir: &Path, writer: u32, batch: u64) -> Result<(Child, Acks), String> {
    let mut child = Command::new(exe)
        .args(["append", "--dir"])
        .arg(dir)
        .args(["--writer", &writer.to_string(), "--count", "100000000", "--batch", &batch.to_string()])
        .args(["--durability", "sync"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let lines = std::thread::spawn(move || {
        let mut acked = 0;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let fields: Vec<&str> = line.split(' ').collect();
            if let [_, _, _, last, _] = fields.as_slice() {
                acked = last.parse::<u64>().map_or(acked, |l| l + 1);
            }
        }
        acked
    });
    Ok((child, lines))
}
