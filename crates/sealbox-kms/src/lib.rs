//! sealbox-kms: sealbox's built-in key management service, wire-compatible with AWS KMS.
//!
//! - [`Kms`] owns keys — symmetric, asymmetric (RSA, NIST and secp256k1 ECC), HMAC, and keys with
//!   imported material — their material versions (only ever stored wrapped by the [`RootKey`]),
//!   aliases, tags, policies, grants, rotation ([`Kms::rotate_due_keys`]), expiry of imported
//!   material ([`Kms::expire_imported_material`]) and deletion ([`Kms::purge_deleted_keys`],
//!   crypto-shredding), in its own SQLite file (every statement in `store.rs`). Every method
//!   blocks; `Kms` is `Send + Sync`, shared behind an `Arc`, called from `spawn_blocking`.
//! - `spec.rs` names key specs, usages and algorithms as AWS does and says which key allows
//!   what; `asym.rs` is the aws-lc-rs cryptography of asymmetric and HMAC keys; `import.rs`
//!   unwraps imported material; `grants.rs` decides what a grant allows.
//! - [`api::handle`] speaks the AWS KMS JSON protocol (operation name + JSON body in, status +
//!   JSON out) — no HTTP here: the server verifies SigV4 and routes `TrentService.*` to it.
//! - The S3 layer calls [`Kms::generate_data_key`] / [`Kms::decrypt_data_key`] (SSE-KMS) and
//!   [`Kms::generate_sse_s3_key`] / [`Kms::decrypt_sse_s3_key`] (SSE-S3, a hidden service key).
//! - [`xks::handle`] speaks the AWS KMS External Key Store proxy API (XKS) for keys tagged
//!   `sealbox:xks` = `true` — again no HTTP: the server checks SigV4 (`kms-xks-proxy`) first.
//! - Time comes from a [`Clock`] so rotation and deletion windows are testable without sleeping.
//!
//! This crate must never: store key material unwrapped, log or return material except as the
//! Plaintext of GenerateDataKey/GenerateDataKeyPair/Decrypt (and XKS Decrypt), or let a ciphertext
//! decrypt under another context, key or material version. Start reading at `kms.rs`; the blob
//! format (and the only code choosing keys and nonces for blobs) is `blob.rs`, the XKS
//! ciphertext's is `xks/cipher.rs`; docs/key-hierarchy.md explains the whole hierarchy, and
//! WIRE.md lists what clients see on the wire.

pub mod api;
mod asym;
mod blob;
mod clock;
mod error;
pub mod grants;
#[cfg(feature = "pkcs11")]
mod hsm;
mod import;
mod kms;
mod root;
pub mod spec;
mod store;
pub mod xks;

pub use clock::{Clock, FakeClock, OffsetClock, SystemClock};
pub use error::KmsError;
pub use kms::{
    Caller, DataKeyPair, Decrypted, GeneratedDataKey, ImportParametersOut, KeyRecord, Kms, KmsConfig, KmsStats,
    MaterialInfo, NewGrant, NewKey, RotationEvent, S3_DEFAULT_ALIAS,
};
pub use root::RootKey;
