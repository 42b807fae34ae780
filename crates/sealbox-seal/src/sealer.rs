//! Synchronous sealing of one object from plaintext pushed in any chunk sizes.

use bytes::{Bytes, BytesMut};

use crate::header::{Layers, ObjectHeader};
use crate::layout::{sealed_segment_len, SEGMENT_SIZE};
use crate::segment::SegmentKeys;
use crate::{DataKey, SealError};

/// Seals one object. Everything it emits, concatenated, is the sealed object: the header first,
/// then each segment as soon as it is known not to be the final one. Holds at most one segment of
/// plaintext, so memory stays bounded whatever the object size.
///
/// ```
/// # use sealbox_seal::*;
/// let keys = [DataKey::generate()?];
/// let mut sealer = ObjectSealer::new(&keys)?;
/// let mut sealed = Vec::new();
/// sealer.push(b"hello ", &mut sealed)?;
/// sealer.push(b"world", &mut sealed)?;
/// sealer.finish(&mut sealed)?;
/// let blob: Vec<u8> = sealed.concat();
/// assert_eq!(blob.len() as u64, sealed_len(11, Layers::One));
/// # Ok::<(), SealError>(())
/// ```
pub struct ObjectSealer {
    keys: SegmentKeys,
    is_header_emitted: bool,
    /// Plaintext of the segment being filled, with room for its tags.
    segment: BytesMut,
    next_index: u64,
}

impl ObjectSealer {
    /// A sealer for a new object under `keys` (1 or 2 data keys: one per layer, inner first).
    /// Draws fresh random salts, so sealing the same bytes twice gives different output.
    pub fn new(keys: &[DataKey]) -> Result<Self, SealError> {
        Self::with_header(keys, ObjectHeader::generate(Layers::for_keys(keys)?)?)
    }

    pub(crate) fn with_header(keys: &[DataKey], header: ObjectHeader) -> Result<Self, SealError> {
        Ok(Self {
            keys: SegmentKeys::derive(keys, header)?,
            is_header_emitted: false,
            segment: BytesMut::new(),
            next_index: 0,
        })
    }

    /// The header this object will start with (emitted automatically by the first `push` or by
    /// `finish`; exposed for callers that want to keep a copy).
    pub fn header(&self) -> &ObjectHeader {
        self.keys.header()
    }

    /// Adds plaintext; appends to `out` the sealed bytes that became ready (possibly none).
    pub fn push(&mut self, mut plaintext: &[u8], out: &mut impl Extend<Bytes>) -> Result<(), SealError> {
        self.emit_header(out);
        while !plaintext.is_empty() {
            // A full segment is sealed only once more bytes arrive: until then it may be the final one.
            if self.segment.len() == SEGMENT_SIZE {
                out.extend(Some(self.seal_current(false)?));
            }
            if self.segment.capacity() == 0 {
                self.segment.reserve(sealed_segment_len(self.header().layers()));
            }
            let take = (SEGMENT_SIZE - self.segment.len()).min(plaintext.len());
            self.segment.extend_from_slice(&plaintext[..take]);
            plaintext = &plaintext[take..];
        }
        Ok(())
    }

    /// Seals the final segment (empty for an empty object) and appends the remaining bytes.
    pub fn finish(mut self, out: &mut impl Extend<Bytes>) -> Result<(), SealError> {
        self.emit_header(out);
        out.extend(Some(self.seal_current(true)?));
        Ok(())
    }

    fn emit_header(&mut self, out: &mut impl Extend<Bytes>) {
        if !self.is_header_emitted {
            self.is_header_emitted = true;
            out.extend(Some(Bytes::copy_from_slice(self.header().as_bytes())));
        }
    }

    fn seal_current(&mut self, is_final: bool) -> Result<Bytes, SealError> {
        let mut segment = std::mem::take(&mut self.segment);
        self.keys.seal_segment(self.next_index, is_final, &mut segment)?;
        self.next_index += 1;
        Ok(segment.freeze())
    }
}

impl std::fmt::Debug for ObjectSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectSealer").field("header", self.header()).field("next_index", &self.next_index).finish()
    }
}
