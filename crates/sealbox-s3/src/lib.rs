//! sealbox-s3: the S3 API of sealbox, as an implementation of the `s3s` crate's [`s3s::S3`] trait.
//!
//! One file per family of operations (`bucket.rs`, `put.rs`, `get.rs`, `copy.rs`, `list.rs`,
//! `multipart.rs`, `delete.rs`), with the shared pieces beside them: `error.rs` decides every S3
//! error code, `checksum.rs` the flexible checksums, `body.rs` how object bytes move between the
//! network and the blob store. Everything an object's bytes pass through on the way to disk goes
//! through [`body::store_body`], and everything on the way out through [`body::read_parts`]: those
//! two functions are where sealing happens, so no other code path can write or read object bytes.
//!
//! Every stored object record is checked before it is used and bound when it is written
//! (`integrity.rs`, formats in `binding.rs`): a record moved, cut or edited in `meta.db` is refused.
//!
//! This crate must never: buffer a whole object in memory, write an object byte to the blob store
//! that did not pass through `store_body`, or answer with a 500 for bad client input.

mod attributes;
mod binding;
pub(crate) mod body;
mod bucket;
mod checksum;
mod copy;
mod delete;
mod encryption;
mod error;
mod get;
mod integrity;
mod keys;
mod list;
mod multipart;
mod policy;
mod put;
mod restore;
mod rewrap;
mod service;
mod sse;
mod sse_request;
mod tagging;
mod verify;

pub use body::IntegrityReporter;
pub use bucket::{BYTES_USED_HEADER, OBJECT_COUNT_HEADER};
pub use get::KMS_KEY_VERSION_HEADER;
pub use integrity::MetadataKeys;
pub use keys::{Caller, GeneratedKey, KeyError, KeyService};
pub use rewrap::RewrapReport;
pub use service::{unmodeled_operation, CallerArn, RequestInfo, S3Config, SealboxS3, WireFix};
pub use sse::Encryption;
pub use verify::StoredDataReport;
