//! Subscriptions: the events of the log that match a filter, delivered in LSN order from any
//! process, as one agent may see them; and durable subscriptions, whose position survives
//! restarts in a cursor file (log-format.md, "Cursor files").
//!
//! This layer knows the log (readers, waiting for records, appending a dead letter), the model
//! (decoding events, [`EventFilter`](crate::model::EventFilter) matching, the access rule that
//! withholds context values) and the cursor files of a store, whose byte layout comes from
//! `format`. It does not know the projections, tombstones or the coordinator's clock: what it
//! needs of them, decoding a coordination record (passing over those a tombstone skips) and the
//! time a command run now would decide with, the layer above passes in as a `Source`. Checking
//! that the subscribing agent is registered is the coordinator's, before it builds a
//! subscription.
//!
//! | file | what |
//! | --- | --- |
//! | `live.rs` | [`Subscription`] and [`Delivery`]: reading, matching, withholding, waiting |
//! | `durable.rs` | [`DurableSubscription`]: the cursor, delivery counts, dead letters |
//! | `cursor.rs` | the cursor files: names, reading, replacing, creating, sweeping, listing |

mod cursor;
mod durable;
#[doc(hidden)]
pub mod fuzzing;
mod live;

pub use cursor::{cursors, CursorInfo};
pub(crate) use cursor::{
    delete as delete_cursor, parse_name as parse_cursor_name, read as read_cursor, reset as reset_cursor,
};
pub use durable::{DurableOptions, DurableSubscription, MAX_CURSOR_NAMES, SCAN_PERSIST_RECORDS};
pub use live::{Delivery, Subscription};

use crate::error::Result;
use crate::model::Recorded;
use crate::types::{Lsn, Timestamp};

/// What a subscription needs from the layer that owns the projections (the coordinator
/// implements it), passed in when the subscription is made.
pub(crate) trait Source: Send + Sync {
    /// The coordination record at `lsn`, whose payload is `payload`.
    ///
    /// # Errors
    /// Looking for a tombstone that skips a record that does not decode may fail as reading
    /// the log does.
    fn decode(&self, lsn: Lsn, payload: &[u8]) -> Result<Decoded>;

    /// The time a command run now would decide with: whether the subscriber may read a context
    /// value is decided at it.
    ///
    /// # Errors
    /// Those of catching the projections up with the log.
    fn now(&self) -> Result<Timestamp>;
}

/// A coordination record, as a [`Source`] decodes it.
pub(crate) enum Decoded {
    /// The record.
    Event(Recorded),
    /// It does not decode, and a tombstone skips it: passed over.
    Skipped,
    /// It does not decode, and no tombstone skips it: why it does not decode.
    Undecodable(String),
}
