//! Identifier and position newtypes shared by every layer.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Log sequence number: the dense, strictly increasing position of a record in the log.
///
/// The first record of a store has LSN 1; LSN 0 means "before the first record".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lsn(pub(crate) u64);

impl Lsn {
    /// The LSN of the first record of a new store.
    pub const FIRST: Lsn = Lsn(1);

    /// The LSN numbered `n` (0: before the first record).
    #[must_use]
    pub const fn new(n: u64) -> Lsn {
        Lsn(n)
    }

    /// The LSN that follows this one (saturating: a log never gets near 2^64 records, but a
    /// decoder fed a damaged LSN must not overflow).
    #[must_use]
    pub fn next(self) -> Lsn {
        Lsn(self.0.saturating_add(1))
    }

    /// The raw number.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Wall-clock time of a record: microseconds since the Unix epoch (UTC).
///
/// The log assigns it at append time and never lets it go backwards (log-format.md, "Record frame").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub(crate) i64);

impl Timestamp {
    /// The time `micros` microseconds after the Unix epoch (before it if negative).
    #[must_use]
    pub const fn from_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// The current wall-clock time.
    #[must_use]
    pub fn now() -> Timestamp {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub fn as_micros(self) -> i64 {
        self.0
    }

    /// This time plus `d` (saturating).
    #[must_use]
    pub fn plus(self, d: std::time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
    }

    /// This time minus `d` (saturating).
    #[must_use]
    pub fn minus(self, d: std::time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
    }
}

impl Timestamp {
    /// As a UTC date and time (`None` outside chrono's range).
    #[must_use]
    pub fn to_datetime(self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::from_timestamp_micros(self.0)
    }
}

/// RFC 3339 with microseconds, e.g. `2026-11-24T11:50:33.500082Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_datetime() {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
            None => write!(f, "{}us", self.0),
        }
    }
}

/// What a record means to the layer above the log (the log itself never interprets it).
///
/// Kind 0 is reserved: an all-zero frame header must never look like a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordKind(u16);

impl RecordKind {
    /// A record kind; 0 is rejected.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for kind 0.
    pub fn new(kind: u16) -> Result<RecordKind> {
        if kind == 0 {
            return Err(Error::InvalidArgument { name: "record kind", reason: "kind 0 is reserved".into() });
        }
        Ok(RecordKind(kind))
    }

    /// The raw number stored in the frame.
    #[must_use]
    pub fn get(self) -> u16 {
        self.0
    }

    pub(crate) fn from_raw(kind: u16) -> Option<RecordKind> {
        (kind != 0).then_some(RecordKind(kind))
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
