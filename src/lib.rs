//! maos-coord: an append-only, event-sourced coordination store for multi-agent systems.
//!
//! Agents (separate OS processes on one host) share tasks, context and events through one durable,
//! auditable store under `.maos/coordination/` of a project. This crate provides the storage layer:
//! a segmented, checksummed, memory-mapped [`log`](crate::log) that many processes append to at once,
//! with group commit, explicit [`Durability`] levels and crash recovery. The byte-exact on-disk
//! format is specified in `log-format.md` at the repository root.
//!
//! # Example
//!
//! ```
//! use maos_coord::{Durability, Log, RecordKind};
//!
//! # fn main() -> Result<(), maos_coord::Error> {
//! let dir = tempfile::tempdir().expect("temporary directory");
//! let log = Log::options(dir.path()).durability(Durability::Buffered).open()?;
//!
//! let kind = RecordKind::new(7)?;
//! let first = log.append(kind, b"hello")?;
//! log.append_batch(kind, &[b"a".as_slice(), b"b".as_slice()])?;
//!
//! let mut reader = log.reader_from(first)?;
//! let mut payloads = Vec::new();
//! while let Some(record) = reader.next()? {
//!     payloads.push(record.payload.to_vec());
//! }
//! assert_eq!(payloads, [b"hello".to_vec(), b"a".to_vec(), b"b".to_vec()]);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

#[cfg(not(target_os = "linux"))]
compile_error!("maos-coord currently supports Linux only (fallocate, statfs magic numbers, boot id)");

pub mod coordinator;
mod error;
pub mod log;
pub mod model;
pub mod projection;
mod types;

pub use coordinator::{CoordinationService, Coordinator, CoordinatorOptions, SetOptions};
pub use error::{Error, FrameError, Result};
pub use log::{
    Appended, Built, Durability, Log, LogOptions, LogReader, Record, RecoveryMode, RecoveryReport,
    TornTailReport, VerifyReport,
};
pub use types::{Lsn, RecordKind, Timestamp};
