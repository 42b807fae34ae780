//! Object tagging (Put/Get/DeleteObjectTagging). Tags live in the object record; changing them
//! rewrites only metadata, never the sealed bytes.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::binding::ObjectIdentity;
use crate::error::blocking;
use crate::service::SealboxS3;

fn check_version(v: Option<&String>) -> S3Result<()> {
    match v.map(String::as_str) {
        None | Some("null") => Ok(()),
        Some(_) => Err(s3_error!(NoSuchVersion, "The specified version does not exist.")),
    }
}

/// AWS limits: at most 10 tags per object, keys 1–128 and values 0–256 characters, unique keys.
fn validate_tags(tags: &[Tag]) -> S3Result<BTreeMap<String, String>> {
    if tags.len() > 10 {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than 10"));
    }
    let mut out = BTreeMap::new();
    for t in tags {
        let k = t.key.clone().unwrap_or_default();
        let v = t.value.clone().unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3_error!(InvalidTag, "The TagKey or TagValue you have provided is too long or empty."));
        }
        if out.insert(k, v).is_some() {
            return Err(s3_error!(InvalidTag, "Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(out)
}

impl SealboxS3 {
    /// Tags whatever object is current when the store writes (read and write are one transaction:
    /// a concurrent overwrite is never undone, and there is nothing to retry).
    async fn set_tags(&self, bucket: &str, key: &str, tags: BTreeMap<String, String>) -> S3Result<()> {
        let meta = self.meta.clone();
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let s3 = self.clone();
        let found = blocking(move || {
            meta.require_bucket(&b)?;
            // Never re-tag a record edited behind sealbox's back: check it, change, re-tag.
            meta.set_object_tags(&b, &k, &tags, |current, next| s3.check_and_retag(current, next))
        })
        .await?;
        if !found {
            return Err(s3_error!(NoSuchKey, "The specified key does not exist."));
        }
        Ok(())
    }

    pub(crate) async fn op_put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        check_version(input.version_id.as_ref())?;
        let tags = validate_tags(&input.tagging.tag_set)?;
        self.set_tags(&input.bucket, &input.key, tags).await?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id: input.version_id }))
    }

    pub(crate) async fn op_get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        check_version(input.version_id.as_ref())?;
        let rec = self.load_object(&input.bucket, &input.key).await?;
        self.verify_record(&ObjectIdentity::new(&input.bucket, &input.key), &rec)?;
        let tag_set = rec.tags.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect();
        Ok(S3Response::new(GetObjectTaggingOutput { tag_set, version_id: input.version_id }))
    }

    pub(crate) async fn op_delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        check_version(input.version_id.as_ref())?;
        self.set_tags(&input.bucket, &input.key, BTreeMap::new()).await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput { version_id: input.version_id }))
    }
}
