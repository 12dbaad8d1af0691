//! Snapshots: every projection as of one LSN, so that opening a store replays only the records
//! after it (log-format.md, "Snapshots"). Written to a temporary file, synced, renamed, directory
//! synced; the newest `keep` are kept. A snapshot that does not check out is skipped with a
//! warning, falling back to the one before it or to a full replay.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::format::{u32_at, u64_at};
use crate::projection::{State, StateImage};
use crate::types::{Lsn, Timestamp};

/// `b"MAOSSNP\0"`.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"MAOSSNP\0";
/// Version of the snapshot format.
pub const SNAPSHOT_VERSION: u32 = 1;
const HEADER_LEN: usize = 48;

/// The snapshot files of one store.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    keep: usize,
}

/// A snapshot that was skipped when loading, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSnapshot {
    /// The file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

impl Snapshots {
    /// The snapshots in `dir` (created if missing), keeping the newest `keep`.
    pub fn open(dir: &Path, keep: usize) -> Result<Snapshots> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        Ok(Snapshots { dir: dir.to_owned(), keep: keep.max(1) })
    }

    /// Snapshot files, newest (highest LSN) first.
    pub fn list(&self) -> Result<Vec<(Lsn, PathBuf)>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| Error::io("read directory", &self.dir, e))? {
            let entry = entry.map_err(|e| Error::io("read directory", &self.dir, e))?;
            let name = entry.file_name();
            let Some(digits) = name.to_str().and_then(|n| n.strip_suffix(".snap")) else { continue };
            if let Ok(lsn) = digits.parse::<u64>() {
                found.push((Lsn(lsn), entry.path()));
            }
        }
        found.sort_by_key(|(lsn, _)| std::cmp::Reverse(*lsn));
        Ok(found)
    }

    /// Writes a snapshot of `state` durably and removes all but the newest `keep`.
    pub fn write(&self, state: &StateImage) -> Result<PathBuf> {
        let bytes = encode(state)?;
        let path = self.dir.join(format!("{:020}.snap", state.next_lsn.get()));
        let tmp = self.dir.join(format!("{:020}.snap.{}.tmp", state.next_lsn.get(), std::process::id()));
        std::fs::write(&tmp, &bytes).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| Error::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &tmp, e))?;
        sync_dir(&self.dir)?;
        self.prune()?;
        Ok(path)
    }

    fn prune(&self) -> Result<()> {
        let mut removed = false;
        for (_, path) in self.list()?.into_iter().skip(self.keep) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // another process pruned it
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The newest valid snapshot whose LSN is at most `limit` (the log's next LSN), and the
    /// snapshots skipped on the way. `None` if there is none: replay from the start.
    pub fn load(&self, limit: Lsn) -> Result<(Option<State>, Vec<SkippedSnapshot>)> {
        let mut skipped = Vec::new();
        for (lsn, path) in self.list()? {
            let reason = match std::fs::read(&path) {
                Err(e) => format!("cannot read it: {e}"),
                Ok(bytes) => match decode(&bytes) {
                    Ok(image) if image.next_lsn != lsn => {
                        format!("holds LSN {} but is named {lsn}", image.next_lsn)
                    }
                    Ok(image) if image.next_lsn > limit => {
                        format!("is ahead of the log, which ends before LSN {limit}")
                    }
                    Ok(image) => return Ok((Some(State::from_image(image)), skipped)),
                    Err(reason) => reason,
                },
            };
            tracing::warn!(snapshot = %path.display(), %reason, "skipping a snapshot");
            skipped.push(SkippedSnapshot { path, reason });
        }
        Ok((None, skipped))
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// The bytes of a snapshot file.
pub fn encode(state: &StateImage) -> Result<Vec<u8>> {
    let body = rmp_serde::to_vec_named(state).map_err(|e| Error::Encode { reason: e.to_string() })?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&state.next_lsn.get().to_le_bytes());
    out.extend_from_slice(&Timestamp::now().as_micros().to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    let header_crc = crc32fast::hash(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks and decodes a snapshot file; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> std::result::Result<StateImage, String> {
    let header = bytes.get(..HEADER_LEN).ok_or_else(|| format!("only {} bytes", bytes.len()))?;
    if header.get(..8) != Some(SNAPSHOT_MAGIC.as_slice()) {
        return Err("bad magic".into());
    }
    if u32_at(header, 44) != crc32fast::hash(header.get(..44).unwrap_or_default()) {
        return Err("header checksum mismatch".into());
    }
    let version = u32_at(header, 8);
    if version != SNAPSHOT_VERSION || u32_at(header, 12) != 0 {
        return Err(format!("unsupported version {version}"));
    }
    let len = usize::try_from(u64_at(header, 32)).map_err(|_| "body length overflows".to_owned())?;
    let body = bytes.get(HEADER_LEN..).filter(|b| b.len() == len).ok_or("body length mismatch")?;
    if u32_at(header, 40) != crc32fast::hash(body) {
        return Err("body checksum mismatch".into());
    }
    let image: StateImage = rmp_serde::from_slice(body).map_err(|e| format!("body does not decode: {e}"))?;
    if image.next_lsn.get() != u64_at(header, 16) {
        return Err("header and body disagree on the LSN".into());
    }
    Ok(image)
}
