//! Deciding from the newest segment's bytes where the log ends, and whether invalid bytes after
//! it are a torn tail (to be cut) or corruption (never cut): the durable watermark decides
//! (log-format.md, "Recovery"). Pure over byte slices; `recovery` applies the verdict, or, for a
//! read-only open, only reports it.

use std::path::Path;

use super::lock_file::Tail;
use super::recovery::TornTailReport;
use super::scan::{self, ScanStart, Stop};
use crate::error::{Error, FrameError, Result};
use crate::format::DurableMark;
use crate::types::Lsn;

/// What is known about the durable watermark of the newest segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    /// Every record below this LSN was acknowledged as durable: damage there is corruption.
    pub lsn: Lsn,
    /// Whether the records from `lsn` on are known not to be durable. False for a segment
    /// without a usable durable mark (version 1, or a damaged mark) when the lock file of this
    /// boot does not tell either: then the rule of format version 1 applies.
    pub known: bool,
}

impl Watermark {
    /// The watermark of the newest segment `base`, from its `header` bytes (the durable mark),
    /// the highest watermark its intact frames `recorded`, and, if the lock file was written
    /// during this boot and names this segment as the newest, the durable LSN it holds (exact
    /// within a boot). Every segment before the newest was synced when it was sealed, so the
    /// watermark is never below `base`.
    #[must_use]
    pub fn of(base: Lsn, header: &[u8], recorded: Option<Lsn>, this_boot: Option<Lsn>) -> Watermark {
        let floor = recorded.map_or(base, |r| r.max(base));
        let from_mark = match DurableMark::read(header) {
            DurableMark::Unsupported | DurableMark::Damaged => Watermark { lsn: floor, known: false },
            DurableMark::Unset => Watermark { lsn: floor, known: true },
            DurableMark::Below(lsn) => Watermark { lsn: lsn.max(floor), known: true },
        };
        match this_boot {
            Some(durable) => Watermark { lsn: from_mark.lsn.max(durable), known: true },
            None => from_mark,
        }
    }
}

/// Where the newest segment's records end, and what lies after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The tail after the last complete batch.
    pub tail: Tail,
    /// Non-zero bytes after the tail, all above the watermark: a torn tail, to be cut.
    pub torn: Option<TornTailReport>,
}

/// Scans the newest segment `image` (file `path`, first LSN `base`) and judges what follows its
/// last complete batch against `watermark`.
///
/// # Errors
/// [`Error::Corruption`] (segment, offset, LSN) when a record below the watermark is damaged or
/// missing; with an unknown watermark, also when an intact frame with the next LSN follows the
/// first invalid one (the rule of format version 1).
pub fn judge(
    path: &Path,
    image: &[u8],
    base: Lsn,
    watermark: Watermark,
    max_payload: u32,
) -> Result<Verdict> {
    let s = scan::scan(image, ScanStart::segment(base), max_payload, |_, _| {});
    let corruption = |offset: u64, reason: FrameError| Error::Corruption {
        segment: path.to_owned(),
        offset,
        lsn: s.stop_lsn,
        reason,
    };
    if s.committed_lsn < watermark.lsn {
        return Err(match &s.stop {
            Stop::Invalid { offset, reason } => corruption(*offset, reason.clone()),
            Stop::End { offset } => {
                corruption(*offset, FrameError::MissingDurable { durable: watermark.lsn })
            }
        });
    }
    let tail = Tail {
        lsn: s.committed_lsn,
        segment: base,
        offset: s.committed_offset,
        last_time: s.last_time,
        last_frame: s.last_frame,
    };
    let garbage_end = scan::nonzero_end(image, s.committed_offset);
    if garbage_end <= s.committed_offset {
        return Ok(Verdict { tail, torn: None });
    }
    if let (false, Stop::Invalid { offset, reason }) = (watermark.known, &s.stop) {
        if scan::valid_frame_follows(image, *offset, s.stop_lsn.next(), max_payload) {
            return Err(corruption(*offset, reason.clone()));
        }
    }
    let torn = TornTailReport {
        segment: path.to_owned(),
        offset: s.committed_offset,
        bytes: garbage_end - s.committed_offset,
        lsn: s.committed_lsn,
        last_intact: scan::last_intact(image, s.committed_offset, garbage_end, s.committed_lsn, max_payload),
        removed_file: false,
    };
    Ok(Verdict { tail, torn: Some(torn) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{finalize_frame, push_unfinished_frame, SegmentHeader};
    use crate::types::{RecordKind, Timestamp};

    /// A segment image of `n` single-record batches of 100-byte payloads (frames of 136 bytes).
    fn image(n: u64) -> Vec<u8> {
        let header = SegmentHeader { base_lsn: Lsn(1), created: Timestamp(0), capacity: 8192 };
        let mut out = header.encode().to_vec();
        for lsn in 1..=n {
            let start = out.len();
            push_unfinished_frame(&mut out, RecordKind::new(1).unwrap(), &[u8::try_from(lsn).unwrap(); 100]);
            finalize_frame(&mut out[start..], Lsn(lsn), Timestamp(1), 0);
        }
        out.resize(8192, 0);
        out
    }

    const FRAME: usize = 136;

    fn known(lsn: u64) -> Watermark {
        Watermark { lsn: Lsn(lsn), known: true }
    }

    #[test]
    fn damage_below_the_watermark_is_corruption_above_it_a_torn_tail() {
        let mut img = image(5);
        img[64 + 3 * FRAME + 40] ^= 1; // record 4
        let path = Path::new("s");
        let err = judge(path, &img, Lsn(1), known(5), 1024).unwrap_err();
        assert!(
            matches!(err, Error::Corruption { offset, lsn: Lsn(4), .. } if offset == (64 + 3 * FRAME) as u64)
        );
        let v = judge(path, &img, Lsn(1), known(4), 1024).unwrap();
        let torn = v.torn.unwrap();
        assert_eq!((v.tail.lsn, torn.offset, torn.lsn), (Lsn(4), (64 + 3 * FRAME) as u64, Lsn(4)));
        assert_eq!(torn.last_intact, Some(Lsn(5)), "record 5 lay behind the damage");
        // Unknown watermark: the valid successor makes it corruption, as in format version 1.
        let unknown = Watermark { lsn: Lsn(1), known: false };
        assert!(matches!(
            judge(path, &img, Lsn(1), unknown, 1024),
            Err(Error::Corruption { lsn: Lsn(4), .. })
        ));
    }

    #[test]
    fn records_missing_below_the_watermark_are_corruption() {
        let mut img = image(5);
        img[64 + 4 * FRAME..64 + 5 * FRAME].fill(0);
        let err = judge(Path::new("s"), &img, Lsn(1), known(6), 1024).unwrap_err();
        assert!(matches!(
            err,
            Error::Corruption { lsn: Lsn(5), reason: FrameError::MissingDurable { .. }, .. }
        ));
        let v = judge(Path::new("s"), &img, Lsn(1), known(5), 1024).unwrap();
        assert_eq!((v.tail.lsn, v.torn), (Lsn(5), None));
    }

    #[test]
    fn the_mark_the_frames_and_the_lock_file_raise_the_watermark_never_below_the_base() {
        let mut header = SegmentHeader { base_lsn: Lsn(10), created: Timestamp(0), capacity: 8192 }.encode();
        assert_eq!(Watermark::of(Lsn(10), &header, None, None), known(10));
        assert_eq!(Watermark::of(Lsn(10), &header, None, Some(Lsn(14))), known(14));
        assert_eq!(Watermark::of(Lsn(10), &header, Some(Lsn(13)), None), known(13));
        assert_eq!(Watermark::of(Lsn(10), &header, Some(Lsn(3)), None), known(10));
        header[40..52].copy_from_slice(&DurableMark::encode(Lsn(12)));
        assert_eq!(Watermark::of(Lsn(10), &header, None, None), known(12));
        assert_eq!(Watermark::of(Lsn(10), &header, Some(Lsn(15)), Some(Lsn(11))), known(15));
        header[44] ^= 1;
        assert_eq!(Watermark::of(Lsn(10), &header, None, None), Watermark { lsn: Lsn(10), known: false });
    }
}
