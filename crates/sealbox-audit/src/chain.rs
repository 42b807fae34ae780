//! The on-disk line format and the record hash chain.
//!
//! One line per record: `{"seq":N,"prev":"<hex>","hash":"<hex>","record":{...}}\n`, where
//! `hash = SHA-256("sealbox-audit-v1\n" || N || "\n" || prev || "\n" || record bytes)` and `prev` is
//! the `hash` of record N-1 (64 zeros for record 1). The record bytes are hashed exactly as they
//! stand in the line, so verification needs no JSON canonicalisation.

use std::fs;
use std::io;
use std::path::Path;

use aws_lc_rs::digest::{Context, SHA256};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::time_fmt;

/// `prev` of the first record of a chain.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation, so a record hash can never be confused with any other SHA-256 we compute.
const HASH_DOMAIN: &[u8] = b"sealbox-audit-v1\n";

/// Log files live directly in the audit directory; digests in this subdirectory.
pub const DIGESTS_DIR: &str = "digests";

pub fn record_hash(seq: u64, prev: &str, record_json: &[u8]) -> String {
    let mut ctx = Context::new(&SHA256);
    ctx.update(HASH_DOMAIN);
    ctx.update(seq.to_string().as_bytes());
    ctx.update(b"\n");
    ctx.update(prev.as_bytes());
    ctx.update(b"\n");
    ctx.update(record_json);
    hex::encode(ctx.finish())
}

/// The full line (with its `\n`) and the record's hash.
pub fn encode_line(seq: u64, prev: &str, record_json: &str) -> (Vec<u8>, String) {
    let hash = record_hash(seq, prev, record_json.as_bytes());
    let line = format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"hash\":\"{hash}\",\"record\":{record_json}}}\n");
    (line.into_bytes(), hash)
}

/// A line as read back, the record left as the exact bytes that were hashed.
#[derive(Deserialize)]
pub struct RawLine<'a> {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    #[serde(borrow)]
    pub record: &'a RawValue,
}

impl<'a> RawLine<'a> {
    pub fn parse(line: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(line).map_err(|e| e.to_string())
    }

    pub fn computed_hash(&self) -> String {
        record_hash(self.seq, &self.prev, self.record.get().as_bytes())
    }

    /// The record's `eventTime`, without parsing the whole record.
    pub fn event_time(&self) -> Option<OffsetDateTime> {
        #[derive(Deserialize)]
        struct Time {
            #[serde(rename = "eventTime")]
            event_time: String,
        }
        let t: Time = serde_json::from_str(self.record.get()).ok()?;
        time_fmt::parse_iso(&t.event_time)
    }
}

/// `audit-<yyyymmddThhmmssZ>-<first seq, 12 digits>.jsonl`.
pub fn log_file_name(created: OffsetDateTime, first_seq: u64) -> String {
    format!("audit-{}-{first_seq:012}.jsonl", time_fmt::compact(created))
}

/// The first seq a log file name announces.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (_, seq) = stem.rsplit_once('-')?;
    seq.parse().ok()
}

/// `digest-<yyyymmddThhmmssZ>-<digest number, 6 digits>.json`.
pub fn digest_file_name(end: OffsetDateTime, number: u64) -> String {
    format!("digest-{}-{number:06}.json", time_fmt::compact(end))
}

pub fn parse_digest_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_prefix("digest-")?.strip_suffix(".json")?;
    let (_, n) = stem.rsplit_once('-')?;
    n.parse().ok()
}

/// `(number, name)` of every entry of `dir` that `parse` accepts, in number order (the order the
/// writer created them; file times may go backwards with the clock).
fn list_numbered(dir: &Path, parse: fn(&str) -> Option<u64>) -> io::Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if let Some(n) = parse(&name) {
            out.push((n, name));
        }
    }
    out.sort();
    Ok(out)
}

pub fn list_log_files(audit_dir: &Path) -> io::Result<Vec<(u64, String)>> {
    list_numbered(audit_dir, parse_log_file_name)
}

pub fn list_digest_files(audit_dir: &Path) -> io::Result<Vec<(u64, String)>> {
    list_numbered(&audit_dir.join(DIGESTS_DIR), parse_digest_file_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_round_trips_and_hash_covers_seq_prev_and_record() {
        let (line, hash) = encode_line(7, GENESIS_PREV, r#"{"eventName":"Decrypt"}"#);
        assert!(line.ends_with(b"}\n"));
        let parsed = RawLine::parse(&line[..line.len() - 1]).unwrap();
        assert_eq!((parsed.seq, parsed.hash.as_str()), (7, hash.as_str()));
        assert_eq!(parsed.computed_hash(), hash);
        assert_ne!(record_hash(8, GENESIS_PREV, br#"{"eventName":"Decrypt"}"#), hash);
        assert_ne!(record_hash(7, &hash, br#"{"eventName":"Decrypt"}"#), hash);
        assert_ne!(record_hash(7, GENESIS_PREV, br#"{"eventName":"Encrypt"}"#), hash);
    }

    #[test]
    fn file_names_parse_back() {
        let t = OffsetDateTime::from_unix_timestamp(1_795_500_000).unwrap();
        assert_eq!(log_file_name(t, 42), "audit-20261124T060000Z-000000000042.jsonl");
        assert_eq!(parse_log_file_name("audit-20261124T060000Z-000000000042.jsonl"), Some(42));
        assert_eq!(digest_file_name(t, 3), "digest-20261124T060000Z-000003.json");
        assert_eq!(parse_digest_file_name("digest-20261124T060000Z-000003.json"), Some(3));
        assert_eq!(parse_digest_file_name("digest-20261124T060000Z-000003.json.sig"), None);
        assert_eq!(parse_log_file_name("audit-x.jsonl.tmp"), None);
    }
}
