//! sealbox's tamper-evident audit trail, shaped like AWS CloudTrail (contract F).
//!
//! Owns: the [`AuditRecord`] shape and its builders, the redaction of secrets, the hash-chained
//! JSON Lines log files under `<data dir>/audit/`, the single writer thread with group commit
//! ([`AuditLog`], which recovers by itself once a failed disk takes writes again), flood coalescing
//! of the records clients can cause at will ([`coalesce`]), the Ed25519-signed digests
//! ([`AuditSigner`]), the trust anchor a verifier brings ([`TrustAnchor`]), and the offline readers
//! [`verify()`] and [`lookup()`].
//!
//! Must never: write a secret (every record passes [`redact()`] before it is written), rewrite or
//! delete a record that was written (the only in-place change is cutting a torn, half-written last
//! line after a crash, which is itself recorded), know anything about HTTP, or hold the signing key
//! inside the audit directory.
//!
//! Start reading at `log.rs` (the writer), then `verify.rs`. The format is in docs/audit-format.md.

mod anchor;
mod chain;
pub mod coalesce;
mod digest;
mod fsutil;
mod log;
mod lookup;
mod record;
mod redact;
mod signer;
mod time_fmt;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use anchor::{
    install_public_key, normalize_fingerprint, public_key_path, read_public_key, resolve_anchor, AnchorError,
    ResolvedKey, TrustAnchor, PUBLIC_KEY_FILE,
};
pub use chain::{log_file_name, record_hash, GENESIS_PREV};
pub use coalesce::{Admission, FloodKey, FloodLimits};
pub use digest::{string_to_sign, DigestDocument, DigestLogFile, SIGNATURE_ALGORITHM};
pub use log::{AppendFuture, AuditConfig, AuditLog, AuditStats, Clock, Durability, SystemClock};
pub use lookup::{lookup, LookupFilter};
pub use record::{
    event_time, is_read_only_event, is_s3_data_event, AuditRecord, EventCategory, EventSource, EventType, Principal,
    RequestContext, Resource, UserIdentity, ANONYMOUS_ACCOUNT, AWS_INTERNAL, EVENT_VERSION, INTENT_EVENT,
    RECOVERED_EVENT, S3_SERVICE_HOST, SUPPRESSED_EVENT,
};
pub use redact::{redact, HIDDEN};
pub use signer::{AuditPublicKey, AuditSigner};
pub use verify::{verify, TornTail, VerifyError, VerifyReport};

/// The audit directory inside a data directory.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit I/O failed on {path}: {source}")]
    Io { path: PathBuf, source: Arc<std::io::Error> },
    #[error("could not generate an audit signing key")]
    KeyGeneration,
    #[error("the audit signing key is not a valid Ed25519 PKCS#8 key: {0}")]
    BadSigningKey(String),
    #[error("not a valid Ed25519 public key: {0}")]
    BadPublicKey(String),
    #[error("audit digest {file} is unreadable: {reason}")]
    CorruptDigest { file: String, reason: String },
    #[error("audit log {file} line {line} is unreadable ({reason}); run `sealbox audit verify`")]
    CorruptLog { file: String, line: u64, reason: String },
    #[error("the newest digest covers records up to seq {digest_seq} but the log ends at seq {log_seq}: records were removed; run `sealbox audit verify`")]
    ChainBehindDigest { digest_seq: u64, log_seq: u64 },
    #[error("another sealbox process is writing this audit log ({path} is locked)")]
    Locked { path: PathBuf },
    #[error("could not encode an audit record: {0}")]
    Encode(String),
    #[error("the audit writer has stopped")]
    Closed,
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        AuditError::Io { path: path.to_owned(), source: Arc::new(source) }
    }
}
