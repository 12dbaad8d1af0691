//! Audit trails: every record that matches a query (tasks, agents, context keys, types, a time
//! range), oldest first, with context values the reader may not read withheld, as subscriptions
//! withhold them.
//!
//! One pass over what the store holds, in LSN order: the records keyed compaction kept, then the
//! log. Records are tested on their bytes first ([`AuditQuery::prefilter`]), so only those that
//! may match are decoded; time bounds become an LSN range by a binary search (record times never
//! go backwards); and for each complete range of the log the audit index covers, only the records
//! it lists are read ([`crate::audit_index`]). Every record read is checked against the whole
//! query, so the answer is the same with or without the index.

use super::repair::{Skips, Undecoded};
use super::{require_agent, Coordinator};
use crate::audit_index::{chunk_start, AuditIndex, CHUNK_SPAN};
use crate::backend::{LogBackend, RecordRead};
use crate::error::Result;
use crate::log::Record;
use crate::model::{AgentId, AuditQuery, Prefilter, Recorded, Subject, Viewer, Withheld, EVENT_RECORD_KIND};
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
    /// `reader` may see them: [`Coordinator::audit`] with one criterion.
    ///
    /// # Errors
    /// As [`Coordinator::audit`].
    pub fn history(&self, reader: &AgentId, subject: &Subject) -> Result<Vec<HistoryEntry>> {
        let query = AuditQuery::of_subject(subject);
        let found = self.audit(reader, query.as_ref().unwrap_or(&AuditQuery::all()))?;
        // A name that is no valid id is carried by no record.
        Ok(if query.is_some() { found } else { Vec::new() })
    }

    /// Every record that matches `query`, oldest first (the audit trail), as `reader` may see
    /// them: a context value the reader may not read now (its visibility excludes the reader, or
    /// it expired) is withheld ([`HistoryEntry::withheld`]), the rest of its record is kept.
    /// Everything the store holds is searched: below a keyed compaction's range only the kept
    /// records remain (a finished task's creation and final record, a key's latest record); a
    /// plain compaction removes its range from the trail altogether. The audit index is used
    /// where it covers the log (it is kept up to date by the background snapshots;
    /// [`StoreHistory::update_index`](super::StoreHistory::update_index) brings it up to date).
    ///
    /// # Errors
    /// [`Error::UnknownAgent`](crate::Error::UnknownAgent) unless `reader` is registered and active; those of
    /// every [query](Coordinator#errors); reading the store fails as
    /// [`Log::audit_reader`](crate::Log::audit_reader) and
    /// [`AuditReader::next`](crate::log::AuditReader::next) do, and a coordination record that may
    /// match (it holds the names asked for), does not decode and that no tombstone skips is
    /// [`Error::UndecodableRecord`](crate::Error::UndecodableRecord).
    pub fn audit(&self, reader: &AgentId, query: &AuditQuery) -> Result<Vec<HistoryEntry>> {
        let now = self.read_at(|s, now| require_agent(s, reader).map(|()| now))??;
        let index = AuditIndex::new(self.blobs.clone());
        let viewer = Viewer::Agent(reader.clone());
        Sources { log: &*self.log, skips: &self.skips, index: Some(&index) }.audit(query, &viewer, now)
    }
}

/// What an audit reads: the log, the tombstones' skips, and the audit index if it is used.
pub(super) struct Sources<'a> {
    pub(super) log: &'a dyn LogBackend,
    pub(super) skips: &'a Skips,
    pub(super) index: Option<&'a AuditIndex>,
}

/// The records found so far, and how to test one.
struct Found<'a> {
    query: &'a AuditQuery,
    prefilter: Prefilter,
    viewer: &'a Viewer,
    now: Timestamp,
    entries: Vec<HistoryEntry>,
}

impl Found<'_> {
    /// Whether the record may match: a coordination event in the time range whose bytes hold
    /// the names asked for.
    fn may_match(&self, record: &Record<'_>) -> bool {
        record.kind.get() == EVENT_RECORD_KIND
            && self.query.in_time(record.timestamp)
            && self.prefilter.may_match(record.payload)
    }

    /// Keeps the decoded record at `lsn` if it matches, withholding what the viewer may not read.
    fn keep(&mut self, lsn: Lsn, time: Timestamp, mut recorded: Recorded) {
        if self.query.matches(&recorded, time) {
            let withheld = recorded.withhold_for(self.viewer, self.now);
            self.entries.push(HistoryEntry { lsn, time, recorded, withheld });
        }
    }
}

impl Sources<'_> {
    /// Every record matching `query`, oldest first, as `viewer` may see them at `now`.
    pub(super) fn audit(
        &self,
        query: &AuditQuery,
        viewer: &Viewer,
        now: Timestamp,
    ) -> Result<Vec<HistoryEntry>> {
        let start = self.log.audit_log_start()?;
        let tail = self.log.next_lsn();
        let mut found = Found { query, prefilter: query.prefilter(), viewer, now, entries: Vec::new() };
        self.kept(start, &mut found)?;
        let lo = match query.since {
            Some(since) => first_where(self.log, start, tail, |t| t >= since)?,
            None => start,
        };
        let hi = match query.until {
            Some(until) => first_where(self.log, lo, tail, |t| t > until)?,
            None => tail,
        };
        let mut reader = Reader::default();
        match self.index.filter(|_| query.names_something()) {
            Some(index) => self.through_index(index, lo..hi, tail, &mut reader, &mut found)?,
            None => self.scan(lo..hi, &mut reader, &mut found)?,
        }
        Ok(found.entries)
    }

    /// The records keyed compaction kept, all below `start` (where the log part begins).
    fn kept(&self, start: Lsn, found: &mut Found<'_>) -> Result<()> {
        let mut records = self.log.audit_reader()?;
        loop {
            let Some(record) = records.next()? else { return Ok(()) };
            if record.lsn >= start {
                return Ok(());
            }
            if found.may_match(&record) {
                if let Err(e) = self.take(&record, found) {
                    return Err(e.at(records.last_location()));
                }
            }
        }
    }

    /// Decodes a coordination record and keeps it if it matches (one a tombstone skips is
    /// passed over); the caller places the error of one that does not decode.
    fn take(&self, record: &Record<'_>, found: &mut Found<'_>) -> std::result::Result<(), Undecoded> {
        if let Some(recorded) = self.skips.decode(self.log, record.lsn, record.payload)? {
            found.keep(record.lsn, record.timestamp, recorded);
        }
        Ok(())
    }

    /// Reads every record of `range` of the log, decoding those that may match.
    fn scan(&self, range: std::ops::Range<Lsn>, reader: &mut Reader, found: &mut Found<'_>) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let records = reader.at(self.log, range.start)?;
        while records.position() < range.end {
            let Some(record) = records.next()? else { break };
            if found.may_match(&record) {
                if let Err(e) = self.take(&record, found) {
                    return Err(e.at(records.last_location()));
                }
            }
        }
        Ok(())
    }

    /// Reads `range` chunk by chunk: the records the index lists where it has a complete chunk,
    /// every record elsewhere (the newest records, chunks not built yet or damaged).
    fn through_index(
        &self,
        index: &AuditIndex,
        range: std::ops::Range<Lsn>,
        tail: Lsn,
        reader: &mut Reader,
        found: &mut Found<'_>,
    ) -> Result<()> {
        if range.is_empty() {
            return Ok(());
        }
        let chunks = match index.chunks() {
            Ok(chunks) => chunks,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the audit index: reading the whole log");
                return self.scan(range, reader, found);
            }
        };
        let mut chunk = chunk_start(range.start);
        while chunk < range.end {
            let end = Lsn(chunk.get() + CHUNK_SPAN);
            let part = range.start.max(chunk)..range.end.min(end);
            let listed = if end <= tail && chunks.contains(&chunk) {
                index.lookup(chunk, found.query).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot read the audit index: reading its range");
                    None
                })
            } else {
                None
            };
            match listed {
                Some(lsns) => {
                    for lsn in lsns.into_iter().filter(|l| part.contains(l)) {
                        self.read_one(lsn, reader, found)?;
                    }
                }
                None => self.scan(part, reader, found)?,
            }
            chunk = end;
        }
        Ok(())
    }

    /// Reads the record at `lsn`, which the index lists, and keeps it if it matches.
    fn read_one(&self, lsn: Lsn, reader: &mut Reader, found: &mut Found<'_>) -> Result<()> {
        let records = reader.at(self.log, lsn)?;
        while records.position() < lsn {
            if records.next()?.is_none() {
                return Ok(());
            }
        }
        let Some(record) = records.next()? else { return Ok(()) };
        if record.lsn == lsn
            && record.kind.get() == EVENT_RECORD_KIND
            && found.query.in_time(record.timestamp)
        {
            if let Err(e) = self.take(&record, found) {
                return Err(e.at(records.last_location()));
            }
        }
        Ok(())
    }
}

/// A reader of the log kept between reads: a read a little way ahead reads on rather than
/// seeking again.
#[derive(Default)]
struct Reader {
    current: Option<Box<dyn RecordRead>>,
}

/// How far ahead a read goes on reading rather than seeking: a seek scans up to 16 KiB of
/// frames from the sparse index's entry, about as many records as this.
const READ_ON: u64 = 128;

impl Reader {
    /// A reader positioned at or before `lsn`, within [`READ_ON`] records of it.
    fn at(&mut self, log: &dyn LogBackend, lsn: Lsn) -> Result<&mut Box<dyn RecordRead>> {
        let near = self.current.as_ref().is_some_and(|r| {
            let at = r.position();
            at <= lsn && lsn.get() - at.get() <= READ_ON
        });
        if !near {
            self.current = Some(log.reader_from(lsn)?);
        }
        self.current.as_mut().ok_or_else(|| crate::Error::internal("a reader was just made"))
    }
}

/// The first LSN in `[from, to)` whose record's time passes `after` (a test that, once true,
/// stays true for every later record: record times never go backwards), or `to` if none does.
/// A binary search: one seek per step.
pub(super) fn first_where(
    log: &dyn LogBackend,
    from: Lsn,
    to: Lsn,
    after: impl Fn(Timestamp) -> bool,
) -> Result<Lsn> {
    let (mut lo, mut hi) = (from.get(), to.get());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let mut reader = log.reader_from(Lsn(mid))?;
        let passes = reader.next()?.is_none_or(|r| after(r.timestamp));
        if passes {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(Lsn(lo))
}
