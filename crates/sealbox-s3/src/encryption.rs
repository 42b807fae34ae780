//! Bucket default encryption: PutBucketEncryption / GetBucketEncryption / DeleteBucketEncryption.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::BucketConfig;

use crate::error::blocking;
use crate::service::SealboxS3;
use crate::sse_request::{BucketDefault, AES256};

pub(crate) fn bucket_default(rec: &sealbox_store::BucketRecord) -> Option<BucketDefault> {
    rec.encryption.as_deref().and_then(|j| serde_json::from_str(j).ok())
}

impl SealboxS3 {
    pub(crate) async fn op_put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = req.input;
        self.require_bucket_exists(&input.bucket).await?;
        let rules = input.server_side_encryption_configuration.rules;
        let malformed = || {
            s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )
        };
        let [rule] = rules.as_slice() else { return Err(malformed()) };
        let by_default = rule.apply_server_side_encryption_by_default.as_ref().ok_or_else(malformed)?;
        let default = BucketDefault {
            algorithm: by_default.sse_algorithm.as_str().to_owned(),
            kms_key_id: by_default.kms_master_key_id.clone().filter(|k| !k.is_empty()),
            bucket_key: rule.bucket_key_enabled.unwrap_or(false),
        };
        default.validate()?;
        if let Some(key) = &default.kms_key_id {
            self.check_kms_key_exists(key).await?;
        }
        let json = serde_json::to_string(&default).map_err(|e| crate::error::internal("encode bucket default", e))?;
        let meta = self.meta.clone();
        blocking(move || meta.set_bucket_config(&input.bucket, BucketConfig::Encryption, Some(&json))).await?;
        Ok(S3Response::new(PutBucketEncryptionOutput {}))
    }

    /// Answers with the effective default: SSE-S3 (AES256, no bucket key) when none was set, as AWS
    /// has since 2023 (contract C.6).
    pub(crate) async fn op_get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let rec = self.require_bucket(&req.input.bucket).await?;
        let d = bucket_default(&rec).unwrap_or(BucketDefault {
            algorithm: AES256.into(),
            kms_key_id: None,
            bucket_key: false,
        });
        let rule = ServerSideEncryptionRule {
            apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                sse_algorithm: ServerSideEncryption::from(d.algorithm.clone()),
                kms_master_key_id: d.kms_key_id.clone(),
            }),
            bucket_key_enabled: Some(d.bucket_key),
        };
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration { rules: vec![rule] }),
        }))
    }

    pub(crate) async fn op_delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        let name = req.input.bucket;
        let meta = self.meta.clone();
        blocking(move || meta.set_bucket_config(&name, BucketConfig::Encryption, None)).await?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput {}))
    }
}
