//! The migration report: JSON for machines (and `decommission`), a summary for people.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cli::VerifyMode;
use crate::error::MigrateError;
use crate::progress::human_bytes;

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Outcome {
    /// Written and verified in this run.
    Copied,
    /// Already at the destination and verified by an earlier run.
    Skipped,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ObjectReport {
    pub src_key: String,
    pub src_tag: String,
    pub dst_bucket: String,
    pub dst_key: String,
    pub size: u64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dst_etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dst_checksum: Option<String>,
    /// Multipart parts taken over from a killed run.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resumed_parts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub copied: u64,
    pub skipped: u64,
    pub failed: u64,
    pub unmatched: u64,
    pub bytes_copied: u64,
    pub bytes_total: u64,
    pub elapsed_secs: f64,
    pub mib_per_sec: f64,
    pub objects_per_sec: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    pub format: u32,
    pub source: String,
    pub verify: VerifyMode,
    pub finished_at: i64,
    /// True only if every listed object was copied or skipped after verification.
    pub all_verified: bool,
    pub summary: Summary,
    pub objects: Vec<ObjectReport>,
    #[serde(default)]
    pub unmatched: Vec<String>,
}

impl Report {
    pub(crate) fn build(
        source: String,
        verify: VerifyMode,
        objects: Vec<ObjectReport>,
        unmatched: Vec<String>,
        elapsed_secs: f64,
    ) -> Self {
        let mut s = Summary { unmatched: unmatched.len() as u64, elapsed_secs, ..Summary::default() };
        for o in &objects {
            s.bytes_total += o.size;
            match o.outcome {
                Outcome::Copied => {
                    s.copied += 1;
                    s.bytes_copied += o.size;
                }
                Outcome::Skipped => s.skipped += 1,
                Outcome::Failed => s.failed += 1,
            }
        }
        let secs = elapsed_secs.max(1e-3);
        s.mib_per_sec = s.bytes_copied as f64 / (1024.0 * 1024.0) / secs;
        s.objects_per_sec = s.copied as f64 / secs;
        Report {
            format: 1,
            source,
            verify,
            finished_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            all_verified: s.failed == 0,
            summary: s,
            objects,
            unmatched,
        }
    }

    pub(crate) fn write(&self, path: &Path) -> Result<(), MigrateError> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| MigrateError::BadArgument(e.to_string()))?;
        // Write then rename so a half-written report can never be fed to decommission.
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|source| MigrateError::Io { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, path).map_err(|source| MigrateError::Io { path: path.to_owned(), source })
    }

    pub(crate) fn read(path: &Path) -> Result<Self, MigrateError> {
        let text = std::fs::read(path).map_err(|source| MigrateError::Io { path: path.to_owned(), source })?;
        serde_json::from_slice(&text).map_err(|e| {
            MigrateError::DecommissionRefused(format!("report {} is not a valid migration report: {e}", path.display()))
        })
    }

    /// Human summary, printed on stdout.
    pub(crate) fn summary_text(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "copied {} ({}), skipped {} (already verified), failed {}{} in {:.1}s: {:.1} MiB/s, {:.1} objects/s\n",
            s.copied,
            human_bytes(s.bytes_copied),
            s.skipped,
            s.failed,
            if s.unmatched > 0 { format!(", unmatched {}", s.unmatched) } else { String::new() },
            s.elapsed_secs,
            s.mib_per_sec,
            s.objects_per_sec,
        );
        for o in self.objects.iter().filter(|o| o.outcome == Outcome::Failed) {
            out.push_str(&format!(
                "  FAILED {} -> s3://{}/{}: {}\n",
                o.src_key,
                o.dst_bucket,
                o.dst_key,
                o.error.as_deref().unwrap_or("unknown")
            ));
        }
        out
    }
}
