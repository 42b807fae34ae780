//! Rewrap: after a KMS rotation, re-wrap every object's data key under its key's newest material
//! without touching object data (metadata only), so old material can be retired by policy.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use s3s::S3Result;
use sealbox_store::ObjectRecord;
use serde::Serialize;

use crate::binding::ObjectIdentity;
use crate::error::blocking;
use crate::service::SealboxS3;
use crate::sse::{kms_context, SealInfo, SSE_C};

/// Tries per object when concurrent writes keep moving it on.
const REWRAP_ATTEMPTS: usize = 3;

/// What a rewrap pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RewrapReport {
    pub examined: u64,
    pub rewrapped: u64,
    pub already_current: u64,
    /// SSE-C objects: their keys are the customer's, not ours.
    pub skipped_customer_keys: u64,
    /// Objects replaced or deleted while we worked on them, and still changing after retries
    /// (left as the concurrent writes made them).
    pub changed_meanwhile: u64,
    pub failed: u64,
    pub errors: Vec<String>,
}

impl SealboxS3 {
    /// Re-wraps every object of `bucket` (objects whose keys start with `prefix`), at most `rate`
    /// objects per second when given.
    pub async fn rewrap_bucket(&self, bucket: &str, prefix: &str, rate: Option<f64>) -> S3Result<RewrapReport> {
        self.require_bucket(bucket).await?;
        let mut report = RewrapReport::default();
        let mut after: Option<Vec<u8>> = None;
        let pause = rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(1.0 / r));
        loop {
            let meta = self.meta.clone();
            let (b, p, a) = (bucket.to_owned(), prefix.to_owned(), after.clone());
            let page =
                blocking(move || meta.list_objects(&b, p.as_bytes(), a.as_deref().map(|k| (k, false)), 500)).await?;
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.key.as_bytes().to_vec());
            for rec in page {
                report.examined += 1;
                self.rewrap_object(rec, &mut report).await?;
                if let Some(p) = pause {
                    tokio::time::sleep(p).await;
                }
            }
        }
        Ok(report)
    }

    /// Re-wraps one object's data keys and writes the record back only at the generation it was
    /// read at: an object overwritten meanwhile (even with identical bytes and ETag) is re-read
    /// and re-wrapped again, never written back with the replaced record's blobs.
    async fn rewrap_object(&self, mut rec: ObjectRecord, report: &mut RewrapReport) -> S3Result<()> {
        for _ in 0..REWRAP_ATTEMPTS {
            // The record is checked first: re-tagging an edited record would launder it.
            let (b, k) = (rec.bucket.clone(), rec.key.clone());
            let id = ObjectIdentity::new(&b, &k);
            let Ok(mut info) = self.verify_record(&id, &rec) else {
                report.failed += 1;
                if report.errors.len() < 20 {
                    report.errors.push(format!("{}: stored record failed its integrity check", rec.key));
                }
                return Ok(());
            };
            if info.algorithm == SSE_C {
                report.skipped_customer_keys += 1;
                return Ok(());
            }
            match self.rewrap_info(&mut info, &id).await {
                Ok(false) => {
                    report.already_current += 1;
                    return Ok(());
                }
                Ok(true) => {
                    // The binding covers no wrapped key (the data key is unchanged): only the
                    // row MAC changes.
                    rec.sse = Some(info.to_json());
                    self.retag_row(&mut rec);
                    let meta = self.meta.clone();
                    let r = rec.clone();
                    if blocking(move || meta.update_object_doc(&r)).await? {
                        report.rewrapped += 1;
                        return Ok(());
                    }
                }
                Err(e) => {
                    report.failed += 1;
                    if report.errors.len() < 20 {
                        report.errors.push(format!("{}: {e}", rec.key));
                    }
                    return Ok(());
                }
            }
            let meta = self.meta.clone();
            let (b, k) = (rec.bucket.clone(), rec.key.clone());
            match blocking(move || meta.object(&b, &k)).await? {
                Some(fresh) => rec = fresh,
                None => break,
            }
        }
        report.changed_meanwhile += 1;
        Ok(())
    }

    /// Re-wraps each wrapped key of one object; true if anything changed.
    async fn rewrap_info(&self, info: &mut SealInfo, id: &ObjectIdentity<'_>) -> Result<bool, String> {
        let mut changed = false;
        let ctx = kms_context(info, id);
        for wrapped in info.wrapped_keys.iter_mut() {
            let blob = B64.decode(&*wrapped).map_err(|e| e.to_string())?;
            let ks = self.enc.keys.clone();
            let ctx = ctx.clone();
            let result =
                tokio::task::spawn_blocking(move || ks.rewrap(&blob, &ctx)).await.map_err(|e| e.to_string())?;
            match result {
                Ok(Some(new_blob)) => {
                    *wrapped = B64.encode(new_blob);
                    changed = true;
                }
                Ok(None) => {}
                Err(e) => return Err(format!("{}: {}", e.aws_type, e.message)),
            }
        }
        Ok(changed)
    }
}
