//! Context commands and queries: set (with conditions), delete, get (visibility and expiry),
//! past versions, listing by prefix.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{require_agent, Coordinator};
use crate::error::{Error, Result};
use crate::model::{Access, AgentId, ContextEntry, ContextKey, Event, Recorded, SetCondition, Visibility};
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
    ///
    /// # Errors
    /// As [`Coordinator::set_context_with`].
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
    /// version.
    ///
    /// # Errors
    /// As [`Coordinator::set_context_with`]: [`Error::VersionMismatch`] unless the key is at `version` with a
    /// live value (or `version` is 0 and the key was never set).
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
    ///
    /// # Errors
    /// [`Error::ValueTooDeep`] or [`Error::ValueTooLarge`] for a value past the limits;
    /// [`Error::UnknownAgent`] unless `owner` is registered and active; [`Error::NotVisible`] if the current
    /// value's visibility excludes `owner`; [`Error::VersionMismatch`] if the condition does not hold; and
    /// those of every [command](Coordinator#errors).
    pub async fn set_context_with(
        &self,
        owner: &AgentId,
        key: &ContextKey,
        value: serde_json::Value,
        opts: SetOptions,
    ) -> Result<u64> {
        self.check_value(&format!("context key {key}"), &value)?;
        let (id, key) = (owner.clone(), key.clone());
        let (_, version) = self
            .execute(owner, move |state, now| {
                require_agent(state, &id)?;
                let version = next_version(state, &id, &key, opts.condition, now)?;
                let event = Event::ContextUpdated {
                    key: key.clone(),
                    value: value.clone(),
                    visibility: opts.visibility.clone(),
                    expires_at: opts.expires_in.map(|d| now.plus(d)),
                    metadata: opts.metadata.clone(),
                    version,
                };
                Ok((vec![event], version))
            })
            .await?;
        Ok(version)
    }

    /// Deletes a key (it reads as absent; its versions stay readable); returns the new version.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `actor` is registered and active; [`Error::ContextAbsent`] if the key
    /// has no live value (never set, deleted or expired: nothing is appended); [`Error::NotVisible`] if the
    /// current value's visibility excludes `actor`; and those of every [command](Coordinator#errors).
    pub async fn delete_context(&self, actor: &AgentId, key: &ContextKey) -> Result<u64> {
        let (id, key) = (actor.clone(), key.clone());
        let (_, version) = self
            .execute(actor, move |state, now| {
                require_agent(state, &id)?;
                let live = match state.context.current(&key) {
                    Some(entry) => readable(entry, &id, now)?,
                    None => None,
                };
                if live.is_none() {
                    return Err(Error::ContextAbsent { key: key.clone() });
                }
                let version = next_version(state, &id, &key, SetCondition::Always, now)?;
                Ok((vec![Event::ContextDeleted { key: key.clone(), version }], version))
            })
            .await?;
        Ok(version)
    }

    /// The current entry of a key as `reader` sees it now: `None` if absent, deleted or expired;
    /// [`Error::NotVisible`] if its visibility excludes the reader (the rule of
    /// [`model::access`](crate::model::access), decided with the time a command run now would
    /// use).
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `reader` is registered and active; [`Error::NotVisible`]; and those of
    /// every [query](Coordinator#errors).
    pub fn get_context(&self, reader: &AgentId, key: &ContextKey) -> Result<Option<ContextEntry>> {
        self.read_at(|s, now| {
            require_agent(s, reader)?;
            match s.context.current(key) {
                Some(e) => Ok(readable(e, reader, now)?.cloned()),
                None => Ok(None),
            }
        })?
    }

    /// Version `version` (counted from 1) of a key as `reader` sees it now: `None` if there is
    /// no such version, it was a delete, or it expired (at the `expires_at` it was set with);
    /// [`Error::NotVisible`] if its visibility excludes the reader. The same rule as
    /// [`Coordinator::get_context`], applied to that version. Past versions are read from the
    /// log: [`Error::VersionCompacted`] once compaction removed their record.
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `reader` is registered and active; [`Error::NotVisible`];
    /// [`Error::VersionCompacted`]; reading a past version's record fails as
    /// [`Log::reader_from`](crate::Log::reader_from) and [`LogReader::next`](crate::LogReader::next) do, and
    /// [`Error::Decode`] if it does not decode or is not that version; and those of every
    /// [query](Coordinator#errors).
    pub fn get_context_version(
        &self,
        reader: &AgentId,
        key: &ContextKey,
        version: u64,
    ) -> Result<Option<ContextEntry>> {
        let (found, now) = self.read_at(|s, now| {
            require_agent(s, reader)?;
            if version == s.context.version(key) {
                let current = match s.context.current(key) {
                    Some(e) => readable(e, reader, now)?.cloned(),
                    None => None,
                };
                return Ok((Found::Current(current), now));
            }
            Ok((s.context.at_version(key, version).copied().map_or(Found::Nothing, Found::Past), now))
        })??;
        match found {
            Found::Current(entry) => Ok(entry),
            Found::Past(ContextVersion { lsn, created_at: Some(created_at) }) => {
                let entry = self.read_context_version(key, version, lsn, created_at)?;
                Ok(readable(&entry, reader, now)?.is_some().then_some(entry))
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
        let compacted = |first| Error::VersionCompacted { key: key.clone(), version, lsn, first };
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

    /// The current entries whose keys start with `prefix` that `reader` may read now, in key
    /// order: expired entries and those whose visibility excludes the reader are left out (the
    /// rule of [`model::access`](crate::model::access)).
    ///
    /// # Errors
    /// [`Error::UnknownAgent`] unless `reader` is registered and active; and those of every
    /// [query](Coordinator#errors).
    pub fn list_context(&self, reader: &AgentId, prefix: &str) -> Result<Vec<ContextEntry>> {
        self.read_at(|s, now| {
            require_agent(s, reader)?;
            Ok(s.context
                .with_prefix(prefix)
                .filter(|e| e.access(reader, now) == Access::Readable)
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
    let live = match state.context.current(key) {
        Some(entry) => readable(entry, actor, now)?,
        None => None,
    };
    let holds = match condition {
        SetCondition::Always => true,
        SetCondition::VersionIs(expected) => expected == version && (live.is_some() || expected == 0),
        SetCondition::Absent => live.is_none(),
    };
    if !holds {
        let expected = match condition {
            // The version matches but the key is deleted or expired: no version matches it.
            SetCondition::VersionIs(v) if v == version => {
                format!("version {v} of a live value (the key is deleted or expired: set it with the Absent condition)")
            }
            SetCondition::VersionIs(v) => format!("version {v}"),
            _ => "absent".to_owned(),
        };
        return Err(Error::VersionMismatch { key: key.clone(), expected, found: version });
    }
    Ok(version + 1)
}

/// `entry` as `reader` may read it at `now` ([`ContextEntry::access`]): `None` once it expired,
/// [`Error::NotVisible`] if its visibility excludes the reader.
fn readable<'a>(
    entry: &'a ContextEntry,
    reader: &AgentId,
    now: Timestamp,
) -> Result<Option<&'a ContextEntry>> {
    match entry.access(reader, now) {
        Access::Readable => Ok(Some(entry)),
        Access::Expired => Ok(None),
        Access::NotVisible => Err(not_visible(&entry.key, reader, &entry.visibility)),
    }
}

/// The error of a read whose visibility excludes the reader.
pub(super) fn not_visible(key: &ContextKey, reader: &AgentId, visibility: &Visibility) -> Error {
    Error::NotVisible { key: key.clone(), reader: reader.clone(), visibility: format!("{visibility:?}") }
}
