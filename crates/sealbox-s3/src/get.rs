//! GetObject and HeadObject: conditionals, ranges, partNumber, response headers.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::ObjectRecord;

use crate::binding::ObjectIdentity;
use crate::body::read_parts;
use crate::checksum::ChecksumFields;
use crate::error::blocking;
use crate::put::parse_http_date;
use crate::restore::{check_readable, restore_header};
use crate::service::{caller_of, seconds, timestamp, SealboxS3};
use crate::sse::{SealInfo, SseEcho};
use crate::sse_request::{parse_customer_key, CustomerKey};

/// The byte window a read serves, and what the response says about it.
struct ReadWindow {
    start: u64,
    end: u64,
    content_range: Option<String>,
    parts_count: Option<i32>,
    /// Which checksums describe exactly these bytes (`x-amz-checksum-mode: ENABLED`).
    checksums: WindowChecksums,
}

/// The checksums AWS returns for a window: the object's for a whole-object read, a part's for
/// `partNumber` of a multipart object (COMPOSITE objects, or FULL_OBJECT ones of one part, whose
/// part checksum is the object's), none for a range.
#[derive(Clone, Copy)]
enum WindowChecksums {
    Object,
    Part(usize),
    None,
}

fn plan_window(rec: &ObjectRecord, range: Option<&Range>, part_number: Option<i32>) -> S3Result<ReadWindow> {
    let total = rec.size;
    let whole = |content_range| ReadWindow {
        start: 0,
        end: total,
        content_range,
        parts_count: None,
        checksums: WindowChecksums::Object,
    };
    match (range, part_number) {
        (Some(_), Some(_)) => {
            Err(s3_error!(InvalidRequest, "Cannot specify both Range header and partNumber query parameter"))
        }
        (Some(r), None) => {
            let w = r
                .check(total)
                .map_err(|_| s3_error!(InvalidRange, "The requested range is not satisfiable (object size {total})"))?;
            Ok(ReadWindow {
                start: w.start,
                end: w.end,
                content_range: Some(format!("bytes {}-{}/{}", w.start, w.end - 1, total)),
                parts_count: None,
                checksums: if w.start == 0 && w.end == total { WindowChecksums::Object } else { WindowChecksums::None },
            })
        }
        (None, Some(n)) => {
            let multipart = rec.parts.iter().any(|p| p.part_number.is_some());
            if n < 1 {
                return Err(s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive"
                ));
            }
            if !multipart {
                // Part 1 of a single-part object is the whole object, answered as a range (206
                // with Content-Range, no parts count), as AWS does; an empty object has no range.
                if n != 1 {
                    return Err(invalid_part_number());
                }
                return Ok(whole((total > 0).then(|| format!("bytes 0-{}/{}", total - 1, total))));
            }
            let idx = (n - 1) as usize;
            let part = rec.parts.get(idx).ok_or_else(invalid_part_number)?;
            let start: u64 = rec.parts[..idx].iter().map(|p| p.size).sum();
            let end = start + part.size;
            let composite = rec.checksum_type.as_deref() == Some("COMPOSITE");
            Ok(ReadWindow {
                start,
                end,
                content_range: (part.size > 0).then(|| format!("bytes {}-{}/{}", start, end - 1, total)),
                parts_count: Some(rec.parts.len() as i32),
                checksums: if composite || rec.parts.len() == 1 {
                    WindowChecksums::Part(idx)
                } else {
                    WindowChecksums::None
                },
            })
        }
        (None, None) => Ok(whole(None)),
    }
}

/// HTTP conditionals on reads (contract B.5): If-Match beats If-Unmodified-Since, If-None-Match
/// beats If-Modified-Since.
fn check_read_conditions(
    rec: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let etag = ETag::Strong(rec.etag.clone());
    let modified_s = rec.last_modified_ms.div_euclid(1000);
    match if_match {
        Some(cond) => {
            let ok = match cond {
                ETagCondition::Any => true,
                ETagCondition::ETag(e) => e.value() == etag.value(),
            };
            if !ok {
                return Err(s3_error!(
                    PreconditionFailed,
                    "At least one of the pre-conditions you specified did not hold"
                ));
            }
        }
        None => {
            if let Some(t) = if_unmodified_since {
                if modified_s > seconds(t) {
                    return Err(s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    ));
                }
            }
        }
    }
    match if_none_match {
        Some(cond) => {
            let matches = match cond {
                ETagCondition::Any => true,
                ETagCondition::ETag(e) => e.value() == etag.value(),
            };
            if matches {
                return Err(not_modified(rec));
            }
        }
        None => {
            if let Some(t) = if_modified_since {
                if modified_s <= seconds(t) {
                    return Err(not_modified(rec));
                }
            }
        }
    }
    Ok(())
}

fn not_modified(rec: &ObjectRecord) -> s3s::S3Error {
    let mut err = s3_error!(NotModified);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", rec.etag)) {
        headers.insert(http::header::ETAG, v);
    }
    err.set_headers(headers);
    err
}

/// GET/HEAD take only the SSE-C trio; SSE-KMS headers there are a client mistake (contract C.1).
fn reject_sse_headers_on_read(headers: &http::HeaderMap) -> S3Result<()> {
    const NOT_ON_READS: [&str; 4] = [
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-server-side-encryption-context",
        "x-amz-server-side-encryption-bucket-key-enabled",
    ];
    if NOT_ON_READS.iter().any(|h| headers.contains_key(*h)) {
        return Err(s3_error!(
            InvalidArgument,
            "Server Side Encryption headers are not supported on GET or HEAD requests: the object's own encryption applies."
        ));
    }
    Ok(())
}

pub(crate) fn check_version_id(version_id: Option<&String>) -> S3Result<()> {
    match version_id.map(String::as_str) {
        None | Some("null") => Ok(()),
        Some(_) => Err(s3_error!(NoSuchVersion, "The specified version does not exist.")),
    }
}

/// The checksums a read returns with `x-amz-checksum-mode: ENABLED`.
pub(crate) struct ChecksumOut {
    pub fields: ChecksumFields,
    pub kind: Option<ChecksumType>,
}

fn checksum_out(rec: &ObjectRecord, window: &ReadWindow, mode: Option<&ChecksumMode>) -> ChecksumOut {
    let none = ChecksumOut { fields: ChecksumFields::default(), kind: None };
    if mode.is_none_or(|m| m.as_str() != "ENABLED") || rec.checksums.is_empty() {
        return none;
    }
    let kind = rec.checksum_type.clone().map(ChecksumType::from);
    match window.checksums {
        WindowChecksums::Object => ChecksumOut { fields: ChecksumFields::of(&rec.checksums), kind },
        WindowChecksums::Part(idx) => {
            // Only the object's own algorithm (parts may also carry the default CRC64NVME).
            let part = &rec.parts[idx];
            let sums = part.checksums.iter().filter(|(a, _)| rec.checksums.contains_key(*a));
            ChecksumOut { fields: ChecksumFields::of(&sums.map(|(a, v)| (a.clone(), v.clone())).collect()), kind }
        }
        WindowChecksums::None => none,
    }
}

impl SealboxS3 {
    /// Parses an SSE-C trio on a read; such keys are refused over plain HTTP.
    pub(crate) fn read_customer_key(
        &self,
        caller: &crate::keys::Caller,
        algorithm: Option<&str>,
        key: Option<&str>,
        key_md5: Option<&str>,
    ) -> S3Result<Option<CustomerKey>> {
        let ck = parse_customer_key(algorithm, key, key_md5)?;
        if ck.is_some() && !caller.is_tls && !self.config.allow_sse_c_over_http {
            return Err(crate::put::ssec_needs_tls());
        }
        Ok(ck)
    }

    /// Checks a record for an answer that serves no data (HEAD, GetObjectAttributes): its row
    /// MAC, without any data key, and an SSE-C object's key (400 without, 403 with another).
    pub(crate) async fn verify_without_data(
        &self,
        id: &ObjectIdentity<'_>,
        rec: &ObjectRecord,
        customer: Option<&CustomerKey>,
        caller: &crate::keys::Caller,
    ) -> S3Result<SealInfo> {
        let info = self.verify_record(id, rec)?;
        if info.is_customer() || customer.is_some() {
            self.open_object(id, rec, customer, caller).await?;
        }
        Ok(info)
    }

    pub(crate) async fn load_object(&self, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
        let meta = self.meta.clone();
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let rec = blocking(move || {
            meta.require_bucket(&b)?;
            meta.object(&b, &k)
        })
        .await?;
        rec.ok_or_else(|| s3_error!(NoSuchKey, "The specified key does not exist."))
    }

    pub(crate) async fn op_get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        reject_sse_headers_on_read(&req.headers)?;
        let caller = caller_of(&req);
        let input = req.input;
        check_version_id(input.version_id.as_ref())?;
        let customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        let rec = self.load_object(&input.bucket, &input.key).await?;
        // The record is checked against the object the request names before anything of it is
        // used. An archived object's data is not served until restored (no key is opened for it).
        let id = ObjectIdentity::new(&input.bucket, &input.key);
        self.verify_record(&id, &rec)?;
        let now = self.clock_ms();
        check_readable(&rec, now)?;
        // Keys before conditionals: a wrong SSE-C key is 403 whatever the other headers say.
        let (info, keys) = self.open_object(&id, &rec, customer.as_ref(), &caller).await?;
        let seal = Some(info);
        check_read_conditions(
            &rec,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let window = plan_window(&rec, input.range.as_ref(), input.part_number)?;
        let sums = checksum_out(&rec, &window, input.checksum_mode.as_ref());
        let body = read_parts(
            &self.blobs,
            &rec.parts,
            window.start,
            window.end,
            &keys,
            (&format!("{}/{}", rec.bucket, rec.key), self.config.on_integrity_failure.as_ref()),
        )
        .await?;
        let echo = seal.as_ref().map(SseEcho::of).unwrap_or_default();
        let output = GetObjectOutput {
            body: Some(body),
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            accept_ranges: Some("bytes".into()),
            content_length: Some((window.end - window.start) as i64),
            content_range: window.content_range,
            parts_count: window.parts_count,
            e_tag: Some(ETag::Strong(rec.etag.clone())),
            last_modified: Some(timestamp(rec.last_modified_ms)),
            content_type: input.response_content_type.or(rec.content_type.clone()),
            content_encoding: input.response_content_encoding.or(rec.content_encoding.clone()),
            content_disposition: input.response_content_disposition.or(rec.content_disposition.clone()),
            content_language: input.response_content_language.or(rec.content_language.clone()),
            cache_control: input.response_cache_control.or(rec.cache_control.clone()),
            expires: input.response_expires.or_else(|| rec.expires.as_deref().and_then(parse_http_date)),
            website_redirect_location: rec.website_redirect_location.clone(),
            metadata: (!rec.user_metadata.is_empty()).then(|| rec.user_metadata.clone().into_iter().collect()),
            tag_count: (!rec.tags.is_empty()).then_some(rec.tags.len() as i32),
            checksum_crc32: sums.fields.crc32,
            checksum_crc32c: sums.fields.crc32c,
            checksum_crc64nvme: sums.fields.crc64nvme,
            checksum_sha1: sums.fields.sha1,
            checksum_sha256: sums.fields.sha256,
            checksum_type: sums.kind,
            storage_class: rec.storage_class.clone().map(StorageClass::from),
            restore: restore_header(&rec, now),
            ..Default::default()
        };
        let mut resp = S3Response::new(output);
        self.add_material_version(seal.as_ref(), &mut resp.headers);
        Ok(resp)
    }

    pub(crate) async fn op_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        reject_sse_headers_on_read(&req.headers)?;
        let caller = caller_of(&req);
        let input = req.input;
        check_version_id(input.version_id.as_ref())?;
        let customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        let rec = self.load_object(&input.bucket, &input.key).await?;
        let now = self.clock_ms();
        // HEAD reads no data: the record's row MAC is checked without any data key; only SSE-C
        // objects need (and check) the key, no KMS call is made.
        let id = ObjectIdentity::new(&input.bucket, &input.key);
        let info = self.verify_without_data(&id, &rec, customer.as_ref(), &caller).await?;
        let seal = Some(info);
        let echo = seal.as_ref().map(SseEcho::of).unwrap_or_default();
        check_read_conditions(
            &rec,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let window = plan_window(&rec, input.range.as_ref(), input.part_number)?;
        let sums = checksum_out(&rec, &window, input.checksum_mode.as_ref());
        let partial = window.content_range.is_some();
        let output = HeadObjectOutput {
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            accept_ranges: Some("bytes".into()),
            content_length: Some((window.end - window.start) as i64),
            content_range: window.content_range,
            parts_count: window.parts_count,
            e_tag: Some(ETag::Strong(rec.etag.clone())),
            last_modified: Some(timestamp(rec.last_modified_ms)),
            content_type: input.response_content_type.or(rec.content_type.clone()),
            content_encoding: input.response_content_encoding.or(rec.content_encoding.clone()),
            content_disposition: input.response_content_disposition.or(rec.content_disposition.clone()),
            content_language: input.response_content_language.or(rec.content_language.clone()),
            cache_control: input.response_cache_control.or(rec.cache_control.clone()),
            expires: input.response_expires.or_else(|| rec.expires.as_deref().and_then(parse_http_date)),
            website_redirect_location: rec.website_redirect_location.clone(),
            metadata: (!rec.user_metadata.is_empty()).then(|| rec.user_metadata.clone().into_iter().collect()),
            checksum_crc32: sums.fields.crc32,
            checksum_crc32c: sums.fields.crc32c,
            checksum_crc64nvme: sums.fields.crc64nvme,
            checksum_sha1: sums.fields.sha1,
            checksum_sha256: sums.fields.sha256,
            checksum_type: sums.kind,
            storage_class: rec.storage_class.clone().map(StorageClass::from),
            restore: restore_header(&rec, now),
            ..Default::default()
        };
        // s3s answers HEAD with 200 whatever the output; AWS answers a range (or part) with 206.
        let mut resp = match partial {
            true => crate::service::with_status(output, http::StatusCode::PARTIAL_CONTENT),
            false => S3Response::new(output),
        };
        self.add_material_version(seal.as_ref(), &mut resp.headers);
        Ok(resp)
    }

    /// `x-sealbox-kms-key-version`: the material version of the KMS key (or of the SSE-S3
    /// service key) that wraps the object's data key, as ListKeyRotations numbers them from 1.
    /// Read from the wrapped key's header: no KMS call (HEAD makes none).
    fn add_material_version(&self, seal: Option<&SealInfo>, headers: &mut http::HeaderMap) {
        let Some(info) = seal.filter(|i| !i.is_customer()) else { return };
        let Some(blob) = info.wrapped_keys.first().and_then(|b| B64.decode(b).ok()) else { return };
        if let Some(version) = self.enc.keys.material_version(&blob) {
            headers.insert(KMS_KEY_VERSION_HEADER, http::HeaderValue::from(version));
        }
    }
}

/// GET/HEAD response header (sealbox extension): the key material version of the object's data key.
pub const KMS_KEY_VERSION_HEADER: &str = "x-sealbox-kms-key-version";

/// 416 InvalidPartNumber (not in s3s's list of codes).
fn invalid_part_number() -> s3s::S3Error {
    let mut err = s3s::S3Error::with_message(
        s3s::S3ErrorCode::Custom("InvalidPartNumber".into()),
        "The requested partnumber is not satisfiable",
    );
    err.set_status_code(http::StatusCode::RANGE_NOT_SATISFIABLE);
    err
}
