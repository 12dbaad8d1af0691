//! What keeping the durable watermark on disk costs a `Sync` append, measured so that a busy
//! shared disk hits every variant alike: the variants take turns, one operation each, in the same
//! run, and medians are compared.
//!
//! - `bare`: a 4 KiB `pwrite` + `fdatasync` on a file preallocated like a segment;
//! - `header page`: the same, writing 12 bytes into the file's first page after each
//!   `fdatasync` (a watermark in the segment header after every sync: the next `fdatasync` then
//!   writes that page too), the design log-format.md rejects;
//! - `log`: `Log::append` of one 4 KiB frame under `Durability::Sync`, which records the
//!   watermark in its frames.
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

fn preallocated(path: &Path) -> Result<File, Box<dyn std::error::Error>> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, 64 << 20)?;
    file.write_all_at(&[1u8; 64], 0)?;
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
    let bare = preallocated(&work.path().join("bare"))?;
    let header = preallocated(&work.path().join("header"))?;
    let log = Log::options(work.path().join("log")).durability(Durability::Sync).open()?;
    let kind = RecordKind::new(1)?;
    let block = vec![7u8; 4096];
    let payload = vec![7u8; 4096 - 32];
    let mut times: [Vec<f64>; 3] = Default::default();
    for i in 0..args.count {
        let offset = 4096 * (i as u64 + 1);
        let t = Instant::now();
        bare.write_all_at(&block, offset)?;
        bare.sync_data()?;
        times[0].push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        header.write_all_at(&block, offset)?;
        header.sync_data()?;
        header.write_all_at(&(i as u64).to_le_bytes(), 40)?;
        times[1].push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        log.append(kind, &payload)?;
        times[2].push(t.elapsed().as_secs_f64() * 1e6);
    }
    let [bare, header, log] = times.map(median);
    println!("median of {} each, taking turns:", args.count);
    println!("  bare 4 KiB pwrite + fdatasync          {bare:8.1} us");
    println!(
        "  same, header page written after sync   {header:8.1} us ({:+.1}% against bare)",
        (header / bare - 1.0) * 100.0
    );
    println!(
        "  Log::append, Sync, one 4 KiB frame     {log:8.1} us ({:+.1}% against bare)",
        (log / bare - 1.0) * 100.0
    );
    Ok(())
}
