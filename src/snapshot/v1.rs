//! Snapshot format version 1, which held every version of every context key in full. Read and
//! upgraded on load (the state it describes is the same); never written.

use serde::{Deserialize, Serialize};

use crate::model::{ContextEntry, ContextKey};
use crate::projection::{ContextVersion, KeyHistory, StateImage};
use crate::types::Lsn;

/// A context version as version 1 stored it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionV1 {
    /// The record that made this version.
    pub lsn: Lsn,
    /// The entry, or `None` for a delete.
    pub entry: Option<ContextEntry>,
}

/// The context part of a version-1 image.
pub(crate) type ContextV1 = Vec<(ContextKey, Vec<VersionV1>)>;

/// The image a version-1 body describes, in today's shape.
pub(crate) fn upgrade(image: StateImage<ContextV1>) -> StateImage {
    image.map_context(|keys| {
        keys.into_iter()
            .map(|(key, versions)| {
                let positions = versions.iter().map(|v| ContextVersion {
                    lsn: v.lsn,
                    created_at: v.entry.as_ref().map(|e| e.created_at),
                });
                let positions = positions.collect();
                let current = versions.into_iter().last().and_then(|v| v.entry);
                (key, KeyHistory { versions: positions, current })
            })
            .collect()
    })
}
