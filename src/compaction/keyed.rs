//! Keyed compaction's filter: of the records compaction removes, the compacted-records file
//! keeps those nothing later superseded ([`Supersession`]: the latest record of every context
//! key, the creation and final record of every task, ...), application events recorded since a
//! bound, and everything this layer does not understand.

use crate::backend::LogBackend;
use crate::error::Result;
use crate::log::Record;
use crate::model::{Recorded, Supersession, EVENT_RECORD_KIND};
use crate::types::Timestamp;

/// The latest definition and change of every entity in everything the store holds.
pub(super) fn supersession(log: &dyn LogBackend) -> Result<Supersession> {
    let mut supersession = Supersession::new();
    let mut reader = log.audit_reader()?;
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

/// Whether keyed compaction keeps `record`: application events ([`Recorded::is_custom`]) only
/// if recorded at or after `keep_events_since` (all of them without a bound), other events
/// unless `supersession` says a later record superseded them.
pub(super) fn keeps(
    record: &Record<'_>,
    supersession: &Supersession,
    keep_events_since: Option<Timestamp>,
) -> bool {
    if record.kind.get() != EVENT_RECORD_KIND {
        return true; // never drop what this layer does not understand
    }
    if Recorded::is_custom(record.payload) {
        return keep_events_since.is_none_or(|since| record.timestamp >= since);
    }
    // A record that does not decode (a tombstone skips it) is kept, bytes and all.
    Recorded::decode(record.lsn, record.payload)
        .map_or(true, |recorded| supersession.keeps(record.lsn, &recorded.event))
}
