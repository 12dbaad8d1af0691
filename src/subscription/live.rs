//! Subscriptions: events matching a filter delivered in LSN order from any process. A
//! caught-up subscriber sleeps until the log wakes it (appends in this process directly, other
//! processes' through file notifications).

use std::sync::Arc;
use std::time::Duration;

use super::{Decoded, Source};
use crate::backend::{LogBackend, RecordRead};
use crate::error::{Error, Result};
use crate::model::{AgentId, Event, EventFilter, Recorded, Withheld, EVENT_RECORD_KIND};
use crate::types::{Lsn, Timestamp};

/// One delivered event.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its LSN.
    pub lsn: Lsn,
    /// When it was appended.
    pub time: Timestamp,
    /// The event and its actor.
    pub recorded: Recorded,
    /// `Some` if the event is a context update whose value the subscriber may not read at
    /// delivery ([`model::access`](crate::model::access)): its value is JSON null and its
    /// metadata empty ([`Recorded::withhold_from`]).
    pub withheld: Option<Withheld>,
    /// How many times this record has been handed out, this time included: 1 on its first
    /// delivery, and always 1 from a plain [`Subscription`]. From a
    /// [`DurableSubscription`](super::DurableSubscription) it is counted in the cursor file and
    /// survives restarts for the head (a record handed out when everything delivered before it
    /// was acknowledged); a record handed out while an earlier one is unacknowledged counts
    /// from 1 in each run (earlier runs did not count it).
    pub deliveries: u32,
}

/// Events matching a filter, in LSN order, from a starting LSN on, as the subscribing agent may
/// see them.
pub struct Subscription {
    log: Arc<dyn LogBackend>,
    source: Arc<dyn Source>,
    reader: Box<dyn RecordRead>,
    filter: EventFilter,
    agent: AgentId,
}

impl Subscription {
    /// The events of `log` matching `filter` from `lsn` on, as `agent` may see them, decoded
    /// and timed by `source`.
    ///
    /// # Errors
    /// As [`Log::reader_from`].
    pub(crate) fn new(
        log: &Arc<dyn LogBackend>,
        source: Arc<dyn Source>,
        agent: &AgentId,
        filter: EventFilter,
        lsn: Lsn,
    ) -> Result<Subscription> {
        Ok(Subscription {
            log: log.clone(),
            source,
            reader: log.reader_from(lsn)?,
            filter,
            agent: agent.clone(),
        })
    }

    /// The next matching event, waiting for one to be appended if needed.
    ///
    /// # Errors
    /// As [`Subscription::try_next`].
    pub async fn next(&mut self) -> Result<Delivery> {
        loop {
            if let Some(d) = self.try_next()? {
                return Ok(d);
            }
            self.wait().await;
        }
    }

    /// Waits until the log may hold the record at the subscription's position (returns at
    /// once if it does).
    pub(super) async fn wait(&self) {
        self.log.wait_for(self.reader.position(), Duration::from_secs(3600)).await;
    }

    /// Moves the subscription to `lsn`.
    pub(super) fn seek(&mut self, lsn: Lsn) -> Result<()> {
        self.reader = self.log.reader_from(lsn)?;
        Ok(())
    }

    /// The next matching event already in the log, if any.
    ///
    /// A context update's value is withheld ([`Delivery::withheld`]) when the subscriber may
    /// not read it at delivery, decided with the time a command run then would use. The filter
    /// is matched against the event as delivered: a metadata filter does not match a withheld
    /// update (its metadata is withheld with the value).
    ///
    /// # Errors
    /// As [`LogReader::next`](crate::LogReader::next); [`Error::UndecodableRecord`](crate::Error::UndecodableRecord) for a
    /// coordination record that does not decode and that no tombstone skips (the subscription stays on it:
    /// asking again fails again); deciding whether to withhold a context value catches up as every
    /// [query](crate::Coordinator#errors) does.
    pub fn try_next(&mut self) -> Result<Option<Delivery>> {
        while let Some(record) = self.reader.next()? {
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            // A record whose type cannot match is passed over unread, as replay passes over
            // application events: only the bytes up to its type name are looked at.
            if Recorded::type_name_of(record.payload).is_some_and(|name| !self.filter.may_match_type(name)) {
                continue;
            }
            let (lsn, time) = (record.lsn, record.timestamp);
            let decoded = match self.source.decode(lsn, record.payload) {
                Ok(Decoded::Event(recorded)) => Ok(recorded),
                Ok(Decoded::Skipped) => continue,
                Ok(Decoded::Undecodable(reason)) => {
                    let (segment, offset) = self.reader.last_location();
                    Err(Error::UndecodableRecord { lsn, segment, offset, reason })
                }
                Err(e) => Err(e),
            };
            let mut recorded = match decoded {
                Ok(recorded) => recorded,
                Err(error) => {
                    // Stay on the record: asking again fails again, never skips it.
                    self.seek(lsn)?;
                    return Err(error);
                }
            };
            // Withholding only empties metadata, so what the full event does not match, the
            // delivered one does not either.
            if !self.filter.matches(&recorded) {
                continue;
            }
            let withheld = match recorded.event {
                Event::ContextUpdated { .. } => {
                    let now = self.source.now()?;
                    recorded.withhold_from(&self.agent, now)
                }
                _ => None,
            };
            if withheld.is_some() && !self.filter.matches(&recorded) {
                continue;
            }
            return Ok(Some(Delivery { lsn, time, recorded, withheld, deliveries: 1 }));
        }
        Ok(None)
    }

    /// LSN of the next record the subscription will look at.
    #[must_use]
    pub fn position(&self) -> Lsn {
        self.reader.position()
    }
}
