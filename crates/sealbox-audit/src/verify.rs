//! Offline verification of an audit directory: the record hash chain across every log file, then
//! the signed digest chain and the log file hashes it vouches for.
//!
//! The first problem found is reported, naming the file (and line and seq, for records). The chain
//! walk runs first because it points at the exact record; the digest pass then catches what a
//! consistent rewrite of the chain could hide (a rewritten or truncated file no longer matches the
//! hash a signed digest holds).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest::{Context, SHA256};

use crate::chain::{self, RawLine, DIGESTS_DIR, GENESIS_PREV};
use crate::digest::{self, DigestDocument};
use crate::signer::AuditPublicKey;

/// What a successful verification saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub files: usize,
    pub digests: usize,
    /// Records up to the newest digest's chain head: vouched for by a signature.
    pub covered_records: u64,
    /// Records after the newest digest: only the hash chain vouches for them ("not yet covered by
    /// a digest"); their tail could have been cut without a trace.
    pub uncovered_records: u64,
    pub uncovered_files: Vec<String>,
    pub last_seq: u64,
    pub newest_digest: Option<String>,
    pub newest_digest_end_time: Option<String>,
    pub key_fingerprint: String,
    /// The newest file ends in an incomplete line (being written, or cut by a crash not yet
    /// repaired by a restart); it was not counted.
    pub torn_tail: Option<TornTail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: String,
    pub line: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("could not read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{file} line {line}: not a log line ({reason})")]
    MalformedLine { file: String, line: u64, reason: String },
    #[error(
        "{file} line {line}: the last line is cut short (truncated file, or a crash the server has not repaired yet)"
    )]
    TornLine { file: String, line: u64 },
    #[error("{file} line {line} (seq {seq}): record hash mismatch: the record was edited")]
    RecordEdited { file: String, line: u64, seq: u64 },
    #[error("{file} line {line}: expected seq {expected}, found {found}: the records from {expected} up to {found} are missing (deleted)")]
    RecordsMissing { file: String, line: u64, expected: u64, found: u64 },
    #[error("{file} line {line}: expected seq {expected}, found {found}: records were reordered")]
    RecordsReordered { file: String, line: u64, expected: u64, found: u64 },
    #[error("{file} line {line}: expected seq {expected}, found {found}: a record was inserted or duplicated")]
    RecordInserted { file: String, line: u64, expected: u64, found: u64 },
    #[error("{file} line {line} (seq {seq}): prev does not match the previous record's hash: a record was inserted or replaced")]
    PrevMismatch { file: String, line: u64, seq: u64 },
    #[error("{file} ends at seq {last_seq} but the next file starts at {next_first_seq}: the file was truncated")]
    FileTruncated { file: String, last_seq: u64, next_first_seq: u64 },
    #[error("{file}: its name says it starts at seq {named} but its first record is {found}")]
    FileRenamed { file: String, named: u64, found: u64 },
    #[error("digest {digest}: malformed ({reason})")]
    DigestMalformed { digest: String, reason: String },
    #[error("digest {digest}: signature file missing")]
    DigestSignatureMissing { digest: String },
    #[error("digest {digest}: signed by key {fingerprint}, not the key given")]
    DigestWrongKey { digest: String, fingerprint: String },
    #[error("digest {digest}: signature invalid: the digest was edited or the signature forged")]
    DigestSignatureInvalid { digest: String },
    #[error("digest {digest}: digest chain broken: {reason}")]
    DigestChainBroken { digest: String, reason: String },
    #[error("digest {digest}: log file {file} is missing")]
    LogFileMissing { digest: String, file: String },
    #[error("digest {digest}: log file {file} ends at seq {last_seq}, the digest covers up to {expected_last_seq}: the file was truncated")]
    LogFileTruncated { digest: String, file: String, last_seq: u64, expected_last_seq: u64 },
    #[error("digest {digest}: log file {file} does not match its hash: the file was modified")]
    LogFileModified { digest: String, file: String },
    #[error("digest {digest}: covers seq {seq} with hash {expected} but the log has {found}")]
    ChainHeadMismatch { digest: String, seq: u64, expected: String, found: String },
    #[error("log file {file} is older than the newest digest but no digest covers it")]
    LogFileNotCovered { file: String },
}

impl VerifyError {
    /// The log or digest file the problem is in (the digest, for digest-level problems about a
    /// log file use [`VerifyError::log_file`]).
    pub fn file(&self) -> Option<&str> {
        use VerifyError::*;
        match self {
            Io { .. } => None,
            MalformedLine { file, .. }
            | TornLine { file, .. }
            | RecordEdited { file, .. }
            | RecordsMissing { file, .. }
            | RecordsReordered { file, .. }
            | RecordInserted { file, .. }
            | PrevMismatch { file, .. }
            | FileTruncated { file, .. }
            | FileRenamed { file, .. }
            | LogFileNotCovered { file } => Some(file),
            DigestMalformed { digest, .. }
            | DigestSignatureMissing { digest }
            | DigestWrongKey { digest, .. }
            | DigestSignatureInvalid { digest }
            | DigestChainBroken { digest, .. }
            | LogFileMissing { digest, .. }
            | LogFileTruncated { digest, .. }
            | LogFileModified { digest, .. }
            | ChainHeadMismatch { digest, .. } => Some(digest),
        }
    }

    /// The log file a problem is about, whichever check found it.
    pub fn log_file(&self) -> Option<&str> {
        use VerifyError::*;
        match self {
            LogFileMissing { file, .. } | LogFileTruncated { file, .. } | LogFileModified { file, .. } => Some(file),
            DigestMalformed { .. }
            | DigestSignatureMissing { .. }
            | DigestWrongKey { .. }
            | DigestSignatureInvalid { .. }
            | DigestChainBroken { .. }
            | ChainHeadMismatch { .. }
            | Io { .. } => None,
            _ => self.file(),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VerifyError + '_ {
    move |source| VerifyError::Io { path: path.to_owned(), source }
}

/// What the chain walk learned about one log file.
struct FileFacts {
    sha256: String,
    first_seq: u64,
    last_seq: u64,
}

/// Verifies the audit trail of the data directory `data_dir` (its `audit/` subdirectory) against
/// `public_key`.
pub fn verify(data_dir: &Path, public_key: &AuditPublicKey) -> Result<VerifyReport, VerifyError> {
    let audit_dir = crate::audit_dir(data_dir);
    let mut report = VerifyReport { key_fingerprint: public_key.fingerprint(), ..VerifyReport::default() };
    // Digests are listed before the log files: against a running server, every digest seen then
    // names only files that already exist and are sealed.
    let digests = chain::list_digest_files(&audit_dir).map_err(io_err(&audit_dir))?;
    let (files, hashes) = walk_chain(&audit_dir, &mut report)?;
    let covered_seq = check_digests(&audit_dir, digests, public_key, &files, &hashes, &mut report)?;
    for (name, facts) in &files {
        if facts.first_seq > covered_seq {
            report.uncovered_files.push(name.clone());
        }
    }
    report.uncovered_files.sort();
    report.covered_records = covered_seq;
    report.uncovered_records = report.last_seq - covered_seq;
    Ok(report)
}

/// Per-file facts, and the record hash at the end of each file (by seq).
type ChainFacts = (HashMap<String, FileFacts>, HashMap<u64, String>);

/// Phase 1: every line of every log file, in seq order. Returns per-file facts and the record hash
/// at the end of each file (digest chain heads point there).
fn walk_chain(audit_dir: &Path, report: &mut VerifyReport) -> Result<ChainFacts, VerifyError> {
    let names = chain::list_log_files(audit_dir).map_err(io_err(audit_dir))?;
    let mut files = HashMap::new();
    let mut hashes = HashMap::from([(0u64, GENESIS_PREV.to_owned())]);
    let mut expected = 1u64;
    let mut prev = GENESIS_PREV.to_owned();
    let mut previous_file: Option<String> = None;
    let count = names.len();
    for (i, (named_seq, name)) in names.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let path = audit_dir.join(&name);
        let mut reader = BufReader::new(File::open(&path).map_err(io_err(&path))?);
        let mut hasher = Context::new(&SHA256);
        let mut line = Vec::new();
        let mut line_no = 0u64;
        let mut first_seq = None;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            hasher.update(&line);
            if line.last() != Some(&b'\n') {
                if !is_last {
                    return Err(VerifyError::TornLine { file: name, line: line_no });
                }
                // The newest file of a running server may end in a line being written (or one a
                // crash cut, which the next start repairs). Cutting the uncovered tail is no more
                // than truncating it, which the chain alone cannot show anyway; a torn line inside
                // a digested file still fails that digest's hash.
                report.torn_tail = Some(TornTail { file: name.clone(), line: line_no });
                break;
            }
            let parsed = RawLine::parse(&line[..line.len() - 1]).map_err(|reason| VerifyError::MalformedLine {
                file: name.clone(),
                line: line_no,
                reason,
            })?;
            if line_no == 1 {
                check_file_start(&name, named_seq, parsed.seq, expected, previous_file.as_deref())?;
            }
            if parsed.seq != expected {
                return Err(classify_seq_error(&path, &name, line_no, expected, parsed.seq));
            }
            if parsed.prev != prev {
                return Err(VerifyError::PrevMismatch { file: name, line: line_no, seq: parsed.seq });
            }
            if parsed.computed_hash() != parsed.hash {
                return Err(VerifyError::RecordEdited { file: name, line: line_no, seq: parsed.seq });
            }
            first_seq.get_or_insert(parsed.seq);
            prev = parsed.hash;
            expected += 1;
            report.records += 1;
        }
        let Some(first_seq) = first_seq else {
            // An empty file holds nothing to verify (the writer removes these at start).
            continue;
        };
        hashes.insert(expected - 1, prev.clone());
        files.insert(
            name.clone(),
            FileFacts { sha256: hex::encode(hasher.finish()), first_seq, last_seq: expected - 1 },
        );
        report.files += 1;
        previous_file = Some(name);
    }
    report.last_seq = expected - 1;
    Ok((files, hashes))
}

/// A file's first record must be the one its name announces, and the one after the previous file.
fn check_file_start(
    name: &str,
    named_seq: u64,
    found: u64,
    expected: u64,
    previous_file: Option<&str>,
) -> Result<(), VerifyError> {
    if found == named_seq && named_seq > expected {
        if let Some(prev) = previous_file {
            return Err(VerifyError::FileTruncated {
                file: prev.to_owned(),
                last_seq: expected - 1,
                next_first_seq: found,
            });
        }
    }
    if found == expected && named_seq != found {
        return Err(VerifyError::FileRenamed { file: name.to_owned(), named: named_seq, found });
    }
    Ok(())
}

/// A seq out of place: a later seq means records are missing, unless the expected one appears
/// further down the same file (then they were reordered); an earlier seq means an inserted or
/// duplicated line.
fn classify_seq_error(path: &Path, name: &str, line: u64, expected: u64, found: u64) -> VerifyError {
    let file = name.to_owned();
    if found < expected {
        return VerifyError::RecordInserted { file, line, expected, found };
    }
    if file_has_seq_after(path, line, expected) {
        VerifyError::RecordsReordered { file, line, expected, found }
    } else {
        VerifyError::RecordsMissing { file, line, expected, found }
    }
}

fn file_has_seq_after(path: &Path, after_line: u64, seq: u64) -> bool {
    let Ok(f) = File::open(path) else { return false };
    BufReader::new(f)
        .split(b'\n')
        .skip(after_line as usize)
        .map_while(Result::ok)
        .any(|l| RawLine::parse(&l).is_ok_and(|p| p.seq == seq))
}

/// Phase 2: the digest chain, oldest first. Returns the seq the newest digest covers up to.
fn check_digests(
    audit_dir: &Path,
    digests: Vec<(u64, String)>,
    key: &AuditPublicKey,
    files: &HashMap<String, FileFacts>,
    hashes: &HashMap<u64, String>,
    report: &mut VerifyReport,
) -> Result<u64, VerifyError> {
    let fingerprint = key.fingerprint();
    let mut previous: Option<(String, String, String)> = None;
    let mut covered_seq = 0u64;
    let mut referenced = HashSet::new();
    for (_, name) in digests {
        let path = audit_dir.join(DIGESTS_DIR).join(&name);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        let signature_hex = match digest::read_signature(audit_dir, &name) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VerifyError::DigestSignatureMissing { digest: name })
            }
            Err(e) => return Err(VerifyError::Io { path, source: e }),
        };
        let doc: DigestDocument = serde_json::from_slice(&bytes)
            .map_err(|e| VerifyError::DigestMalformed { digest: name.clone(), reason: e.to_string() })?;
        if doc.digest_public_key_fingerprint != fingerprint {
            return Err(VerifyError::DigestWrongKey { digest: name, fingerprint: doc.digest_public_key_fingerprint });
        }
        let sha = digest::sha256_hex(&bytes);
        let signed =
            digest::string_to_sign(&doc.digest_end_time, &name, &sha, doc.previous_digest_signature.as_deref());
        let signature = hex::decode(&signature_hex).unwrap_or_default();
        if !key.verify(signed.as_bytes(), &signature) {
            return Err(VerifyError::DigestSignatureInvalid { digest: name });
        }
        check_link(&name, &doc, previous.as_ref())?;
        for entry in &doc.log_files {
            covered_seq = check_covered_file(&name, entry, covered_seq, files)?;
            referenced.insert(entry.path.clone());
        }
        if doc.chain_head_seq != covered_seq {
            return Err(VerifyError::DigestChainBroken {
                digest: name,
                reason: format!("chain head seq {} but its files end at seq {covered_seq}", doc.chain_head_seq),
            });
        }
        let found = hashes.get(&covered_seq).cloned().unwrap_or_default();
        if found != doc.chain_head_hash {
            return Err(VerifyError::ChainHeadMismatch {
                digest: name,
                seq: covered_seq,
                expected: doc.chain_head_hash,
                found,
            });
        }
        report.digests += 1;
        report.newest_digest = Some(name.clone());
        report.newest_digest_end_time = Some(doc.digest_end_time.clone());
        previous = Some((name, sha, signature_hex));
    }
    let mut skipped: Vec<&String> =
        files.iter().filter(|(n, f)| f.first_seq <= covered_seq && !referenced.contains(*n)).map(|(n, _)| n).collect();
    skipped.sort();
    if let Some(file) = skipped.first() {
        return Err(VerifyError::LogFileNotCovered { file: (*file).clone() });
    }
    Ok(covered_seq)
}

/// The `previousDigest*` fields must name exactly the digest before (none, for the first).
fn check_link(
    name: &str,
    doc: &DigestDocument,
    previous: Option<&(String, String, String)>,
) -> Result<(), VerifyError> {
    let broken = |reason: String| VerifyError::DigestChainBroken { digest: name.to_owned(), reason };
    match previous {
        None => match &doc.previous_digest_file {
            None => Ok(()),
            Some(prev) => Err(broken(format!("names previous digest {prev}, which is missing"))),
        },
        Some((prev_name, prev_sha, prev_sig)) => {
            if doc.previous_digest_file.as_deref() != Some(prev_name) {
                let named = doc.previous_digest_file.as_deref().unwrap_or("none");
                return Err(broken(format!("names previous digest {named}, but the digest before it is {prev_name}")));
            }
            if doc.previous_digest_hash_value.as_deref() != Some(prev_sha) {
                return Err(broken(format!("the hash of {prev_name} changed")));
            }
            if doc.previous_digest_signature.as_deref() != Some(prev_sig) {
                return Err(broken(format!("the signature of {prev_name} changed")));
            }
            Ok(())
        }
    }
}

/// A log file listed in a digest: it must continue the covered range and match its hash.
fn check_covered_file(
    digest: &str,
    entry: &crate::digest::DigestLogFile,
    covered_seq: u64,
    files: &HashMap<String, FileFacts>,
) -> Result<u64, VerifyError> {
    if entry.first_seq != covered_seq + 1 || entry.last_seq < entry.first_seq {
        return Err(VerifyError::DigestChainBroken {
            digest: digest.to_owned(),
            reason: format!(
                "lists {} as seq {}..{} after seq {covered_seq}",
                entry.path, entry.first_seq, entry.last_seq
            ),
        });
    }
    let Some(facts) = files.get(&entry.path) else {
        return Err(VerifyError::LogFileMissing { digest: digest.to_owned(), file: entry.path.clone() });
    };
    if facts.last_seq < entry.last_seq {
        return Err(VerifyError::LogFileTruncated {
            digest: digest.to_owned(),
            file: entry.path.clone(),
            last_seq: facts.last_seq,
            expected_last_seq: entry.last_seq,
        });
    }
    if facts.sha256 != entry.hash_value || facts.first_seq != entry.first_seq || facts.last_seq != entry.last_seq {
        return Err(VerifyError::LogFileModified { digest: digest.to_owned(), file: entry.path.clone() });
    }
    Ok(entry.last_seq)
}
