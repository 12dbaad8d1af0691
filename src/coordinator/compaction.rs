//! The coordinator's entry point to the compaction layer ([`crate::compaction`]): its log, its
//! snapshot files and its store's cursor directory.

use super::Coordinator;
use crate::compaction::{self, CompactOptions, CompactionReport};
use crate::error::Result;

impl Coordinator {
    /// Removes the sealed segments wholly below the oldest kept snapshot (so that falling back to
    /// an older snapshot stays possible) and, unless `force`, below every durable cursor. With
    /// `keyed`, the records of those segments that nothing later superseded are kept first. The
    /// state is unchanged either way: it comes from the snapshots and the log after them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for `keep_events_since` without
    /// `keyed`; [`Error::Io`](crate::Error::Io) if the snapshot or cursor directory cannot be
    /// read, [`Error::CorruptCursor`](crate::Error::CorruptCursor) for a damaged cursor file;
    /// removing segments fails as [`Log::remove_segments_before`](crate::Log::remove_segments_before)
    /// does, a keyed compaction as [`Log::compact_keyed`](crate::Log::compact_keyed) and
    /// [`Log::audit_reader`](crate::Log::audit_reader) do.
    pub fn compact(&self, opts: &CompactOptions) -> Result<CompactionReport> {
        compaction::compact(&*self.log, &self.snapshots.store, opts)
    }
}
