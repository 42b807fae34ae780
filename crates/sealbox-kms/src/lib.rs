//! sealbox-kms: sealbox's built-in key management service, wire-compatible with AWS KMS.
//!
//! - [`Kms`] owns keys, their material versions (only ever stored wrapped by the [`RootKey`]),
//!   aliases, tags, policies, rotation ([`Kms::rotate_due_keys`]) and deletion
//!   ([`Kms::purge_deleted_keys`], crypto-shredding), in its own SQLite file. Every method
//!   blocks; `Kms` is `Send + Sync`, shared behind an `Arc`, called from `spawn_blocking`.
//! - [`api::handle`] speaks the AWS KMS JSON protocol (operation name + JSON body in, status +
//!   JSON out) — no HTTP here: the server verifies SigV4 and routes `TrentService.*` to it.
//! - The S3 layer calls [`Kms::generate_data_key`] / [`Kms::decrypt_data_key`] (SSE-KMS) and
//!   [`Kms::generate_sse_s3_key`] / [`Kms::decrypt_sse_s3_key`] (SSE-S3, a hidden service key).
//! - [`xks::handle`] speaks the AWS KMS External Key Store proxy API (XKS) for keys tagged
//!   `sealbox:xks` = `true` — again no HTTP: the server checks SigV4 (`kms-xks-proxy`) first.
//! - Time comes from a [`Clock`] so rotation and deletion windows are testable without sleeping.
//!
//! This crate must never: store key material unwrapped, log or return material except as the
//! Plaintext of GenerateDataKey/Decrypt (and XKS Decrypt), or let a ciphertext decrypt under
//! another context, key or material version. Start reading at `kms.rs`; the blob format (and the
//! only code choosing keys and nonces for blobs) is `blob.rs`, the XKS ciphertext's is
//! `xks/cipher.rs`; docs/key-hierarchy.md explains the whole hierarchy, and WIRE.md lists what
//! clients see on the wire.

pub mod api;
mod blob;
mod clock;
mod error;
#[cfg(feature = "pkcs11")]
mod hsm;
mod kms;
mod root;
pub mod xks;

pub use clock::{Clock, FakeClock, OffsetClock, SystemClock};
pub use error::KmsError;
pub use kms::{
    Caller, Decrypted, GeneratedDataKey, KeyRecord, Kms, KmsConfig, KmsStats, MaterialInfo, RotationEvent,
    S3_DEFAULT_ALIAS,
};
pub use root::RootKey;
