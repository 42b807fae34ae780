//! Size and offset arithmetic: where each segment of a sealed object lives. Pure functions, so
//! the S3 layer can plan a range read (which bytes of the blob to read) before touching the disk.
//!
//! A sealed object is `header || segment_0 || ... || segment_final`. Every segment except the
//! final one holds exactly `SEGMENT_SIZE` plaintext bytes; the final one holds 1..=SEGMENT_SIZE,
//! or 0 only for the empty object. Each layer adds one `TAG_LEN` tag per segment.

use std::ops::Range;

use crate::header::{header_len, Layers};
use crate::SealError;

/// Plaintext bytes per segment (the last segment may hold fewer).
pub const SEGMENT_SIZE: usize = 64 * 1024;
/// AES-GCM tag length: the per-segment, per-layer overhead.
pub const TAG_LEN: usize = 16;
/// Segment indexes are below this, which keeps every length and offset exact in `u64`.
pub const MAX_SEGMENTS: u64 = 1 << 32;
/// The largest object this format seals: 256 TiB (S3's limit is far lower).
pub const MAX_PLAIN_LEN: u64 = MAX_SEGMENTS * SEGMENT_SIZE as u64;

/// Bytes one full segment occupies on disk.
pub const fn sealed_segment_len(layers: Layers) -> usize {
    SEGMENT_SIZE + TAG_LEN * layers as usize
}

/// How many segments an object of `plain_len` bytes has. Never 0: the empty object is one empty
/// final segment, so cutting a blob down to its header is detected.
pub fn segment_count(plain_len: u64) -> u64 {
    plain_len.div_ceil(SEGMENT_SIZE as u64).max(1)
}

/// The size of the sealed object (header included) for `plain_len` plaintext bytes.
/// Saturates above `MAX_PLAIN_LEN`, which the sealer refuses to produce.
pub fn sealed_len(plain_len: u64, layers: Layers) -> u64 {
    let overhead = (TAG_LEN * layers.count()) as u64;
    (header_len(layers) as u64)
        .saturating_add(plain_len)
        .saturating_add(segment_count(plain_len).saturating_mul(overhead))
}

/// The plaintext size of a sealed object of `sealed_len` bytes: the inverse of [`sealed_len`].
/// Errors when no object seals to that size, e.g. a blob cut in the middle of a tag.
pub fn plain_len(sealed_len: u64, layers: Layers) -> Result<u64, SealError> {
    let overhead = (TAG_LEN * layers.count()) as u64;
    let full = sealed_segment_len(layers) as u64;
    let body = sealed_len.checked_sub(header_len(layers) as u64).ok_or(SealError::Truncated { segment: 0 })?;
    let (segments, rest) = (body / full, body % full);
    let plain = match rest {
        0 if segments == 0 => return Err(SealError::Truncated { segment: 0 }),
        0 => segments * SEGMENT_SIZE as u64,
        r if r < overhead => return Err(SealError::Truncated { segment: segments }),
        // An empty segment after full ones is never written: those bytes are an extension.
        r if r == overhead && segments > 0 => return Err(SealError::TooLong),
        r => segments * SEGMENT_SIZE as u64 + (r - overhead),
    };
    if plain > MAX_PLAIN_LEN {
        return Err(SealError::TooLong);
    }
    Ok(plain)
}

/// What to read and decrypt to serve the plaintext bytes `[start, end)` of one sealed object:
/// whole segments, from the first one the range touches to the last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    layers: Layers,
    object_plain_len: u64,
    first_segment: u64,
    last_segment: u64,
    skip: usize,
    plain_len: u64,
}

/// Plans reading plaintext `[start, end)` of an object of `object_plain_len` bytes (the length
/// recorded in trusted metadata: the final segment is identified from it, so a blob whose tail
/// was cut or extended fails authentication). An empty range still reads one segment, so even a
/// read of the empty object authenticates something.
pub fn plan_range(object_plain_len: u64, layers: Layers, start: u64, end: u64) -> Result<RangePlan, SealError> {
    if start > end || end > object_plain_len {
        return Err(SealError::BadRange { start, end, len: object_plain_len });
    }
    if object_plain_len > MAX_PLAIN_LEN {
        return Err(SealError::TooLong);
    }
    let seg = SEGMENT_SIZE as u64;
    let final_segment = segment_count(object_plain_len) - 1;
    let (first_segment, last_segment) = if start == end {
        let only = (start / seg).min(final_segment);
        (only, only)
    } else {
        (start / seg, (end - 1) / seg)
    };
    Ok(RangePlan {
        layers,
        object_plain_len,
        first_segment,
        last_segment,
        skip: (start - first_segment * seg) as usize,
        plain_len: end - start,
    })
}

impl RangePlan {
    /// The byte range of the sealed object (header included in the offsets) to read: whole
    /// segments. Read the header separately (`header_len` bytes at offset 0).
    pub fn sealed_range(&self) -> Range<u64> {
        let start = self.segment_offset(self.first_segment);
        let end = self.segment_offset(self.last_segment) + self.sealed_segment_len(self.last_segment) as u64;
        start..end
    }

    /// Index of the first segment to decrypt.
    pub fn first_segment(&self) -> u64 {
        self.first_segment
    }

    /// Index of the last segment to decrypt.
    pub fn last_segment(&self) -> u64 {
        self.last_segment
    }

    /// Plaintext bytes to drop from the start of the first decrypted segment.
    pub fn skip(&self) -> usize {
        self.skip
    }

    /// Plaintext bytes the range yields (`end - start`).
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// The layer count the plan was made for.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The object's final segment: the only one sealed with the final flag.
    pub(crate) fn final_segment(&self) -> u64 {
        segment_count(self.object_plain_len) - 1
    }

    /// Sealed size of segment `index` of this object.
    pub(crate) fn sealed_segment_len(&self, index: u64) -> usize {
        if index < self.final_segment() {
            return sealed_segment_len(self.layers);
        }
        let plain = self.object_plain_len - self.final_segment() * SEGMENT_SIZE as u64;
        plain as usize + TAG_LEN * self.layers.count()
    }

    fn segment_offset(&self, index: u64) -> u64 {
        header_len(self.layers) as u64 + index * sealed_segment_len(self.layers) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = SEGMENT_SIZE as u64;

    #[test]
    fn sealed_len_table() {
        // (plain, layers, sealed)
        let table = [
            (0, Layers::One, 48 + 16),
            (1, Layers::One, 48 + 1 + 16),
            (S - 1, Layers::One, 48 + S - 1 + 16),
            (S, Layers::One, 48 + S + 16),
            (S + 1, Layers::One, 48 + S + 1 + 32),
            (3 * S, Layers::One, 48 + 3 * S + 48),
            (0, Layers::Two, 80 + 32),
            (S, Layers::Two, 80 + S + 32),
            (2 * S + 5, Layers::Two, 80 + 2 * S + 5 + 96),
        ];
        for (plain, layers, sealed) in table {
            assert_eq!(sealed_len(plain, layers), sealed, "{plain} {layers:?}");
            assert_eq!(plain_len(sealed, layers), Ok(plain), "{plain} {layers:?}");
        }
        assert_eq!(sealed_len(u64::MAX, Layers::Two), u64::MAX);
    }

    #[test]
    fn plain_len_rejects_impossible_sizes() {
        assert_eq!(plain_len(47, Layers::One), Err(SealError::Truncated { segment: 0 }));
        assert_eq!(plain_len(48, Layers::One), Err(SealError::Truncated { segment: 0 }));
        assert_eq!(plain_len(48 + 15, Layers::One), Err(SealError::Truncated { segment: 0 }));
        assert_eq!(plain_len(48 + S + 16 + 7, Layers::One), Err(SealError::Truncated { segment: 1 }));
        assert_eq!(plain_len(48 + S + 16 + 16, Layers::One), Err(SealError::TooLong));
        assert_eq!(plain_len(80 + S + 32 + 16, Layers::Two), Err(SealError::Truncated { segment: 1 }));
        assert_eq!(plain_len(sealed_len(MAX_PLAIN_LEN + 1, Layers::One), Layers::One), Err(SealError::TooLong));
    }

    #[test]
    fn plan_table() {
        // (object len, layers, start, end) -> (first, last, skip, sealed range)
        let f1 = S + 16; // one full sealed segment, one layer
        let f2 = S + 32;
        let table = [
            ((0, Layers::One, 0, 0), (0, 0, 0, 48..64)),
            ((10, Layers::One, 0, 10), (0, 0, 0, 48..48 + 26)),
            ((10, Layers::One, 3, 7), (0, 0, 3, 48..48 + 26)),
            ((10, Layers::One, 10, 10), (0, 0, 10, 48..48 + 26)),
            ((S, Layers::One, S - 1, S), (0, 0, S - 1, 48..48 + f1)),
            ((S, Layers::One, S, S), (0, 0, S, 48..48 + f1)),
            ((S + 1, Layers::One, S, S + 1), (1, 1, 0, 48 + f1..48 + f1 + 17)),
            ((S + 1, Layers::One, S - 1, S + 1), (0, 1, S - 1, 48..48 + f1 + 17)),
            ((3 * S, Layers::One, S + 5, 2 * S), (1, 1, 5, 48 + f1..48 + 2 * f1)),
            ((3 * S, Layers::One, 0, 3 * S), (0, 2, 0, 48..48 + 3 * f1)),
            ((3 * S + 9, Layers::Two, 2 * S + 1, 3 * S + 2), (2, 3, 1, 80 + 2 * f2..80 + 3 * f2 + 9 + 32)),
            ((3 * S + 9, Layers::Two, 3 * S + 9, 3 * S + 9), (3, 3, 9, 80 + 3 * f2..80 + 3 * f2 + 41)),
        ];
        for ((len, layers, start, end), (first, last, skip, sealed)) in table {
            let plan = plan_range(len, layers, start, end).unwrap();
            let got = (plan.first_segment(), plan.last_segment(), plan.skip() as u64, plan.sealed_range());
            assert_eq!(got, (first, last, skip, sealed), "{len} {layers:?} {start}..{end}");
            assert_eq!(plan.plain_len(), end - start);
        }
    }

    #[test]
    fn plan_rejects_bad_ranges() {
        assert_eq!(plan_range(10, Layers::One, 5, 4), Err(SealError::BadRange { start: 5, end: 4, len: 10 }));
        assert_eq!(plan_range(10, Layers::One, 0, 11), Err(SealError::BadRange { start: 0, end: 11, len: 10 }));
        assert_eq!(plan_range(MAX_PLAIN_LEN + 1, Layers::One, 0, 1), Err(SealError::TooLong));
    }

    #[test]
    fn whole_object_plan_covers_whole_blob() {
        for len in [0, 1, S - 1, S, S + 1, 5 * S + 3] {
            for layers in [Layers::One, Layers::Two] {
                let plan = plan_range(len, layers, 0, len).unwrap();
                assert_eq!(plan.sealed_range(), header_len(layers) as u64..sealed_len(len, layers));
            }
        }
    }
}
