//! The one error type of the crate.

/// Why sealing or opening failed.
///
/// Authentication failures say only *which segment* failed, never why: a tag mismatch from a
/// flipped bit, a wrong key, a reordered segment or a wrong final flag all look the same, so the
/// error cannot be used as an oracle.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The bytes are not a sealed-object header (bad magic, bad field, too short).
    #[error("not a sealed object header")]
    BadHeader,
    /// A header from a format version this build does not know.
    #[error("unsupported sealed object format version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// A segment failed AEAD authentication (tampered, reordered, wrong key or wrong final flag).
    #[error("sealed segment {segment} failed authentication")]
    Authentication {
        /// Index of the segment that failed.
        segment: u64,
    },
    /// The sealed input ended inside, or before, a segment that must exist.
    #[error("sealed object is truncated at segment {segment}")]
    Truncated {
        /// Index of the first segment that is missing or incomplete.
        segment: u64,
    },
    /// More bytes than the format allows: a segment longer than a sealed segment, bytes after the
    /// final segment, or an object larger than `MAX_PLAIN_LEN`.
    #[error("sealed object is longer than its format allows")]
    TooLong,
    /// A data key that is not exactly 32 bytes.
    #[error("a data key must be exactly 32 bytes")]
    BadKeyLength,
    /// Neither 1 nor 2 layers (data keys).
    #[error("an object has 1 or 2 layers (one data key each), got {got}")]
    LayerCount {
        /// The number of layers (keys) asked for.
        got: usize,
    },
    /// The header says `layers` layers but `keys` data keys were given.
    #[error("the object has {layers} layer(s) but {keys} data key(s) were given")]
    KeyCount {
        /// Layers in the header.
        layers: usize,
        /// Data keys given.
        keys: usize,
    },
    /// A plaintext range that is empty-inverted or reaches past the object.
    #[error("range {start}..{end} is outside an object of {len} bytes")]
    BadRange {
        /// First plaintext byte asked for.
        start: u64,
        /// One past the last plaintext byte asked for.
        end: u64,
        /// The object's plaintext length.
        len: u64,
    },
    /// The system random generator or the crypto library failed (should never happen).
    #[error("internal cryptographic failure")]
    Crypto,
}
