//! The lock file's page (log-format.md, "Lock file"): 64-bit words that processes map shared and
//! access atomically, so the layout is given in words as well as in bytes.

use super::Field;

/// File name of the lock file inside the log directory.
pub const LOCK_FILE: &str = "log.lock";
/// `b"MAOSLCK\0"`.
pub const LOCK_MAGIC: [u8; 8] = *b"MAOSLCK\0";
/// Version of the lock file layout.
pub const LOCK_VERSION: u64 = 1;
/// Size of the lock file.
pub const LOCK_FILE_LEN: usize = 4096;

const F_MAGIC: Field = Field::first("lock magic", 8);
const F_VERSION: Field = F_MAGIC.then("lock version", 8);
const F_BOOT_ID: Field = F_VERSION.then("boot id", 16);
const F_TAIL_LSN: Field = F_BOOT_ID.then("tail LSN", 8);
const F_TAIL_SEGMENT: Field = F_TAIL_LSN.then("tail segment", 8);
const F_TAIL_OFFSET: Field = F_TAIL_SEGMENT.then("tail offset", 8);
const F_WRITE_END: Field = F_TAIL_OFFSET.then("write end", 8);
const F_DURABLE_LSN: Field = F_WRITE_END.then("durable LSN", 8);
const F_LAST_TIME: Field = F_DURABLE_LSN.then("last time", 8);
const F_LAST_FRAME: Field = F_LAST_TIME.then("last frame", 8);
const F_SYNC_FAILURES: Field = F_LAST_FRAME.then("sync failures", 8);
const F_SYNC_REPAIRED: Field = F_SYNC_FAILURES.then("sync failures repaired", 8);
const F_NAMES_SYNCED: Field = F_SYNC_REPAIRED.then("names synced", 8);
const F_RESERVED: Field = F_NAMES_SYNCED.then("reserved", 3984);
const _: () = assert!(F_RESERVED.end() == LOCK_FILE_LEN);

/// The word (8-byte index) of a field that starts on a word.
const fn word(f: Field) -> usize {
    assert!(f.at.is_multiple_of(8));
    f.at / 8
}

/// Word of the magic.
pub const W_MAGIC: usize = word(F_MAGIC);
/// Word of the version.
pub const W_VERSION: usize = word(F_VERSION);
/// Word of the first 8 bytes of the boot id.
pub const W_BOOT_ID_LO: usize = word(F_BOOT_ID);
/// Word of the last 8 bytes of the boot id.
pub const W_BOOT_ID_HI: usize = W_BOOT_ID_LO + 1;
/// Word of the tail LSN.
pub const W_TAIL_LSN: usize = word(F_TAIL_LSN);
/// Word of the tail segment.
pub const W_TAIL_SEGMENT: usize = word(F_TAIL_SEGMENT);
/// Word of the tail offset.
pub const W_TAIL_OFFSET: usize = word(F_TAIL_OFFSET);
/// Word of the write end.
pub const W_WRITE_END: usize = word(F_WRITE_END);
/// Word of the durable LSN.
pub const W_DURABLE_LSN: usize = word(F_DURABLE_LSN);
/// Word of the last record's time.
pub const W_LAST_TIME: usize = word(F_LAST_TIME);
/// Word of the last frame's offset.
pub const W_LAST_FRAME: usize = word(F_LAST_FRAME);
/// Word of the number of segment syncs that failed in this boot.
pub const W_SYNC_FAILURES: usize = word(F_SYNC_FAILURES);
/// Word of the number of failed syncs whose lost bytes were written again and synced.
pub const W_SYNC_REPAIRED: usize = word(F_SYNC_REPAIRED);
/// Word that says (1) whether an open in the boot the page names synced the directories holding
/// the log.
pub const W_NAMES_SYNCED: usize = word(F_NAMES_SYNCED);
/// Words in use (the reserved rest of the page is zero).
pub const WORDS: usize = word(F_RESERVED);
