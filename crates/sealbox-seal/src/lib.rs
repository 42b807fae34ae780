//! sealbox-seal: the sealed object format. Every object byte sealbox writes to disk passes
//! through [`ObjectSealer`] (or [`seal_stream`]) and comes back through [`SegmentOpener`] (or
//! [`open_stream`]).
//!
//! An object is a small versioned header followed by 64 KiB plaintext segments, each sealed with
//! AES-256-GCM under keys derived (HKDF-SHA256, random per-object salt) from one [`DataKey`] per
//! layer; one layer normally, two for DSSE-KMS. The segment index and an is-final flag are bound
//! into every tag, so reordering, truncation and extension fail authentication, and a range read
//! decrypts only the segments it needs (see [`plan_range`]). The byte layout and the reasons for
//! it are in `docs/object-format.md`.
//!
//! This crate owns the format and its key derivation, nonces and AAD. It must never do file or
//! network I/O, store or log key bytes, or build a nonce anywhere but `segment.rs`.
//!
//! Start reading at [`ObjectSealer`] and [`open_stream`].

#![warn(missing_docs)]

mod error;
mod header;
mod key;
mod layout;
mod opener;
mod sealer;
mod segment;
mod stream;
#[cfg(test)]
mod vectors;

pub use error::SealError;
pub use header::{header_len, Layers, ObjectHeader, FORMAT_VERSION, SALT_LEN};
pub use key::{DataKey, DATA_KEY_LEN};
pub use layout::{
    plain_len, plan_range, sealed_len, sealed_segment_len, segment_count, RangePlan, MAX_PLAIN_LEN, MAX_SEGMENTS,
    SEGMENT_SIZE, TAG_LEN,
};
pub use opener::SegmentOpener;
pub use sealer::ObjectSealer;
pub use stream::{open_stream, seal_stream, OpenStream, SealStream, StdError};
