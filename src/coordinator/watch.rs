//! Subscriptions: events matching a filter, and the updates of one context key, delivered in
//! LSN order from any process. A caught-up subscriber sleeps until the log wakes it (appends in
//! this process directly, other processes' through file notifications).

use std::time::Duration;

use super::context::not_visible;
use super::{require_agent, Coordinator};
use crate::error::Result;
use crate::log::LogReader;
use crate::model::{
    AgentId, ContextEntry, ContextKey, Event, EventFilter, Recorded, Withheld, EVENT_RECORD_KIND,
};
use crate::projection::entry_of;
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
    coordinator: Coordinator,
    reader: LogReader,
    filter: EventFilter,
    agent: AgentId,
}

impl Subscription {
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
        self.coordinator.log.wait_for(self.reader.position(), Duration::from_secs(3600)).await;
    }

    /// Moves the subscription to `lsn`.
    pub(super) fn seek(&mut self, lsn: Lsn) -> Result<()> {
        self.reader = self.coordinator.log.reader_from(lsn)?;
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
    /// As [`LogReader::next`]; [`Error::UndecodableRecord`](crate::Error::UndecodableRecord) for a
    /// coordination record that does not decode and that no tombstone skips (the subscription stays on it:
    /// asking again fails again); deciding whether to withhold a context value catches up as every
    /// [query](Coordinator#errors) does.
    pub fn try_next(&mut self) -> Result<Option<Delivery>> {
        while let Some(record) = self.reader.next()? {
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            let (lsn, time) = (record.lsn, record.timestamp);
            let mut recorded = match self.coordinator.skips.decode(&self.coordinator.log, lsn, record.payload)
            {
                Ok(Some(recorded)) => recorded,
                Ok(None) => continue,
                Err(e) => {
                    let error = e.at(self.reader.last_location());
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
                    let now = self.coordinator.read_at(|_, now| now)?;
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

/// Every later update of one context key, in order.
pub struct ContextWatcher {
    subscription: Subscription,
    key: ContextKey,
    reader: AgentId,
}

impl ContextWatcher {
    /// The next version of the key, waiting for it if needed: the entry as the watching agent
    /// may read it at delivery, `None` for a delete or an expired value,
    /// [`Error::NotVisible`](crate::Error::NotVisible) for a value whose visibility excludes
    /// the watcher (the rule of [`Coordinator::get_context_version`]). The entry is made from
    /// the delivered record itself, as the state made it.
    ///
    /// # Errors
    /// As [`Subscription::next`]; [`Error::UnknownAgent`](crate::Error::UnknownAgent) unless the watching
    /// agent is registered and active; [`Error::NotVisible`](crate::Error::NotVisible) for a value whose
    /// visibility excludes it.
    pub async fn next(&mut self) -> Result<(u64, Option<ContextEntry>)> {
        loop {
            let delivery = self.subscription.next().await?;
            let version = match &delivery.recorded.event {
                Event::ContextUpdated { key, version, .. } | Event::ContextDeleted { key, version }
                    if *key == self.key =>
                {
                    *version
                }
                _ => continue,
            };
            let (key, reader) = (&self.key, &self.reader);
            let life = self.subscription.coordinator.read(|s| {
                require_agent(s, reader)?;
                Ok(s.context.at_version(key, version).and_then(|v| v.created_at))
            })??;
            let Recorded { actor, event } = delivery.recorded;
            let entry = match (delivery.withheld, event) {
                (None, event) => {
                    life.and_then(|created_at| entry_of(actor, event, created_at, delivery.time))
                }
                (Some(Withheld::NotVisible), Event::ContextUpdated { visibility, .. }) => {
                    return Err(not_visible(key, reader, &visibility));
                }
                (Some(_), _) => None,
            };
            return Ok((version, entry));
        }
    }
}

impl Coordinator {
    /// Events matching `filter` appended from now on, as `agent` may see them (context values
    /// it may not read are withheld: [`Delivery::withheld`]).
    ///
    /// # Errors
    /// As [`Coordinator::subscribe_from`].
    pub fn subscribe(&self, agent: &AgentId, filter: EventFilter) -> Result<Subscription> {
        self.subscribe_from(agent, filter, self.log.next_lsn())
    }

    /// Events matching `filter` from `lsn` on, as `agent` may see them (context values it may
    /// not read are withheld: [`Delivery::withheld`]).
    ///
    /// # Errors
    /// [`Error::UnknownAgent`](crate::Error::UnknownAgent) unless `agent` is registered and active; those of
    /// every [query](Coordinator#errors); positioning at `lsn` fails as
    /// [`Log::reader_from`](crate::Log::reader_from) does.
    pub fn subscribe_from(&self, agent: &AgentId, filter: EventFilter, lsn: Lsn) -> Result<Subscription> {
        self.read(|s| require_agent(s, agent))??;
        Ok(Subscription {
            coordinator: self.clone(),
            reader: self.log.reader_from(lsn)?,
            filter,
            agent: agent.clone(),
        })
    }

    /// Every later update of `key` (or, with `from_version`, every update from that version
    /// on), as `reader` may see them.
    ///
    /// # Errors
    /// As [`Coordinator::subscribe_from`], for `reader`.
    pub fn watch_context(
        &self,
        reader: &AgentId,
        key: &ContextKey,
        from_version: Option<u64>,
    ) -> Result<ContextWatcher> {
        let start = match from_version {
            Some(v) => self
                .read(|s| s.context.at_version(key, v.max(1)).map(|v| v.lsn))?
                .unwrap_or(self.log.next_lsn()),
            None => self.log.next_lsn(),
        };
        let filter = EventFilter::all().types(["ContextUpdated", "ContextDeleted"]);
        Ok(ContextWatcher {
            subscription: self.subscribe_from(reader, filter, start)?,
            key: key.clone(),
            reader: reader.clone(),
        })
    }
}
