//! Subscriptions: events matching a filter, and the updates of one context key, delivered in
//! LSN order from any process. A caught-up subscriber sleeps until the log wakes it (appends in
//! this process directly, other processes' through file notifications).

use std::time::Duration;

use super::context::visible;
use super::{require_agent, Coordinator};
use crate::error::Result;
use crate::log::LogReader;
use crate::model::{AgentId, ContextEntry, ContextKey, Event, EventFilter, Recorded, EVENT_RECORD_KIND};
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
    /// How many times this record has been handed out, this time included: 1 on its first
    /// delivery, and always 1 from a plain [`Subscription`]. From a
    /// [`DurableSubscription`](super::DurableSubscription) it is counted in the cursor file and
    /// survives restarts for the head (a record handed out when everything delivered before it
    /// was acknowledged); a record handed out while an earlier one is unacknowledged counts
    /// from 1 in each run (earlier runs did not count it).
    pub deliveries: u32,
}

/// Events matching a filter, in LSN order, from a starting LSN on.
pub struct Subscription {
    coordinator: Coordinator,
    reader: LogReader,
    filter: EventFilter,
}

impl Subscription {
    /// The next matching event, waiting for one to be appended if needed.
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
    pub fn try_next(&mut self) -> Result<Option<Delivery>> {
        while let Some(record) = self.reader.next()? {
            if record.kind.get() != EVENT_RECORD_KIND {
                continue;
            }
            let recorded = Recorded::decode(record.lsn, record.payload)?;
            if self.filter.matches(&recorded) {
                let (lsn, time) = (record.lsn, record.timestamp);
                return Ok(Some(Delivery { lsn, time, recorded, deliveries: 1 }));
            }
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
    /// The next version of the key (`None` for a delete), waiting for it if needed. The entry
    /// is made from the delivered record itself, as the state made it.
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
            let entry = life.and_then(|created_at| entry_of(actor, event, created_at, delivery.time));
            if let Some(entry) = &entry {
                visible(entry, reader)?;
            }
            return Ok((version, entry));
        }
    }
}

impl Coordinator {
    /// Events matching `filter` appended from now on.
    pub fn subscribe(&self, agent: &AgentId, filter: EventFilter) -> Result<Subscription> {
        self.subscribe_from(agent, filter, self.log.next_lsn())
    }

    /// Events matching `filter` from `lsn` on.
    pub fn subscribe_from(&self, agent: &AgentId, filter: EventFilter, lsn: Lsn) -> Result<Subscription> {
        self.read(|s| require_agent(s, agent))??;
        Ok(Subscription { coordinator: self.clone(), reader: self.log.reader_from(lsn)?, filter })
    }

    /// Every later update of `key` (or, with `from_version`, every update from that version
    /// on), as `reader` may see them.
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
