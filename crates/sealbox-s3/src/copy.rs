//! CopyObject. A copy is a new write: the bytes are read back (decrypted) and stored again, so the
//! destination gets its own encryption and never shares key material with the source.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::ObjectRecord;

use crate::binding::ObjectIdentity;
use crate::body::{read_parts, store_body};
use crate::checksum::{parse_algorithm, ALGORITHMS, DEFAULT_ALGORITHM};
use crate::encryption::bucket_default;
use crate::put::{fill_single_part, object_etag, write_condition, Attributes};
use crate::restore::check_readable;
use crate::service::{caller_of, check_key, seconds, timestamp, SealboxS3};
use crate::sse::SseEcho;
use crate::sse_request::{resolve_mode, SseHeaders};

/// Largest CopyObject source (AWS: 5 GiB; bigger objects need UploadPartCopy).
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

pub(crate) fn source_of(cs: &CopySource) -> S3Result<(String, String)> {
    match cs {
        CopySource::Bucket { bucket, key, version_id } => {
            if let Some(v) = version_id.as_deref() {
                if v != "null" {
                    return Err(s3_error!(NoSuchVersion, "The specified version does not exist."));
                }
            }
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(s3_error!(NotImplemented, "Access point copy sources are not supported")),
    }
}

/// `x-amz-copy-source-if-*`: every failure is 412 (contract B.5).
pub(crate) fn check_copy_conditions(
    src: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let failed = || s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold");
    let modified_s = src.last_modified_ms.div_euclid(1000);
    let etag_matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == src.etag,
    };
    match if_match {
        Some(c) if !etag_matches(c) => return Err(failed()),
        Some(_) => {}
        None => {
            if if_unmodified_since.is_some_and(|t| modified_s > seconds(t)) {
                return Err(failed());
            }
        }
    }
    match if_none_match {
        Some(c) if etag_matches(c) => return Err(failed()),
        Some(_) => {}
        None => {
            if if_modified_since.is_some_and(|t| modified_s <= seconds(t)) {
                return Err(failed());
            }
        }
    }
    Ok(())
}

/// `If-None-Match: *` / `If-Match: <etag>` on the copy's destination.
fn copy_write_condition(headers: &http::HeaderMap) -> S3Result<sealbox_store::WriteCondition> {
    let parse = |name: &str| -> S3Result<Option<ETagCondition>> {
        headers
            .get(name)
            .map(|v| {
                ETagCondition::parse_http_header(v.as_bytes())
                    .map_err(|_| s3_error!(InvalidArgument, "Invalid {name} header"))
            })
            .transpose()
    };
    write_condition(parse("if-match")?.as_ref(), parse("if-none-match")?.as_ref())
}

impl SealboxS3 {
    pub(crate) async fn op_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let caller = caller_of(&req);
        // s3s does not model CopyObject's conditional-write headers: read them here rather than
        // let a client's If-None-Match be ignored.
        let condition = copy_write_condition(&req.headers)?;
        let input = req.input;
        check_key(&input.key)?;
        crate::put::refuse_object_lock(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.is_some(),
        )?;
        let (src_bucket, src_key) = source_of(&input.copy_source)?;
        let src_customer = self.read_customer_key(
            &caller,
            input.copy_source_sse_customer_algorithm.as_deref(),
            input.copy_source_sse_customer_key.as_deref(),
            input.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let dst_customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        let src = self.load_object(&src_bucket, &src_key).await?;
        let dst_bucket = self.require_bucket(&input.bucket).await?;
        let src_id = ObjectIdentity::new(&src_bucket, &src_key);
        // An archived source is copied only once restored (checked on the verified record).
        self.verify_record(&src_id, &src)?;
        check_readable(&src, self.clock_ms())?;
        let (_, src_keys) = self.open_object(&src_id, &src, src_customer.as_ref(), &caller).await?;
        check_copy_conditions(
            &src,
            input.copy_source_if_match.as_ref(),
            input.copy_source_if_none_match.as_ref(),
            input.copy_source_if_modified_since.as_ref(),
            input.copy_source_if_unmodified_since.as_ref(),
        )?;
        if src.size > MAX_COPY_SIZE {
            return Err(s3_error!(
                InvalidRequest,
                "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120"
            ));
        }
        let replace_meta = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
        let replace_tags = input.tagging_directive.as_ref().is_some_and(|d| d.as_str() == "REPLACE");
        let same_object = src_bucket == input.bucket && src_key == input.key;
        let changes_encryption = input.server_side_encryption.is_some()
            || input.sse_customer_algorithm.is_some()
            || input.ssekms_key_id.is_some();
        let changes_storage = input.storage_class.is_some() || input.website_redirect_location.is_some();
        if same_object && !replace_meta && !changes_encryption && !changes_storage {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        self.precheck_write_condition(&input.bucket, &input.key, &condition).await?;
        let mut record = if replace_meta {
            Attributes {
                content_type: input.content_type,
                content_encoding: input.content_encoding,
                content_disposition: input.content_disposition,
                content_language: input.content_language,
                cache_control: input.cache_control,
                expires: input.expires,
                website_redirect_location: input.website_redirect_location,
                metadata: input.metadata,
                tagging: None,
                storage_class: input.storage_class,
            }
            .into_record(&input.bucket, &input.key)?
        } else {
            let mut r = src.clone();
            r.bucket = input.bucket.clone();
            r.key = input.key.clone();
            r.tags.clear();
            // The class is the request's (STANDARD by default), never the source's; a copy is a
            // new object with nothing to restore.
            r.storage_class = crate::restore::storage_class_of(input.storage_class.as_ref())?;
            r.restore = None;
            r.row_mac = None;
            r
        };
        record.tags = if replace_tags {
            Attributes {
                content_type: None,
                content_encoding: None,
                content_disposition: None,
                content_language: None,
                cache_control: None,
                expires: None,
                website_redirect_location: None,
                metadata: None,
                tagging: input.tagging,
                storage_class: None,
            }
            .into_record(&input.bucket, &input.key)?
            .tags
        } else {
            src.tags.clone()
        };
        // The copy is one new object: the requested algorithm, else the source's, else S3's
        // default, computed over the whole copy (FULL_OBJECT).
        let algorithm = match input.checksum_algorithm.as_ref() {
            Some(a) => parse_algorithm(a.as_str())?,
            None => ALGORITHMS.iter().copied().find(|a| src.checksums.contains_key(*a)).unwrap_or(DEFAULT_ALGORITHM),
        };
        let algorithms = [algorithm];
        // Copy = new encryption: the destination's own headers, else its bucket default; nothing
        // is inherited from the source (contract C.5).
        let mode = resolve_mode(
            SseHeaders {
                algorithm: input.server_side_encryption.as_ref().map(|a| a.as_str()),
                kms_key_id: input.ssekms_key_id.as_deref(),
                context: input.ssekms_encryption_context.as_deref(),
                bucket_key: input.bucket_key_enabled,
                customer: dst_customer,
            },
            bucket_default(&dst_bucket).as_ref(),
        )?;
        let (dst_keys, mut seal) = self
            .enc
            .seal_new(&input.bucket, &input.key, mode, input.ssekms_encryption_context.clone(), &caller)
            .await?;
        let body = read_parts(
            &self.blobs,
            &src.parts,
            0,
            src.size,
            &src_keys,
            (&format!("{src_bucket}/{src_key}"), self.config.on_integrity_failure.as_ref()),
        )
        .await?;
        let stored = store_body(
            &self.blobs,
            body,
            &algorithms,
            MAX_COPY_SIZE,
            Some(src.size),
            self.config.body_idle_timeout,
            &dst_keys,
            None,
            seal.etag_is_md5(),
        )
        .await?;
        let etag = object_etag(&seal, stored.md5.as_ref())?;
        fill_single_part(&mut record, &stored, &etag);
        if let Err(e) = self.bind_record(&mut record, &dst_keys, &mut seal) {
            self.blobs.remove([stored.blob]).await;
            return Err(e);
        }
        let committed = self.commit_object(record, condition, vec![stored.blob.clone()]).await?;
        let sums = &committed.checksums;
        let result = CopyObjectResult {
            e_tag: Some(ETag::Strong(etag)),
            last_modified: Some(timestamp(committed.last_modified_ms)),
            checksum_crc32: sums.get("CRC32").cloned(),
            checksum_crc32c: sums.get("CRC32C").cloned(),
            checksum_crc64nvme: sums.get("CRC64NVME").cloned(),
            checksum_sha1: sums.get("SHA1").cloned(),
            checksum_sha256: sums.get("SHA256").cloned(),
            checksum_type: committed.checksum_type.clone().map(ChecksumType::from),
        };
        let echo = SseEcho::of(&seal);
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(result),
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            ssekms_encryption_context: echo.context,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            ..Default::default()
        }))
    }
}
