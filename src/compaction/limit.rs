//! Which prefix of the log compaction may remove: records below the oldest valid snapshot are
//! in every kept snapshot, and records below the slowest durable cursor were processed by
//! every durable subscriber. Before anything goes, the blobs this choice was made by are made
//! durable.

use std::path::PathBuf;

use crate::backend::{BlobSpace, BlobStore, LogBackend};
use crate::error::Result;
use crate::snapshot::Snapshots;
use crate::subscription::read_cursor;
use crate::types::Lsn;

/// Syncs the snapshot and cursor spaces, so that the snapshot and the cursor positions
/// compaction chose by are durable before the records they replace go: a writer whose
/// directory sync failed left its file in place under a name a power cut may take back,
/// with the records before it gone.
pub(super) fn sync_what_compaction_relies_on(blobs: &dyn BlobStore) -> Result<()> {
    blobs.sync_space(BlobSpace::Snapshots)?;
    blobs.sync_space(BlobSpace::Cursors)
}

/// The LSN of the oldest snapshot that reads back whole and is not past the log's tail.
pub(super) fn oldest_valid_snapshot(log: &dyn LogBackend, snapshots: &Snapshots) -> Result<Option<Lsn>> {
    let mut oldest = None;
    for (lsn, name) in snapshots.list()? {
        let valid = matches!(snapshots.read(&name), Some(Ok(_)));
        if valid && lsn <= log.next_lsn() {
            oldest = Some(lsn);
        }
    }
    Ok(oldest)
}

/// The cursor among `blobs` with the lowest position: where it lives, and that position.
pub(super) fn slowest_cursor(blobs: &dyn BlobStore) -> Result<Option<(PathBuf, Lsn)>> {
    let mut slowest: Option<(PathBuf, Lsn)> = None;
    for name in blobs.list(BlobSpace::Cursors)? {
        if !name.ends_with(".cursor") {
            continue;
        }
        let Some(cursor) = read_cursor(blobs, &name)? else {
            continue; // removed since it was listed
        };
        let position = cursor.position;
        if slowest.as_ref().is_none_or(|(_, p)| position < *p) {
            slowest = Some((blobs.location(BlobSpace::Cursors, &name), position));
        }
    }
    Ok(slowest)
}
