//! The object header: what a reader needs before the first segment.
//!
//! ```text
//! offset  len  field
//! 0       8    magic "SEALBOX\0"
//! 8       1    format version (1)
//! 9       1    layer count (1 or 2)
//! 10      2    reserved, zero
//! 12      4    plaintext segment size, big-endian (65536 in version 1)
//! 16      32   salt of layer 1
//! 48      32   salt of layer 2 (only when there are 2 layers)
//! ```

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::{DataKey, SealError, SEGMENT_SIZE};

const MAGIC: [u8; 8] = *b"SEALBOX\0";
/// The only format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Length of each layer's random HKDF salt.
pub const SALT_LEN: usize = 32;
const FIXED_LEN: usize = 16;
const MAX_HEADER_LEN: usize = FIXED_LEN + 2 * SALT_LEN;

/// How many independent encryption layers an object has: one data key each.
/// `Two` is DSSE-KMS (the inner layer is sealed again by the outer one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layers {
    /// One data key: SSE-S3, SSE-KMS, SSE-C.
    One = 1,
    /// Two independent data keys: DSSE-KMS.
    Two = 2,
}

impl Layers {
    /// The layer count matching `keys` (one key per layer).
    pub fn for_keys(keys: &[DataKey]) -> Result<Self, SealError> {
        Self::try_from(keys.len())
    }

    /// 1 or 2.
    pub fn count(self) -> usize {
        self as usize
    }
}

impl TryFrom<usize> for Layers {
    type Error = SealError;

    fn try_from(count: usize) -> Result<Self, SealError> {
        match count {
            1 => Ok(Layers::One),
            2 => Ok(Layers::Two),
            got => Err(SealError::LayerCount { got }),
        }
    }
}

/// The parsed header of a sealed object. Its exact bytes are bound into every segment's tag, so
/// any edit to it (salt, version, layer count, reserved bits) fails authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct ObjectHeader {
    bytes: [u8; MAX_HEADER_LEN],
    layers: Layers,
}

impl ObjectHeader {
    /// A header with fresh random salts.
    pub(crate) fn generate(layers: Layers) -> Result<Self, SealError> {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8] = FORMAT_VERSION;
        bytes[9] = layers.count() as u8;
        bytes[12..16].copy_from_slice(&(SEGMENT_SIZE as u32).to_be_bytes());
        let salts = &mut bytes[FIXED_LEN..header_len(layers)];
        SystemRandom::new().fill(salts).map_err(|_| SealError::Crypto)?;
        Ok(Self { bytes, layers })
    }

    /// A header with the given salts, for known-answer tests only.
    #[cfg(test)]
    pub(crate) fn with_salts(salts: &[[u8; SALT_LEN]]) -> Self {
        let layers = Layers::try_from(salts.len()).expect("1 or 2 salts");
        let mut header = Self::generate(layers).expect("random salts");
        for (layer, salt) in salts.iter().enumerate() {
            header.bytes[FIXED_LEN + layer * SALT_LEN..][..SALT_LEN].copy_from_slice(salt);
        }
        header
    }

    /// Parses the header at the start of `bytes` (trailing bytes, e.g. the first segment, are
    /// ignored). Rejects anything that is not exactly a header this version writes.
    pub fn parse(bytes: &[u8]) -> Result<Self, SealError> {
        let fixed = bytes.get(..FIXED_LEN).ok_or(SealError::BadHeader)?;
        if fixed[..8] != MAGIC {
            return Err(SealError::BadHeader);
        }
        if fixed[8] != FORMAT_VERSION {
            return Err(SealError::UnsupportedVersion { version: fixed[8] });
        }
        let layers = Layers::try_from(usize::from(fixed[9])).map_err(|_| SealError::BadHeader)?;
        if fixed[10..12] != [0, 0] || fixed[12..16] != (SEGMENT_SIZE as u32).to_be_bytes() {
            return Err(SealError::BadHeader);
        }
        let len = header_len(layers);
        let encoded = bytes.get(..len).ok_or(SealError::BadHeader)?;
        let mut out = [0u8; MAX_HEADER_LEN];
        out[..len].copy_from_slice(encoded);
        Ok(Self { bytes: out, layers })
    }

    /// The encoded header, exactly `header_len(self.layers())` bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..header_len(self.layers)]
    }

    /// How many layers (data keys) the object is sealed with.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The random salt of `layer` (0 = inner layer).
    pub(crate) fn salt(&self, layer: usize) -> &[u8] {
        let start = FIXED_LEN + layer * SALT_LEN;
        &self.bytes[start..start + SALT_LEN]
    }
}

impl std::fmt::Debug for ObjectHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectHeader").field("version", &FORMAT_VERSION).field("layers", &self.layers).finish()
    }
}

/// Length of the header of an object with `layers` layers: 48 or 80 bytes.
pub const fn header_len(layers: Layers) -> usize {
    FIXED_LEN + SALT_LEN * layers as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(header_len(Layers::One), 48);
        assert_eq!(header_len(Layers::Two), 80);
        for layers in [Layers::One, Layers::Two] {
            assert_eq!(ObjectHeader::generate(layers).unwrap().as_bytes().len(), header_len(layers));
        }
    }

    #[test]
    fn round_trip_and_prefix() {
        let header = ObjectHeader::generate(Layers::Two).unwrap();
        let mut with_tail = header.as_bytes().to_vec();
        with_tail.extend_from_slice(b"segment bytes follow");
        let parsed = ObjectHeader::parse(&with_tail).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(parsed.layers(), Layers::Two);
        assert_ne!(parsed.salt(0), parsed.salt(1));
    }

    #[test]
    fn salts_are_random() {
        let a = ObjectHeader::generate(Layers::One).unwrap();
        let b = ObjectHeader::generate(Layers::One).unwrap();
        assert_ne!(a.salt(0), b.salt(0));
    }

    #[test]
    fn rejects_garbage() {
        let good = ObjectHeader::generate(Layers::One).unwrap().as_bytes().to_vec();
        let cases: Vec<(Vec<u8>, SealError)> = vec![
            (vec![], SealError::BadHeader),
            (good[..15].to_vec(), SealError::BadHeader),
            (good[..47].to_vec(), SealError::BadHeader),
            (edit(&good, 0, b'X'), SealError::BadHeader),
            (edit(&good, 8, 2), SealError::UnsupportedVersion { version: 2 }),
            (edit(&good, 8, 0), SealError::UnsupportedVersion { version: 0 }),
            (edit(&good, 9, 0), SealError::BadHeader),
            (edit(&good, 9, 3), SealError::BadHeader),
            (edit(&good, 9, 2), SealError::BadHeader), // says 2 layers, but only one salt present
            (edit(&good, 11, 1), SealError::BadHeader),
            (edit(&good, 13, 2), SealError::BadHeader),
            (b"PK\x03\x04 definitely a zip file, not sealed".to_vec(), SealError::BadHeader),
        ];
        for (bytes, want) in cases {
            assert_eq!(ObjectHeader::parse(&bytes).unwrap_err(), want, "{bytes:?}");
        }
    }

    fn edit(bytes: &[u8], at: usize, value: u8) -> Vec<u8> {
        let mut out = bytes.to_vec();
        out[at] = value;
        out
    }
}
