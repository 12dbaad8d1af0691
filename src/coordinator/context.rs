//! Context commands and queries: set (with conditions), delete, get (visibility and expiry),
//! past versions, listing by prefix.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{AgentId, ContextEntry, ContextKey, Event, Recorded, SetCondition, Visibility};
use crate::projection::{entry_of, ContextVersion, State};
use crate::types::{Lsn, Timestamp};

/// How [`Coordinator::set_context_with`] sets a key.
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    /// Who may read it.
    pub visibility: Visibility,
    /// It reads as absent this long after the set.
    pub expires_in: Option<Duration>,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
    /// Only if the current version is as expected.
    pub condition: SetCondition,
}

impl Coordinator {
    /// Sets a key; returns its new version.
    pub async fn set_context(
        &self,
        owner: &AgentId,
        key: &ContextKey,
        value: serde_json::Value,
        visibility: Visibility,
    ) -> Result<u64> {
        self.set_context_with(owner, key, value, SetOptions { visibility, ..SetOptions::default() }).await
    }

    /// Sets a key only if its current version is `version` (compare-and-set); returns the new
    /// version, or [`Error::VersionMismatch`].
    pub async fn compare_and_set(
        &self,
        owner: &AgentId,
        key: &ContextKey,
        value: serde_json::Value,
        version: u64,
    ) -> Result<u64> {
        let opts = SetOptions { condition: SetCondition::VersionIs(version), ..SetOptions::default() };
        self.set_context_with(owner, key, value, opts).await
    }

    /// Sets a key with every option; returns its new version.
    pub async fn set_context_with(
        &self,
        owner: &AgentId,
        key: &ContextKey,
        value: serde_json::Value,
        opts: SetOptions,
    ) -> Result<u64> {
        self.check_size(&format!("context key {key}"), &value)?;
        let (id, key) = (owner.clone(), key.clone());
        let (_, version) = self
            .execute(owner, move |state, now| {
                require_agent(state, &id)?;
                let version = next_version(state, &id, &key, opts.condition, now)?;
                let event = Event::ContextUpdated {
                    key,
                    value,
                    visibility: opts.visibility,
                    expires_at: opts.expires_in.map(|d| now.plus(d)),
                    metadata: opts.metadata,
                    version,
                };
                Ok((vec![event], version))
            })
            .await?;
        Ok(version)
    }

    /// Deletes a key (it reads as absent; its versions stay readable); returns the new version.
    pub async fn delete_context(&self, actor: &AgentId, key: &ContextKey) -> Result<u64> {
        let (id, key) = (actor.clone(), key.clone());
        let (_, version) = self
            .execute(actor, move |state, now| {
                require_agent(state, &id)?;
                let version = next_version(state, &id, &key, SetCondition::Always, now)?;
                Ok((vec![Event::ContextDeleted { key, version }], version))
            })
            .await?;
        Ok(version)
    }

    /// The current entry of a key as `reader` sees it: `None` if absent, deleted or expired;
    /// [`Error::NotVisible`] if the reader may not read it.
    pub fn get_context(&self, reader: &AgentId, key: &ContextKey) -> Result<Option<ContextEntry>> {
        self.read_at(|s, now| {
            require_agent(s, reader)?;
            match s.context.current(key) {
                Some(e) if e.expired(now) => Ok(None),
                Some(e) => visible(e, reader).map(|e| Some(e.clone())),
                None => Ok(None),
            }
        })?
    }

    /// Version `version` of a key (`None` if there is no such version or it was a delete).
    /// Past versions are read from the log: [`Error::VersionCompacted`] once compaction removed
    /// their record.
    pub fn get_context_version(
        &self,
        reader: &AgentId,
        key: &ContextKey,
        version: u64,
    ) -> Result<Option<ContextEntry>> {
        let found = self.read(|s| {
            require_agent(s, reader)?;
            if version == s.context.version(key) {
                let current = s.context.current(key).map(|e| visible(e, reader).cloned()).transpose()?;
                return Ok(Found::Current(current));
            }
            Ok(s.context.at_version(key, version).copied().map_or(Found::Nothing, Found::Past))
        })??;
        match found {
            Found::Current(entry) => Ok(entry),
            Found::Past(ContextVersion { lsn, created_at: Some(created_at) }) => {
                let entry = self.read_context_version(key, version, lsn, created_at)?;
                visible(&entry, reader)?;
                Ok(Some(entry))
            }
            Found::Past(_) | Found::Nothing => Ok(None),
        }
    }

    /// The entry of a past version, from its record at `lsn`.
    fn read_context_version(
        &self,
        key: &ContextKey,
        version: u64,
        lsn: Lsn,
        created_at: Timestamp,
    ) -> Result<ContextEntry> {
        let compacted = |first| Error::VersionCompacted { key: key.to_string(), version, lsn, first };
        let mut records = match self.log.reader_from(lsn) {
            Ok(records) => records,
            Err(Error::Compacted { first, .. }) => return Err(compacted(first)),
            Err(e) => return Err(e),
        };
        let Some(record) = records.next()?.filter(|r| r.lsn == lsn) else {
            return Err(compacted(self.log.first_lsn()?));
        };
        let Recorded { actor, event } = Recorded::decode(lsn, record.payload)?;
        entry_of(actor, event, created_at, record.timestamp)
            .filter(|entry| entry.key == *key && entry.version == version)
            .ok_or_else(|| Error::Decode {
                lsn,
                reason: format!("the state places version {version} of context key {key} here"),
            })
    }

    /// The current, unexpired entries `reader` may read whose keys start with `prefix`.
    pub fn list_context(&self, reader: &AgentId, prefix: &str) -> Result<Vec<ContextEntry>> {
        self.read_at(|s, now| {
            require_agent(s, reader)?;
            Ok(s.context
                .with_prefix(prefix)
                .filter(|e| !e.expired(now) && e.visibility.allows(&e.owner, reader))
                .cloned()
                .collect())
        })?
    }
}

/// What the state knows of one version of a key.
enum Found {
    /// The current version's entry (`None`: deleted), as the reader may see it.
    Current(Option<ContextEntry>),
    /// A past version, to read from the log.
    Past(ContextVersion),
    /// No such version.
    Nothing,
}

/// The version a set or delete of `key` by `actor` gets, if its condition holds and the actor
/// may see the current entry.
fn next_version(
    state: &State,
    actor: &AgentId,
    key: &ContextKey,
    condition: SetCondition,
    now: Timestamp,
) -> Result<u64> {
    let version = state.context.version(key);
    let live = state.context.current(key).filter(|e| !e.expired(now));
    if let Some(entry) = live {
        visible(entry, actor)?;
    }
    let holds = match condition {
        SetCondition::Always => true,
        SetCondition::VersionIs(expected) => expected == version && (live.is_some() || expected == 0),
        SetCondition::Absent => live.is_none(),
    };
    if !holds {
        let expected = match condition {
            SetCondition::VersionIs(v) => format!("version {v}"),
            _ => "absent".to_owned(),
        };
        return Err(Error::VersionMismatch { key: key.to_string(), expected, found: version });
    }
    Ok(version + 1)
}

pub(super) fn visible<'a>(entry: &'a ContextEntry, reader: &AgentId) -> Result<&'a ContextEntry> {
    if entry.visibility.allows(&entry.owner, reader) {
        return Ok(entry);
    }
    Err(Error::NotVisible {
        key: entry.key.to_string(),
        reader: reader.to_string(),
        visibility: format!("{:?}", entry.visibility),
    })
}
