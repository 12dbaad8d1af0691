//! The context index: the current entry of every key, and where each of its versions was
//! recorded. Past versions are not held: their records stay in the log, where
//! [`Coordinator::get_context_version`](crate::Coordinator::get_context_version) reads them, so
//! memory and snapshots grow with the number of keys, not with the number of updates.

use std::collections::BTreeSet;

use super::HashMap;
use crate::model::{AgentId, ContextEntry, ContextKey, Event};
use crate::types::{Lsn, Timestamp};

/// Where one version of a key was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContextVersion {
    /// The record that made this version.
    pub lsn: Lsn,
    /// For a set, when the key's current life began (its first set since the last delete): the
    /// `created_at` of this version's entry. `None` for a delete.
    pub created_at: Option<Timestamp>,
}

/// One key: its versions and its current entry.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyHistory {
    /// Every version, oldest first (version *n* at index *n* - 1).
    pub versions: Vec<ContextVersion>,
    /// The latest version's entry; `None` if it is a delete.
    pub current: Option<ContextEntry>,
}

/// All context keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextIndex {
    keys: HashMap<ContextKey, KeyHistory>,
    /// The keys in order, for listing by prefix.
    order: BTreeSet<ContextKey>,
}

impl ContextIndex {
    /// The latest version's entry (`None` if never set or deleted). Expiry is the caller's to
    /// check, with the time of its command.
    #[must_use]
    pub fn current(&self, key: &ContextKey) -> Option<&ContextEntry> {
        self.keys.get(key).and_then(|k| k.current.as_ref())
    }

    /// The key's version: 0 if never set.
    #[must_use]
    pub fn version(&self, key: &ContextKey) -> u64 {
        self.keys.get(key).map_or(0, |k| k.versions.len() as u64)
    }

    /// Where version `version` (1-based) of the key was recorded.
    #[must_use]
    pub fn at_version(&self, key: &ContextKey, version: u64) -> Option<&ContextVersion> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.keys.get(key).and_then(|k| k.versions.get(index))
    }

    /// Every version of the key, oldest first.
    #[must_use]
    pub fn versions(&self, key: &ContextKey) -> &[ContextVersion] {
        self.keys.get(key).map_or(&[], |k| k.versions.as_slice())
    }

    /// Current entries whose key starts with `prefix`, in key order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a ContextEntry> + 'a {
        self.order
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(move |k| k.as_str().starts_with(prefix))
            .filter_map(|k| self.current(k))
    }

    /// Every key ever set, in key order, with its versions and its current entry (`None` once
    /// deleted).
    pub fn keys(&self) -> impl Iterator<Item = (&ContextKey, &KeyHistory)> + '_ {
        self.order.iter().filter_map(|k| Some((k, self.keys.get(k)?)))
    }

    /// Every key, in order (for snapshots).
    pub(super) fn to_image(&self) -> Vec<(ContextKey, KeyHistory)> {
        self.order.iter().filter_map(|k| Some((k.clone(), self.keys.get(k)?.clone()))).collect()
    }

    pub(super) fn from_image(keys: Vec<(ContextKey, KeyHistory)>) -> ContextIndex {
        ContextIndex {
            order: keys.iter().map(|(k, _)| k.clone()).collect(),
            keys: keys.into_iter().collect(),
        }
    }

    pub(super) fn apply(&mut self, actor: AgentId, event: Event, lsn: Lsn, time: Timestamp) {
        let (Event::ContextUpdated { key, .. } | Event::ContextDeleted { key, .. }) = &event else { return };
        let history = if let Some(history) = self.keys.get_mut(key) {
            history
        } else {
            self.order.insert(key.clone());
            self.keys.entry(key.clone()).or_default()
        };
        let created_at = match &history.current {
            Some(current) => current.created_at,
            None => time,
        };
        history.current = entry_of(actor, event, created_at, time);
        let created_at = history.current.as_ref().map(|e| e.created_at);
        history.versions.push(ContextVersion { lsn, created_at });
    }
}

/// The entry a context record makes: `None` for a delete (or another event). `created_at` is
/// the start of the key's current life, `time` the record's.
#[must_use]
pub fn entry_of(
    actor: AgentId,
    event: Event,
    created_at: Timestamp,
    time: Timestamp,
) -> Option<ContextEntry> {
    match event {
        Event::ContextUpdated { key, value, visibility, expires_at, metadata, version } => {
            Some(ContextEntry {
                key,
                value,
                owner: actor,
                visibility,
                version,
                created_at,
                updated_at: time,
                expires_at,
                metadata,
            })
        }
        _ => None,
    }
}

impl std::borrow::Borrow<str> for ContextKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}
