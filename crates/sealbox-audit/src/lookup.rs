//! `LookupEvents`-style search over the log files, newest first.
//!
//! Files are read one at a time, newest file first, each streamed line by line; only one file's
//! matches are held at once, and the search stops as soon as `max_results` are found.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::chain;
use crate::record::AuditRecord;
use crate::AuditError;

/// Every set field must match (CloudTrail's LookupEvents takes one attribute; we allow several).
#[derive(Debug, Clone, Default)]
pub struct LookupFilter {
    /// Inclusive.
    pub start_time: Option<OffsetDateTime>,
    /// Inclusive.
    pub end_time: Option<OffsetDateTime>,
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    pub username: Option<String>,
    pub access_key_id: Option<String>,
    /// A resource ARN, or a key id: matches `resources[].ARN` (whole, or its last `/` part) and
    /// `requestParameters.keyId`.
    pub resource: Option<String>,
    /// `requestParameters.bucketName`.
    pub bucket: Option<String>,
    /// Default 50, as LookupEvents.
    pub max_results: Option<usize>,
}

impl LookupFilter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.start_time.is_none_or(|t| r.event_time >= t)
            && self.end_time.is_none_or(|t| r.event_time <= t)
            && self.event_name.as_deref().is_none_or(|n| r.event_name == n)
            && self.event_source.as_deref().is_none_or(|s| r.event_source == s)
            && self.username.as_deref().is_none_or(|u| r.user_identity.user_name.as_deref() == Some(u))
            && self.access_key_id.as_deref().is_none_or(|k| r.user_identity.access_key_id.as_deref() == Some(k))
            && self.resource.as_deref().is_none_or(|res| names_resource(r, res))
            && self.bucket.as_deref().is_none_or(|b| request_parameter(r, "bucketName") == Some(b))
    }
}

impl LookupFilter {
    /// Byte strings a matching line must contain. A field that matches holds the value JSON-encoded
    /// by serde_json, so a line without it can be skipped without parsing (most lines, for a
    /// selective search).
    fn needles(&self) -> Vec<Vec<u8>> {
        let quoted = [&self.event_name, &self.event_source, &self.username, &self.access_key_id, &self.bucket];
        let mut out: Vec<Vec<u8>> = quoted.into_iter().flatten().filter_map(|v| serde_json::to_vec(v).ok()).collect();
        if let Some(resource) = &self.resource {
            // Unquoted: a key id matches the tail of an ARN.
            if let Ok(encoded) = serde_json::to_vec(resource) {
                out.push(encoded[1..encoded.len() - 1].to_vec());
            }
        }
        out
    }
}

fn request_parameter<'a>(r: &'a AuditRecord, name: &str) -> Option<&'a str> {
    r.request_parameters.as_ref()?.get(name)?.as_str()
}

fn names_resource(r: &AuditRecord, resource: &str) -> bool {
    r.resources.iter().any(|x| x.arn == resource || x.arn.rsplit('/').next() == Some(resource))
        || request_parameter(r, "keyId") == Some(resource)
}

/// Records of the data directory's audit log matching `filter`, newest first.
pub fn lookup(data_dir: &Path, filter: &LookupFilter) -> Result<Vec<AuditRecord>, AuditError> {
    #[derive(Deserialize)]
    struct Line {
        record: AuditRecord,
    }
    let audit_dir = crate::audit_dir(data_dir);
    let max = filter.max_results.unwrap_or(50);
    let needles = filter.needles();
    let mut out = Vec::new();
    let files = chain::list_log_files(&audit_dir).map_err(|e| AuditError::io(&audit_dir, e))?;
    for (_, name) in files.into_iter().rev() {
        if out.len() >= max {
            break;
        }
        let path = audit_dir.join(&name);
        let file = match File::open(&path) {
            Ok(f) => f,
            // Sealed files are never removed by the writer, but a reader must not die on a race.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AuditError::io(&path, e)),
        };
        let mut matches = Vec::new();
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| AuditError::io(&path, e))?;
            if !needles.iter().all(|n| memchr::memmem::find(&line, n).is_some()) {
                continue;
            }
            // A line being written right now may be incomplete: skip what does not parse.
            let Ok(Line { record }) = serde_json::from_slice::<Line>(&line) else { continue };
            if filter.matches(&record) {
                matches.push(record);
            }
        }
        // Within a file, later lines are newer.
        out.extend(matches.into_iter().rev().take(max - out.len()));
    }
    Ok(out)
}
