//! Reading back every stored object without serving it: each blob is read through
//! [`read_parts`] (the one read path), so every segment's AES-GCM tag is checked and every blob's
//! length is held to the format. Used by `sealbox restore` to check a backup before it is served.

use futures::StreamExt;
use serde::Serialize;

use crate::binding::ObjectIdentity;
use crate::body::read_parts;
use crate::error::blocking;
use crate::keys::Caller;
use crate::service::SealboxS3;

/// What a full check of the stored data found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct StoredDataReport {
    pub buckets: u64,
    pub objects: u64,
    /// Objects whose every segment was decrypted and authenticated.
    pub authenticated: u64,
    /// Plaintext bytes authenticated.
    pub bytes: u64,
    /// SSE-C objects: their keys are the customers', so only each blob's length is checked.
    pub customer_key_length_checked: u64,
    /// `bucket/key: reason` of every object that failed (first 100).
    pub failures: Vec<String>,
    pub failed: u64,
}

/// How one object checked out.
enum Checked {
    Authenticated(u64),
    LengthOnly,
}

impl SealboxS3 {
    /// Checks every object of every bucket, as `caller` (whose policies must allow the KMS calls;
    /// the root user's do).
    pub async fn verify_stored_data(&self, caller: &Caller) -> Result<StoredDataReport, String> {
        let meta = self.meta.clone();
        let buckets = blocking(move || meta.list_buckets()).await.map_err(|e| e.to_string())?;
        let mut report = StoredDataReport::default();
        for bucket in buckets {
            report.buckets += 1;
            let mut after: Option<Vec<u8>> = None;
            loop {
                let (meta, b, a) = (self.meta.clone(), bucket.name.clone(), after.clone());
                let page = blocking(move || meta.list_objects(&b, b"", a.as_deref().map(|k| (k, false)), 500))
                    .await
                    .map_err(|e| e.to_string())?;
                let Some(last) = page.last() else { break };
                after = Some(last.key.as_bytes().to_vec());
                for rec in page {
                    report.objects += 1;
                    match self.verify_object(&rec, caller).await {
                        Ok(Checked::Authenticated(n)) => {
                            report.authenticated += 1;
                            report.bytes += n;
                        }
                        Ok(Checked::LengthOnly) => report.customer_key_length_checked += 1,
                        Err(e) => {
                            report.failed += 1;
                            if report.failures.len() < 100 {
                                report.failures.push(format!("{}/{}: {e}", rec.bucket, rec.key));
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    async fn verify_object(&self, rec: &sealbox_store::ObjectRecord, caller: &Caller) -> Result<Checked, String> {
        let id = ObjectIdentity::new(&rec.bucket, &rec.key);
        let message = |e: s3s::S3Error| format!("{}: {}", e.code().as_str(), e.message().unwrap_or("refused"));
        // The record first (row MAC, format), as a GET checks it.
        let info = self.verify_record(&id, rec).map_err(message)?;
        if info.is_customer() {
            for part in &rec.parts {
                let on_disk =
                    self.blobs.stored_len(&part.blob).await.map_err(|e| format!("blob {}: {e}", part.blob))?;
                if on_disk != sealbox_seal::sealed_len(part.size, sealbox_seal::Layers::One) {
                    return Err(format!("blob {} has the wrong length for its sealed size", part.blob));
                }
            }
            return Ok(Checked::LengthOnly);
        }
        let (_, keys) = self.open_object(&id, rec, None, caller).await.map_err(message)?;
        let label = format!("{}/{}", rec.bucket, rec.key);
        let mut body = read_parts(&self.blobs, &rec.parts, 0, rec.size, &keys, (&label, None))
            .await
            .map_err(|e| e.message().unwrap_or("unreadable").to_owned())?;
        let mut read = 0u64;
        while let Some(chunk) = body.next().await {
            read += chunk.map_err(|e| e.to_string())?.len() as u64;
        }
        if read != rec.size {
            return Err(format!("read {read} bytes, the record says {}", rec.size));
        }
        Ok(Checked::Authenticated(read))
    }
}
