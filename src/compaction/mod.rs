//! Compaction: removing the log segments that the kept snapshots cover and every durable cursor
//! has passed (log-format.md, "Compaction").
//!
//! This layer knows which prefix of the log may go: the one below the oldest valid snapshot
//! (so that falling back to an older snapshot stays possible) and, unless forced, below the
//! slowest durable cursor; and, for keyed compaction, which records of that prefix nothing
//! later superseded ([`Supersession`](crate::model::Supersession)). It works on the log, the
//! store's snapshot files ([`Snapshots`]) and its cursor directory, whose files it reads
//! through the subscription layer. It does not know the projections, or when to compact: the
//! caller decides ([`Coordinator::compact`](crate::Coordinator::compact), `maos-coord store
//! compact`). Removing or archiving segments and writing the compacted-records file are the
//! log's (`src/log/compaction.rs`, `src/log/compacted_file.rs`).
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`CompactOptions`], [`CompactionReport`]; compacting |
//! | `limit.rs` | the limit: oldest valid snapshot, slowest durable cursor; syncing their directories |
//! | `keyed.rs` | keyed compaction's filter: which records of the removed segments are kept |

mod keyed;
mod limit;

use std::path::PathBuf;

use crate::backend::LogBackend;
use crate::error::{Error, Result};
use crate::snapshot::Snapshots;
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
    /// [`Supersession`](crate::model::Supersession)) in the compacted-records file, where
    /// [`Coordinator::history`](crate::Coordinator::history) and `maos-coord log dump` still find
    /// them.
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
    /// Bytes the log's directory gave back: those of the files removed (or archived), less
    /// what the compacted-records file grew by. `None` where the log has no files (another
    /// backend), and until the coordinator measured it.
    pub reclaimed_bytes: Option<u64>,
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

/// Compacts `log`: removes the sealed segments wholly below the oldest valid snapshot in
/// `snapshots` and, unless `force`, below every durable cursor in the directory `cursors`.
/// With `keyed`, the records of those segments that nothing later superseded are kept first.
///
/// # Errors
/// [`Error::InvalidArgument`] for `keep_events_since` without `keyed`; [`Error::Io`] if the snapshot or
/// cursor directory cannot be read, [`Error::CorruptCursor`] for a damaged cursor file; removing segments
/// fails as [`Log::remove_segments_before`] does, a keyed compaction as [`Log::compact_keyed`] and
/// [`Log::audit_reader`] do.
pub(crate) fn compact(
    log: &dyn LogBackend,
    snapshots: &Snapshots,
    opts: &CompactOptions,
) -> Result<CompactionReport> {
    let snapshot = limit::oldest_valid_snapshot(log, snapshots)?;
    let Some(covered) = snapshot else {
        return Ok(CompactionReport {
            limit: Lsn::FIRST,
            snapshot,
            held_back_by: None,
            removed: Vec::new(),
            keyed: None,
            reclaimed_bytes: None,
        });
    };
    let blobs = snapshots.blobs();
    let slowest = limit::slowest_cursor(&**blobs)?;
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
    limit::sync_what_compaction_relies_on(&**blobs)?;
    let archive = opts.archive.as_deref();
    if !opts.keyed {
        let removed = log.discard_before(limit, archive)?;
        return Ok(CompactionReport {
            limit,
            snapshot,
            held_back_by,
            removed,
            keyed: None,
            reclaimed_bytes: None,
        });
    }
    let supersession = keyed::supersession(log)?;
    let done = log.compact_keyed(limit, archive, &mut |record| {
        Ok(keyed::keeps(record, &supersession, opts.keep_events_since))
    })?;
    let keyed = Some(KeyedCounts { examined: done.examined, kept: done.kept });
    Ok(CompactionReport {
        limit,
        snapshot,
        held_back_by,
        removed: done.removed,
        keyed,
        reclaimed_bytes: None,
    })
}
