//! PutObject, and the pieces every write shares: attribute validation, conditional writes,
//! commit-then-clean-up.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::{ObjectRecord, StoredPart, WriteCondition};

use crate::body::{store_body, StoredBody};
use crate::checksum::{
    named_algorithm, reject_unknown_checksum_headers, verify_content_md5, ChecksumFields, ChecksumRequest,
    DEFAULT_ALGORITHM,
};
use crate::encryption::bucket_default;
use crate::error::blocking;
use crate::service::{caller_of, check_key, SealboxS3};
use crate::sse::{SealInfo, SseEcho};
use crate::sse_request::{parse_customer_key, resolve_mode, SseHeaders};

/// AWS limits user metadata to 2 KB: the UTF-8 bytes of every key and value together.
const MAX_USER_METADATA: usize = 2048;

/// The descriptive attributes a write sets (PutObject, CreateMultipartUpload, CopyObject REPLACE).
pub(crate) struct Attributes {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<Timestamp>,
    pub website_redirect_location: Option<String>,
    pub metadata: Option<Metadata>,
    pub tagging: Option<String>,
    pub storage_class: Option<StorageClass>,
}

impl Attributes {
    /// Validates and turns the attributes into an object record without data.
    pub(crate) fn into_record(self, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
        let storage_class = crate::restore::storage_class_of(self.storage_class.as_ref())?;
        let user_metadata: BTreeMap<String, String> =
            self.metadata.unwrap_or_default().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let meta_size: usize = user_metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if meta_size > MAX_USER_METADATA {
            return Err(s3_error!(
                MetadataTooLarge,
                "Your metadata headers exceed the maximum allowed metadata size (2048 bytes)."
            ));
        }
        let tags = match self.tagging {
            Some(t) => parse_tagging(&t)?,
            None => BTreeMap::new(),
        };
        Ok(ObjectRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: 0,
            etag: String::new(),
            last_modified_ms: 0,
            generation: 0,
            content_type: self.content_type,
            content_encoding: self.content_encoding.map(strip_aws_chunked).filter(|s| !s.is_empty()),
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            expires: self.expires.and_then(|t| format_http_date(&t)),
            website_redirect_location: self.website_redirect_location,
            user_metadata,
            checksums: BTreeMap::new(),
            checksum_type: None,
            parts: Vec::new(),
            sse: None,
            tags,
            storage_class,
            restore: None,
            row_mac: None,
        })
    }
}

/// `aws-chunked` is transfer framing, not a content coding of the object: store the rest.
fn strip_aws_chunked(enc: String) -> String {
    enc.split(',').map(str::trim).filter(|t| !t.eq_ignore_ascii_case("aws-chunked")).collect::<Vec<_>>().join(",")
}

pub(crate) fn format_http_date(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf).ok()?;
    String::from_utf8(buf).ok()
}

pub(crate) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

/// `x-amz-tagging: k1=v1&k2=v2` (URL-encoded).
fn parse_tagging(s: &str) -> S3Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = urlencoding::decode(k).map_err(|_| s3_error!(InvalidTag, "The tag provided was not a valid tag."))?;
        let v = urlencoding::decode(v).map_err(|_| s3_error!(InvalidTag, "The tag provided was not a valid tag."))?;
        if k.is_empty() || k.len() > 128 || v.len() > 256 {
            return Err(s3_error!(InvalidTag, "The tag provided was not a valid tag."));
        }
        tags.insert(k.into_owned(), v.into_owned());
    }
    if tags.len() > 10 {
        return Err(s3_error!(InvalidTag, "Object tags cannot be greater than 10"));
    }
    Ok(tags)
}

/// Turns `If-None-Match` / `If-Match` on a write into a store condition.
pub(crate) fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<WriteCondition> {
    match (if_match, if_none_match) {
        (_, Some(c)) if c.is_any() => Ok(WriteCondition::IfAbsent),
        (_, Some(_)) => Err(s3_error!(NotImplemented, "If-None-Match on writes supports only '*'")),
        (Some(ETagCondition::ETag(e)), None) => Ok(WriteCondition::IfEtag(e.value().to_owned())),
        (Some(ETagCondition::Any), None) => Err(s3_error!(NotImplemented, "If-Match: * on writes is not supported")),
        (None, None) => Ok(WriteCondition::None),
    }
}

impl SealboxS3 {
    /// `body` is taken only when the data is about to be read; the caller drains what is left of
    /// it after an early error (see `service.rs`).
    pub(crate) async fn op_put_object(
        &self,
        req: S3Request<PutObjectInput>,
        body_slot: &mut Option<StreamingBlob>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let trailer = req.headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let trailing = req.trailing_headers.clone();
        let caller = caller_of(&req);
        reject_unknown_checksum_headers(&req.headers)?;
        let named = named_algorithm(&req.headers, req.input.checksum_algorithm.as_ref());
        let input = req.input;
        check_key(&input.key)?;
        refuse_object_lock(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.is_some(),
        )?;
        let bucket = self.require_bucket(&input.bucket).await?;
        let customer = parse_customer_key(
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        if customer.is_some() && !caller.is_tls && !self.config.allow_sse_c_over_http {
            return Err(ssec_needs_tls());
        }
        let mode = resolve_mode(
            SseHeaders {
                algorithm: input.server_side_encryption.as_ref().map(|a| a.as_str()),
                kms_key_id: input.ssekms_key_id.as_deref(),
                context: input.ssekms_encryption_context.as_deref(),
                bucket_key: input.bucket_key_enabled,
                customer,
            },
            bucket_default(&bucket).as_ref(),
        )?;
        if input.content_length.is_some_and(|l| l as u64 > self.config.max_put_size) {
            return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size."));
        }
        let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        // Before the body: a write that cannot succeed is answered before a byte is sent (the
        // client may be waiting on `Expect: 100-continue`).
        self.precheck_write_condition(&input.bucket, &input.key, &condition).await?;
        let mut checks = ChecksumRequest::from_headers(
            [
                ("CRC32", input.checksum_crc32.as_ref()),
                ("CRC32C", input.checksum_crc32c.as_ref()),
                ("CRC64NVME", input.checksum_crc64nvme.as_ref()),
                ("SHA1", input.checksum_sha1.as_ref()),
                ("SHA256", input.checksum_sha256.as_ref()),
            ],
            named.as_deref(),
            trailer.as_deref(),
        )?;
        let mut record = Attributes {
            content_type: input.content_type,
            content_encoding: input.content_encoding,
            content_disposition: input.content_disposition,
            content_language: input.content_language,
            cache_control: input.cache_control,
            expires: input.expires,
            website_redirect_location: input.website_redirect_location,
            metadata: input.metadata,
            tagging: input.tagging,
            storage_class: input.storage_class,
        }
        .into_record(&input.bucket, &input.key)?;
        let Some(mut body) = body_slot.take() else {
            return Err(s3_error!(MissingRequestBodyError, "Request body is empty."));
        };
        let (keys, mut seal) = match self
            .enc
            .seal_new(&input.bucket, &input.key, mode, input.ssekms_encryption_context.clone(), &caller)
            .await
        {
            Ok(k) => k,
            Err(e) => {
                crate::body::drain_small(&mut body).await;
                return Err(e);
            }
        };

        // The client's checksum, or S3's default CRC64NVME when it sent none.
        let algorithms = [checks.client_algorithm().unwrap_or(DEFAULT_ALGORITHM)];
        let stored = store_body(
            &self.blobs,
            body,
            &algorithms,
            self.config.max_put_size,
            input.content_length.map(|l| l as u64),
            self.config.body_idle_timeout,
            &keys,
            None,
            seal.etag_is_md5() || input.content_md5.is_some(),
        )
        .await?;
        let verified = (|| {
            if let Some(t) = trailing.as_ref().and_then(|t| t.take()) {
                checks.fill_from_trailer(&t)?;
            }
            checks.verify(&stored.checksums)?;
            verify_content_md5(input.content_md5.as_deref(), stored.md5.as_ref())
        })();
        if let Err(e) = verified {
            self.blobs.remove([stored.blob]).await;
            return Err(e);
        }

        let etag = object_etag(&seal, stored.md5.as_ref())?;
        fill_single_part(&mut record, &stored, &etag);
        if let Err(e) = self.bind_record(&mut record, &keys, &mut seal) {
            self.blobs.remove([stored.blob]).await;
            return Err(e);
        }
        let committed = self.commit_object(record.clone(), condition, vec![stored.blob.clone()]).await?;
        let echo = SseEcho::of(&seal);
        let sums = ChecksumFields::of(&committed.checksums);
        let output = PutObjectOutput {
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: sums.crc32,
            checksum_crc32c: sums.crc32c,
            checksum_crc64nvme: sums.crc64nvme,
            checksum_sha1: sums.sha1,
            checksum_sha256: sums.sha256,
            checksum_type: committed.checksum_type.clone().map(ChecksumType::from),
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            ssekms_encryption_context: echo.context,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    /// Checks a conditional write against the object as it is now, before any data is read: an
    /// `If-None-Match: *` write to an existing key is 412, an `If-Match` write to a missing key
    /// 404 NoSuchKey and to another ETag 412. The store checks the condition again when the write
    /// commits (a concurrent writer that finished first makes it 412, a delete meanwhile 409).
    pub(crate) async fn precheck_write_condition(
        &self,
        bucket: &str,
        key: &str,
        condition: &WriteCondition,
    ) -> S3Result<()> {
        if *condition == WriteCondition::None {
            return Ok(());
        }
        let meta = self.meta.clone();
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let current = blocking(move || meta.object(&b, &k)).await?;
        match (condition, current) {
            (WriteCondition::IfAbsent, Some(_)) => Err(precondition_failed()),
            (WriteCondition::IfEtag(_), None) => Err(s3_error!(NoSuchKey, "The specified key does not exist.")),
            (WriteCondition::IfEtag(etag), Some(cur)) if cur.etag != *etag => Err(precondition_failed()),
            _ => Ok(()),
        }
    }

    /// Commits a record whose blobs are already durable and which `bind_record` has bound (the
    /// store queues the replaced object's blobs for deletion after the grace period); removes the
    /// new blobs if the commit fails
    /// (condition not met, bucket gone).
    pub(crate) async fn commit_object(
        &self,
        record: ObjectRecord,
        condition: WriteCondition,
        new_blobs: Vec<String>,
    ) -> S3Result<ObjectRecord> {
        let meta = self.meta.clone();
        let rec = record.clone();
        match blocking(move || meta.put_object(&rec, &condition)).await {
            Ok(_) => Ok(record),
            Err(e) => {
                self.blobs.remove(new_blobs).await;
                Err(e)
            }
        }
    }
}

/// SSE-S3 and plaintext ETags are the MD5 of the plaintext; for KMS, DSSE and SSE-C objects AWS
/// returns 32 hex digits that are not the MD5 (it would be an oracle on the data): random ones.
pub(crate) fn object_etag(seal: &SealInfo, md5: Option<&[u8; 16]>) -> S3Result<String> {
    if seal.etag_is_md5() {
        let md5 = md5.ok_or_else(|| crate::error::internal("etag", "MD5 was not computed"))?;
        return Ok(hex::encode(md5));
    }
    let mut r = [0u8; 16];
    aws_lc_rs::rand::fill(&mut r).map_err(|_| crate::error::internal("randomness", "system RNG failed"))?;
    Ok(hex::encode(r))
}

/// Object Lock is not built yet (issue 16 §2): a write that asks for retention or a legal hold is
/// refused rather than stored unprotected.
pub(crate) fn refuse_object_lock(mode: Option<&ObjectLockMode>, until: Option<&Timestamp>, hold: bool) -> S3Result<()> {
    if mode.is_some() || until.is_some() || hold {
        return Err(s3_error!(NotImplemented, "Object Lock (retention and legal holds) is not implemented"));
    }
    Ok(())
}

pub(crate) fn precondition_failed() -> s3s::S3Error {
    s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold")
}

pub(crate) fn ssec_needs_tls() -> s3s::S3Error {
    s3_error!(
        InvalidRequest,
        "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."
    )
}

pub(crate) fn fill_single_part(record: &mut ObjectRecord, stored: &StoredBody, etag: &str) {
    record.size = stored.size;
    record.etag = etag.to_owned();
    record.checksums = stored.checksums.clone();
    record.checksum_type = (!stored.checksums.is_empty()).then(|| "FULL_OBJECT".to_owned());
    record.parts = vec![StoredPart {
        blob: stored.blob.clone(),
        size: stored.size,
        etag: etag.to_owned(),
        part_number: None,
        checksums: stored.checksums.clone(),
        binding: None,
    }];
}
