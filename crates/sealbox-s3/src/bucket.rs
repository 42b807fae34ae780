//! Bucket operations: create, delete, head, list, location, versioning state.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

/// HeadBucket response headers (sealbox extension): objects in the bucket and their plaintext bytes.
pub const OBJECT_COUNT_HEADER: &str = "x-sealbox-object-count";
pub const BYTES_USED_HEADER: &str = "x-sealbox-bytes-used";
use sealbox_store::BucketConfig;

use crate::error::blocking;
use crate::service::{now_ms, timestamp, SealboxS3};

/// S3 bucket naming rules (contract B.8).
pub(crate) fn is_valid_bucket_name(name: &str) -> bool {
    let len_ok = (3..=63).contains(&name.len());
    let chars_ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    let not_ip = name.parse::<std::net::Ipv4Addr>().is_err();
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p));
    let reserved_suffix = ["-s3alias", "--ol-s3", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s));
    len_ok && chars_ok && ends_ok && not_ip && !name.contains("..") && !reserved_prefix && !reserved_suffix
}

impl SealboxS3 {
    pub(crate) async fn op_create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = req.input.bucket.clone();
        if !is_valid_bucket_name(&name) {
            return Err(s3_error!(InvalidBucketName, "The specified bucket is not valid."));
        }
        // Object Lock is not built yet (issue 16 §2): never create a bucket that claims it.
        if req.input.object_lock_enabled_for_bucket == Some(true) {
            return Err(s3_error!(NotImplemented, "Object Lock is not implemented"));
        }
        if let Some(loc) = req.input.create_bucket_configuration.as_ref().and_then(|c| c.location_constraint.as_ref()) {
            if loc.as_str() != self.config.region && !(loc.as_str().is_empty() && self.config.region == "us-east-1") {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location-constraint is not valid for this endpoint ({}).",
                    self.config.region
                ));
            }
        }
        let meta = self.meta.clone();
        let n = name.clone();
        blocking(move || meta.create_bucket(&n, now_ms())).await?;
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }))
    }

    pub(crate) async fn op_delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let meta = self.meta.clone();
        let name = req.input.bucket;
        // Parts of abandoned uploads go with the bucket: the store queues their blobs for deletion.
        blocking(move || meta.delete_bucket(&name)).await?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    pub(crate) async fn op_head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        let meta = self.meta.clone();
        let name = req.input.bucket.clone();
        let (objects, bytes) = blocking(move || meta.bucket_usage(&name)).await?;
        let mut resp =
            S3Response::new(HeadBucketOutput { bucket_region: Some(self.config.region.clone()), ..Default::default() });
        // sealbox extensions (what S3 reports through CloudWatch): the console's bucket list.
        resp.headers.insert(OBJECT_COUNT_HEADER, http::HeaderValue::from(objects));
        resp.headers.insert(BYTES_USED_HEADER, http::HeaderValue::from(bytes));
        Ok(resp)
    }

    /// ListBuckets with AWS's paging: `max-buckets` (1..=10000), an opaque `continuation-token`
    /// (the last name of the previous page), `prefix` and `bucket-region` filters.
    pub(crate) async fn op_list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let input = req.input;
        let max = match input.max_buckets {
            None => 10_000,
            Some(n) if (1..=10_000).contains(&n) => n as usize,
            Some(_) => {
                return Err(s3_error!(InvalidArgument, "Argument max-buckets must be an integer between 1 and 10000."))
            }
        };
        let after = match input.continuation_token.as_deref().filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(crate::list::decode_token(t)?),
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let other_region = input.bucket_region.as_deref().is_some_and(|r| r != self.config.region);
        let meta = self.meta.clone();
        let all = blocking(move || meta.list_buckets()).await?;
        let mut matching = all
            .into_iter()
            .filter(|b| !other_region && b.name.starts_with(&prefix))
            .filter(|b| after.as_deref().is_none_or(|a| b.name.as_str() > a))
            .peekable();
        let mut buckets = Vec::new();
        while buckets.len() < max {
            let Some(b) = matching.next() else { break };
            buckets.push(Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                bucket_region: Some(self.config.region.clone()),
            });
        }
        let next = matching
            .peek()
            .is_some()
            .then(|| buckets.last().and_then(|b| b.name.as_deref()).map(crate::list::encode_token));
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            continuation_token: next.flatten(),
            prefix: input.prefix,
        }))
    }

    pub(crate) async fn op_get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.require_bucket(&req.input.bucket).await?;
        // us-east-1 answers with an empty LocationConstraint, as AWS does.
        let location_constraint =
            (self.config.region != "us-east-1").then(|| BucketLocationConstraint::from(self.config.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
    }

    pub(crate) async fn op_get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let bucket = self.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: bucket.versioning.map(BucketVersioningStatus::from),
            mfa_delete: None,
        }))
    }

    pub(crate) async fn op_put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let name = req.input.bucket.clone();
        self.require_bucket_exists(&name).await?;
        let status = req.input.versioning_configuration.status.map(|s| s.as_str().to_owned());
        match status.as_deref() {
            // Suspended on a bucket that never kept versions behaves exactly like unversioned.
            Some("Suspended") => {
                let meta = self.meta.clone();
                blocking(move || meta.set_bucket_config(&name, BucketConfig::Versioning, Some("Suspended"))).await?;
                Ok(S3Response::new(PutBucketVersioningOutput {}))
            }
            Some("Enabled") => Err(s3_error!(
                NotImplemented,
                "Bucket versioning (keeping object versions) is not implemented yet; the bucket stays unversioned."
            )),
            _ => Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )),
        }
    }

    /// For operations that replace one bucket setting: only existence matters, so the root user
    /// can put right a setting that failed its integrity check.
    pub(crate) async fn require_bucket_exists(&self, name: &str) -> S3Result<()> {
        let meta = self.meta.clone();
        let name = name.to_owned();
        let n = name.clone();
        if blocking(move || meta.bucket_exists(&n)).await? {
            Ok(())
        } else {
            Err(crate::error::store_error(sealbox_store::StoreError::NoSuchBucket(name)))
        }
    }

    pub(crate) async fn require_bucket(&self, name: &str) -> S3Result<sealbox_store::BucketRecord> {
        let meta = self.meta.clone();
        let name = name.to_owned();
        blocking(move || meta.require_bucket(&name)).await
    }
}

pub(crate) fn owner() -> Owner {
    Owner { display_name: Some("sealbox".into()), id: Some("000000000000".into()) }
}

#[cfg(test)]
mod tests {
    use super::is_valid_bucket_name;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "my.bucket.1", "a1b", &"a".repeat(63)] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in
            ["ab", "ABC", "-abc", "abc-", "a..b", "192.168.1.1", "xn--abc", "abc-s3alias", "a_b", &"a".repeat(64)]
        {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }
}
