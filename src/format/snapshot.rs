//! The snapshot file header (log-format.md, "Snapshots"). The body of versions 1 and 2 is one
//! `MessagePack` map; that of version 3 is laid out in [`super::snapshot_body`].

use super::{put_field, u32_of, u64_of, Damage, Field};
use crate::types::Timestamp;

/// `b"MAOSSNP\0"`.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"MAOSSNP\0";
/// Version of the snapshot format this build writes (it also reads versions 1 and 2).
pub const SNAPSHOT_VERSION: u32 = 3;
/// Size of the header; the body follows it.
pub const SNAPSHOT_HEADER_LEN: usize = 48;

const F_MAGIC: Field = Field::first("snapshot magic", 8);
const F_VERSION: Field = F_MAGIC.then("snapshot version", 4);
const F_FLAGS: Field = F_VERSION.then("snapshot flags", 4);
const F_LSN: Field = F_FLAGS.then("snapshot LSN", 8);
const F_WRITTEN: Field = F_LSN.then("time written", 8);
const F_BODY_LEN: Field = F_WRITTEN.then("body length", 8);
const F_BODY_CRC: Field = F_BODY_LEN.then("body CRC", 4);
const F_CRC: Field = F_BODY_CRC.then("header CRC", 4);
const _: () = assert!(F_CRC.end() == SNAPSHOT_HEADER_LEN);

/// What a snapshot header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Format version of the body.
    pub version: u32,
    /// The snapshot's LSN: the state after every record below it.
    pub lsn: u64,
    /// Body length in bytes.
    pub body_len: u64,
    /// CRC-32 of the body (version 3: of the body's directory, which holds a CRC per block
    /// of the rest).
    pub body_crc: u32,
}

impl SnapshotHeader {
    /// The 48 header bytes, stamped with the time `written`.
    #[must_use]
    pub fn encode(&self, written: Timestamp) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut out = [0u8; SNAPSHOT_HEADER_LEN];
        put_field(&mut out, F_MAGIC, &SNAPSHOT_MAGIC);
        put_field(&mut out, F_VERSION, &self.version.to_le_bytes());
        put_field(&mut out, F_LSN, &self.lsn.to_le_bytes());
        put_field(&mut out, F_WRITTEN, &written.as_micros().to_le_bytes());
        put_field(&mut out, F_BODY_LEN, &self.body_len.to_le_bytes());
        put_field(&mut out, F_BODY_CRC, &self.body_crc.to_le_bytes());
        let crc = crc32fast::hash(out.get(..F_CRC.at).unwrap_or_default());
        put_field(&mut out, F_CRC, &crc.to_le_bytes());
        out
    }

    /// Checks and decodes a header (the first [`SNAPSHOT_HEADER_LEN`] bytes of a file).
    ///
    /// # Errors
    /// What is wrong, as text: too short (naming the field), magic, checksum, version.
    pub fn decode(header: &[u8]) -> Result<SnapshotHeader, String> {
        SnapshotHeader::check(header).map_err(|d| d.reason)
    }

    /// Checks and decodes a header, as [`SnapshotHeader::decode`], saying where it is wrong: the
    /// magic (0), the header CRC (0: the bytes it covers start there), the version or flags (8),
    /// or where a short header ends.
    ///
    /// # Errors
    /// What is wrong and at which byte offset.
    pub fn check(header: &[u8]) -> Result<SnapshotHeader, Damage> {
        if super::field(header, F_MAGIC)? != SNAPSHOT_MAGIC.as_slice() {
            return Err(Damage::field(F_MAGIC, "bad magic"));
        }
        let stored = u32_of(header, F_CRC)?;
        let computed = crc32fast::hash(header.get(..F_CRC.at).unwrap_or_default());
        if stored != computed {
            return Err(Damage::at(
                0,
                format!("header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
            ));
        }
        let version = u32_of(header, F_VERSION)?;
        if !(1..=SNAPSHOT_VERSION).contains(&version) || u32_of(header, F_FLAGS)? != 0 {
            return Err(Damage::field(
                F_VERSION,
                format!("unsupported version {version} (this build reads 1 to {SNAPSHOT_VERSION})"),
            ));
        }
        Ok(SnapshotHeader {
            version,
            lsn: u64_of(header, F_LSN)?,
            body_len: u64_of(header, F_BODY_LEN)?,
            body_crc: u32_of(header, F_BODY_CRC)?,
        })
    }

    /// When the snapshot whose header is `header` was written (the field is not checked: call
    /// [`SnapshotHeader::check`] first).
    ///
    /// # Errors
    /// [`Short`](super::Short) if `header` ends before the field.
    pub fn written(header: &[u8]) -> Result<Timestamp, super::Short> {
        Ok(Timestamp(u64_of(header, F_WRITTEN)?.cast_signed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_a_short_one_names_its_missing_field() {
        let h = SnapshotHeader { version: 2, lsn: 7, body_len: 100, body_crc: 0xabcd };
        let bytes = h.encode(Timestamp::now());
        assert_eq!(SnapshotHeader::decode(&bytes), Ok(h));
        assert!(SnapshotHeader::decode(&bytes[..4]).unwrap_err().contains("snapshot magic"));
    }
}
