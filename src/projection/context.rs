//! The context index: every version of every key (deletes included), so that past versions can
//! be read and watchers can start from any version.

use std::collections::BTreeMap;

use crate::model::{AgentId, ContextEntry, ContextKey, Event};
use crate::types::{Lsn, Timestamp};

/// One version of a key: the entry, or `None` where the version is a delete.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ContextVersion {
    /// The record that made this version.
    pub lsn: Lsn,
    /// The entry, or `None` for a delete.
    pub entry: Option<ContextEntry>,
}

/// All context keys and their versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextIndex {
    keys: BTreeMap<ContextKey, Vec<ContextVersion>>,
}

impl ContextIndex {
    /// The latest version's entry (`None` if never set or deleted). Expiry is the caller's to
    /// check, with the time of its command.
    #[must_use]
    pub fn current(&self, key: &ContextKey) -> Option<&ContextEntry> {
        self.keys.get(key).and_then(|v| v.last()).and_then(|v| v.entry.as_ref())
    }

    /// The key's version: 0 if never set.
    #[must_use]
    pub fn version(&self, key: &ContextKey) -> u64 {
        self.keys.get(key).map_or(0, |v| v.len() as u64)
    }

    /// Version `version` (1-based) of the key.
    #[must_use]
    pub fn at_version(&self, key: &ContextKey, version: u64) -> Option<&ContextVersion> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.keys.get(key).and_then(|v| v.get(index))
    }

    /// Every version of the key, oldest first.
    #[must_use]
    pub fn versions(&self, key: &ContextKey) -> &[ContextVersion] {
        self.keys.get(key).map_or(&[], Vec::as_slice)
    }

    /// Current entries whose key starts with `prefix`, in key order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a ContextEntry> + 'a {
        self.keys
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.as_str().starts_with(prefix))
            .filter_map(|(_, v)| v.last().and_then(|v| v.entry.as_ref()))
    }

    /// Every key with its versions (for snapshots).
    pub(super) fn to_image(&self) -> Vec<(ContextKey, Vec<ContextVersion>)> {
        self.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(super) fn from_image(keys: Vec<(ContextKey, Vec<ContextVersion>)>) -> ContextIndex {
        ContextIndex { keys: keys.into_iter().collect() }
    }

    pub(super) fn apply(&mut self, actor: &AgentId, event: &Event, lsn: Lsn, time: Timestamp) {
        match event {
            Event::ContextUpdated { key, value, visibility, expires_at, metadata, version } => {
                let versions = self.keys.entry(key.clone()).or_default();
                let created_at =
                    versions.last().and_then(|v| v.entry.as_ref()).map_or(time, |e| e.created_at);
                let entry = ContextEntry {
                    key: key.clone(),
                    value: value.clone(),
                    owner: actor.clone(),
                    visibility: visibility.clone(),
                    version: *version,
                    created_at,
                    updated_at: time,
                    expires_at: *expires_at,
                    metadata: metadata.clone(),
                };
                versions.push(ContextVersion { lsn, entry: Some(entry) });
            }
            Event::ContextDeleted { key, .. } => {
                self.keys.entry(key.clone()).or_default().push(ContextVersion { lsn, entry: None });
            }
            _ => {}
        }
    }
}

impl std::borrow::Borrow<str> for ContextKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
