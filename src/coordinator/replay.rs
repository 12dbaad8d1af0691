//! Catching a state up with the log: each record below the tail is read, checked, decoded and
//! applied, in LSN order. Application events change no projection and are passed over without
//! decoding ([`Recorded::is_custom`]); records of other kinds only move the position.

use super::repair::Skips;
use crate::backend::{LogBackend, RecordRead};
use crate::error::Result;
use crate::model::{Recorded, EVENT_RECORD_KIND};
use crate::projection::State;
use crate::types::Lsn;

/// Applies the records in `[state.next_lsn, tail)` to `state`; returns the bytes of log they
/// take. On an error the records before the one that failed stay applied.
/// A coordination record that does not decode and that a tombstone skips only moves the
/// position; one that none skips is an [`Error::UndecodableRecord`](crate::Error) naming its
/// place.
pub(super) fn catch_up(log: &dyn LogBackend, skips: &Skips, state: &mut State, tail: Lsn) -> Result<u64> {
    catch_up_at(log, skips, state, tail).map(|(bytes, _)| bytes)
}

/// [`catch_up`], also returning where the log keeps the record after the state (the reader's
/// [`byte_position`](crate::backend::RecordRead::byte_position)), if it read any.
pub(super) fn catch_up_at(
    log: &dyn LogBackend,
    skips: &Skips,
    state: &mut State,
    tail: Lsn,
) -> Result<(u64, Option<(Lsn, u64)>)> {
    if state.next_lsn >= tail {
        return Ok((0, None));
    }
    let mut reader = log.reader_from(state.next_lsn)?;
    let bytes = apply_from(&mut *reader, log, skips, state, tail)?;
    Ok((bytes, reader.byte_position().filter(|_| reader.position() == state.next_lsn)))
}

/// Records a reader kept between catch-ups may be behind the state (the records of this
/// process's own commands, applied without reading them) and still be moved forward rather
/// than replaced: passing over a record checks its frame only.
const KEPT_READER_GAP: u64 = 1024;

/// [`catch_up`] for a live state, with a reader kept in `kept` from one call to the next: a
/// long-lived handle catching up with a few records of other processes per command does not
/// look its position up in the log each time (the newest segment has no index file, so a
/// seek reads from the last position noted). A kept reader behind the state by at most
/// [`KEPT_READER_GAP`] records passes over those; otherwise, or after an error, a new one
/// seeks.
pub(super) fn catch_up_kept(
    log: &dyn LogBackend,
    skips: &Skips,
    state: &mut State,
    kept: &mut Option<Box<dyn RecordRead>>,
    tail: Lsn,
) -> Result<u64> {
    if state.next_lsn >= tail {
        return Ok(0);
    }
    let near = |r: &dyn RecordRead| {
        r.position() <= state.next_lsn && state.next_lsn.get() - r.position().get() <= KEPT_READER_GAP
    };
    let mut reader = match kept.take() {
        Some(reader) if near(reader.as_ref()) => reader,
        _ => log.reader_from(state.next_lsn)?,
    };
    while reader.position() < state.next_lsn {
        if reader.next()?.is_none() {
            reader = log.reader_from(state.next_lsn)?;
            break;
        }
    }
    let bytes = apply_from(&mut *reader, log, skips, state, tail)?;
    *kept = Some(reader);
    Ok(bytes)
}

/// Applies the records `reader` reads, up to `tail`, to `state`; returns the bytes read.
fn apply_from(
    reader: &mut dyn RecordRead,
    log: &dyn LogBackend,
    skips: &Skips,
    state: &mut State,
    tail: Lsn,
) -> Result<u64> {
    let mut bytes = 0u64;
    while reader.position() < tail {
        let Some(record) = reader.next()? else { break };
        bytes += record.stored_len();
        if record.kind.get() != EVENT_RECORD_KIND {
            // Records of other kinds change no projection, but their time is recorded time:
            // commands never decide with a time before it.
            state.pass(record.lsn, record.timestamp);
        } else if Recorded::is_custom(record.payload) {
            state.pass(record.lsn, record.timestamp);
        } else {
            let (lsn, time) = (record.lsn, record.timestamp);
            match skips.decode(log, lsn, record.payload) {
                Ok(Some(recorded)) => state.apply(recorded, lsn, time),
                Ok(None) => state.pass(lsn, time),
                Err(e) => return Err(e.at(reader.last_location())),
            }
        }
    }
    Ok(bytes)
}
