//! Encode/decode round trips of the on-disk structures (proptest).

use maos_coord::format::{
    decode_frame, finalize_frame, frame_len, push_unfinished_frame, Decoded, SegmentHeader,
    FLAG_BATCH_CONTINUES,
};
use maos_coord::{Lsn, RecordKind, Timestamp};
use proptest::prelude::*;

proptest! {
    #[test]
    fn a_frame_decodes_to_what_was_encoded(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        kind in 1u16..,
        lsn in 1u64..u64::MAX,
        time in any::<i64>(),
        continues in any::<bool>(),
    ) {
        let mut buf = Vec::new();
        push_unfinished_frame(&mut buf, RecordKind::new(kind).unwrap(), &payload);
        prop_assert_eq!(buf.len(), frame_len(payload.len()));
        prop_assert_eq!(buf.len() % 8, 0);
        let flags = if continues { FLAG_BATCH_CONTINUES } else { 0 };
        finalize_frame(&mut buf, Lsn::new(lsn), Timestamp::from_micros(time), flags);
        buf.extend_from_slice(&[0; 64]); // whatever follows does not matter
        match decode_frame(&buf, Lsn::new(lsn), 4096) {
            Decoded::Frame(f) => {
                prop_assert_eq!(f.payload, payload.as_slice());
                prop_assert_eq!(f.kind.get(), kind);
                prop_assert_eq!(f.lsn, Lsn::new(lsn));
                prop_assert_eq!(f.timestamp, Timestamp::from_micros(time));
                prop_assert_eq!(f.batch_continues(), continues);
                prop_assert_eq!(f.len, frame_len(payload.len()));
            }
            other => prop_assert!(false, "decoded as {:?}", other),
        }
    }

    #[test]
    fn a_sequence_of_frames_decodes_in_order(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)) {
        let mut buf = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let start = buf.len();
            push_unfinished_frame(&mut buf, RecordKind::new(9).unwrap(), p);
            finalize_frame(&mut buf[start..], Lsn::new(100 + i as u64), Timestamp::from_micros(i as i64), 0);
        }
        let mut at = 0;
        for (i, p) in payloads.iter().enumerate() {
            let Decoded::Frame(f) = decode_frame(&buf[at..], Lsn::new(100 + i as u64), 4096) else {
                return Err(TestCaseError::fail(format!("frame {i} did not decode")));
            };
            prop_assert_eq!(f.payload, p.as_slice());
            at += f.len;
        }
        prop_assert_eq!(decode_frame(&buf[at..], Lsn::new(100 + payloads.len() as u64), 4096), Decoded::End);
    }

    #[test]
    fn a_segment_header_decodes_to_what_was_encoded(base in 1u64.., created in any::<i64>(), capacity in 96u64..(1 << 30)) {
        let h = SegmentHeader { base_lsn: Lsn::new(base), created: Timestamp::from_micros(created), capacity };
        prop_assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
    }
}
