//! A small log written once per process (three sealed segments with their index files and a
//! newest segment), copied into the directory of every fuzz input that needs a real store around
//! the file it fuzzes.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::OnceLock;

use crate::format::{self, SEGMENT_HEADER_LEN};
use crate::log::{lock_file::LOCK_FILE, Durability, Log};
use crate::types::{Lsn, RecordKind};

/// Segment size of the template: small, so that a few dozen records fill several segments.
pub const SEGMENT_SIZE: u64 = 8192;
/// Largest payload of the template's log.
pub const MAX_RECORD: u32 = 2048;
/// Record kind of the template's records.
pub const KIND: u16 = 7;

/// The files of the template store and what it holds.
pub struct Template {
    /// Every file but the lock file (segments and index files): name and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// The lock file as the log left it (this boot's id, the published tail).
    pub lock: Vec<u8>,
    /// Every record: LSN, kind, payload.
    pub records: Vec<(u64, u16, Vec<u8>)>,
    /// Base LSNs of the segments, oldest first.
    pub segments: Vec<Lsn>,
    /// Offset of every frame in its segment: base LSN of the segment, LSN, offset.
    pub frames: Vec<(Lsn, Lsn, u64)>,
}

impl Template {
    /// Writes the template's files (not the lock file) into `dir`.
    pub fn write_to(&self, dir: &Path) {
        for (name, bytes) in &self.files {
            std::fs::write(dir.join(name), bytes).expect("write a template file");
        }
    }

    /// Records from `lsn` on (all of them for `Lsn(0)`).
    #[must_use]
    pub fn records_from(&self, lsn: u64) -> Vec<(u64, u16, Vec<u8>)> {
        self.records.iter().filter(|r| r.0 >= lsn).cloned().collect()
    }
}

/// The template, written on first use.
pub fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(build)
}

/// Opens the log in `dir` with the template's options.
pub fn open(dir: &Path, mode: crate::log::RecoveryMode) -> crate::Result<Log> {
    Log::options(dir)
        .segment_size(SEGMENT_SIZE)
        .max_record_size(MAX_RECORD)
        .durability(Durability::Buffered)
        .recovery_mode(mode)
        .open()
}

/// Every record `log` holds, from its first.
pub fn read_all(log: &Log) -> crate::Result<Vec<(u64, u16, Vec<u8>)>> {
    let mut reader = log.reader()?;
    let mut out = Vec::new();
    while let Some(r) = reader.next()? {
        out.push((r.lsn.get(), r.kind.get(), r.payload.to_vec()));
    }
    Ok(out)
}

fn build() -> Template {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = open(dir.path(), crate::log::RecoveryMode::Strict).expect("create the template log");
    let kind = RecordKind::new(KIND).expect("record kind");
    // Payloads of every length modulo 8 (so every padding), single records and batches.
    for i in 0u32..64 {
        let payload: Vec<u8> = (0..(i * 37) % 500).map(|b| ((b * 31 + i) & 0xFF) as u8).collect();
        if i % 5 == 4 {
            log.append_batch(kind, &[payload.as_slice(), b"second", b""]).expect("append a batch");
        } else {
            log.append(kind, &payload).expect("append");
        }
    }
    // Reading every sealed segment to its end saves its index file.
    let records = read_all(&log).expect("read the template");
    drop(log);
    let mut files = Vec::new();
    let mut segments = Vec::new();
    let mut frames = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list the template")
        .map(|e| e.expect("list the template").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(dir.path().join(&name)).expect("read a template file");
        if let Some(base) = format::parse_segment_file_name(&name) {
            segments.push(base);
            let mut offset = SEGMENT_HEADER_LEN;
            let mut lsn = base;
            while let format::Decoded::Frame(f) =
                format::decode_frame(bytes.get(offset..).unwrap_or_default(), lsn, MAX_RECORD)
            {
                frames.push((base, lsn, offset as u64));
                offset += f.len;
                lsn = lsn.next();
            }
        }
        if name != LOCK_FILE {
            files.push((name, bytes));
        }
    }
    let lock = std::fs::read(dir.path().join(LOCK_FILE)).expect("read the template's lock file");
    Template { files, lock, records, segments, frames }
}
