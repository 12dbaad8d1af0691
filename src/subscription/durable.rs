//! Durable subscriptions: a named per-agent cursor, saved in a small checksummed file
//! (log-format.md, "Cursor files"), from which a subscription resumes after a restart. Delivery
//! is at-least-once, in LSN order, without gaps: what was delivered but not acknowledged is
//! delivered again. The cursor file exists from the moment the subscription is created, so
//! compaction never removes what a subscriber has not processed (unless forced, and then the
//! subscriber is told).

use std::collections::VecDeque;
use std::sync::Arc;

use super::cursor::{self, cursor_name, read as read_cursor, write as write_cursor, CursorState};
use super::{Delivery, Subscription};
use crate::backend::{BlobStore, LogBackend};
use crate::error::{Error, Result};
use crate::model::{encode_checked, AgentId, Event, Recorded, EVENT_RECORD_KIND};
use crate::types::{Lsn, RecordKind};

/// Default of [`DurableOptions::scan_persist_records`]: a caught-up subscriber with nothing
/// unacknowledged writes its scan position once it is this many records past its cursor.
pub const SCAN_PERSIST_RECORDS: u64 = 1024;

/// Longest agent id and subscription name of a durable subscription, together, in bytes: the
/// cursor file is named by both, hex-encoded (`2 × 105 + 8` bytes, plus 36 while it is being
/// written, stays within the 255 bytes of a file name).
pub const MAX_CURSOR_NAMES: usize = 105;

/// Options of a durable subscription
/// ([`Coordinator::subscribe_durable_with`](crate::Coordinator::subscribe_durable_with)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableOptions {
    /// The most times the head (the first unacknowledged match) is handed out. When it would be
    /// handed out once more, an [`Event::DeliveryDeadLettered`] record is appended instead, the
    /// cursor moves past the head and delivery goes on with the next match. `None` (the
    /// default): no limit. `Some(0)` is refused ([`Error::InvalidArgument`]).
    ///
    /// Only the head is counted across restarts (see [`Delivery::deliveries`]): the limit fits
    /// subscribers that acknowledge each record before they take the next one.
    pub max_deliveries: Option<u32>,
    /// When the subscription catches up (`next` is about to wait, `try_next` answers `None`)
    /// with nothing delivered unacknowledged, and it has scanned at least this many records
    /// (LSNs) past the position in its cursor file, it writes its scan position there, so that
    /// a filter that matches rarely does not hold compaction back. 0: only
    /// [`DurableSubscription::ack`] and [`DurableSubscription::ack_scanned`] write it. Default
    /// [`SCAN_PERSIST_RECORDS`].
    pub scan_persist_records: u64,
}

impl Default for DurableOptions {
    fn default() -> DurableOptions {
        DurableOptions { max_deliveries: None, scan_persist_records: SCAN_PERSIST_RECORDS }
    }
}

/// A subscription whose position survives restarts.
///
/// Its cursor file holds the position delivery resumes from (every record below it was
/// acknowledged, dead-lettered, or scanned and found not to match) and how many times the head
/// was handed out. The file is written when the subscription is created, on every
/// acknowledgement that moves the position, when the head is handed out (so that a crash while
/// processing it is counted), when a head is dead-lettered, and when the scan position is
/// persisted; each write is a temporary file, fsync, rename and directory fsync.
pub struct DurableSubscription {
    subscription: Subscription,
    log: Arc<dyn LogBackend>,
    blobs: Arc<dyn BlobStore>,
    agent: AgentId,
    name: String,
    /// The name of its cursor blob.
    cursor: String,
    opts: DurableOptions,
    /// What the cursor file holds.
    saved: CursorState,
    /// Handed out by this subscription and not acknowledged, oldest first: LSN and the
    /// deliveries number it was handed out with.
    unacked: VecDeque<(Lsn, u32)>,
}

impl DurableSubscription {
    /// The next matching event, waiting for one if needed. Before it waits it may persist the
    /// scan position ([`DurableOptions::scan_persist_records`]).
    ///
    /// # Errors
    /// As [`DurableSubscription::try_next`].
    pub async fn next(&mut self) -> Result<Delivery> {
        loop {
            if let Some(delivery) = self.try_next()? {
                return Ok(delivery);
            }
            self.subscription.wait().await;
        }
    }

    /// The next matching event already in the log, if any. When there is none, it may persist
    /// the scan position ([`DurableOptions::scan_persist_records`]).
    ///
    /// Handing out the head writes its delivery count to the cursor file first. A head already
    /// handed out [`DurableOptions::max_deliveries`] times is dead-lettered instead (an
    /// [`Event::DeliveryDeadLettered`] record is appended, then the cursor moves past it) and
    /// the next match is looked for.
    ///
    /// # Errors
    /// As [`Subscription::try_next`]; [`Error::Io`] if the cursor file cannot be written; dead-lettering a
    /// head fails as [`Log::append_records`](crate::Log::append_records) does (and [`Error::ValueTooLarge`]
    /// or [`Error::Unreadable`] for its record). The head is not handed out then: the next call looks at it
    /// again.
    pub fn try_next(&mut self) -> Result<Option<Delivery>> {
        loop {
            let Some(delivery) = self.subscription.try_next()? else {
                self.persist_scan_if_due()?;
                return Ok(None);
            };
            let lsn = delivery.lsn;
            match self.hand_out(delivery) {
                Ok(Some(delivery)) => return Ok(Some(delivery)),
                Ok(None) => {} // dead-lettered
                Err(e) => {
                    // Not handed out: the next call looks at it again (the first error tells
                    // more than one of moving back).
                    self.subscription.seek(lsn).map_err(|_| e.clone())?;
                    return Err(e);
                }
            }
        }
    }

    /// Counts a matching record as handed out, or dead-letters it (`None`).
    fn hand_out(&mut self, mut delivery: Delivery) -> Result<Option<Delivery>> {
        if !self.unacked.is_empty() {
            // Handed out while an earlier record is unacknowledged: earlier runs did not count
            // it (only the head is counted), so this run counts from 1.
            self.unacked.push_back((delivery.lsn, 1));
            return Ok(Some(delivery));
        }
        let saved = self.saved;
        let deliveries = if saved.head == delivery.lsn { saved.deliveries.saturating_add(1) } else { 1 };
        if self.opts.max_deliveries.is_some_and(|max| deliveries > max) {
            self.dead_letter(delivery.lsn, saved.deliveries)?;
            return Ok(None);
        }
        self.save(CursorState { position: saved.position, head: delivery.lsn, deliveries })?;
        self.unacked.push_back((delivery.lsn, deliveries));
        delivery.deliveries = deliveries;
        Ok(Some(delivery))
    }

    /// Records that everything up to `lsn` is processed (acknowledgements are cumulative):
    /// after a restart, delivery resumes after it. Durable when this returns. The cursor never
    /// moves back: an LSN older than already acknowledged changes nothing.
    ///
    /// When `lsn` is at or after the last record handed out, nothing delivered is left
    /// unacknowledged and the cursor moves to the scan position (past the records scanned that
    /// did not match) if that is further. Otherwise the first record handed out after `lsn` is
    /// the new head and keeps its delivery count. `lsn` must be in the log
    /// ([`Error::InvalidArgument`] otherwise).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an LSN at or past the log's next; [`Error::Io`] if the cursor file
    /// cannot be written; moving the subscription on fails as [`Log::reader_from`](crate::Log::reader_from)
    /// does.
    pub fn ack(&mut self, lsn: Lsn) -> Result<()> {
        let tail = self.log.next_lsn();
        if lsn >= tail {
            return Err(Error::InvalidArgument {
                name: "lsn",
                reason: format!("LSN {lsn} is not in the log (the next LSN is {tail})"),
            });
        }
        while self.unacked.front().is_some_and(|(delivered, _)| *delivered <= lsn) {
            self.unacked.pop_front();
        }
        let state = match self.unacked.front() {
            // The first unacknowledged record handed out is the new head, with its count.
            Some(&(head, deliveries)) => CursorState { position: lsn.next(), head, deliveries },
            None => CursorState::at(lsn.next().max(self.subscription.position())),
        };
        if state.position <= self.saved.position {
            return Ok(());
        }
        if state.position > self.subscription.position() {
            self.subscription.seek(state.position)?;
        }
        self.save(state)
    }

    /// Persists the scan position: how far the subscription has read, every record before it
    /// either acknowledged or not matching the filter. Nothing moves while a record handed out
    /// is unacknowledged (the cursor cannot pass it). Returns where delivery resumes after a
    /// restart. Records appended after the scan stay after the position: they are delivered.
    ///
    /// # Errors
    /// [`Error::Io`] if the cursor file cannot be written.
    pub fn ack_scanned(&mut self) -> Result<Lsn> {
        let scanned = self.subscription.position();
        if self.unacked.is_empty() && scanned > self.saved.position {
            self.save(CursorState::at(scanned))?;
        }
        Ok(self.saved.position)
    }

    /// Where delivery resumes after a restart.
    #[must_use]
    pub fn resume_position(&self) -> Lsn {
        self.saved.position
    }

    /// The LSN of the next record the subscription will look at (the scan position).
    #[must_use]
    pub fn scan_position(&self) -> Lsn {
        self.subscription.position()
    }

    fn persist_scan_if_due(&mut self) -> Result<()> {
        let every = self.opts.scan_persist_records;
        let scanned = self.subscription.position();
        if every > 0
            && self.unacked.is_empty()
            && scanned.get().saturating_sub(self.saved.position.get()) >= every
        {
            self.save(CursorState::at(scanned))?;
        }
        Ok(())
    }

    /// Gives up on the head at `lsn`, handed out `deliveries` times: records that, then moves
    /// the cursor past it. A crash in between dead-letters it again on the next run.
    fn dead_letter(&mut self, lsn: Lsn, deliveries: u32) -> Result<()> {
        let event = Event::DeliveryDeadLettered {
            agent: self.agent.clone(),
            subscription: self.name.clone(),
            lsn,
            deliveries,
        };
        let max = self.log.max_record_size();
        let payload = encode_checked(&Recorded { actor: self.agent.clone(), event }, max)?;
        self.log.append(RecordKind::new(EVENT_RECORD_KIND)?, &payload)?;
        tracing::warn!(agent = %self.agent, subscription = %self.name, %lsn, deliveries, "record dead-lettered");
        self.save(CursorState::at(lsn.next()))
    }

    fn save(&mut self, state: CursorState) -> Result<()> {
        write_cursor(&*self.blobs, &self.cursor, state)?;
        self.saved = state;
        Ok(())
    }
}

impl DurableSubscription {
    /// Checks the names and options of a durable subscription, before anything is read or
    /// created.
    ///
    /// # Errors
    /// [`Error::InvalidName`] for an invalid name; [`Error::InvalidArgument`] for
    /// `max_deliveries` of 0, or an agent id and name longer than [`MAX_CURSOR_NAMES`] bytes
    /// together.
    pub(crate) fn check(agent: &AgentId, name: &str, opts: &DurableOptions) -> Result<()> {
        crate::model::validate_name("subscription name", name)?;
        if agent.as_str().len() + name.len() > MAX_CURSOR_NAMES {
            return Err(Error::InvalidArgument {
                name: "subscription name",
                reason: format!(
                    "agent id {agent} and subscription name {name} are {} bytes together; a durable subscription allows at most {MAX_CURSOR_NAMES} (they name its cursor file)",
                    agent.as_str().len() + name.len()
                ),
            });
        }
        if opts.max_deliveries == Some(0) {
            return Err(Error::InvalidArgument {
                name: "max_deliveries",
                reason: "0 would hand nothing out; None means no limit".into(),
            });
        }
        Ok(())
    }

    /// `agent`'s durable subscription `name` on `log` (a handle that may append coordination
    /// records, for dead letters), its cursor among `blobs`
    /// (names and options [checked](DurableSubscription::check) already): it resumes from its
    /// cursor file, through the subscription `subscribe` makes from an LSN. A subscription
    /// without a cursor file is new: the file is created at once, at the log's first LSN.
    ///
    /// # Errors
    /// [`Error::CorruptCursor`] for a damaged cursor file; [`Error::Io`] if the cursor file
    /// cannot be read or created; [`Log::first_lsn`] and `subscribe` fail as they do (with
    /// [`Error::Compacted`] for a cursor whose position was compacted away).
    pub(crate) fn open(
        log: &Arc<dyn LogBackend>,
        blobs: &Arc<dyn BlobStore>,
        agent: &AgentId,
        name: &str,
        opts: DurableOptions,
        mut subscribe: impl FnMut(Lsn) -> Result<Subscription>,
    ) -> Result<DurableSubscription> {
        let cursor = cursor_name(agent, name);
        blobs.sweep(crate::backend::BlobSpace::Cursors)?;
        let (saved, created) = match read_cursor(&**blobs, &cursor)? {
            Some(saved) => (saved, false),
            None => cursor::create(&**blobs, &cursor, CursorState::at(log.first_lsn()?))?,
        };
        let (saved, subscription) = match subscribe(saved.position) {
            Ok(subscription) => (saved, subscription),
            // Created here while another process compacted: nothing was delivered from it,
            // so it starts where the log now starts.
            Err(Error::Compacted { first, .. }) if created => {
                let saved = CursorState::at(first);
                write_cursor(&**blobs, &cursor, saved)?;
                (saved, subscribe(first)?)
            }
            Err(e) => return Err(e),
        };
        Ok(DurableSubscription {
            subscription,
            log: log.clone(),
            blobs: blobs.clone(),
            agent: agent.clone(),
            name: name.to_owned(),
            cursor,
            opts,
            saved,
            unacked: VecDeque::new(),
        })
    }
}
