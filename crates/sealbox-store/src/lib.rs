//! sealbox-store: where sealbox keeps things.
//!
//! Two halves, deliberately separate:
//! - [`MetaStore`]: buckets, objects, multipart uploads and parts in embedded SQLite (WAL), in plain
//!   SQL that PostgreSQL could also run. Object keys are stored as BLOBs so ordering and range
//!   queries are byte-wise (S3 lists keys in UTF-8 byte order).
//! - [`BlobStore`]: the object bytes as files. A blob is written to a temp file, fsynced, renamed
//!   into place and its directory fsynced *before* the metadata that names it is committed, so a
//!   crash leaves either the old object or the new one.
//!
//! The meta store also tracks each blob's life (`lifecycle.rs`): written (an intent row) →
//! committed (named by a record) → pending deletion (queued in the transaction that replaced or
//! deleted the record) → removed by [`BlobStore::collect_garbage`] after a grace period, so a read
//! that loaded the old record never finds its blobs gone. Blobs no record took are found through
//! their intents, periodically, without scanning every record; the full scan
//! ([`BlobStore::sweep_at_start`]) runs only at start.
//!
//! Configuration rows (bucket policies and settings, IAM users, keys, policies) carry MACs the
//! store checks on every read, with a key the server installs ([`RowAuthenticator`]): see
//! `integrity.rs`.
//!
//! This crate never sees plaintext object bytes once sealing is on (the S3 layer seals before it
//! writes), knows nothing of HTTP, and treats the encryption description of an object (`sse`) as
//! opaque JSON owned by the S3 layer.

mod blob;
mod error;
mod integrity;
mod lifecycle;
mod meta;
mod records;

pub use blob::{BlobId, BlobLifecycle, BlobStore, BlobWriter, GcReport};
pub use error::StoreError;
pub use integrity::{Canonical, LegacyCounts, RowAuthenticator};
pub use meta::{prefix_upper_bound, AccessKeyRecord, BucketConfig, MetaStore, UserRecord, WriteCondition};
pub use records::{BucketRecord, ObjectRecord, PartRecord, RestoreState, StoredPart, UploadRecord};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
