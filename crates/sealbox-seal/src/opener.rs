//! Synchronous opening of individual segments, in any order (range reads).

use bytes::{Bytes, BytesMut};

use crate::header::ObjectHeader;
use crate::layout::{sealed_segment_len, MAX_SEGMENTS};
use crate::segment::SegmentKeys;
use crate::{DataKey, SealError};

/// Opens the segments of one sealed object. The caller says which segment it holds and whether it
/// is the object's final one (from the plaintext length in trusted metadata); a segment presented
/// at the wrong index or with the wrong final flag fails authentication.
pub struct SegmentOpener {
    keys: SegmentKeys,
}

impl SegmentOpener {
    /// Parses `header` (the start of the sealed object) and derives the keys; `keys` must have one
    /// data key per layer, inner first, as given to the sealer.
    pub fn new(keys: &[DataKey], header: &[u8]) -> Result<Self, SealError> {
        let header = ObjectHeader::parse(header)?;
        Ok(Self { keys: SegmentKeys::derive(keys, header)? })
    }

    /// The parsed header of the object.
    pub fn header(&self) -> &ObjectHeader {
        self.keys.header()
    }

    /// Authenticates and decrypts segment `index` in place; returns its plaintext (a prefix of
    /// `sealed`). Nothing of `sealed` may be used after an error.
    pub fn open_in_place<'a>(
        &self,
        index: u64,
        is_final: bool,
        sealed: &'a mut [u8],
    ) -> Result<&'a mut [u8], SealError> {
        let full = sealed_segment_len(self.header().layers());
        if index >= MAX_SEGMENTS || sealed.len() > full {
            return Err(SealError::TooLong);
        }
        if !is_final && sealed.len() != full {
            return Err(SealError::Truncated { segment: index });
        }
        self.keys.open_segment(index, is_final, sealed)
    }

    /// Like [`Self::open_in_place`], reusing `sealed`'s buffer for the returned plaintext.
    pub fn open_segment(&self, index: u64, is_final: bool, mut sealed: BytesMut) -> Result<Bytes, SealError> {
        let plain_len = self.open_in_place(index, is_final, &mut sealed)?.len();
        sealed.truncate(plain_len);
        Ok(sealed.freeze())
    }
}

impl std::fmt::Debug for SegmentOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentOpener").field("header", self.header()).finish()
    }
}
