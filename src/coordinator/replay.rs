//! Catching a state up with the log: each record below the tail is read, checked, decoded and
//! applied, in LSN order. Application events change no projection and are passed over without
//! decoding ([`Recorded::is_custom`]); records of other kinds only move the position.

use crate::error::Result;
use crate::log::format::frame_len;
use crate::log::Log;
use crate::model::{Recorded, EVENT_RECORD_KIND};
use crate::projection::State;
use crate::types::Lsn;

/// Applies the records in `[state.next_lsn, tail)` to `state`; returns the bytes of log they
/// take. On an error the records before the one that failed stay applied.
pub(super) fn catch_up(log: &Log, state: &mut State, tail: Lsn) -> Result<u64> {
    if state.next_lsn >= tail {
        return Ok(0);
    }
    let mut reader = log.reader_from(state.next_lsn)?;
    let mut bytes = 0u64;
    while reader.position() < tail {
        let Some(record) = reader.next()? else { break };
        bytes += frame_len(record.payload.len()) as u64;
        if record.kind.get() != EVENT_RECORD_KIND {
            state.next_lsn = record.lsn.next();
        } else if Recorded::is_custom(record.payload) {
            state.pass(record.lsn, record.timestamp);
        } else {
            state.apply(Recorded::decode(record.lsn, record.payload)?, record.lsn, record.timestamp);
        }
    }
    Ok(bytes)
}
