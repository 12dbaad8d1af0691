//! Audit index chunks (log-format.md, "Audit index"): for one fixed range of LSNs, which records
//! name each task, agent, context key and event type, so that an audit reads only those.
//!
//! A chunk is read in three small pieces, each checked by its own CRC: the header with the
//! bucket table, the key entries of one bucket, and the postings of one key. So a lookup never
//! reads (or checksums) the whole chunk.

use super::{field, put, put_field, u32_at, u32_of, u64_of, Field};
use crate::types::Lsn;

/// `b"MAOSENT\0"`.
pub const ENTITY_INDEX_MAGIC: [u8; 8] = *b"MAOSENT\0";
/// Version of the chunk layout.
pub const ENTITY_INDEX_VERSION: u32 = 1;
/// Records per chunk: chunk *k* covers LSNs `1 + k·SPAN` up to `1 + (k + 1)·SPAN` (exclusive).
pub const CHUNK_SPAN: u64 = 1 << 16;
/// Size of the header.
pub const CHUNK_HEADER_LEN: usize = 64;
/// Buckets of the bucket table: a key's bucket is the top byte of its hash.
pub const BUCKETS: usize = 256;
/// Size of one bucket table entry: `u32` end (keys in this bucket and those before), `u32` CRC of
/// the bucket's key entries.
pub const BUCKET_LEN: usize = 8;
/// Where the key entries start: after the header and the bucket table.
pub const KEYS_AT: usize = CHUNK_HEADER_LEN + BUCKETS * BUCKET_LEN;
/// Size of one key entry: `u64` hash, `u32` first posting, `u32` posting count, `u32` CRC of
/// its postings, `u32` reserved.
pub const KEY_LEN: usize = 24;
/// Size of one posting: `u32` LSN − first LSN of the chunk.
pub const POSTING_LEN: usize = 4;

const F_MAGIC: Field = Field::first("audit index magic", 8);
const F_VERSION: Field = F_MAGIC.then("audit index version", 4);
const F_FLAGS: Field = F_VERSION.then("audit index flags", 4);
const F_FIRST: Field = F_FLAGS.then("first LSN", 8);
const F_END: Field = F_FIRST.then("end LSN", 8);
const F_KEYS: Field = F_END.then("key count", 8);
const F_POSTINGS: Field = F_KEYS.then("posting count", 8);
const F_TABLE_CRC: Field = F_POSTINGS.then("bucket table CRC", 4);
const F_RESERVED: Field = F_TABLE_CRC.then("reserved", 8);
const F_HEADER_CRC: Field = F_RESERVED.then("header CRC", 4);
const _: () = assert!(F_HEADER_CRC.end() == CHUNK_HEADER_LEN);
const F_KEY_HASH: Field = Field::first("key hash", 8);
const F_KEY_START: Field = F_KEY_HASH.then("first posting", 4);
const F_KEY_COUNT: Field = F_KEY_START.then("posting count", 4);
const F_KEY_CRC: Field = F_KEY_COUNT.then("postings CRC", 4);
const F_KEY_RESERVED: Field = F_KEY_CRC.then("key reserved", 4);
const _: () = assert!(F_KEY_RESERVED.end() == KEY_LEN);

/// What an entry of the index names. The tag is the first byte hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// A task id (`Event::task`).
    Task = 1,
    /// An agent id: the actor, or the agent the event is about.
    Agent = 2,
    /// A context key.
    Context = 3,
    /// An event type name (`Event::type_name`).
    Type = 4,
}

/// The 64-bit FNV-1a hash of the kind's tag byte followed by the name's UTF-8 bytes: how an
/// entry is found. Two names may share a hash; a reader checks every record it is pointed to.
#[must_use]
pub fn key_hash(kind: KeyKind, name: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    std::iter::once(kind as u8)
        .chain(name.bytes())
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The chunk that holds `lsn`: its first LSN.
#[must_use]
pub fn chunk_start(lsn: Lsn) -> Lsn {
    Lsn(lsn.get().saturating_sub(1) / CHUNK_SPAN * CHUNK_SPAN + 1)
}

/// The blob name of the chunk starting at `first`: `<20-digit first LSN>.ent`.
#[must_use]
pub fn chunk_name(first: Lsn) -> String {
    format!("{:020}.ent", first.get())
}

/// The first LSN of the chunk a blob name names, if it is one.
#[must_use]
pub fn chunk_of_name(name: &str) -> Option<Lsn> {
    let digits =
        name.strip_suffix(".ent").filter(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))?;
    let first = Lsn(digits.parse().ok()?);
    (first.get() >= 1 && chunk_start(first) == first).then_some(first)
}

/// A whole chunk: its first LSN and, per key hash, the LSNs that name it (as offsets from
/// `first`, ascending, each below [`CHUNK_SPAN`]).
#[must_use]
pub fn encode(first: Lsn, keys: &std::collections::BTreeMap<u64, Vec<u32>>) -> Vec<u8> {
    let postings: usize = keys.values().map(Vec::len).sum();
    let mut table = vec![0u8; BUCKETS * BUCKET_LEN];
    let mut entries = Vec::with_capacity(keys.len() * KEY_LEN);
    let mut posting_bytes = Vec::with_capacity(postings * POSTING_LEN);
    // Keys are in hash order, so each bucket's entries are contiguous.
    let mut bucket_crcs = vec![crc32fast::Hasher::new(); BUCKETS];
    let mut bucket_ends = [0u32; BUCKETS];
    for (n, (&hash, lsns)) in keys.iter().enumerate() {
        let start = u32::try_from(posting_bytes.len() / POSTING_LEN).unwrap_or(u32::MAX);
        let from = posting_bytes.len();
        for offset in lsns {
            posting_bytes.extend_from_slice(&offset.to_le_bytes());
        }
        let mut entry = [0u8; KEY_LEN];
        put_field(&mut entry, F_KEY_HASH, &hash.to_le_bytes());
        put_field(&mut entry, F_KEY_START, &start.to_le_bytes());
        put_field(&mut entry, F_KEY_COUNT, &u32::try_from(lsns.len()).unwrap_or(u32::MAX).to_le_bytes());
        let crc = crc32fast::hash(posting_bytes.get(from..).unwrap_or_default());
        put_field(&mut entry, F_KEY_CRC, &crc.to_le_bytes());
        let bucket = bucket(hash);
        if let Some(h) = bucket_crcs.get_mut(bucket) {
            h.update(&entry);
        }
        // Every bucket from this one on ends at least after this key.
        let end = u32::try_from(n + 1).unwrap_or(u32::MAX);
        for e in bucket_ends.iter_mut().skip(bucket) {
            *e = end;
        }
        entries.extend_from_slice(&entry);
    }
    for (b, (end, crc)) in bucket_ends.iter().zip(bucket_crcs).enumerate() {
        put(&mut table, b * BUCKET_LEN, &end.to_le_bytes());
        put(&mut table, b * BUCKET_LEN + 4, &crc.finalize().to_le_bytes());
    }
    let mut out = vec![0u8; CHUNK_HEADER_LEN];
    put_field(&mut out, F_MAGIC, &ENTITY_INDEX_MAGIC);
    put_field(&mut out, F_VERSION, &ENTITY_INDEX_VERSION.to_le_bytes());
    put_field(&mut out, F_FIRST, &first.get().to_le_bytes());
    put_field(&mut out, F_END, &(first.get() + CHUNK_SPAN).to_le_bytes());
    put_field(&mut out, F_KEYS, &(keys.len() as u64).to_le_bytes());
    put_field(&mut out, F_POSTINGS, &(postings as u64).to_le_bytes());
    put_field(&mut out, F_TABLE_CRC, &crc32fast::hash(&table).to_le_bytes());
    let crc = crc32fast::hash(out.get(..F_HEADER_CRC.at).unwrap_or_default());
    put_field(&mut out, F_HEADER_CRC, &crc.to_le_bytes());
    out.extend_from_slice(&table);
    out.extend_from_slice(&entries);
    out.extend_from_slice(&posting_bytes);
    out
}

/// The bucket of a key: the top byte of its hash.
fn bucket(hash: u64) -> usize {
    (hash >> 56) as usize
}

/// The header and bucket table of a chunk, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkHead {
    /// First LSN of the range.
    pub first: Lsn,
    /// Number of key entries.
    pub keys: u64,
    /// Number of postings.
    pub postings: u64,
    /// Per bucket: the end of its key entries (as a count) and their CRC.
    buckets: Vec<(u32, u32)>,
}

/// One key entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key's hash.
    pub hash: u64,
    /// Index of its first posting.
    pub start: u32,
    /// Number of its postings.
    pub count: u32,
    /// CRC of its postings' bytes.
    pub crc: u32,
}

impl ChunkHead {
    /// Decodes and checks the first [`KEYS_AT`] bytes of the chunk expected to start at
    /// `first`, whose blob holds `len` bytes in all.
    ///
    /// # Errors
    /// What is wrong, as text: magic, version, flags, reserved bytes, either CRC, the range, the
    /// counts against the length, a bucket table that does not rise to the key count.
    pub fn decode(bytes: &[u8], first: Lsn, len: u64) -> Result<ChunkHead, String> {
        let short = |e: super::Short| e.to_string();
        if field(bytes, F_MAGIC).map_err(short)? != ENTITY_INDEX_MAGIC.as_slice() {
            return Err("bad magic".into());
        }
        let crc = crc32fast::hash(bytes.get(..F_HEADER_CRC.at).unwrap_or_default());
        if u32_of(bytes, F_HEADER_CRC).map_err(short)? != crc {
            return Err("header checksum mismatch".into());
        }
        let version = u32_of(bytes, F_VERSION).map_err(short)?;
        if version != ENTITY_INDEX_VERSION {
            return Err(format!("unsupported version {version}"));
        }
        if u32_of(bytes, F_FLAGS).map_err(short)? != 0 || field(bytes, F_RESERVED).map_err(short)? != [0u8; 8]
        {
            return Err("flags or reserved bytes are not zero".into());
        }
        let (start, end) = (u64_of(bytes, F_FIRST).map_err(short)?, u64_of(bytes, F_END).map_err(short)?);
        if start != first.get() || end != first.get() + CHUNK_SPAN {
            return Err(format!("covers LSNs {start}..{end}, not the chunk of LSN {first}"));
        }
        let keys = u64_of(bytes, F_KEYS).map_err(short)?;
        let postings = u64_of(bytes, F_POSTINGS).map_err(short)?;
        let expected = keys
            .checked_mul(KEY_LEN as u64)
            .and_then(|k| postings.checked_mul(POSTING_LEN as u64).and_then(|p| k.checked_add(p)))
            .and_then(|n| n.checked_add(KEYS_AT as u64));
        if expected != Some(len) {
            return Err(format!("{len} bytes, not what {keys} keys and {postings} postings take"));
        }
        let table = bytes.get(CHUNK_HEADER_LEN..KEYS_AT).ok_or("shorter than its bucket table")?;
        if u32_of(bytes, F_TABLE_CRC).map_err(short)? != crc32fast::hash(table) {
            return Err("bucket table checksum mismatch".into());
        }
        let buckets: Vec<(u32, u32)> =
            table.chunks_exact(BUCKET_LEN).map(|b| (u32_at(b, 0), u32_at(b, 4))).collect();
        let rising = buckets.windows(2).all(|w| matches!(w, [a, b] if a.0 <= b.0));
        if !rising || buckets.last().map(|b| u64::from(b.0)) != Some(keys) {
            return Err("bucket table does not rise to the key count".into());
        }
        Ok(ChunkHead { first, keys, postings, buckets })
    }

    /// The key entries of the bucket of `hash`: their byte range in the chunk and their CRC.
    #[must_use]
    pub fn bucket_of(&self, hash: u64) -> (std::ops::Range<u64>, u32) {
        let b = bucket(hash);
        let start = b.checked_sub(1).and_then(|p| self.buckets.get(p)).map_or(0, |x| x.0);
        let (end, crc) = self.buckets.get(b).copied().unwrap_or((start, 0));
        let at = |n: u32| KEYS_AT as u64 + u64::from(n) * KEY_LEN as u64;
        (at(start)..at(end.max(start)), crc)
    }

    /// The byte range of the postings of `key`, if they lie inside the chunk.
    #[must_use]
    pub fn postings_of(&self, key: &KeyEntry) -> Option<std::ops::Range<u64>> {
        let end = u64::from(key.start).checked_add(u64::from(key.count))?;
        if end > self.postings {
            return None;
        }
        let base = KEYS_AT as u64 + self.keys * KEY_LEN as u64;
        Some(base + u64::from(key.start) * POSTING_LEN as u64..base + end * POSTING_LEN as u64)
    }
}

/// Decodes the key entries of one bucket, checked against the bucket's CRC.
///
/// # Errors
/// A checksum mismatch, as text.
pub fn decode_keys(bytes: &[u8], crc: u32) -> Result<Vec<KeyEntry>, String> {
    if crc32fast::hash(bytes) != crc {
        return Err("bucket checksum mismatch".into());
    }
    let entry = |e: &[u8]| -> Result<KeyEntry, super::Short> {
        Ok(KeyEntry {
            hash: u64_of(e, F_KEY_HASH)?,
            start: u32_of(e, F_KEY_START)?,
            count: u32_of(e, F_KEY_COUNT)?,
            crc: u32_of(e, F_KEY_CRC)?,
        })
    };
    bytes.chunks_exact(KEY_LEN).map(|e| entry(e).map_err(|s| s.to_string())).collect()
}

/// Decodes the postings of `key` into LSNs of the chunk starting at `first`, checked against the
/// key's CRC.
///
/// # Errors
/// A checksum mismatch, or a posting outside the chunk, as text.
pub fn decode_postings(bytes: &[u8], key: &KeyEntry, first: Lsn) -> Result<Vec<Lsn>, String> {
    if crc32fast::hash(bytes) != key.crc {
        return Err("postings checksum mismatch".into());
    }
    bytes
        .chunks_exact(POSTING_LEN)
        .map(|p| {
            let offset = u32_at(p, 0);
            if u64::from(offset) >= CHUNK_SPAN {
                return Err(format!("posting {offset} lies outside the chunk"));
            }
            Ok(Lsn(first.get() + u64::from(offset)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[allow(clippy::cast_possible_truncation)] // test chunks are small
    fn lookup(bytes: &[u8], first: Lsn, hash: u64) -> Result<Vec<Lsn>, String> {
        let head = ChunkHead::decode(&bytes[..KEYS_AT], first, bytes.len() as u64)?;
        let (range, crc) = head.bucket_of(hash);
        let keys = decode_keys(&bytes[range.start as usize..range.end as usize], crc)?;
        let Some(key) = keys.iter().find(|k| k.hash == hash) else { return Ok(Vec::new()) };
        let range = head.postings_of(key).ok_or("outside")?;
        decode_postings(&bytes[range.start as usize..range.end as usize], key, first)
    }

    #[test]
    fn a_chunk_round_trips_and_every_key_is_found() {
        let first = chunk_start(Lsn(CHUNK_SPAN * 3 + 10));
        assert_eq!(first, Lsn(CHUNK_SPAN * 3 + 1));
        let mut keys = BTreeMap::new();
        for i in 0..300u32 {
            let hash = key_hash(KeyKind::Task, &format!("t{i}"));
            keys.insert(hash, vec![i, i + 7, 60_000]);
        }
        keys.insert(u64::MAX, vec![1]);
        keys.insert(0, vec![2]);
        let bytes = encode(first, &keys);
        for (&hash, lsns) in &keys {
            let found = lookup(&bytes, first, hash).unwrap();
            let expected: Vec<Lsn> = lsns.iter().map(|&o| Lsn(first.get() + u64::from(o))).collect();
            assert_eq!(found, expected);
        }
        assert_eq!(lookup(&bytes, first, key_hash(KeyKind::Agent, "t1")).unwrap(), Vec::<Lsn>::new());
        assert!(lookup(&bytes, Lsn(1), 0).is_err(), "another chunk's range");
    }

    #[test]
    fn every_flipped_byte_is_caught_or_harmless() {
        let first = Lsn(1);
        let keys: BTreeMap<u64, Vec<u32>> =
            (0..40u32).map(|i| (key_hash(KeyKind::Agent, &format!("a{i}")), vec![i, i + 100])).collect();
        let bytes = encode(first, &keys);
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            for (&hash, lsns) in &keys {
                if let Ok(found) = lookup(&damaged, first, hash) {
                    let expected: Vec<Lsn> = lsns.iter().map(|&o| Lsn(1 + u64::from(o))).collect();
                    assert_eq!(found, expected, "byte {at} flipped: a wrong answer");
                }
            }
        }
    }

    #[test]
    fn names_and_hashes_are_fixed() {
        assert_eq!(chunk_name(Lsn(1)), "00000000000000000001.ent");
        assert_eq!(chunk_of_name("00000000000000065537.ent"), Some(Lsn(65537)));
        assert_eq!(chunk_of_name("00000000000000000002.ent"), None, "not a chunk start");
        assert_eq!(chunk_of_name("1.ent"), None);
        // FNV-1a 64 of the bytes [1, b'a'], as log-format.md documents it.
        assert_eq!(key_hash(KeyKind::Task, "a"), 0x082f_4307_b4e8_c4d7);
    }
}
