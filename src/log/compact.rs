//! Removing the oldest sealed segments (log-format.md, "Compaction"): a prefix of the log, one
//! segment at a time (unlink or rename into an archive directory, then directory sync), so that a
//! crash at any step leaves a log that opens and merely starts later.

use std::path::{Path, PathBuf};

use super::index::index_path;
use super::{io, read_lock, Shared};
use crate::error::{Error, Result};
use crate::types::Lsn;

pub(super) fn remove_segments_before(
    shared: &Shared,
    limit: Lsn,
    archive: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    shared.refresh_segments()?;
    let bases: Vec<Lsn> = read_lock(&shared.segments).keys().copied().collect();
    let newest = shared.control.tail_segment();
    if let Some(dir) = archive {
        io::create_dir_synced(dir)?;
    }
    let mut removed = Vec::new();
    for pair in bases.windows(2) {
        let [base, next] = pair else { break };
        if *next > limit || *base >= newest {
            break;
        }
        let path = shared.dir.join(super::format::segment_file_name(*base));
        for file in [index_path(&path), path.clone()] {
            match move_or_remove(&file, archive) {
                Ok(()) => removed.push(file),
                Err(e) if super::is_not_found(&e) => {} // another process removed it first
                Err(e) => return Err(e),
            }
        }
        io::sync_dir(&shared.dir)?;
        if let Some(dir) = archive {
            io::sync_dir(dir)?;
        }
    }
    shared.refresh_segments()?;
    Ok(removed)
}

fn move_or_remove(file: &Path, archive: Option<&Path>) -> Result<()> {
    match archive {
        Some(dir) => {
            let name = file.file_name().ok_or_else(|| Error::InvalidArgument {
                name: "segment",
                reason: format!("{} has no file name", file.display()),
            })?;
            std::fs::rename(file, dir.join(name)).map_err(|e| Error::io("rename", file, e))
        }
        None => std::fs::remove_file(file).map_err(|e| Error::io("remove", file, e)),
    }
}
