//! Coordination records the store cannot decode: every reader of coordination records passes
//! over those a tombstone skips, and reports the others with their place in the log; `repair`
//! finds them and records the tombstones (log-format.md, "Tombstones").
//!
//! Tombstones are looked for only when a record fails to decode (after it, up to the tail), so
//! reading a healthy log costs nothing more; what was found is remembered per coordinator.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::backend::LogBackend;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::model::{Recorded, Tombstone, COORDINATION_KINDS, EVENT_RECORD_KIND, TOMBSTONE_RECORD_KIND};
use crate::types::{Lsn, RecordKind};

/// The LSNs this process knows a tombstone skips.
#[derive(Debug, Default)]
pub(super) struct Skips {
    known: Mutex<BTreeSet<Lsn>>,
}

/// Why a coordination record was not decoded.
pub(super) enum Undecoded {
    /// It does not decode and no tombstone skips it.
    Unskipped { lsn: Lsn, reason: String },
    /// Looking for a tombstone failed.
    Failed(Error),
}

impl Undecoded {
    /// The error, placed where the reader that just returned the record found it.
    pub(super) fn at(self, location: (PathBuf, u64)) -> Error {
        match self {
            Undecoded::Unskipped { lsn, reason } => {
                let (segment, offset) = location;
                Error::UndecodableRecord { lsn, segment, offset, reason }
            }
            Undecoded::Failed(e) => e,
        }
    }
}

impl Skips {
    /// The coordination record at `lsn` decoded, or `None` if it does not decode and a
    /// tombstone skips it.
    pub(super) fn decode(
        &self,
        log: &dyn LogBackend,
        lsn: Lsn,
        payload: &[u8],
    ) -> Result<Option<Recorded>, Undecoded> {
        match Recorded::decode(lsn, payload) {
            Ok(recorded) => Ok(Some(recorded)),
            Err(Error::Decode { lsn, reason }) => {
                if crate::log::lock(&self.known).contains(&lsn) {
                    return Ok(None);
                }
                if tombstone_after(log, lsn).map_err(Undecoded::Failed)?.is_none() {
                    return Err(Undecoded::Unskipped { lsn, reason });
                }
                crate::log::lock(&self.known).insert(lsn);
                Ok(None)
            }
            Err(e) => Err(Undecoded::Failed(e)),
        }
    }
}

/// The tombstone after `lsn` (up to the tail) that skips it, if any; in the records keyed
/// compaction kept too, where the record itself may be.
fn tombstone_after(log: &dyn LogBackend, lsn: Lsn) -> Result<Option<Tombstone>> {
    let mut reader = log.audit_reader()?;
    while let Some(record) = reader.next()? {
        if record.kind.get() == TOMBSTONE_RECORD_KIND && record.lsn > lsn {
            if let Ok(t) = Tombstone::decode(record.lsn, record.payload) {
                if t.lsn == lsn {
                    return Ok(Some(t));
                }
            }
        }
    }
    Ok(None)
}

/// A coordination record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its LSN.
    pub lsn: Lsn,
    /// The segment file that holds it.
    pub segment: PathBuf,
    /// Byte offset of its frame in the segment file.
    pub offset: u64,
    /// What the decoder said.
    pub reason: String,
    /// Whether a tombstone already skips it.
    pub skipped: bool,
}

/// Every coordination record of the log in `log_dir` that does not decode, oldest first,
/// whether a tombstone skips it or not: one pass over the log, changing nothing. Works on a
/// store that [`Coordinator::open`](super::Coordinator::open) refuses because of such a record.
///
/// # Errors
/// As [`Log::reader`] and [`LogReader::next`](crate::LogReader::next): damage to the log itself is an error;
/// a record that does not decode is an answer.
pub fn find_unreadable(log: &Log) -> Result<Vec<Unreadable>> {
    let mut found = Vec::new();
    let mut skipped = BTreeSet::new();
    let mut reader = log.reader()?;
    while let Some(record) = reader.next()? {
        let lsn = record.lsn;
        let failed = match record.kind.get() {
            // Application events too: replay passes over them without decoding, but
            // subscriptions and audits decode them.
            EVENT_RECORD_KIND => Recorded::decode(lsn, record.payload).err(),
            TOMBSTONE_RECORD_KIND => {
                if let Ok(t) = Tombstone::decode(lsn, record.payload) {
                    skipped.insert(t.lsn);
                }
                None
            }
            _ => None,
        };
        if let Some(e) = failed {
            let (segment, offset) = reader.last_location();
            let reason = match e {
                Error::Decode { reason, .. } => reason,
                other => other.to_string(),
            };
            found.push(Unreadable { lsn, segment, offset, reason, skipped: false });
        }
    }
    for u in &mut found {
        u.skipped = skipped.contains(&u.lsn);
    }
    Ok(found)
}

/// Records one tombstone for each record of `unreadable` that none skips yet, in one atomic
/// batch; returns the LSNs now skipped (empty: nothing to do). The records themselves stay.
///
/// # Errors
/// [`Error::Encode`] if a tombstone does not encode; appending them fails as [`Log::append_records`] does.
pub fn skip_unreadable(log: &Log, unreadable: &[Unreadable]) -> Result<Vec<Lsn>> {
    let tombstones: Vec<(Lsn, Vec<u8>)> = unreadable
        .iter()
        .filter(|u| !u.skipped)
        .map(|u| Ok((u.lsn, Tombstone { lsn: u.lsn, reason: u.reason.clone() }.encode()?)))
        .collect::<Result<_>>()?;
    if tombstones.is_empty() {
        return Ok(Vec::new());
    }
    let kind = RecordKind::new(TOMBSTONE_RECORD_KIND)?;
    log.append_owned_records(tombstones.iter().map(|(_, payload)| (kind, payload.as_slice())))?;
    Ok(tombstones.into_iter().map(|(lsn, _)| lsn).collect())
}

/// The log of the store under project `root`, opened as a coordinator opens it (its kinds
/// reserved, the store's recorded access checked).
///
/// # Errors
/// [`Error::InsecurePermissions`] for a store others may write to; [`Error::InvalidArgument`] for an access
/// file that does not parse; [`Error::Io`] if the store cannot be looked at; opening the log fails as
/// [`LogOptions::open`](crate::LogOptions::open) does.
pub fn open_store_log(root: &Path) -> Result<Log> {
    let store = super::store_dir(root);
    let access = super::checked_access(&store, false)?;
    Log::options(store.join(crate::fs::names::LOG_DIR))
        .access(access)
        .permissions_checked()
        .reserve_kinds(COORDINATION_KINDS)
        .open()
}
