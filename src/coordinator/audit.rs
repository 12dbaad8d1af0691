//! Audit trails through the API: every record about a task, a context key or an agent, with
//! context values the reader may not read withheld, as subscriptions withhold them.

use super::{require_agent, Coordinator};
use crate::error::Result;
use crate::model::{AgentId, Recorded, Subject, Withheld, EVENT_RECORD_KIND};
use crate::types::{Lsn, Timestamp};

/// One record of an audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// Its LSN.
    pub lsn: Lsn,
    /// When it was appended.
    pub time: Timestamp,
    /// The event and its actor.
    pub recorded: Recorded,
    /// `Some` if the event is a context update whose value the reader may not read now
    /// ([`model::access`](crate::model::access)): its value is JSON null and its metadata empty
    /// ([`Recorded::withhold_from`]).
    pub withheld: Option<Withheld>,
}

impl Coordinator {
    /// The records about a task, a context key or an agent, oldest first (the audit trail), as
    /// `reader` may see them: a context value the reader may not read now (its visibility
    /// excludes the reader, or it expired) is withheld ([`HistoryEntry::withheld`]), the rest of
    /// its record is kept. One pass over everything the store holds. Below a keyed compaction's
    /// range only the kept records remain (a finished task's creation and final record, a key's
    /// latest record); a plain compaction removes its range from the trail altogether.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`](crate::Error::UnknownAgent) unless `reader` is registered and active; those of
    /// every [query](Coordinator#errors); reading the store fails as
    /// [`Log::audit_reader`](crate::Log::audit_reader) and
    /// [`AuditReader::next`](crate::log::AuditReader::next) do, and a coordination record that does not
    /// decode and that no tombstone skips is [`Error::UndecodableRecord`](crate::Error::UndecodableRecord).
    pub fn history(&self, reader: &AgentId, subject: &Subject) -> Result<Vec<HistoryEntry>> {
        let now = self.read_at(|s, now| require_agent(s, reader).map(|()| now))??;
        let mut records = self.log.audit_reader()?;
        let mut out = Vec::new();
        while let Some(record) = records.next()? {
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            let (lsn, time) = (record.lsn, record.timestamp);
            let mut recorded = match self.skips.decode(&*self.log, lsn, record.payload) {
                Ok(Some(recorded)) => recorded,
                Ok(None) => continue,
                Err(e) => return Err(e.at(records.last_location())),
            };
            if subject.matches(&recorded) {
                let withheld = recorded.withhold_from(reader, now);
                out.push(HistoryEntry { lsn, time, recorded, withheld });
            }
        }
        Ok(out)
    }
}
