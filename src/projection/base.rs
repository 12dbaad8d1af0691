//! The state as of a snapshot, read on demand: what a [`State`](super::State) opened from a
//! version-3 snapshot stands on. The snapshot layer implements it over the mapped blob
//! (`snapshot::mapped`); the task registry and the context index read through it only what a
//! command asks for, and keep what the records after the snapshot change in memory (ARCHITECTURE.md,
//! "Opening in proportion to the command").
//!
//! Reads can fail (a block of the snapshot fails its checksum). A registry treats such an
//! entry as absent and [`notes`](Base::note_damage) the failure; the coordinator asks
//! [`State::damage`](super::State::damage) after every command and query, and, if there is
//! any, rebuilds the state without that snapshot and runs the command again, so no answer and
//! no record ever rests on a damaged read.

use std::cmp::Reverse;

use crate::model::{ContextKey, Priority, Task};

use super::KeyHistory;

/// A pending task's place in claim order: priority (highest first), creation LSN, slot.
pub type PendingKey = (Reverse<Priority>, u64, u32);

/// Tasks and context as of a snapshot, read on demand.
pub trait Base: Send + Sync + std::fmt::Debug {
    /// The snapshot's LSN: the state after every record below it.
    fn lsn(&self) -> crate::types::Lsn;

    /// Where the log said the record at [`Base::lsn`] is, when the snapshot was written
    /// ([`LogBackend::note_position`](crate::backend::LogBackend::note_position)).
    fn log_position(&self) -> Option<(crate::types::Lsn, u64)>;

    /// Number of tasks (slots `0..n`, in creation order).
    fn task_count(&self) -> u32;

    /// The task in `slot`.
    ///
    /// # Errors
    /// What is wrong with its bytes.
    fn task(&self, slot: u32) -> Result<Task, String>;

    /// The slots whose task may have id `id` (every one with the same hash of it).
    ///
    /// # Errors
    /// What is wrong with the section.
    fn slots_by_id(&self, id: &str) -> Result<Vec<u32>, String>;

    /// The slots whose task may have idempotency key `key`.
    ///
    /// # Errors
    /// What is wrong with the section.
    fn slots_by_idempotency_key(&self, key: &str) -> Result<Vec<u32>, String>;

    /// Pending tasks in claim order, each with its index in that order, from index `from` on;
    /// of priority `only` alone when it is given.
    fn pending(
        &self,
        only: Option<Priority>,
        from: u32,
    ) -> Box<dyn Iterator<Item = Result<(u32, PendingKey), String>> + '_>;

    /// The slots of every in-progress task.
    ///
    /// # Errors
    /// What is wrong with the section.
    fn in_progress(&self) -> Result<Vec<u32>, String>;

    /// Number of context keys (indexes `0..n`, in key order).
    fn key_count(&self) -> u32;

    /// Key number `index`.
    ///
    /// # Errors
    /// What is wrong with its bytes.
    fn key(&self, index: u32) -> Result<ContextKey, String>;

    /// Key number `index` and its history.
    ///
    /// # Errors
    /// What is wrong with its bytes.
    fn key_history(&self, index: u32) -> Result<(ContextKey, KeyHistory), String>;

    /// The index of the first key not below `key` (`key_count` if none): `key`'s own if present.
    ///
    /// # Errors
    /// What is wrong with the section.
    fn key_lower_bound(&self, key: &str) -> Result<u32, String>;

    /// Checks every byte of the snapshot (its checksums), noting the first failure.
    ///
    /// # Errors
    /// What is wrong, where.
    fn check_all(&self) -> Result<(), String>;

    /// Records that a read failed (the first reason is kept).
    fn note_damage(&self, reason: String);

    /// The first failed read, if any.
    fn damage(&self) -> Option<String>;
}
