//! Tombstones: records of kind [`TOMBSTONE_RECORD_KIND`] that say a coordination record the
//! store cannot decode (written by an older version, by hand, or by a bug) is to be skipped.
//! The record itself stays in the log, byte for byte, for audits; every reader of coordination
//! records passes over it (log-format.md, "Tombstones"). `maos-coord repair --apply` writes
//! them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::Lsn;

/// Record kind of tombstones (one of [`super::COORDINATION_KINDS`]).
pub const TOMBSTONE_RECORD_KIND: u16 = 2;

/// The payload of a tombstone: `{ "lsn": u64, "reason": string }` (named `MessagePack`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The coordination record to skip.
    pub lsn: Lsn,
    /// Why it could not be read (the decoder's message when the tombstone was written).
    pub reason: String,
}

impl Tombstone {
    /// `MessagePack` bytes of the payload.
    ///
    /// # Errors
    /// [`Error::Encode`] if rmp-serde refuses to encode the tombstone.
    pub fn encode(&self) -> Result<Vec<u8>> {
        rmp_serde::to_vec_named(self).map_err(|e| Error::Encode { reason: e.to_string() })
    }

    /// Reads a tombstone's payload (the record at `lsn`).
    ///
    /// # Errors
    /// [`Error::Decode`] naming `lsn` if the payload is not a tombstone.
    pub fn decode(lsn: Lsn, payload: &[u8]) -> Result<Tombstone> {
        rmp_serde::from_slice(payload).map_err(|e| Error::Decode { lsn, reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_reads_back_as_written() {
        let t = Tombstone { lsn: Lsn(8), reason: "invalid type".into() };
        assert_eq!(Tombstone::decode(Lsn(9), &t.encode().unwrap()).unwrap(), t);
        assert!(Tombstone::decode(Lsn(9), b"\xc1").is_err());
    }
}
