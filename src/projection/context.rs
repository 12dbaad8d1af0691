//! The context index: the current entry of every key, and where each of its versions was
//! recorded. Past versions are not held: their records stay in the log, where
//! [`Coordinator::get_context_version`](crate::Coordinator::get_context_version) reads them, so
//! memory and snapshots grow with the number of keys, not with the number of updates.
//!
//! An index opened from a version-3 snapshot stands on a [`Base`]: a key of the snapshot is
//! read (once) when asked for; a key the records after the snapshot change is copied into
//! memory, which answers for it from then on.

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::base::Base;
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
#[derive(Debug, Clone, Default)]
pub struct ContextIndex {
    /// Keys set or deleted since the snapshot (or every key, without one).
    keys: HashMap<ContextKey, KeyHistory>,
    /// The keys in order that the snapshot does not hold, for listing by prefix.
    order: BTreeSet<ContextKey>,
    /// The snapshot this index stands on, if any.
    base: Option<Arc<dyn Base>>,
    /// The snapshot's keys read so far, by index.
    read: Vec<OnceCell<Box<(ContextKey, KeyHistory)>>>,
}

impl PartialEq for ContextIndex {
    /// Equal keys with equal histories make equal indexes, wherever they are held.
    fn eq(&self, other: &ContextIndex) -> bool {
        self.keys().eq(other.keys())
    }
}

impl ContextIndex {
    /// The latest version's entry (`None` if never set or deleted). Expiry is the caller's to
    /// check, with the time of its command.
    #[must_use]
    pub fn current(&self, key: &ContextKey) -> Option<&ContextEntry> {
        self.history(key).and_then(|k| k.current.as_ref())
    }

    /// The key's version: 0 if never set.
    #[must_use]
    pub fn version(&self, key: &ContextKey) -> u64 {
        self.history(key).map_or(0, |k| k.versions.len() as u64)
    }

    /// Where version `version` (1-based) of the key was recorded.
    #[must_use]
    pub fn at_version(&self, key: &ContextKey, version: u64) -> Option<&ContextVersion> {
        let index = usize::try_from(version.checked_sub(1)?).ok()?;
        self.history(key).and_then(|k| k.versions.get(index))
    }

    /// Every version of the key, oldest first.
    #[must_use]
    pub fn versions(&self, key: &ContextKey) -> &[ContextVersion] {
        self.history(key).map_or(&[], |k| k.versions.as_slice())
    }

    /// Current entries whose key starts with `prefix`, in key order.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a ContextEntry> + 'a {
        self.keys_from(prefix)
            .take_while(move |(k, _)| k.as_str().starts_with(prefix))
            .filter_map(|(_, h)| h.current.as_ref())
    }

    /// Every key ever set, in key order, with its versions and its current entry (`None` once
    /// deleted). On an index opened from a snapshot, this reads every key.
    pub fn keys(&self) -> impl Iterator<Item = (&ContextKey, &KeyHistory)> + '_ {
        self.keys_from("")
    }

    /// Every key, in order (for snapshots).
    pub(super) fn to_image(&self) -> Vec<(ContextKey, KeyHistory)> {
        self.keys().map(|(k, h)| (k.clone(), h.clone())).collect()
    }

    pub(super) fn from_image(keys: Vec<(ContextKey, KeyHistory)>) -> ContextIndex {
        ContextIndex {
            order: keys.iter().map(|(k, _)| k.clone()).collect(),
            keys: keys.into_iter().collect(),
            ..ContextIndex::default()
        }
    }

    /// An index standing on the keys of `base`.
    pub(super) fn on_base(base: Arc<dyn Base>) -> ContextIndex {
        let read = (0..base.key_count()).map(|_| OnceCell::new()).collect();
        ContextIndex { base: Some(base), read, ..ContextIndex::default() }
    }

    /// The key's history, wherever it is held.
    fn history(&self, key: &ContextKey) -> Option<&KeyHistory> {
        if let Some(history) = self.keys.get(key) {
            return Some(history);
        }
        let base = self.base.as_ref()?;
        let index = base.key_lower_bound(key.as_str()).map_err(|e| base.note_damage(e)).ok()?;
        self.base_key(index).filter(|(k, _)| *k == key).map(|(_, h)| h)
    }

    /// Key number `index` of the snapshot, read once.
    fn base_key(&self, index: u32) -> Option<(&ContextKey, &KeyHistory)> {
        let cell = self.read.get(index as usize)?;
        let (key, history) = if let Some(read) = cell.get() {
            &**read
        } else {
            let base = self.base.as_ref()?;
            let read = base.key_history(index).map_err(|e| base.note_damage(e)).ok()?;
            &**cell.get_or_init(|| Box::new(read))
        };
        Some((key, self.keys.get(key).unwrap_or(history)))
    }

    /// Every key from `start` on, in key order: the snapshot's (as changed since) merged with
    /// those only memory holds.
    fn keys_from<'a>(&'a self, start: &str) -> impl Iterator<Item = (&'a ContextKey, &'a KeyHistory)> + 'a {
        let first = match &self.base {
            Some(base) => base.key_lower_bound(start).map_err(|e| base.note_damage(e)).unwrap_or(u32::MAX),
            None => 0,
        };
        let count = u32::try_from(self.read.len()).unwrap_or(u32::MAX);
        let from_base = (first..count).map_while(move |i| self.base_key(i));
        let from_memory = self
            .order
            .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .filter_map(move |k| Some((k, self.keys.get(k)?)));
        super::merge_sorted_by(from_memory, from_base, |(a, _), (b, _)| a.as_str() < b.as_str())
    }

    /// The first failed read of the snapshot this index stands on, if any.
    pub(super) fn damage(&self) -> Option<String> {
        self.base.as_ref().and_then(|b| b.damage())
    }

    pub(super) fn apply(&mut self, actor: AgentId, event: Event, lsn: Lsn, time: Timestamp) {
        let (Event::ContextUpdated { key, .. } | Event::ContextDeleted { key, .. }) = &event else { return };
        if !self.keys.contains_key(key) {
            let held = self.history(key).cloned();
            if held.is_none() {
                self.order.insert(key.clone());
            }
            self.keys.insert(key.clone(), held.unwrap_or_default());
        }
        let Some(history) = self.keys.get_mut(key) else { return };
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
