//! Every on-disk layout of the store, section by section as in log-format.md: pure encoding and
//! decoding of byte slices (no file handles), so that the fuzz targets call it directly.
//!
//! | log-format.md section | module |
//! | --- | --- |
//! | "Segment header", "Durable mark" | [`segment`] |
//! | "Record frame" | [`frame`] |
//! | "Index files" | [`index`] |
//! | "Lock file" | [`lock_file`] |
//! | "Snapshots" | [`snapshot`] (header), [`snapshot_body`] (version-3 body) |
//! | "Cursor files" | [`cursor`] |
//! | "Compacted records file" | [`compacted`] |
//! | "Audit index" | [`entity_index`] |
//!
//! Fixed layouts are declared field by field with [`Field`]: each field starts where the one
//! before it ends, and a compile-time assertion checks that the last one ends at the layout's
//! length. Readers take fields through [`field`], [`u32_of`] and [`u64_of`], which answer
//! [`Short`] (naming the field) when the buffer is too short, never a zero.

pub mod compacted;
pub mod cursor;
pub mod entity_index;
pub mod frame;
pub mod index;
pub mod lock_file;
pub mod segment;
pub mod snapshot;
pub mod snapshot_body;

pub use frame::*;
pub use segment::*;

/// One field of a fixed layout: its name, where it starts and how many bytes it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Its name in log-format.md.
    pub name: &'static str,
    /// Byte offset from the start of the layout.
    pub at: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Field {
    /// The first field of a layout.
    #[must_use]
    pub const fn first(name: &'static str, len: usize) -> Field {
        Field { name, at: 0, len }
    }

    /// The field that follows this one.
    #[must_use]
    pub const fn then(self, name: &'static str, len: usize) -> Field {
        Field { name, at: self.end(), len }
    }

    /// The offset just past this field.
    #[must_use]
    pub const fn end(self) -> usize {
        self.at + self.len
    }

    /// Its byte range.
    #[must_use]
    pub const fn range(self) -> std::ops::Range<usize> {
        self.at..self.end()
    }
}

/// A buffer too short for a field it must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    /// The field.
    pub field: &'static str,
    /// The length the buffer needs to hold it.
    pub needed: usize,
    /// The length it has.
    pub available: usize,
}

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} needs {} bytes, only {} there", self.field, self.needed, self.available)
    }
}

/// What is wrong with the bytes of a file, and where: the byte offset of the field or range that
/// does not check out (the start of the range a checksum covers, for a checksum that fails; the
/// file's length, for a file that ends too soon). Its text is the reason alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// What is wrong, as text.
    pub reason: String,
}

impl Damage {
    /// Damage at `offset`.
    pub fn at(offset: usize, reason: impl Into<String>) -> Damage {
        Damage { offset: offset as u64, reason: reason.into() }
    }

    /// Damage at field `f`.
    pub fn field(f: Field, reason: impl Into<String>) -> Damage {
        Damage::at(f.at, reason)
    }
}

impl From<Short> for Damage {
    /// A buffer that ends before a field: damage where it ends.
    fn from(short: Short) -> Damage {
        Damage::at(short.available, short.to_string())
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The bytes of `f` in `buf`.
///
/// # Errors
/// [`Short`] if `buf` ends before the field does.
pub fn field(buf: &[u8], f: Field) -> Result<&[u8], Short> {
    buf.get(f.range()).ok_or(Short { field: f.name, needed: f.end(), available: buf.len() })
}

/// A little-endian `u32` field.
///
/// # Errors
/// [`Short`] if `buf` ends before the field does.
pub fn u32_of(buf: &[u8], f: Field) -> Result<u32, Short> {
    let bytes = field(buf, Field { len: 4, ..f })?;
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes);
    Ok(u32::from_le_bytes(b))
}

/// A little-endian `u64` field.
///
/// # Errors
/// [`Short`] if `buf` ends before the field does.
pub fn u64_of(buf: &[u8], f: Field) -> Result<u64, Short> {
    let bytes = field(buf, Field { len: 8, ..f })?;
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    Ok(u64::from_le_bytes(b))
}

/// Writes `bytes` (as long as the field) into field `f` of `buf`, a buffer of the layout's
/// length (a shorter one is a bug of the caller: nothing is written, and debug builds assert).
pub fn put_field(buf: &mut [u8], f: Field, bytes: &[u8]) {
    debug_assert_eq!(bytes.len(), f.len, "{}", f.name);
    debug_assert!(buf.len() >= f.end(), "{}", f.name);
    put(buf, f.at, bytes);
}

/// Whether any byte is non-zero.
#[must_use]
pub fn nonzero(bytes: &[u8]) -> bool {
    // Word-at-a-time: this runs over whole segment tails during verification.
    let (chunks, rest) = bytes.as_chunks::<8>();
    chunks.iter().any(|c| u64::from_ne_bytes(*c) != 0) || rest.iter().any(|&b| b != 0)
}

/// Copies `bytes` to `buf[at..]` if they fit.
pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// A file offset (or length) as an index into a buffer of the file's bytes, saturating: an offset
/// the address space cannot hold is past the end of every buffer, so `buf.get(offset_index(at)..)`
/// is `None` for it as for any other offset past the end.
pub(crate) fn offset_index(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

/// The `u32` at `at` of a buffer whose length the caller checked (a short one reads as zeros).
pub(crate) fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = buf.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

/// The `u64` at `at` of a buffer whose length the caller checked (a short one reads as zeros).
pub(crate) fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = buf.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_buffer_names_the_field_it_lacks() {
        let f = Field::first("magic", 8).then("version", 4);
        assert_eq!(u32_of(&[0; 12], f), Ok(0));
        let err = u32_of(&[0; 10], f).unwrap_err();
        assert_eq!(err, Short { field: "version", needed: 12, available: 10 });
        assert_eq!(err.to_string(), "version needs 12 bytes, only 10 there");
    }
}
