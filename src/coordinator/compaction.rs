//! The coordinator's entry point to the compaction layer ([`crate::compaction`]): its log, its
//! snapshot files and its store's cursor directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Coordinator;
use crate::compaction::{self, CompactOptions, CompactionReport};
use crate::error::{Error, Result};

impl Coordinator {
    /// Removes the sealed segments wholly below the oldest kept snapshot (so that falling back to
    /// an older snapshot stays possible) and, unless `force`, below every durable cursor. With
    /// `keyed`, the records of those segments that nothing later superseded are kept first. The
    /// state is unchanged either way: it comes from the snapshots and the log after them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for `keep_events_since` without
    /// `keyed`; [`Error::Io`](crate::Error::Io) if the snapshot or cursor directory cannot be
    /// read, [`Error::CorruptCursor`](crate::Error::CorruptCursor) for a damaged cursor file;
    /// removing segments fails as [`Log::remove_segments_before`](crate::Log::remove_segments_before)
    /// does, a keyed compaction as [`Log::compact_keyed`](crate::Log::compact_keyed) and
    /// [`Log::audit_reader`](crate::Log::audit_reader) do.
    ///
    /// On a local store, [`CompactionReport::reclaimed_bytes`] says how many bytes the log's
    /// directory gave back.
    pub fn compact(&self, opts: &CompactOptions) -> Result<CompactionReport> {
        let before = self.local_log().map(|log| sizes(log.dir())).transpose()?;
        let mut report = compaction::compact(&*self.log, &self.snapshots.store, opts)?;
        if let (Some(before), Some(log)) = (before, self.local_log()) {
            let removed: u64 = report.removed.iter().filter_map(|p| before.get(p)).sum();
            let compacted = log.dir().join(crate::log::compacted_file::COMPACTED_FILE);
            let was = before.get(&compacted).copied().unwrap_or(0);
            let is = std::fs::metadata(&compacted).map_or(0, |m| m.len());
            report.reclaimed_bytes = Some(removed.saturating_sub(is.saturating_sub(was)));
        }
        Ok(report)
    }
}

/// The files of `dir` and their lengths.
fn sizes(dir: &Path) -> Result<HashMap<PathBuf, u64>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))?;
    let mut out = HashMap::new();
    for entry in entries.flatten() {
        if let Ok(meta) = entry.metadata() {
            out.insert(entry.path(), meta.len());
        }
    }
    Ok(out)
}
