//! The coordinator's entry points to the subscription layer ([`crate::subscription`]):
//! subscriptions, durable subscriptions and their cursors, made once the subscribing agent is
//! known to be registered and active; the coordinator as their [`Source`] (records decoded
//! through its tombstone skips, the time its commands decide with); and context watches, which
//! read the context projection for each update delivered.

use std::sync::Arc;

use super::context::not_visible;
use super::repair::Undecoded;
use super::{require_agent, Coordinator};
use crate::error::Result;
use crate::model::{AgentId, ContextEntry, ContextKey, Event, EventFilter, Recorded, Withheld};
use crate::projection::entry_of;
use crate::subscription::{self, Decoded, DurableOptions, DurableSubscription, Source, Subscription};
use crate::types::{Lsn, Timestamp};

impl Source for Coordinator {
    fn decode(&self, lsn: Lsn, payload: &[u8]) -> Result<Decoded> {
        match self.skips.decode(&*self.log, lsn, payload) {
            Ok(Some(recorded)) => Ok(Decoded::Event(recorded)),
            Ok(None) => Ok(Decoded::Skipped),
            Err(Undecoded::Unskipped { reason, .. }) => Ok(Decoded::Undecodable(reason)),
            Err(Undecoded::Failed(e)) => Err(e),
        }
    }

    fn now(&self) -> Result<Timestamp> {
        self.read_at(|_, now| now)
    }
}

/// Every later update of one context key, in order.
pub struct ContextWatcher {
    subscription: Subscription,
    coordinator: Coordinator,
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
            let life = self.coordinator.fresh(|s| {
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
    /// it may not read are withheld:
    /// [`Delivery::withheld`](crate::subscription::Delivery::withheld)).
    ///
    /// # Errors
    /// As [`Coordinator::subscribe_from`].
    pub fn subscribe(&self, agent: &AgentId, filter: EventFilter) -> Result<Subscription> {
        self.subscribe_from(agent, filter, self.log.next_lsn())
    }

    /// Events matching `filter` from `lsn` on, as `agent` may see them (context values it may
    /// not read are withheld:
    /// [`Delivery::withheld`](crate::subscription::Delivery::withheld)).
    ///
    /// # Errors
    /// [`Error::UnknownAgent`](crate::Error::UnknownAgent) unless `agent` is registered and active; those of
    /// every [query](Coordinator#errors); positioning at `lsn` fails as
    /// [`Log::reader_from`](crate::Log::reader_from) does.
    pub fn subscribe_from(&self, agent: &AgentId, filter: EventFilter, lsn: Lsn) -> Result<Subscription> {
        self.fresh(|s| require_agent(s, agent))??;
        Subscription::new(&self.log, Arc::new(self.clone()), agent, filter, lsn)
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
                .fresh(|s| s.context.at_version(key, v.max(1)).map(|v| v.lsn))?
                .unwrap_or(self.log.next_lsn()),
            None => self.log.next_lsn(),
        };
        let filter = EventFilter::all().types(["ContextUpdated", "ContextDeleted"]);
        Ok(ContextWatcher {
            subscription: self.subscribe_from(reader, filter, start)?,
            coordinator: self.clone(),
            key: key.clone(),
            reader: reader.clone(),
        })
    }

    /// A durable subscription of `agent` named `name` with default [`DurableOptions`]: see
    /// [`Coordinator::subscribe_durable_with`].
    ///
    /// # Errors
    /// As [`Coordinator::subscribe_durable_with`].
    pub fn subscribe_durable(
        &self,
        agent: &AgentId,
        name: &str,
        filter: EventFilter,
    ) -> Result<DurableSubscription> {
        self.subscribe_durable_with(agent, name, filter, DurableOptions::default())
    }

    /// A durable subscription of `agent` named `name`: it resumes from its cursor file and
    /// delivers the events matching `filter` from there on. A subscription without a cursor
    /// file is new: the file is created at once, at the log's first LSN, so compaction keeps
    /// everything it has not processed.
    ///
    /// # Errors
    /// [`Error::Compacted`](crate::Error::Compacted) if the cursor's position was compacted
    /// away (by a forced compaction; [`Coordinator::reset_cursor`] moves it on),
    /// [`Error::CorruptCursor`](crate::Error::CorruptCursor) for a damaged cursor file,
    /// [`Error::UnknownAgent`](crate::Error::UnknownAgent) unless `agent` is registered and
    /// active, [`Error::InvalidName`](crate::Error::InvalidName) for an invalid name;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for `max_deliveries` of 0, or
    /// an agent id and name longer than [`MAX_CURSOR_NAMES`](super::MAX_CURSOR_NAMES) bytes
    /// together (they name the cursor file, hex-encoded, within the 255-byte limit of file
    /// names). [`Error::Io`](crate::Error::Io) if the cursor file cannot be read or created;
    /// those of every [query](Coordinator#errors); positioning the subscription fails as
    /// [`Log::reader_from`](crate::Log::reader_from) does.
    pub fn subscribe_durable_with(
        &self,
        agent: &AgentId,
        name: &str,
        filter: EventFilter,
        opts: DurableOptions,
    ) -> Result<DurableSubscription> {
        DurableSubscription::check(agent, name, &opts)?;
        self.fresh(|s| require_agent(s, agent))??;
        DurableSubscription::open(&self.log, &self.blobs, agent, name, opts, move |lsn| {
            self.subscribe_from(agent, filter.clone(), lsn)
        })
    }

    /// Moves a durable subscription's cursor to `lsn`, its delivery count starting over (after a
    /// [`Error::Compacted`](crate::Error::Compacted) answer: to the log's first LSN, once the
    /// owner has re-read the state it needs).
    ///
    /// # Errors
    /// [`Error::InvalidName`](crate::Error::InvalidName) for an invalid name;
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an LSN of 0 or past the
    /// log's next; [`Error::Io`](crate::Error::Io) if the cursor directory or file cannot be
    /// created, written, synced or renamed into place.
    pub fn reset_cursor(&self, agent: &AgentId, name: &str, lsn: Lsn) -> Result<()> {
        crate::model::validate_name("subscription name", name)?;
        let next = self.log.next_lsn();
        if lsn == Lsn::new(0) || lsn > next {
            return Err(crate::Error::InvalidArgument {
                name: "lsn",
                reason: format!("a cursor resumes at an LSN from 1 to the log's next, {next}; {lsn} is not"),
            });
        }
        subscription::reset_cursor(&*self.blobs, agent, name, lsn)
    }

    /// Deletes `agent`'s durable subscription `name`: its cursor is removed (durably), so it no
    /// longer holds compaction back. A later [`Coordinator::subscribe_durable`] of that name
    /// starts anew at the log's first LSN. A process reading through the subscription meanwhile
    /// writes the cursor again at its next acknowledgement.
    ///
    /// # Errors
    /// [`Error::InvalidName`](crate::Error::InvalidName) for an invalid name;
    /// [`Error::UnknownCursor`](crate::Error::UnknownCursor) if the agent has no durable
    /// subscription of that name; [`Error::Io`](crate::Error::Io) if the cursor file cannot be
    /// removed or its directory synced.
    pub fn delete_cursor(&self, agent: &AgentId, name: &str) -> Result<()> {
        crate::model::validate_name("subscription name", name)?;
        subscription::delete_cursor(&*self.blobs, agent, name)
    }
}
