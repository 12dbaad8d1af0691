//! The machine the run is on: CPUs, kernel, the filesystem of the work directory, what a store
//! takes on disk, and how fast one thread can `fdatasync` 4 KiB writes there.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Instant;

use crate::report::{Disk, Machine};
use crate::store::Result;

/// Bytes of every file under `dir` (allocated blocks and lengths).
///
/// # Errors
/// If the tree cannot be read.
pub fn disk(dir: &Path) -> Result<Disk> {
    let mut total = Disk::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let below = disk(&entry.path())?;
            total.allocated += below.allocated;
            total.apparent += below.apparent;
        } else {
            total.allocated += meta.blocks() * 512;
            total.apparent += meta.len();
        }
    }
    Ok(total)
}

/// The rate of single-thread 4 KiB `pwrite` + `fdatasync`, `ops` of them, in a new file under
/// `dir` preallocated with `fallocate`: first appending into its fresh (allocated, never
/// written) blocks, then overwriting the same, now written, blocks. Per second, both.
///
/// # Errors
/// If the file cannot be created, allocated, written or synced.
pub fn fdatasync_rates(dir: &Path, ops: u64) -> Result<(f64, f64)> {
    let path = dir.join("fdatasync-probe");
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
    let block = vec![0xA5u8; 4096];
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, ops * 4096)?;
    file.sync_all()?;
    let mut rates = [0.0; 2];
    for rate in &mut rates {
        let started = Instant::now();
        for i in 0..ops {
            file.write_all_at(&block, i * 4096)?;
            file.sync_data()?;
        }
        *rate = ops as f64 / started.elapsed().as_secs_f64();
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok((rates[0], rates[1]))
}

/// The filesystem type of `dir` and where it is mounted (from `/proc/self/mountinfo`: the
/// longest mount point that holds it).
fn filesystem(dir: &Path) -> String {
    let Ok(dir) = dir.canonicalize() else { return "unknown".into() };
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo") else { return "unknown".into() };
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let Some(kind) = fields.get(dash + 1) else { continue };
        let point = point.replace("\\040", " ");
        if dir.starts_with(&point) && best.as_ref().is_none_or(|(len, _)| point.len() >= *len) {
            best = Some((point.len(), format!("{kind} (mounted at {point})")));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

/// The machine, with the command line and the work directory's filesystem.
#[must_use]
pub fn machine(dir: &Path) -> Machine {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |k| k.trim().to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let command = std::env::args()
        .map(|a| if a.contains(' ') || a.is_empty() { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        kernel,
        cpu,
        filesystem: filesystem(dir),
        command,
    }
}
