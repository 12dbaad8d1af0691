//! Which prefix of the log compaction may remove: records below the oldest valid snapshot are
//! in every kept snapshot, and records below the slowest durable cursor were processed by
//! every durable subscriber. Before anything goes, the directories of the files this choice
//! was made by are synced.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::log::Log;
use crate::snapshot::{self, Snapshots};
use crate::subscription::read_cursor;
use crate::types::Lsn;

/// Syncs the snapshot and cursor directories, so that the snapshot and the cursor positions
/// compaction chose by are on the disk before the records they replace go: a writer whose
/// directory sync failed left its file in place under a name a power cut may take back,
/// with the records before it gone.
pub(super) fn sync_what_compaction_relies_on(snapshots: &Snapshots, cursors: &Path) -> Result<()> {
    crate::fs::sync_dir(snapshots.dir())?;
    if cursors.is_dir() {
        crate::fs::sync_dir(cursors)?;
    }
    Ok(())
}

/// The LSN of the oldest snapshot that reads back whole and is not past the log's tail.
pub(super) fn oldest_valid_snapshot(log: &Log, snapshots: &Snapshots) -> Result<Option<Lsn>> {
    let mut oldest = None;
    for (lsn, path) in snapshots.list()? {
        let valid = snapshot::read_file(&path).is_ok();
        if valid && lsn <= log.next_lsn() {
            oldest = Some(lsn);
        }
    }
    Ok(oldest)
}

/// The cursor file in the directory `dir` with the lowest position, and that position.
pub(super) fn slowest_cursor(dir: &Path) -> Result<Option<(PathBuf, Lsn)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut slowest: Option<(PathBuf, Lsn)> = None;
    for entry in entries {
        let path = entry.map_err(|e| Error::io("read directory", dir, e))?.path();
        if path.extension().is_none_or(|e| e != "cursor") {
            continue;
        }
        let Some(cursor) = read_cursor(&path)? else {
            continue; // removed since the directory was listed
        };
        let position = cursor.position;
        if slowest.as_ref().is_none_or(|(_, p)| position < *p) {
            slowest = Some((path, position));
        }
    }
    Ok(slowest)
}
