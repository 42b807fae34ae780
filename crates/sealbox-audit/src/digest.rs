//! Signed digests (contract F.2, adapted): every interval, a JSON document naming the log files
//! written since the previous digest with their SHA-256, the chain head it covers, and the previous
//! digest's file, hash and signature. Signed with Ed25519; the hex signature sits beside the
//! document in `<digest>.sig`, as CloudTrail keeps it beside the object (S3 metadata).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chain::DIGESTS_DIR;
use crate::fsutil;
use crate::AuditError;

pub const SIGNATURE_ALGORITHM: &str = "Ed25519";
pub const HASH_ALGORITHM: &str = "SHA-256";

/// The digest document. Field names follow CloudTrail's digest where it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestDocument {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    /// Our own name (in the signed string too, so a renamed digest fails verification).
    pub digest_file: String,
    pub digest_number: u64,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_file: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: String,
    pub previous_digest_signature: Option<String>,
    /// Last record covered by this digest (and all before it): seq and record hash. `0` and the
    /// genesis hash when no record was ever written.
    pub chain_head_seq: u64,
    pub chain_head_hash: String,
    pub log_files: Vec<DigestLogFile>,
}

/// One sealed log file a digest covers: the hash is over the file's complete bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestLogFile {
    pub path: String,
    pub hash_value: String,
    pub hash_algorithm: String,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub newest_event_time: String,
    pub oldest_event_time: String,
}

/// What the signature covers (contract F.2 item 3, with our file name in place of bucket/key):
/// `<digestEndTime>\n<digest file name>\n<hex SHA-256 of the digest file>\n<previous signature hex,
/// or "null" for the first digest>`.
pub fn string_to_sign(
    end_time: &str,
    file_name: &str,
    digest_sha256_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!("{end_time}\n{file_name}\n{digest_sha256_hex}\n{}", previous_signature.unwrap_or("null"))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// The newest digest on disk, which the next one must link to.
#[derive(Debug, Clone)]
pub struct DigestHead {
    pub number: u64,
    pub file_name: String,
    pub sha256_hex: String,
    pub signature_hex: String,
    pub end_time: String,
    pub chain_head_seq: u64,
}

/// Writes `<name>.sig` then `<name>`, each through a temporary file and a rename, then syncs the
/// directory. The signature goes first so that a crash leaves at worst an orphan `.sig` (ignored),
/// never a digest without its signature (which verification rejects as tampering).
pub fn write_digest_files(
    audit_dir: &Path,
    name: &str,
    doc_bytes: &[u8],
    signature_hex: &str,
) -> Result<PathBuf, AuditError> {
    let dir = audit_dir.join(DIGESTS_DIR);
    let sig_path = dir.join(format!("{name}.sig"));
    let doc_path = dir.join(name);
    write_atomically(&sig_path, format!("{signature_hex}\n").as_bytes())?;
    write_atomically(&doc_path, doc_bytes)?;
    fsutil::sync_dir(&dir).map_err(|e| AuditError::io(&dir, e))?;
    Ok(doc_path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| AuditError::io(path, e))
}

/// Reads the hex signature of digest `name`.
pub fn read_signature(audit_dir: &Path, name: &str) -> std::io::Result<String> {
    let text = fs::read_to_string(audit_dir.join(DIGESTS_DIR).join(format!("{name}.sig")))?;
    Ok(text.trim().to_owned())
}

/// Loads the newest digest's linkage fields (no signature check: that is `verify`'s job; the writer
/// only needs to continue the chain).
pub fn load_head(audit_dir: &Path) -> Result<Option<DigestHead>, AuditError> {
    let digests = crate::chain::list_digest_files(audit_dir).map_err(|e| AuditError::io(audit_dir, e))?;
    let Some((number, name)) = digests.last().cloned() else { return Ok(None) };
    let path = audit_dir.join(DIGESTS_DIR).join(&name);
    let bytes = fs::read(&path).map_err(|e| AuditError::io(&path, e))?;
    let doc: DigestDocument = serde_json::from_slice(&bytes)
        .map_err(|e| AuditError::CorruptDigest { file: name.clone(), reason: e.to_string() })?;
    let signature_hex = read_signature(audit_dir, &name)
        .map_err(|e| AuditError::CorruptDigest { file: name.clone(), reason: format!("signature file: {e}") })?;
    Ok(Some(DigestHead {
        number,
        sha256_hex: sha256_hex(&bytes),
        signature_hex,
        end_time: doc.digest_end_time,
        chain_head_seq: doc.chain_head_seq,
        file_name: name,
    }))
}
