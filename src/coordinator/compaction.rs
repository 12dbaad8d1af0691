//! Compaction: removing the log segments that the kept snapshots cover and every durable cursor
//! has passed (log-format.md, "Compaction").

use std::path::PathBuf;

use super::Coordinator;
use crate::error::{Error, Result};
use crate::model::AgentId;
use crate::snapshot;
use crate::types::Lsn;

/// How to compact.
#[derive(Debug, Clone, Default)]
pub struct CompactOptions {
    /// Remove segments even if a durable cursor has not passed them; that cursor's owner then
    /// gets [`Error::Compacted`] and resumes from the state and a later position.
    pub force: bool,
    /// Move removed segments here (same filesystem) instead of deleting them, for audits.
    pub archive: Option<PathBuf>,
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Records below this LSN could be removed.
    pub limit: Lsn,
    /// The oldest kept snapshot (records below it are in every kept snapshot).
    pub snapshot: Option<Lsn>,
    /// The slowest durable cursor, if one held the limit back: (file, position).
    pub held_back_by: Option<(PathBuf, Lsn)>,
    /// Files removed or archived.
    pub removed: Vec<PathBuf>,
}

impl Coordinator {
    /// Removes the sealed segments wholly below the oldest kept snapshot (so that falling back to
    /// an older snapshot stays possible) and, unless `force`, below every durable cursor.
    pub fn compact(&self, opts: &CompactOptions) -> Result<CompactionReport> {
        let snapshot = self.oldest_valid_snapshot()?;
        let Some(covered) = snapshot else {
            return Ok(CompactionReport {
                limit: Lsn::FIRST,
                snapshot,
                held_back_by: None,
                removed: Vec::new(),
            });
        };
        let slowest = self.slowest_cursor()?;
        let mut limit = covered;
        let mut held_back_by = None;
        if let Some((path, position)) = slowest.filter(|(_, p)| *p < covered && !opts.force) {
            limit = position;
            held_back_by = Some((path, position));
        }
        let removed = self.log.remove_segments_before(limit, opts.archive.as_deref())?;
        Ok(CompactionReport { limit, snapshot, held_back_by, removed })
    }

    /// Moves a durable subscription's cursor to `lsn` (after a [`Error::Compacted`] answer: to the
    /// log's first LSN, once the owner has re-read the state it needs).
    pub fn reset_cursor(&self, agent: &AgentId, name: &str, lsn: Lsn) -> Result<()> {
        let path = super::cursor::cursor_path(&self.store_dir(), agent, name);
        super::cursor::write_cursor(&self.store_dir().join("cursors"), &path, lsn)
    }

    fn oldest_valid_snapshot(&self) -> Result<Option<Lsn>> {
        let mut oldest = None;
        for (lsn, path) in self.snapshots.store.list()? {
            let valid = std::fs::read(&path).ok().and_then(|b| snapshot::decode(&b).ok()).is_some();
            if valid && lsn <= self.log.next_lsn() {
                oldest = Some(lsn);
            }
        }
        Ok(oldest)
    }

    fn slowest_cursor(&self) -> Result<Option<(PathBuf, Lsn)>> {
        let dir = self.store_dir().join("cursors");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read directory", &dir, e)),
        };
        let mut slowest: Option<(PathBuf, Lsn)> = None;
        for entry in entries {
            let path = entry.map_err(|e| Error::io("read directory", &dir, e))?.path();
            if path.extension().is_none_or(|e| e != "cursor") {
                continue;
            }
            let position = super::cursor::read_cursor(&path)?;
            if slowest.as_ref().is_none_or(|(_, p)| position < *p) {
                slowest = Some((path, position));
            }
        }
        Ok(slowest)
    }
}
