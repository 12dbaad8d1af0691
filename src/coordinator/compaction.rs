//! Compaction: removing the log segments that the kept snapshots cover and every durable cursor
//! has passed (log-format.md, "Compaction").

use std::path::PathBuf;

use super::Coordinator;
use crate::error::{Error, Result};
use crate::model::{Recorded, Supersession, EVENT_RECORD_KIND};
use crate::snapshot;
use crate::types::{Lsn, Timestamp};

/// How to compact.
#[derive(Debug, Clone, Default)]
pub struct CompactOptions {
    /// Remove segments even if a durable cursor has not passed them; that cursor's owner then
    /// gets [`Error::Compacted`] and resumes from the state and a later position.
    pub force: bool,
    /// Move removed segments here (same filesystem) instead of deleting them, for audits.
    pub archive: Option<PathBuf>,
    /// Keyed compaction: before removing segments, keep the records nothing later superseded
    /// (the latest record of every context key, the creation and final record of every task, ...:
    /// [`Supersession`]) in the compacted-records file, where [`Coordinator::history`] and
    /// `maos-coord log dump` still find them.
    pub keyed: bool,
    /// Keyed compaction only: application events ([`Event::Custom`](crate::model::Event::Custom))
    /// recorded before this time are dropped too. Nothing supersedes them, so without a bound
    /// keyed compaction keeps every one; `None` (the default) keeps them all.
    pub keep_events_since: Option<Timestamp>,
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Records below this LSN could be removed.
    pub limit: Lsn,
    /// The oldest kept snapshot (records below it are in every kept snapshot).
    pub snapshot: Option<Lsn>,
    /// The slowest durable cursor, if one held the limit back.
    pub held_back_by: Option<HeldBack>,
    /// Files removed or archived.
    pub removed: Vec<PathBuf>,
    /// Keyed compaction only: what it examined and kept.
    pub keyed: Option<KeyedCounts>,
}

/// A durable cursor that held compaction back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The cursor file.
    pub cursor: PathBuf,
    /// Its position: the limit compaction stopped at.
    pub position: Lsn,
}

/// What a keyed compaction examined and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyedCounts {
    /// Records examined: those of the old compacted-records file and of the removed segments.
    pub examined: u64,
    /// Records the compacted-records file now holds.
    pub kept: u64,
}

impl Coordinator {
    /// Removes the sealed segments wholly below the oldest kept snapshot (so that falling back to
    /// an older snapshot stays possible) and, unless `force`, below every durable cursor. With
    /// `keyed`, the records of those segments that nothing later superseded are kept first. The
    /// state is unchanged either way: it comes from the snapshots and the log after them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `keep_events_since` without `keyed`; [`Error::Io`] if the snapshot or
    /// cursor directory cannot be read, [`Error::CorruptCursor`] for a damaged cursor file; removing segments
    /// fails as [`Log::remove_segments_before`](crate::Log::remove_segments_before) does, a keyed compaction
    /// as [`Log::compact_keyed`](crate::Log::compact_keyed) and
    /// [`Log::audit_reader`](crate::Log::audit_reader) do.
    pub fn compact(&self, opts: &CompactOptions) -> Result<CompactionReport> {
        let snapshot = self.oldest_valid_snapshot()?;
        let Some(covered) = snapshot else {
            return Ok(CompactionReport {
                limit: Lsn::FIRST,
                snapshot,
                held_back_by: None,
                removed: Vec::new(),
                keyed: None,
            });
        };
        let slowest = self.slowest_cursor()?;
        let mut limit = covered;
        let mut held_back_by = None;
        if let Some((path, position)) = slowest.filter(|(_, p)| *p < covered && !opts.force) {
            limit = position;
            held_back_by = Some(HeldBack { cursor: path, position });
        }
        if opts.keep_events_since.is_some() && !opts.keyed {
            return Err(Error::InvalidArgument {
                name: "keep_events_since",
                reason: "applies to keyed compaction only".into(),
            });
        }
        self.sync_what_compaction_relies_on()?;
        let archive = opts.archive.as_deref();
        if !opts.keyed {
            let removed = self.log.remove_segments_before(limit, archive)?;
            return Ok(CompactionReport { limit, snapshot, held_back_by, removed, keyed: None });
        }
        let supersession = self.supersession()?;
        let done = self.log.compact_keyed(limit, archive, |record| {
            if record.kind.get() != EVENT_RECORD_KIND {
                return Ok(true); // never drop what this layer does not understand
            }
            if Recorded::is_custom(record.payload) {
                return Ok(opts.keep_events_since.is_none_or(|since| record.timestamp >= since));
            }
            // A record that does not decode (a tombstone skips it) is kept, bytes and all.
            Ok(Recorded::decode(record.lsn, record.payload)
                .map_or(true, |recorded| supersession.keeps(record.lsn, &recorded.event)))
        })?;
        let keyed = Some(KeyedCounts { examined: done.examined, kept: done.kept });
        Ok(CompactionReport { limit, snapshot, held_back_by, removed: done.removed, keyed })
    }

    /// The latest definition and change of every entity in everything the store holds.
    fn supersession(&self) -> Result<Supersession> {
        let mut supersession = Supersession::new();
        let mut reader = self.log.audit_reader()?;
        while let Some(record) = reader.next()? {
            if record.kind.get() == EVENT_RECORD_KIND && !Recorded::is_custom(record.payload) {
                // One that does not decode supersedes nothing (a tombstone skips it, or the
                // store would not have opened).
                if let Ok(recorded) = Recorded::decode(record.lsn, record.payload) {
                    supersession.note(record.lsn, &recorded.event);
                }
            }
        }
        Ok(supersession)
    }

    /// Syncs the snapshot and cursor directories, so that the snapshot and the cursor positions
    /// compaction chose by are on the disk before the records they replace go: a writer whose
    /// directory sync failed left its file in place under a name a power cut may take back,
    /// with the records before it gone.
    fn sync_what_compaction_relies_on(&self) -> Result<()> {
        crate::fs::sync_dir(self.snapshots.store.dir())?;
        let cursors = crate::subscription::cursor_dir(&self.store_dir());
        if cursors.is_dir() {
            crate::fs::sync_dir(&cursors)?;
        }
        Ok(())
    }

    fn oldest_valid_snapshot(&self) -> Result<Option<Lsn>> {
        let mut oldest = None;
        for (lsn, path) in self.snapshots.store.list()? {
            let valid = snapshot::read_file(&path).is_ok();
            if valid && lsn <= self.log.next_lsn() {
                oldest = Some(lsn);
            }
        }
        Ok(oldest)
    }

    fn slowest_cursor(&self) -> Result<Option<(PathBuf, Lsn)>> {
        let dir = crate::subscription::cursor_dir(&self.store_dir());
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
            let Some(cursor) = crate::subscription::read_cursor(&path)? else {
                continue; // removed since the directory was listed
            };
            let position = cursor.position;
            if slowest.as_ref().is_none_or(|(_, p)| position < *p) {
                slowest = Some((path, position));
            }
        }
        Ok(slowest)
    }
}
