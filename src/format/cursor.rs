//! Cursor files (log-format.md, "Cursor files"): where a durable subscription resumes, and how
//! many times the record at its head was handed out.

use super::{field, put_field, u32_of, u64_of, Damage, Field};
use crate::types::Lsn;

/// `b"MAOSCUR\0"`.
pub const CURSOR_MAGIC: [u8; 8] = *b"MAOSCUR\0";
/// The version written: 40 bytes, with the head and its delivery count.
pub const CURSOR_VERSION: u32 = 2;
/// Length of a version-2 cursor file.
pub const CURSOR_LEN: usize = 40;
/// Still read: 32 bytes, the position only.
const V1: u32 = 1;
const V1_LEN: usize = 32;

const F_MAGIC: Field = Field::first("cursor magic", 8);
const F_VERSION: Field = F_MAGIC.then("cursor version", 4);
const F_DELIVERIES: Field = F_VERSION.then("deliveries", 4);
const F_POSITION: Field = F_DELIVERIES.then("position", 8);
const F_HEAD: Field = F_POSITION.then("head", 8);
const F_CRC: Field = F_HEAD.then("cursor CRC", 4);
const F_RESERVED: Field = F_CRC.then("reserved", 4);
const _: () = assert!(F_RESERVED.end() == CURSOR_LEN);
// Version 1: magic, version, reserved u32, position, CRC, reserved u32.
const V1_CRC: Field = F_POSITION.then("cursor CRC", 4);
const V1_RESERVED: Field = V1_CRC.then("reserved", 4);
const _: () = assert!(V1_RESERVED.end() == V1_LEN);

/// What a cursor file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorState {
    /// The LSN delivery resumes from: every record below it was acknowledged, dead-lettered or
    /// did not match.
    pub position: Lsn,
    /// The record [`CursorState::deliveries`] counts (the first match at or after `position`
    /// when it was handed out), or `Lsn(0)`.
    pub head: Lsn,
    /// How many times `head` was handed out (0: not since `position` was written).
    pub deliveries: u32,
}

impl CursorState {
    /// At `position`, its head not handed out yet.
    #[must_use]
    pub fn at(position: Lsn) -> CursorState {
        CursorState { position, head: Lsn(0), deliveries: 0 }
    }

    /// The file bytes (version 2).
    #[must_use]
    pub fn encode(self) -> [u8; CURSOR_LEN] {
        let mut bytes = [0u8; CURSOR_LEN];
        put_field(&mut bytes, F_MAGIC, &CURSOR_MAGIC);
        put_field(&mut bytes, F_VERSION, &CURSOR_VERSION.to_le_bytes());
        put_field(&mut bytes, F_DELIVERIES, &self.deliveries.to_le_bytes());
        put_field(&mut bytes, F_POSITION, &self.position.get().to_le_bytes());
        put_field(&mut bytes, F_HEAD, &self.head.get().to_le_bytes());
        let crc = crc32fast::hash(bytes.get(..F_CRC.at).unwrap_or_default());
        put_field(&mut bytes, F_CRC, &crc.to_le_bytes());
        bytes
    }

    /// Decodes and checks a cursor file (version 2, or version 1).
    ///
    /// # Errors
    /// What is wrong, as text.
    pub fn decode(bytes: &[u8]) -> Result<CursorState, String> {
        CursorState::check(bytes).map_err(|d| d.reason)
    }

    /// Decodes and checks a cursor file (version 2, or version 1), as [`CursorState::decode`],
    /// saying where it is wrong.
    ///
    /// # Errors
    /// What is wrong and at which byte offset: the magic (0), the version (8), a length other
    /// than its version's (where the file ends or the extra bytes start), the CRC (0: the
    /// bytes it covers start there), a reserved field, the head rule (12: the deliveries).
    pub fn check(bytes: &[u8]) -> Result<CursorState, Damage> {
        if field(bytes, F_MAGIC)? != CURSOR_MAGIC.as_slice() {
            return Err(Damage::field(F_MAGIC, "bad magic"));
        }
        let version = u32_of(bytes, F_VERSION)?;
        let (len, crc, reserved) = match version {
            V1 => (V1_LEN, V1_CRC, V1_RESERVED),
            CURSOR_VERSION => (CURSOR_LEN, F_CRC, F_RESERVED),
            other => return Err(Damage::field(F_VERSION, format!("unsupported version {other}"))),
        };
        if bytes.len() != len {
            return Err(Damage::at(
                bytes.len().min(len),
                format!("{} bytes, expected {len} for version {version}", bytes.len()),
            ));
        }
        if u32_of(bytes, crc)? != crc32fast::hash(bytes.get(..crc.at).unwrap_or_default()) {
            return Err(Damage::at(0, "checksum mismatch"));
        }
        if u32_of(bytes, reserved)? != 0 {
            return Err(Damage::field(reserved, "reserved field not zero"));
        }
        if version == V1 && u32_of(bytes, F_DELIVERIES)? != 0 {
            return Err(Damage::field(F_DELIVERIES, "reserved field not zero"));
        }
        let position = Lsn(u64_of(bytes, F_POSITION)?);
        if version == V1 {
            return Ok(CursorState::at(position));
        }
        let state = CursorState {
            position,
            head: Lsn(u64_of(bytes, F_HEAD)?),
            deliveries: u32_of(bytes, F_DELIVERIES)?,
        };
        if (state.deliveries == 0) != (state.head == Lsn(0))
            || (state.deliveries > 0 && state.head < position)
        {
            return Err(Damage::field(
                F_DELIVERIES,
                format!("head {} with {} deliveries at position {position}", state.head, state.deliveries),
            ));
        }
        Ok(state)
    }
}
