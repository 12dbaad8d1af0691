//! What a `Sync` append costs against the physical floor, measured so that a busy shared disk
//! hits every variant alike: the variants take turns, one operation each, in the same run, and
//! medians are compared.
//!
//! - `overwrite`: a 4 KiB `pwrite` + `fdatasync` over an already-written block of a file whose
//!   blocks were all written and synced before (what SQLite's WAL does once it wraps): the floor;
//! - `fresh`: the same into a fresh block of a file preallocated with `fallocate` (an *unwritten*
//!   extent: each `fdatasync` also commits the extent's conversion to the journal);
//! - `header page`: `fresh`, writing 12 bytes into the file's first page after each
//!   `fdatasync` (a watermark in the segment header after every sync: the next `fdatasync` then
//!   writes that page too), the design log-format.md rejects;
//! - `log 4 KiB` / `log 256 B`: `Log::append` of one frame of 4 KiB / of a 256-byte payload under
//!   `Durability::Sync`, each in a log of its own, both starting from a new store.
//!
//! `cargo run --release --bin maos-bench-sync-cost [-- --count 3000 --dir DIR]`

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Parser;
use maos_coord::{Durability, Log, RecordKind};

#[derive(Parser)]
struct Args {
    /// Operations of each variant.
    #[arg(long, default_value_t = 3000)]
    count: usize,
    /// Directory to work in (a temporary directory inside it); default the current directory.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// A file of `len` bytes preallocated like a segment (unwritten extents).
fn preallocated(path: &Path, len: u64) -> Result<File, Box<dyn std::error::Error>> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len)?;
    file.write_all_at(&[1u8; 64], 0)?;
    file.sync_all()?;
    Ok(file)
}

/// A file of `len` bytes whose blocks were all written and synced.
fn written(path: &Path, len: u64) -> Result<File, Box<dyn std::error::Error>> {
    let file = preallocated(path, len)?;
    let chunk = vec![3u8; 1 << 20];
    let mut at = 0;
    while at < len {
        file.write_all_at(&chunk, at)?;
        at += chunk.len() as u64;
    }
    file.sync_all()?;
    Ok(file)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let work = tempfile::tempdir_in(&args.dir)?;
    let len = (4096 * (args.count as u64 + 2)).next_multiple_of(1 << 20);
    let overwrite = written(&work.path().join("overwrite"), len)?;
    let fresh = preallocated(&work.path().join("fresh"), len)?;
    let header = preallocated(&work.path().join("header"), len)?;
    let log4k = Log::options(work.path().join("log-4k")).durability(Durability::Sync).open()?;
    let log256 = Log::options(work.path().join("log-256")).durability(Durability::Sync).open()?;
    let kind = RecordKind::new(1)?;
    let block = vec![7u8; 4096];
    let payload4k = vec![7u8; 4096 - 32];
    let payload256 = vec![7u8; 256];
    let mut times: [Vec<f64>; 5] = Default::default();
    let mut timed = |slot: usize, op: &mut dyn FnMut() -> Result<(), Box<dyn std::error::Error>>| {
        let t = Instant::now();
        let r = op();
        if let Some(v) = times.get_mut(slot) {
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
        r
    };
    for i in 0..args.count {
        let offset = 4096 * (i as u64 + 1);
        timed(0, &mut || {
            overwrite.write_all_at(&block, offset)?;
            Ok(overwrite.sync_data()?)
        })?;
        timed(1, &mut || {
            fresh.write_all_at(&block, offset)?;
            Ok(fresh.sync_data()?)
        })?;
        timed(2, &mut || {
            header.write_all_at(&block, offset)?;
            header.sync_data()?;
            Ok(header.write_all_at(&(i as u64).to_le_bytes(), 40)?)
        })?;
        timed(3, &mut || Ok(log4k.append(kind, &payload4k).map(|_| ())?))?;
        timed(4, &mut || Ok(log256.append(kind, &payload256).map(|_| ())?))?;
    }
    let [overwrite, fresh, header, log4k, log256] = times.map(median);
    let against = |v: f64| format!("{:5.2}x overwrite, {:5.2}x fresh", v / overwrite, v / fresh);
    println!("median of {} each, taking turns:", args.count);
    println!("  4 KiB pwrite + fdatasync, overwriting written blocks  {overwrite:8.1} us");
    println!("  4 KiB pwrite + fdatasync, fresh fallocated blocks     {fresh:8.1} us ({})", against(fresh));
    println!("  same, header page written after sync                  {header:8.1} us ({})", against(header));
    println!("  Log::append, Sync, one 4 KiB frame                    {log4k:8.1} us ({})", against(log4k));
    println!("  Log::append, Sync, one 256 B record                   {log256:8.1} us ({})", against(log256));
    Ok(())
}
