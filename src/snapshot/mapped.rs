//! A version-3 snapshot read in place: the blob mapped (or held, on backends without maps), its
//! directory checked when it opens, every other block checked the first time a read touches
//! it. It is the [`Base`] a [`State`] opened from it stands on.

use std::cmp::Reverse;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::backend::BlobBytes;
use crate::format::snapshot_body::{
    fnv1a64, CheckedBody, HashEntry, PendingEntry, Section, HASH_ENTRY_LEN, PENDING_ENTRY_LEN,
};
use crate::format::{u32_at, u64_at, Damage};
use crate::model::{ContextKey, Priority, Task};
use crate::projection::base::{Base, PendingKey};
use crate::projection::{KeyHistory, State, StateImage};
use crate::types::Lsn;

use super::sections::priority_of;
use super::HEADER_LEN;

/// The bytes of a blob from the end of the snapshot header on.
struct Body(BlobBytes);

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        let bytes = (*self.0).as_ref();
        bytes.get(HEADER_LEN..).unwrap_or_default()
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes", self.as_ref().len())
    }
}

/// A version-3 snapshot, read on demand.
#[derive(Debug)]
pub(crate) struct MappedSnapshot {
    body: CheckedBody<Body>,
    /// The blob, for messages.
    location: PathBuf,
    lsn: Lsn,
    /// Where the log said the record at `lsn` is.
    position: Option<(Lsn, u64)>,
    tasks: u32,
    keys: u32,
    damage: Mutex<Option<String>>,
}

impl MappedSnapshot {
    /// Opens the body of `bytes` (a whole snapshot blob whose header checked out, version 3,
    /// with `body_crc` the CRC its header gives) and the state it describes: the meta section
    /// decoded, tasks and context left to be read on demand.
    ///
    /// # Errors
    /// What is wrong and at which byte offset of the file: the directory's CRC or layout, a
    /// section whose length does not fit its entries, the meta section.
    pub(crate) fn open(
        bytes: BlobBytes,
        body_crc: u32,
        location: PathBuf,
    ) -> Result<(StateImage<()>, Arc<MappedSnapshot>), Damage> {
        let body = Body(bytes);
        let dir_len = crate::format::snapshot_body::directory_len_of(body.as_ref()).map_err(shift)?;
        let directory = body
            .as_ref()
            .get(..dir_len)
            .ok_or_else(|| Damage::at(HEADER_LEN, "body shorter than its directory"))?;
        let computed = crc32fast::hash(directory);
        if computed != body_crc {
            return Err(Damage::at(
                HEADER_LEN,
                format!("directory checksum mismatch (stored {body_crc:#010x}, computed {computed:#010x})"),
            ));
        }
        let body = CheckedBody::new(body).map_err(shift)?;
        let entries = |section: Section, size: usize| -> Result<u32, Damage> {
            let len = body.section_len(section);
            if len % size != 0 {
                return Err(Damage::at(
                    HEADER_LEN,
                    format!("{section:?} holds {len} bytes, not a multiple of {size}"),
                ));
            }
            u32::try_from(len / size).map_err(|_| Damage::at(HEADER_LEN, format!("{section:?} is too long")))
        };
        let tasks = entries(Section::TaskOffsets, 8)?.saturating_sub(1);
        let keys = entries(Section::ContextOffsets, 8)?.saturating_sub(1);
        if entries(Section::TaskIds, HASH_ENTRY_LEN)? != tasks {
            return Err(Damage::at(HEADER_LEN, format!("{tasks} tasks but a different number of task ids")));
        }
        entries(Section::IdempotencyKeys, HASH_ENTRY_LEN)?;
        entries(Section::Pending, PENDING_ENTRY_LEN)?;
        entries(Section::InProgress, 4)?;
        let position = match body.all(Section::LogPosition).map_err(shift)? {
            [] => None,
            bytes if bytes.len() == 16 => Some((Lsn(u64_at(bytes, 0)), u64_at(bytes, 8))),
            bytes => {
                return Err(Damage::at(
                    HEADER_LEN,
                    format!("LogPosition holds {} bytes, not 0 or 16", bytes.len()),
                ))
            }
        };
        let meta = body.all(Section::Meta).map_err(shift)?;
        let image: StateImage<()> = rmp_serde::from_slice(meta).map_err(|e| {
            Damage::at(HEADER_LEN + body.directory_len(), format!("meta section does not decode: {e}"))
        })?;
        let snapshot = MappedSnapshot {
            body,
            location,
            lsn: image.next_lsn,
            position,
            tasks,
            keys,
            damage: Mutex::new(None),
        };
        Ok((image, Arc::new(snapshot)))
    }

    /// Checks every block (what a full check of the file does before decoding it all).
    ///
    /// # Errors
    /// The first block that fails its CRC, at its offset in the file.
    pub(crate) fn check_all(&self) -> Result<(), Damage> {
        self.body.check_all().map_err(shift)
    }

    /// Checks what a read on demand trusts: the offsets of tasks and keys tile their sections,
    /// tasks are in creation order (by creation LSN), keys in strictly increasing order, and the index sections
    /// are exactly those the tasks make. `tasks` and `keys` are the decoded tasks and keys, in
    /// slot and key order.
    ///
    /// # Errors
    /// The first disagreement, naming the section.
    pub(crate) fn check_indexes(&self, tasks: &[Task], keys: &[ContextKey]) -> Result<(), Damage> {
        let at = |section: Section| {
            Damage::at(
                HEADER_LEN + self.body.section_offset(section),
                format!("{section:?} section disagrees with the tasks and keys"),
            )
        };
        for (offsets, data, count) in [
            (Section::TaskOffsets, Section::Tasks, self.tasks),
            (Section::ContextOffsets, Section::Context, self.keys),
        ] {
            let bytes = self.body.all(offsets).map_err(shift)?;
            let first = u64_at(bytes, 0);
            let last = bytes.len().checked_sub(8).map_or(0, |end| u64_at(bytes, end));
            if first != 0
                || last != self.body.section_len(data) as u64
                || count as usize + 1 != bytes.len() / 8
            {
                return Err(at(offsets));
            }
        }
        if tasks.len() != self.tasks as usize
            || tasks.iter().zip(tasks.iter().skip(1)).any(|(a, b)| a.created_lsn > b.created_lsn)
        {
            return Err(at(Section::Tasks));
        }
        if keys.len() != self.keys as usize
            || keys.iter().zip(keys.iter().skip(1)).any(|(a, b)| a.as_str() >= b.as_str())
        {
            return Err(at(Section::Context));
        }
        let tasks: Vec<&Task> = tasks.iter().collect();
        let expected =
            super::sections::task_indexes(&tasks).map_err(|e| Damage::at(HEADER_LEN, e.to_string()))?;
        for (section, expected) in
            [Section::TaskIds, Section::IdempotencyKeys, Section::Pending, Section::InProgress]
                .into_iter()
                .zip(expected)
        {
            if self.body.all(section).map_err(shift)? != expected.as_slice() {
                return Err(at(section));
            }
        }
        Ok(())
    }

    /// The state this snapshot describes, standing on it.
    pub(crate) fn state(image: StateImage<()>, snapshot: Arc<MappedSnapshot>) -> State {
        State::on_base(image, snapshot)
    }

    /// `range` of `section`, as text naming the file and offset when it fails.
    fn read(&self, section: Section, range: Range<usize>) -> Result<&[u8], String> {
        self.body.read(section, range).map_err(|d| self.describe(&shift(d)))
    }

    fn describe(&self, damage: &Damage) -> String {
        format!("snapshot {} at byte {}: {}", self.location.display(), damage.offset, damage.reason)
    }

    /// Entry `index` of a section of `u64` offsets, and the one after it.
    fn bounds(&self, section: Section, index: u32) -> Result<Range<usize>, String> {
        let at = index as usize * 8;
        let bytes = self.read(section, at..at + 16)?;
        let (start, end) = (u64_at(bytes, 0), u64_at(bytes, 8));
        match (usize::try_from(start), usize::try_from(end)) {
            (Ok(start), Ok(end)) if start <= end => Ok(start..end),
            _ => Err(format!(
                "snapshot {}: {section:?} entry {index} ({start}..{end}) is not a range of this file",
                self.location.display()
            )),
        }
    }

    fn hash_entry(&self, section: Section, index: usize) -> Result<HashEntry, String> {
        let at = index * HASH_ENTRY_LEN;
        self.read(section, at..at + HASH_ENTRY_LEN).map(HashEntry::decode)
    }

    /// Slots of the entries of `section` whose hash is that of `name`.
    fn slots_by_hash(&self, section: Section, name: &str) -> Result<Vec<u32>, String> {
        let hash = fnv1a64(name.as_bytes());
        let count = self.body.section_len(section) / HASH_ENTRY_LEN;
        let (mut low, mut high) = (0, count);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.hash_entry(section, mid)?.hash < hash {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        let mut slots = Vec::new();
        for index in low..count {
            let entry = self.hash_entry(section, index)?;
            if entry.hash != hash {
                break;
            }
            slots.push(entry.slot);
        }
        Ok(slots)
    }

    fn pending_entry(&self, index: usize) -> Result<PendingKey, String> {
        let at = index * PENDING_ENTRY_LEN;
        let entry = PendingEntry::decode(self.read(Section::Pending, at..at + PENDING_ENTRY_LEN)?);
        let priority = priority_of(entry.priority).ok_or_else(|| {
            format!(
                "snapshot {}: pending entry {index} has priority {}",
                self.location.display(),
                entry.priority
            )
        })?;
        Ok((Reverse(priority), entry.lsn, entry.slot))
    }

    /// The first pending entry of priority at most `priority` (entries go highest first).
    fn pending_from(&self, priority: Priority) -> Result<usize, String> {
        let (mut low, mut high) = (0, self.body.section_len(Section::Pending) / PENDING_ENTRY_LEN);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.pending_entry(mid)?.0 < Reverse(priority) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        Ok(low)
    }

    /// The key bytes of context entry `index`, and where its history starts.
    fn key_bytes(&self, index: u32) -> Result<(&[u8], Range<usize>), String> {
        let range = self.bounds(Section::ContextOffsets, index)?;
        let entry = self.read(Section::Context, range.clone())?;
        let len = entry.get(..4).map(|b| u32_at(b, 0) as usize);
        match len.and_then(|len| entry.get(4..4 + len)) {
            Some(key) => Ok((key, range.start + 4 + key.len()..range.end)),
            None => Err(format!(
                "snapshot {}: context entry {index} is shorter than its key",
                self.location.display()
            )),
        }
    }
}

/// Damage at an offset of the body, as an offset of the file.
fn shift(damage: Damage) -> Damage {
    Damage { offset: damage.offset + HEADER_LEN as u64, reason: damage.reason }
}

impl Base for MappedSnapshot {
    fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn log_position(&self) -> Option<(Lsn, u64)> {
        self.position
    }

    fn task_count(&self) -> u32 {
        self.tasks
    }

    fn task(&self, slot: u32) -> Result<Task, String> {
        let range = self.bounds(Section::TaskOffsets, slot)?;
        let bytes = self.read(Section::Tasks, range)?;
        rmp_serde::from_slice(bytes).map_err(|e| {
            format!("snapshot {}: task in slot {slot} does not decode: {e}", self.location.display())
        })
    }

    fn slots_by_id(&self, id: &str) -> Result<Vec<u32>, String> {
        self.slots_by_hash(Section::TaskIds, id)
    }

    fn slots_by_idempotency_key(&self, key: &str) -> Result<Vec<u32>, String> {
        self.slots_by_hash(Section::IdempotencyKeys, key)
    }

    fn pending(
        &self,
        only: Option<Priority>,
        from: u32,
    ) -> Box<dyn Iterator<Item = Result<(u32, PendingKey), String>> + '_> {
        let count =
            u32::try_from(self.body.section_len(Section::Pending) / PENDING_ENTRY_LEN).unwrap_or(u32::MAX);
        let start = match only.map(|p| self.pending_from(p)).transpose() {
            Ok(start) => u32::try_from(start.unwrap_or(0)).unwrap_or(u32::MAX).max(from),
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let entries = (start..count).map(|i| self.pending_entry(i as usize).map(|key| (i, key)));
        match only {
            None => Box::new(entries),
            Some(p) => Box::new(
                entries.take_while(move |e| e.as_ref().map_or(true, |(_, (Reverse(q), ..))| *q == p)),
            ),
        }
    }

    fn in_progress(&self) -> Result<Vec<u32>, String> {
        let bytes = self.read(Section::InProgress, 0..self.body.section_len(Section::InProgress))?;
        Ok(bytes.chunks_exact(4).map(|b| u32_at(b, 0)).collect())
    }

    fn key_count(&self) -> u32 {
        self.keys
    }

    fn key(&self, index: u32) -> Result<ContextKey, String> {
        let (key, _) = self.key_bytes(index)?;
        let key = std::str::from_utf8(key).map_err(|e| {
            format!("snapshot {}: context key {index} is not UTF-8: {e}", self.location.display())
        })?;
        Ok(ContextKey::from_record(key))
    }

    fn key_history(&self, index: u32) -> Result<(ContextKey, KeyHistory), String> {
        let key = self.key(index)?;
        let (_, history) = self.key_bytes(index)?;
        let bytes = self.read(Section::Context, history)?;
        let history = rmp_serde::from_slice(bytes).map_err(|e| {
            format!("snapshot {}: history of context key {key} does not decode: {e}", self.location.display())
        })?;
        Ok((key, history))
    }

    fn key_lower_bound(&self, key: &str) -> Result<u32, String> {
        let (mut low, mut high) = (0, self.keys);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.key_bytes(mid)?.0 < key.as_bytes() {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        Ok(low)
    }

    fn check_all(&self) -> Result<(), String> {
        self.body
            .check_all()
            .map_err(|d| self.describe(&shift(d)))
            .inspect_err(|e| self.note_damage(e.clone()))
    }

    fn note_damage(&self, reason: String) {
        let mut damage = crate::log::lock(&self.damage);
        if damage.is_none() {
            tracing::warn!(%reason, "a read of the snapshot failed");
            *damage = Some(reason);
        }
    }

    fn damage(&self) -> Option<String> {
        crate::log::lock(&self.damage).clone()
    }
}
