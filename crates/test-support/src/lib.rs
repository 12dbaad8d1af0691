//! Helpers shared by the integration tests of the workspace's crates (the library's, the command
//! line's and the tools'): a dev-dependency only, never published.

pub mod graph;
pub mod store;
pub mod workload;

use std::path::{Path, PathBuf};

use maos_coord::{Durability, Log, LogOptions, RecordKind};

pub const KIND: u16 = 7;

pub fn kind() -> RecordKind {
    RecordKind::new(KIND).unwrap()
}

/// Small segments, so that a few hundred records span several of them.
pub fn small(dir: &Path) -> LogOptions {
    Log::options(dir).segment_size(8192).max_record_size(1024).durability(Durability::Buffered)
}

pub fn payload(i: u64) -> Vec<u8> {
    let len = (i * 37 % 200) as usize;
    let mut p = format!("record-{i}-").into_bytes();
    p.extend((0..len).map(|j| (i as usize + j) as u8));
    p
}

/// Every record of the log as (lsn, payload).
pub fn read_all(log: &Log) -> Vec<(u64, Vec<u8>)> {
    let mut reader = log.reader().unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next().unwrap() {
        out.push((r.lsn.get(), r.payload.to_vec()));
    }
    out
}

pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Forgets the published tail, as a reboot of the machine would: the next open recovers from
/// the segment files alone. Only valid while no process has the log open.
pub fn forget_tail(dir: &Path) {
    std::fs::remove_file(dir.join("log.lock")).unwrap();
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
