//! The direct decoder against rmp-serde: the same records, or a refusal.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::Value;

use super::{fast, is_custom};
use crate::model::fuzzing::{decode_event, sample_records};
use crate::model::{AgentId, ContextKey, Event, Recorded, Visibility};
use crate::types::Lsn;

#[test]
fn every_kind_of_record_is_read_directly_as_it_is_written() {
    let samples = sample_records();
    let kinds: BTreeSet<String> =
        samples.iter().map(|r| format!("{:?}", std::mem::discriminant(&r.event))).collect();
    assert_eq!(kinds.len(), 27, "a sample of every event kind");
    for recorded in samples {
        let payload = recorded.encode().unwrap();
        assert_eq!(fast(&payload).as_ref(), Some(&recorded));
        assert_eq!(is_custom(&payload), matches!(recorded.event, Event::Custom { .. }));
    }
}

#[test]
fn damaged_records_are_read_as_rmp_serde_reads_them_or_left_to_it() {
    for recorded in sample_records() {
        let payload = recorded.encode().unwrap();
        for end in 0..payload.len() {
            decode_event(&payload[..end]);
            assert!(fast(&payload[..end]).is_none(), "a truncated record is never complete");
        }
        for at in 0..payload.len() {
            for mask in [0x01, 0x02, 0x10, 0x20, 0x80, 0xff] {
                let mut damaged = payload.clone();
                damaged[at] ^= mask;
                decode_event(&damaged);
            }
        }
    }
}

#[test]
fn other_layouts_are_left_to_rmp_serde() {
    for recorded in sample_records() {
        let positional = rmp_serde::to_vec(&recorded).unwrap();
        assert!(fast(&positional).is_none());
        assert_eq!(Recorded::decode(Lsn(1), &positional).unwrap(), recorded);

        // Fields in alphabetical order, and one field more than this build knows.
        let mut as_json = serde_json::to_value(&recorded).unwrap();
        let fields = as_json["event"].as_object_mut().unwrap().values_mut().next().unwrap();
        if let Value::Object(fields) = fields {
            fields.insert("added_later".into(), Value::from(1));
        }
        let reordered = rmp_serde::to_vec_named(&as_json).unwrap();
        assert!(fast(&reordered).is_none());
        assert_eq!(Recorded::decode(Lsn(1), &reordered).unwrap(), recorded);
    }
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 20, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,40}", inner, 0..20)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_value_and_names_are_read_directly_as_rmp_serde_reads_them(
        value in json(),
        name in "\\PC{1,300}",
        metadata in proptest::collection::btree_map(".{0,20}", ".{0,40}", 0..40),
        version in any::<u64>(),
    ) {
        let actor = AgentId::from_record(&name);
        let events = [
            Event::ContextUpdated {
                key: ContextKey::from_record(&name),
                value: value.clone(),
                visibility: Visibility::Restricted(vec![actor.clone()]),
                expires_at: None,
                metadata: metadata.clone(),
                version,
            },
            Event::Custom { event_type: name, data: value, metadata },
        ];
        for event in events {
            let recorded = Recorded { actor: actor.clone(), event };
            let payload = recorded.encode().unwrap();
            prop_assert_eq!(fast(&payload), Some(recorded.clone()));
            prop_assert_eq!(rmp_serde::from_slice::<Recorded>(&payload).unwrap(), recorded);
        }
    }
}

/// A custom event whose data is written by `data`, in encodings this crate's encoder does not
/// use but other `MessagePack` writers may.
fn custom_with(data: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    use rmp::encode::{write_map_len, write_str};
    let mut out = Vec::new();
    write_map_len(&mut out, 2).unwrap();
    write_str(&mut out, "actor").unwrap();
    write_str(&mut out, "a").unwrap();
    write_str(&mut out, "event").unwrap();
    write_map_len(&mut out, 1).unwrap();
    write_str(&mut out, "Custom").unwrap();
    write_map_len(&mut out, 3).unwrap();
    write_str(&mut out, "event_type").unwrap();
    write_str(&mut out, "t").unwrap();
    write_str(&mut out, "data").unwrap();
    data(&mut out);
    write_str(&mut out, "metadata").unwrap();
    write_map_len(&mut out, 0).unwrap();
    out
}

#[test]
fn values_in_other_encodings_are_read_as_rmp_serde_reads_them() {
    use rmp::encode::{write_bin, write_f32, write_f64, write_i64, write_i8, write_map_len, write_u16};
    let str8 = |out: &mut Vec<u8>| {
        out.extend_from_slice(&[rmp::Marker::Str8.to_u8(), 2]);
        out.extend_from_slice(b"hi");
    };
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("f32", custom_with(|o| write_f32(o, 1.5).unwrap()), true),
        ("NaN", custom_with(|o| write_f64(o, f64::NAN).unwrap()), true),
        ("positive i8", custom_with(|o| write_i8(o, 5).unwrap()), true),
        ("negative i64", custom_with(|o| write_i64(o, -70_000).unwrap()), true),
        ("u16", custom_with(|o| write_u16(o, 3).unwrap()), true),
        ("short str8", custom_with(str8), true),
        (
            "map with an integer key",
            custom_with(|o| {
                write_map_len(o, 1).unwrap();
                write_u16(o, 1).unwrap();
                write_u16(o, 2).unwrap();
            }),
            false,
        ),
        ("bin", custom_with(|o| write_bin(o, b"xy").unwrap()), false),
    ];
    for (what, payload, direct) in cases {
        let generic = rmp_serde::from_slice::<Recorded>(&payload).ok();
        assert_eq!(fast(&payload).is_some(), direct, "{what}");
        if let Some(direct) = fast(&payload) {
            assert_eq!(Some(direct), generic, "{what}");
        }
        decode_event(&payload);
        assert!(is_custom(&payload), "{what}");
    }
}

#[test]
fn the_type_name_read_from_the_first_bytes_is_the_decoded_events() {
    for recorded in crate::model::fuzzing::sample_records() {
        let payload = recorded.encode().unwrap();
        assert_eq!(Recorded::type_name_of(&payload), Some(recorded.event.type_name()), "{recorded:?}");
        for cut in 0..payload.len() {
            // A cut payload names the type only if the name itself is whole.
            if let Some(name) = Recorded::type_name_of(&payload[..cut]) {
                assert_eq!(name, recorded.event.type_name());
            }
        }
    }
    assert_eq!(Recorded::type_name_of(b"\x81\xa3xyz\x00"), None, "another layout");
}

#[test]
fn the_coordination_types_are_the_type_names_of_every_variant_but_custom() {
    let mut seen: Vec<&str> = crate::model::fuzzing::sample_records()
        .iter()
        .filter(|r| !matches!(r.event, crate::model::Event::Custom { .. }))
        .map(|r| {
            crate::model::COORDINATION_TYPES
                .iter()
                .copied()
                .find(|t| *t == r.event.type_name())
                .expect("listed")
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    let mut all = crate::model::COORDINATION_TYPES.to_vec();
    all.sort_unstable();
    assert_eq!(seen, all, "every listed type is a variant's, and the samples hold every variant");
}
