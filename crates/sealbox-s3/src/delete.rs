//! DeleteObject and DeleteObjects.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::error::blocking;
use crate::service::SealboxS3;

impl SealboxS3 {
    /// Removes the record; the store queues its blobs for deletion after the grace period.
    /// Deleting a missing key succeeds, as on AWS.
    async fn remove_object(&self, bucket: &str, key: &str) -> S3Result<()> {
        let meta = self.meta.clone();
        let (b, k) = (bucket.to_owned(), key.to_owned());
        blocking(move || meta.delete_object(&b, &k)).await?;
        Ok(())
    }

    pub(crate) async fn op_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        match input.version_id.as_deref() {
            None | Some("null") => {}
            Some(_) => return Err(s3_error!(NoSuchVersion, "The specified version does not exist.")),
        }
        if let Some(cond) = &input.if_match {
            let rec = self.load_object(&input.bucket, &input.key).await?;
            if let ETagCondition::ETag(e) = cond {
                if e.value() != rec.etag {
                    return Err(s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    ));
                }
            }
        }
        self.remove_object(&input.bucket, &input.key).await?;
        Ok(S3Response::new(DeleteObjectOutput { version_id: input.version_id, ..Default::default() }))
    }

    pub(crate) async fn op_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "The request must contain no more than 1000 keys"));
        }
        self.require_bucket(&input.bucket).await?;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for obj in input.delete.objects {
            let result = match obj.version_id.as_deref() {
                None | Some("null") => self.remove_object(&input.bucket, &obj.key).await,
                Some(_) => Err(s3_error!(NoSuchVersion, "The specified version does not exist.")),
            };
            match result {
                Ok(()) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(obj.key),
                            version_id: obj.version_id,
                            ..Default::default()
                        });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    key: Some(obj.key),
                    version_id: obj.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!deleted.is_empty()).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }
}
