//! The recovery journal (`recovery.journal` in the log directory): one JSON object per line for
//! every repair a process made to the segment files, so that what was cut outlives the process
//! that cut it (log-format.md, "Recovery journal").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::io;
use super::recovery::TornTailReport;
use crate::error::{Error, Result};
use crate::types::{Lsn, Timestamp};

/// File name of the recovery journal inside the log directory.
pub use crate::fs::names::JOURNAL_FILE;

/// One repair, as a line of the recovery journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When the repair was made: microseconds since the Unix epoch.
    pub time_us: i64,
    /// The same time as RFC 3339 text (UTC), for people.
    pub time: String,
    /// Process id of the repairing process.
    pub pid: u32,
    /// What was done: `"cut_torn_tail"` (bytes zeroed) or `"removed_partial_segment"` (a
    /// newest segment file shorter than its header, removed).
    pub action: String,
    /// Why: `"open"` (recovery when the log was opened) or `"append"` (an appender repairing
    /// the bytes of an appender that died mid-write).
    pub during: String,
    /// File name of the segment.
    pub segment: String,
    /// Byte offset where the cut starts.
    pub offset: u64,
    /// Number of bytes cut (zeroed), or the length of the removed file.
    pub bytes: u64,
    /// LSN the first cut record would have had.
    pub first_lsn: u64,
    /// LSN of the last intact record found among the cut bytes (records that reached the disk
    /// behind a hole, or a batch whose end is missing), if any.
    pub last_lsn: Option<u64>,
    /// The durable watermark recovery judged against: every record below it was acknowledged as
    /// durable and was kept.
    pub durable_lsn: u64,
}

impl JournalEntry {
    /// An entry for the cut `torn`, made now.
    pub(crate) fn cut(torn: &TornTailReport, during: &str, durable: Lsn) -> JournalEntry {
        let now = Timestamp::now();
        let action = if torn.removed_file { "removed_partial_segment" } else { "cut_torn_tail" };
        JournalEntry {
            time_us: now.0,
            time: now.to_string(),
            pid: std::process::id(),
            action: action.into(),
            during: during.into(),
            segment: torn.segment.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            offset: torn.offset,
            bytes: torn.bytes,
            first_lsn: torn.lsn.0,
            last_lsn: torn.last_intact.map(|l| l.0),
            durable_lsn: durable.0,
        }
    }
}

/// The journal's path in the log directory `dir`.
#[must_use]
pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join(JOURNAL_FILE)
}

/// Appends `entry` as one line and syncs the journal (creating it, and syncing the directory,
/// the first time). Called before the repair it describes is made.
pub(crate) fn append(dir: &Path, entry: &JournalEntry) -> Result<()> {
    let path = journal_path(dir);
    let mut line = serde_json::to_vec(entry)
        .map_err(|e| Error::Encode { reason: format!("recovery journal entry: {e}") })?;
    line.push(b'\n');
    let existed = path.exists();
    let file = crate::fs::open_or_create(&path, false)?;
    let end = io::file_len(&file, &path)?;
    crate::fs::file::write_at(&file, &path, &line, end)?;
    io::sync_data(&file, &path)?;
    if !existed {
        io::sync_dir(dir)?;
    }
    Ok(())
}

/// The last `limit` entries of the journal in `dir`, oldest first; none if there is no journal.
/// Reads only. A line that does not parse (a line torn by a crash, or written by a later
/// version) is skipped.
///
/// # Errors
/// [`Error::Io`] if the journal exists but cannot be read.
pub fn read_latest(dir: &Path, limit: usize) -> Result<Vec<JournalEntry>> {
    let path = journal_path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read", &path, e)),
    };
    // A line a failed sync or a power cut lost reads as zeros before the next line.
    let entries: Vec<JournalEntry> =
        text.lines().filter_map(|l| serde_json::from_str(l.trim_start_matches('\0')).ok()).collect();
    let skip = entries.len().saturating_sub(limit);
    Ok(entries.into_iter().skip(skip).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn torn(offset: u64) -> TornTailReport {
        TornTailReport {
            segment: PathBuf::from("/x/00000000000000000001.seg"),
            offset,
            bytes: 10,
            lsn: Lsn(4),
            last_intact: Some(Lsn(6)),
            removed_file: false,
        }
    }

    #[test]
    fn entries_are_appended_and_the_latest_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_latest(dir.path(), 5).unwrap().is_empty());
        for offset in [100, 200, 300] {
            append(dir.path(), &JournalEntry::cut(&torn(offset), "open", Lsn(4))).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(journal_path(dir.path()))
            .unwrap()
            .write_all(b"{\"torn line")
            .unwrap();
        let latest = read_latest(dir.path(), 2).unwrap();
        assert_eq!(latest.iter().map(|e| e.offset).collect::<Vec<_>>(), [200, 300]);
        let e = &latest[1];
        assert_eq!(
            (e.segment.as_str(), e.first_lsn, e.last_lsn, e.durable_lsn),
            ("00000000000000000001.seg", 4, Some(6), 4)
        );
        assert_eq!(e.action, "cut_torn_tail");
    }
}
