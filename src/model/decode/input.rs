//! The `MessagePack` primitives the direct decoder reads records with: markers, lengths, strings,
//! integers of any width, options, and JSON values as `serde_json`'s `Value` reads itself through
//! rmp-serde. Every reader returns `None` on anything unexpected, leaving the payload to rmp-serde.

use std::collections::BTreeMap;

use rmp::Marker;
use serde_json::{Map, Number, Value};

use crate::types::Timestamp;

/// Deepest JSON nesting read here; deeper values are left to rmp-serde.
const MAX_DEPTH: u32 = 64;

/// The unread rest of a payload.
pub(super) struct Input<'a> {
    pub(super) rest: &'a [u8],
}

impl<'a> Input<'a> {
    pub(super) fn marker(&mut self) -> Option<Marker> {
        rmp::decode::read_marker(&mut self.rest).ok()
    }

    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(taken)
    }

    pub(super) fn be<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A length of `bytes` big-endian bytes.
    pub(super) fn len(&mut self, bytes: usize) -> Option<usize> {
        match bytes {
            1 => Some(usize::from(self.be::<1>()?[0])),
            2 => Some(usize::from(u16::from_be_bytes(self.be()?))),
            _ => usize::try_from(u32::from_be_bytes(self.be()?)).ok(),
        }
    }

    /// The number of entries a map or array marker announces (`None` for other markers).
    fn entries_after(&mut self, marker: Marker) -> Option<usize> {
        match marker {
            Marker::FixMap(n) | Marker::FixArray(n) => Some(usize::from(n)),
            Marker::Map16 | Marker::Array16 => self.len(2),
            Marker::Map32 | Marker::Array32 => self.len(4),
            _ => None,
        }
    }

    pub(super) fn map_len(&mut self) -> Option<usize> {
        match self.marker()? {
            marker @ (Marker::FixMap(_) | Marker::Map16 | Marker::Map32) => self.entries_after(marker),
            _ => None,
        }
    }

    /// A map of exactly `n` entries.
    pub(super) fn map(&mut self, n: usize) -> Option<()> {
        (self.map_len()? == n).then_some(())
    }

    pub(super) fn array_len(&mut self) -> Option<usize> {
        match self.marker()? {
            marker @ (Marker::FixArray(_) | Marker::Array16 | Marker::Array32) => self.entries_after(marker),
            _ => None,
        }
    }

    pub(super) fn str_after(&mut self, marker: Marker) -> Option<&'a [u8]> {
        let len = match marker {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => self.len(1)?,
            Marker::Str16 => self.len(2)?,
            Marker::Str32 => self.len(4)?,
            _ => return None,
        };
        self.take(len)
    }

    /// The bytes of a string, unchecked (for names compared with known ones).
    pub(super) fn raw_str(&mut self) -> Option<&'a [u8]> {
        let marker = self.marker()?;
        self.str_after(marker)
    }

    pub(super) fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.raw_str()?).ok().map(str::to_owned)
    }

    /// The next entry's key must be `name` (every field name is under 32 bytes, so the encoder
    /// writes it as a fixstr: its marker byte, then the name); then reads its value.
    #[inline]
    pub(super) fn field<T>(&mut self, name: &[u8], read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        let marker = Marker::FixStr(u8::try_from(name.len()).ok().filter(|&n| n < 32)?).to_u8();
        let rest = self.rest.strip_prefix(&[marker])?.strip_prefix(name)?;
        self.rest = rest;
        read(self)
    }

    /// An integer of any width, as rmp-serde accepts one for an integer field.
    pub(super) fn int<T: TryFrom<i128>>(&mut self) -> Option<T> {
        let marker = self.marker()?;
        T::try_from(self.int_after(marker)?).ok()
    }

    pub(super) fn int_after(&mut self, marker: Marker) -> Option<i128> {
        Some(match marker {
            Marker::FixPos(n) => i128::from(n),
            Marker::FixNeg(n) => i128::from(n),
            Marker::U8 => i128::from(u8::from_be_bytes(self.be()?)),
            Marker::U16 => i128::from(u16::from_be_bytes(self.be()?)),
            Marker::U32 => i128::from(u32::from_be_bytes(self.be()?)),
            Marker::U64 => i128::from(u64::from_be_bytes(self.be()?)),
            Marker::I8 => i128::from(i8::from_be_bytes(self.be()?)),
            Marker::I16 => i128::from(i16::from_be_bytes(self.be()?)),
            Marker::I32 => i128::from(i32::from_be_bytes(self.be()?)),
            Marker::I64 => i128::from(i64::from_be_bytes(self.be()?)),
            _ => return None,
        })
    }

    pub(super) fn timestamp(&mut self) -> Option<Timestamp> {
        self.int().map(Timestamp)
    }

    /// `nil` as `None`, anything else through `read`.
    #[allow(clippy::option_option)] // outer `None`: not readable here (left to rmp-serde); inner: `nil`
    pub(super) fn option<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.rest.first() == Some(&Marker::Null.to_u8()) {
            self.rest = self.rest.get(1..)?;
            return Some(None);
        }
        read(self).map(Some)
    }

    pub(super) fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.array_len()?;
        let mut out = Vec::with_capacity(n.min(self.rest.len()));
        for _ in 0..n {
            out.push(self.string()?);
        }
        Some(out)
    }

    pub(super) fn string_map(&mut self) -> Option<BTreeMap<String, String>> {
        let n = self.map_len()?;
        let mut out = BTreeMap::new();
        for _ in 0..n {
            let key = self.string()?;
            out.insert(key, self.string()?);
        }
        Some(out)
    }

    /// A JSON value, as `serde_json`'s `Value` reads itself through rmp-serde.
    pub(super) fn json(&mut self, depth: u32) -> Option<Value> {
        let marker = self.marker()?;
        Some(match marker {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::F32 => float(f64::from(f32::from_be_bytes(self.be()?))),
            Marker::F64 => float(f64::from_be_bytes(self.be()?)),
            Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => {
                Value::String(std::str::from_utf8(self.str_after(marker)?).ok()?.to_owned())
            }
            Marker::FixArray(_) | Marker::Array16 | Marker::Array32 if depth < MAX_DEPTH => {
                let n = self.entries_after(marker)?;
                let mut items = Vec::with_capacity(n.min(self.rest.len()));
                for _ in 0..n {
                    items.push(self.json(depth + 1)?);
                }
                Value::Array(items)
            }
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32 if depth < MAX_DEPTH => {
                let n = self.entries_after(marker)?;
                let mut map = Map::new();
                for _ in 0..n {
                    let key = self.string()?;
                    map.insert(key, self.json(depth + 1)?);
                }
                Value::Object(map)
            }
            other => match self.int_after(other)? {
                n if n < 0 => Value::Number(Number::from(i64::try_from(n).ok()?)),
                n => Value::Number(Number::from(u64::try_from(n).ok()?)),
            },
        })
    }

    /// A variant name and whether data follows it: a bare string for a unit variant, a
    /// one-entry map `{name: data}` otherwise.
    pub(super) fn variant(&mut self) -> Option<(&'a [u8], bool)> {
        match self.marker()? {
            Marker::FixMap(1) => Some((self.raw_str()?, true)),
            marker => Some((self.str_after(marker)?, false)),
        }
    }

    pub(super) fn text(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.raw_str()?).ok()
    }
}

/// A float as `serde_json`'s `Value` takes one: non-finite ones become `null`.
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}
