//! The service object and the `s3s::S3` trait impl, which only dispatches to the operation files.

use std::sync::Arc;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use sealbox_store::{BlobStore, MetaStore};

use crate::keys::Caller;
use crate::sse::Encryption;

/// Settings the S3 layer needs from the server configuration.
#[derive(Clone)]
pub struct S3Config {
    pub region: String,
    /// Largest single PUT (AWS: 5 GiB).
    pub max_put_size: u64,
    /// A request body that sends nothing for this long is abandoned (S3 `RequestTimeout`).
    pub body_idle_timeout: std::time::Duration,
    /// DANGER, local testing only: accept SSE-C keys over plain HTTP.
    pub allow_sse_c_over_http: bool,
    /// Told about every stored object that fails its integrity check on read.
    pub on_integrity_failure: Option<crate::body::IntegrityReporter>,
    /// How long a RestoreObject of an archived (GLACIER / DEEP_ARCHIVE) object takes.
    pub restore_delay: std::time::Duration,
    /// TEST ONLY: shifts the clock restores are judged by (restored copies expiring days later).
    pub clock_offset_ms: i64,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            region: "us-east-1".into(),
            max_put_size: 5 * 1024 * 1024 * 1024,
            body_idle_timeout: std::time::Duration::from_secs(60),
            allow_sse_c_over_http: false,
            on_integrity_failure: None,
            restore_delay: std::time::Duration::from_secs(5),
            clock_offset_ms: 0,
        }
    }
}

/// sealbox's S3 API over the meta store and the blob store.
#[derive(Clone)]
pub struct SealboxS3 {
    pub(crate) meta: Arc<MetaStore>,
    pub(crate) blobs: BlobStore,
    pub(crate) config: Arc<S3Config>,
    pub(crate) enc: Arc<Encryption>,
}

impl SealboxS3 {
    pub fn new(meta: Arc<MetaStore>, blobs: BlobStore, config: S3Config, enc: Arc<Encryption>) -> Self {
        Self { meta, blobs, config: Arc::new(config), enc }
    }

    /// AWS accepts SSE-KMS key names it cannot find at PutBucketEncryption time; we check early
    /// so a typo surfaces now rather than on the first upload.
    pub(crate) async fn check_kms_key_exists(&self, key: &str) -> S3Result<()> {
        let ks = self.enc.keys.clone();
        let key = key.to_owned();
        match tokio::task::spawn_blocking(move || ks.resolve_key_arn(&key)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) => Err(crate::error::internal("key lookup", e)),
        }
    }
}

/// Facts about the connection a request came in on, put in the request extensions by the server.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub source_ip: Option<String>,
    pub is_tls: bool,
}

/// What an answer must look like on the wire where s3s 0.14 cannot say it (it ignores
/// `S3Response::status` and always quotes `<ETag>`); the server applies it to the HTTP response.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireFix {
    /// 202 for a RestoreObject that starts, 206 for a HEAD of a range or part.
    pub status: Option<http::StatusCode>,
    /// GetObjectAttributes: AWS sends the `<ETag>` without quotes.
    pub unquoted_etag: bool,
}

/// An answer with a [`WireFix`] status.
pub(crate) fn with_status<T>(output: T, status: http::StatusCode) -> S3Response<T> {
    let mut resp = S3Response::new(output);
    resp.extensions.insert(WireFix { status: Some(status), ..Default::default() });
    resp
}

/// The authenticated principal's ARN, set by the server's access hook.
#[derive(Debug, Clone)]
pub struct CallerArn(pub String);

/// The caller as the key service and the audit trail see it.
pub(crate) fn caller_of<T>(req: &S3Request<T>) -> Caller {
    let info = req.extensions.get::<RequestInfo>().cloned().unwrap_or_default();
    let access_key_id = req.credentials.as_ref().map(|c| c.access_key.clone()).unwrap_or_default();
    let user_arn = req
        .extensions
        .get::<CallerArn>()
        .map(|a| a.0.clone())
        .unwrap_or_else(|| "arn:aws:iam::000000000000:root".into());
    Caller { access_key_id, user_arn, source_ip: info.source_ip, is_tls: info.is_tls }
}

pub(crate) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

pub(crate) fn timestamp(ms: i64) -> Timestamp {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    Timestamp::from(t)
}

/// `Last-Modified` compares at one-second resolution (HTTP dates have no fractions).
pub(crate) fn seconds(ts: &Timestamp) -> i64 {
    time::OffsetDateTime::from(ts.clone()).unix_timestamp()
}

/// AWS operations that s3s 0.14 does not know, found by their sub-resource: s3s would route them
/// as another operation (`PUT /b/k?renameObject` or `?encryption` as a PutObject that overwrites
/// the key, `DELETE /b?metadataConfiguration` as DeleteBucket), so the server refuses them with
/// 501 NotImplemented before any handler runs. Returns the AWS operation name.
pub fn unmodeled_operation(method: &http::Method, is_object: bool, query: Option<&str>) -> Option<&'static str> {
    use http::Method;
    let has = |name: &str| query.unwrap_or("").split('&').any(|p| p.split('=').next().is_some_and(|k| k == name));
    let m = method;
    let found = if is_object {
        [(Method::PUT, "renameObject", "RenameObject"), (Method::PUT, "encryption", "UpdateObjectEncryption")]
            .into_iter()
            .find(|(want, q, _)| m == want && has(q))
    } else {
        [
            (Method::GET, "abac", "GetBucketAbac"),
            (Method::PUT, "abac", "PutBucketAbac"),
            (Method::POST, "metadataConfiguration", "CreateBucketMetadataConfiguration"),
            (Method::GET, "metadataConfiguration", "GetBucketMetadataConfiguration"),
            (Method::DELETE, "metadataConfiguration", "DeleteBucketMetadataConfiguration"),
            (Method::PUT, "metadataInventoryTable", "UpdateBucketMetadataInventoryTableConfiguration"),
            (Method::PUT, "metadataJournalTable", "UpdateBucketMetadataJournalTableConfiguration"),
        ]
        .into_iter()
        .find(|(want, q, _)| m == want && has(q))
    };
    found.map(|(_, _, op)| op)
}

/// `Expect: 100-continue`: the client sends the body only after a `100 Continue`.
fn expects_continue(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

pub(crate) fn check_key(key: &str) -> S3Result<()> {
    if key.is_empty() {
        return Err(s3_error!(InvalidArgument, "Object key must not be empty"));
    }
    if key.len() > 1024 {
        return Err(s3_error!(KeyTooLongError, "Your key is too long"));
    }
    Ok(())
}

#[async_trait::async_trait]
impl S3 for SealboxS3 {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.op_create_bucket(req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.op_delete_bucket(req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.op_head_bucket(req).await
    }
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        self.op_list_buckets(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.op_get_bucket_location(req).await
    }
    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.op_get_bucket_versioning(req).await
    }
    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.op_put_bucket_versioning(req).await
    }
    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        self.op_put_bucket_encryption(req).await
    }
    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        self.op_get_bucket_encryption(req).await
    }
    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        self.op_delete_bucket_encryption(req).await
    }
    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.op_put_object_tagging(req).await
    }
    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.op_get_object_tagging(req).await
    }
    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        self.op_delete_object_tagging(req).await
    }
    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        self.op_put_bucket_policy(req).await
    }
    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        self.op_get_bucket_policy(req).await
    }
    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.op_delete_bucket_policy(req).await
    }
    async fn get_bucket_policy_status(
        &self,
        req: S3Request<GetBucketPolicyStatusInput>,
    ) -> S3Result<S3Response<GetBucketPolicyStatusOutput>> {
        self.op_get_bucket_policy_status(req).await
    }
    async fn put_object(&self, mut req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        // A request refused before its body is read must still have the body read off the
        // connection, or its bytes would be parsed as the next request on it; unless the client
        // waits on `Expect: 100-continue`: then it has sent no body, and the answer goes out
        // before one (the server ends such a connection with the answer: `Connection: close`).
        let expects_continue = expects_continue(&req.headers);
        let mut body = req.input.body.take();
        let result = self.op_put_object(req, &mut body).await;
        if let (Err(_), Some(b), false) = (&result, body.as_mut(), expects_continue) {
            crate::body::drain_small(b).await;
        }
        result
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.op_get_object(req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.op_head_object(req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.op_delete_object(req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.op_delete_objects(req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        self.op_copy_object(req).await
    }
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        self.op_list_objects(req).await
    }
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.op_list_objects_v2(req).await
    }
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.op_list_object_versions(req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.op_create_multipart_upload(req).await
    }
    async fn upload_part(&self, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let expects_continue = expects_continue(&req.headers);
        let mut body = req.input.body.take();
        let result = self.op_upload_part(req, &mut body).await;
        if let (Err(_), Some(b), false) = (&result, body.as_mut(), expects_continue) {
            crate::body::drain_small(b).await;
        }
        result
    }
    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        self.op_get_object_attributes(req).await
    }
    async fn restore_object(&self, req: S3Request<RestoreObjectInput>) -> S3Result<S3Response<RestoreObjectOutput>> {
        self.op_restore_object(req).await
    }
    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.op_upload_part_copy(req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.op_complete_multipart_upload(req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.op_abort_multipart_upload(req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        self.op_list_parts(req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.op_list_multipart_uploads(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::unmodeled_operation;
    use http::Method;

    #[test]
    fn operations_s3s_would_misroute_are_named() {
        assert_eq!(unmodeled_operation(&Method::PUT, true, Some("renameObject")), Some("RenameObject"));
        assert_eq!(
            unmodeled_operation(&Method::PUT, true, Some("x-id=UpdateObjectEncryption&encryption")),
            Some("UpdateObjectEncryption")
        );
        assert_eq!(
            unmodeled_operation(&Method::DELETE, false, Some("metadataConfiguration")),
            Some("DeleteBucketMetadataConfiguration")
        );
        assert_eq!(unmodeled_operation(&Method::GET, false, Some("abac=")), Some("GetBucketAbac"));
        // Bucket encryption and ordinary uploads are what they seem.
        assert_eq!(unmodeled_operation(&Method::PUT, false, Some("encryption")), None);
        assert_eq!(unmodeled_operation(&Method::PUT, true, None), None);
        assert_eq!(unmodeled_operation(&Method::PUT, true, Some("x-id=PutObject")), None);
        assert_eq!(unmodeled_operation(&Method::GET, true, Some("encryption")), None);
    }
}
