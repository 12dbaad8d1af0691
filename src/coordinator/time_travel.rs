//! Time travel: the whole state as of a past point of the log, folded by the same
//! [`State::apply`] as the live state, from the newest snapshot at or before that point (or from
//! the start) through the records up to it.

use super::repair::Skips;
use super::{audit, catch_up};
use crate::backend::LogBackend;
use crate::error::{Error, Result};
use crate::projection::State;
use crate::snapshot::Snapshots;
use crate::types::{Lsn, Timestamp};

/// A point in a store's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsOf {
    /// Just after the record at this LSN: the state it and every record before it make
    /// (`Lsn(0)`: before the first record, the empty state).
    Lsn(Lsn),
    /// After every record appended at or before this time (record times never go backwards, so
    /// these are a prefix of the log).
    Time(Timestamp),
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AsOf::Lsn(lsn) => write!(f, "LSN {lsn}"),
            AsOf::Time(time) => write!(f, "{time}"),
        }
    }
}

/// The state as of `as_of`: the newest snapshot among `snapshots` at or before that point that
/// checks out, caught up through the log to it. A snapshot that does not check out is passed
/// over with a warning, falling back to an older one or to the start of the log.
pub(super) fn state_at(
    log: &dyn LogBackend,
    skips: &Skips,
    snapshots: &Snapshots,
    as_of: AsOf,
) -> Result<State> {
    let tail = log.next_lsn();
    let first = log.first_lsn()?;
    let (end, not_after) = match as_of {
        AsOf::Lsn(lsn) if lsn >= tail => {
            return Err(Error::InvalidArgument {
                name: "point in history",
                reason: format!(
                    "LSN {lsn} is past the log's last record (LSN {})",
                    tail.get().saturating_sub(1)
                ),
            });
        }
        AsOf::Lsn(lsn) => (lsn.next(), None),
        AsOf::Time(time) => (audit::first_where(log, first, tail, |t| t > time)?, Some(time)),
    };
    if end == Lsn::FIRST {
        return Ok(State::new());
    }
    let mut state = match newest_snapshot(snapshots, first, end, not_after)? {
        Some(state) => state,
        None if first == Lsn::FIRST => State::new(),
        // The records before `end` start before the log does, and no snapshot covers them.
        None => return Err(Error::Compacted { requested: Lsn(end.get() - 1), first }),
    };
    catch_up(log, skips, &mut state, end)?;
    Ok(state)
}

/// The newest snapshot that checks out, at or before `end`, from which the log can be replayed
/// to `end` (at or past the log's `first` LSN, or at `end` itself), and whose records were all
/// appended by `not_after` if given.
fn newest_snapshot(
    snapshots: &Snapshots,
    first: Lsn,
    end: Lsn,
    not_after: Option<Timestamp>,
) -> Result<Option<State>> {
    for (lsn, name) in snapshots.list()? {
        if lsn > end || (lsn < first && lsn != end) {
            continue;
        }
        match snapshots.read(&name) {
            Some(Ok(image)) if image.next_lsn == lsn && not_after.is_none_or(|t| image.last_time <= t) => {
                return Ok(Some(State::from_image(image)));
            }
            // Pruned since it was listed, or not one to start from.
            None | Some(Ok(_)) => {}
            Some(Err(reason)) => {
                tracing::warn!(snapshot = %snapshots.location(&name).display(), %reason, "skipping a snapshot");
            }
        }
    }
    Ok(None)
}
