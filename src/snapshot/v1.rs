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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{AgentId, Event, Recorded, Visibility};
    use crate::projection::{entry_of, State};
    use crate::snapshot::{decode, header, read_file};
    use crate::types::Timestamp;

    #[test]
    fn a_version_1_snapshot_loads_as_the_state_it_describes() {
        let key = ContextKey::new("plan").unwrap();
        let set = |value: i32| Event::ContextUpdated {
            key: key.clone(),
            value: json!(value),
            visibility: Visibility::Shared,
            expires_at: None,
            metadata: std::collections::BTreeMap::new(),
            version: 0,
        };
        let (a, b) = (AgentId::new("a").unwrap(), AgentId::new("b").unwrap());
        let records = [
            (a.clone(), set(1)),
            (a.clone(), set(2)),
            (a.clone(), Event::ContextDeleted { key: key.clone(), version: 3 }),
            (b.clone(), set(4)),
        ];
        // The state, and what version 1 stored for it: every version in full.
        let mut state = State::new();
        let mut versions = Vec::new();
        let mut life = None;
        for (n, (actor, event)) in records.into_iter().enumerate() {
            let (lsn, time) = (Lsn(n as u64 + 1), Timestamp(10 * (i64::try_from(n).unwrap() + 1)));
            let created_at = *life.get_or_insert(time);
            let entry = entry_of(actor.clone(), event.clone(), created_at, time);
            if entry.is_none() {
                life = None;
            }
            versions.push(VersionV1 { lsn, entry });
            state.apply(Recorded { actor, event }, lsn, time);
        }
        let old = state.to_image().map_context(|_| vec![(key.clone(), versions)]);
        let body = rmp_serde::to_vec_named(&old).unwrap();
        let mut file = header(1, 5, body.len() as u64, crc32fast::hash(&body)).to_vec();
        file.extend_from_slice(&body);

        let loaded = State::from_image(decode(&file).unwrap());
        assert_eq!(loaded, state);
        assert_eq!(loaded.context.versions(&key), state.context.versions(&key));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000005.snap");
        std::fs::write(&path, &file).unwrap();
        assert_eq!(State::from_image(read_file(&path).unwrap()), state);
    }
}
