//! Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. Documents are checked
//! with AWS's grammar (sealbox-policy) before they are stored; evaluation happens in the server's
//! access hook before every operation.

use s3s::dto::*;
use s3s::{s3_error, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use sealbox_policy::{bucket_policy_is_public, PolicyDocument, PolicyKind};
use sealbox_store::BucketConfig;

use crate::error::blocking;
use crate::service::SealboxS3;

fn malformed(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::MalformedPolicy, message)
}

impl SealboxS3 {
    pub(crate) async fn op_put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        self.require_bucket_exists(&input.bucket).await?;
        if input.policy.len() > 20 * 1024 {
            return Err(malformed("Policies must be 20 KB or smaller".into()));
        }
        let doc =
            PolicyDocument::parse_for(&input.policy, PolicyKind::Resource).map_err(|e| malformed(e.to_string()))?;
        // Only s3 actions, and resources that are this bucket or objects in it.
        doc.check_bucket_policy(&input.bucket).map_err(|e| malformed(e.to_string()))?;
        let meta = self.meta.clone();
        let (b, p) = (input.bucket.clone(), input.policy.clone());
        blocking(move || meta.set_bucket_config(&b, BucketConfig::Policy, Some(&p))).await?;
        Ok(S3Response::with_status(PutBucketPolicyOutput {}, http::StatusCode::NO_CONTENT))
    }

    pub(crate) async fn op_get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let rec = self.require_bucket(&req.input.bucket).await?;
        match rec.policy {
            Some(p) => Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(p) })),
            None => Err(s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist")),
        }
    }

    pub(crate) async fn op_delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let meta = self.meta.clone();
        let b = req.input.bucket;
        blocking(move || meta.set_bucket_config(&b, BucketConfig::Policy, None)).await?;
        Ok(S3Response::new(DeleteBucketPolicyOutput {}))
    }

    pub(crate) async fn op_get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        let rec = self.require_bucket(&req.input.bucket).await?;
        let Some(text) = rec.policy else {
            return Err(s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"));
        };
        let doc = PolicyDocument::parse_for(&text, PolicyKind::Resource)
            .map_err(|e| crate::error::internal("stored bucket policy no longer parses", e))?;
        Ok(S3Response::new(GetBucketPolicyStatusOutput {
            policy_status: Some(PolicyStatus { is_public: Some(bucket_policy_is_public(&doc)) }),
        }))
    }
}
