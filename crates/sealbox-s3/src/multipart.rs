//! Multipart uploads. Each part is its own blob; Complete only writes metadata that lists the
//! chosen parts in order (no bytes are copied), so completing a 5 TiB upload is instant.

use std::collections::BTreeMap;

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::{PartRecord, StoredPart, UploadRecord};

use crate::binding::{BindingKey, ObjectIdentity, BINDING_FORMAT};
use crate::body::{read_parts, store_body};
use crate::bucket::owner;
use crate::checksum::{
    composite_checksum, full_object_crc, multipart_etag, named_algorithm, parse_algorithm,
    reject_unknown_checksum_headers, verify_content_md5, without_part_count, ChecksumFields, ChecksumRequest,
    ALGORITHMS, DEFAULT_ALGORITHM,
};
use crate::copy::{check_copy_conditions, source_of};
use crate::encryption::bucket_default;
use crate::error::blocking;
use crate::put::{write_condition, Attributes};
use crate::restore::check_readable;
use crate::service::{caller_of, check_key, now_ms, timestamp, SealboxS3};
use crate::sse::{PlainKey, SealInfo, SseEcho};
use crate::sse_request::{resolve_mode, CustomerKey, SseHeaders};

const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Part ETags follow the object's mode: MD5 for SSE-S3, opaque otherwise (contract C.4).
fn part_etag(seal: Option<&SealInfo>, md5: Option<&[u8; 16]>) -> S3Result<String> {
    match seal {
        Some(info) => crate::put::object_etag(info, md5),
        None => md5.map(hex::encode).ok_or_else(|| crate::error::internal("etag", "MD5 was not computed")),
    }
}

/// Parts need their MD5 only where it becomes the ETag (plaintext/SSE-S3) or Content-MD5 is checked.
fn part_needs_md5(seal: Option<&SealInfo>, content_md5: Option<&str>) -> bool {
    seal.is_none_or(|s| s.etag_is_md5()) || content_md5.is_some()
}

fn check_part_number(n: i32) -> S3Result<u32> {
    if (1..=10000).contains(&n) {
        Ok(n as u32)
    } else {
        Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"))
    }
}

/// The checksum algorithm chosen at CreateMultipartUpload is remembered in the template's
/// checksum map with an empty value.
fn upload_algorithm(up: &UploadRecord) -> Option<&'static str> {
    ALGORITHMS.iter().copied().find(|a| up.template.checksums.contains_key(*a))
}

/// What a part is hashed with: the client's checksum (verified), and the upload's declared
/// algorithm, or S3's default CRC64NVME from which the object's FULL_OBJECT checksum is combined.
fn part_algorithms(declared: Option<&'static str>, sent: Option<&'static str>) -> Vec<&'static str> {
    let mut algorithms: Vec<&'static str> = sent.into_iter().collect();
    let own = declared.unwrap_or(DEFAULT_ALGORITHM);
    if !algorithms.contains(&own) {
        algorithms.push(own);
    }
    algorithms
}

/// The part checksum an UploadPart(Copy) answer shows: only `algorithm`'s.
fn echoed_checksums(sums: &BTreeMap<String, String>, algorithm: Option<&str>) -> BTreeMap<String, String> {
    sums.iter().filter(|(a, _)| Some(a.as_str()) == algorithm).map(|(a, v)| (a.clone(), v.clone())).collect()
}

impl SealboxS3 {
    async fn load_upload(&self, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadRecord> {
        let meta = self.meta.clone();
        let (b, id) = (bucket.to_owned(), upload_id.to_owned());
        let up = blocking(move || {
            meta.require_bucket(&b)?;
            meta.upload(&id)
        })
        .await?;
        match up {
            Some(up) if up.bucket == bucket && up.key == key => Ok(up),
            _ => Err(s3_error!(NoSuchUpload, "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")),
        }
    }

    pub(crate) async fn op_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let caller = caller_of(&req);
        reject_unknown_checksum_headers(&req.headers)?;
        let input = req.input;
        check_key(&input.key)?;
        crate::put::refuse_object_lock(
            input.object_lock_mode.as_ref(),
            input.object_lock_retain_until_date.as_ref(),
            input.object_lock_legal_hold_status.is_some(),
        )?;
        let bucket = self.require_bucket(&input.bucket).await?;
        let customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
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
        let mut template = Attributes {
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
        let algorithm = input.checksum_algorithm.as_ref().map(|a| parse_algorithm(a.as_str())).transpose()?;
        let kind = input.checksum_type.as_ref().map(|t| t.as_str().to_owned());
        if let Some(k) = &kind {
            if k != "COMPOSITE" && k != "FULL_OBJECT" {
                return Err(s3_error!(InvalidRequest, "Value for x-amz-checksum-type header is invalid."));
            }
            let Some(alg) = algorithm else {
                return Err(s3_error!(
                    InvalidRequest,
                    "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
                ));
            };
            // CRC32/CRC32C can be either; SHA1/SHA256 only COMPOSITE, CRC64NVME only FULL_OBJECT.
            let allowed = match alg {
                "SHA1" | "SHA256" => k == "COMPOSITE",
                "CRC64NVME" => k == "FULL_OBJECT",
                _ => true,
            };
            if !allowed {
                return Err(s3_error!(
                    InvalidRequest,
                    "The {k} checksum type cannot be used with the {} checksum algorithm.",
                    alg.to_ascii_lowercase()
                ));
            }
        }
        if let Some(a) = algorithm {
            template.checksums.insert(a.to_owned(), String::new());
            template.checksum_type = Some(kind.clone().unwrap_or_else(|| {
                // AWS defaults CRC64NVME to FULL_OBJECT and the rest to COMPOSITE.
                if a == "CRC64NVME" { "FULL_OBJECT" } else { "COMPOSITE" }.to_owned()
            }));
        }
        // The upload's data key is made now and kept only wrapped; every part re-opens it, so all
        // parts share one key (each part blob has its own salt, so no key/nonce pair repeats).
        let (keys, seal) = self
            .enc
            .seal_new(&input.bucket, &input.key, mode, input.ssekms_encryption_context.clone(), &caller)
            .await?;
        let echo = SseEcho::of(&seal);
        let upload_id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut up = UploadRecord {
            upload_id: upload_id.clone(),
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            initiated_ms: now_ms(),
            template: template.clone(),
        };
        self.seal_upload_template(&mut up, &keys, seal)?;
        let meta = self.meta.clone();
        blocking(move || meta.create_upload(&up)).await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: algorithm.map(|a| ChecksumAlgorithm::from(a.to_owned())),
            checksum_type: template.checksum_type.map(ChecksumType::from),
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            ssekms_encryption_context: echo.context,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            ..Default::default()
        }))
    }

    /// The data key(s) of an upload, for sealing one of its parts. SSE-C uploads need the same
    /// customer key on every part (contract C.2).
    async fn upload_keys(
        &self,
        up: &UploadRecord,
        customer: Option<&CustomerKey>,
        caller: &crate::keys::Caller,
    ) -> S3Result<(Vec<PlainKey>, Option<SealInfo>)> {
        let info = self.verify_upload(up)?;
        if info.is_customer() && customer.is_none() {
            return Err(s3_error!(
                InvalidRequest,
                "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters."
            ));
        }
        let keys = self.open_keys(&ObjectIdentity::new(&up.bucket, &up.key), &info, customer, caller).await?;
        Ok((keys, Some(info)))
    }

    /// Tags a new part under the upload's binding key (uploads begun before bindings: none).
    fn tag_part(
        &self,
        up: &UploadRecord,
        keys: &[PlainKey],
        seal: Option<&SealInfo>,
        part: &mut StoredPart,
    ) -> S3Result<()> {
        if seal.is_some_and(|s| s.format == BINDING_FORMAT) {
            let id = ObjectIdentity::new(&up.bucket, &up.key);
            part.binding = Some(BindingKey::derive(keys)?.part_tag(&id, &up.upload_id, part));
        }
        Ok(())
    }

    /// Records a stored part (the store queues the replaced part's blob); removes the new blob on
    /// failure.
    async fn record_part(&self, upload_id: &str, part_number: u32, part: StoredPart) -> S3Result<PartRecord> {
        let rec = PartRecord { upload_id: upload_id.to_owned(), part_number, last_modified_ms: now_ms(), part };
        let meta = self.meta.clone();
        let r = rec.clone();
        match blocking(move || meta.put_part(&r)).await {
            Ok(_) => Ok(rec),
            Err(e) => {
                self.blobs.remove([rec.part.blob]).await;
                Err(e)
            }
        }
    }

    pub(crate) async fn op_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
        body_slot: &mut Option<StreamingBlob>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let trailer = req.headers.get("x-amz-trailer").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let trailing = req.trailing_headers.clone();
        let caller = caller_of(&req);
        reject_unknown_checksum_headers(&req.headers)?;
        let named = named_algorithm(&req.headers, req.input.checksum_algorithm.as_ref());
        let input = req.input;
        let part_number = check_part_number(input.part_number)?;
        let customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        let up = self.load_upload(&input.bucket, &input.key, &input.upload_id).await?;
        let (keys, seal) = self.upload_keys(&up, customer.as_ref(), &caller).await?;
        if input.content_length.is_some_and(|l| l as u64 > MAX_PART_SIZE) {
            return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size"));
        }
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
        let declared = upload_algorithm(&up);
        let sent = checks.client_algorithm();
        if let Some(d) = declared {
            // Every part of an upload that declared an algorithm carries that checksum (AWS).
            if sent != Some(d) {
                return Err(s3_error!(
                    InvalidRequest,
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    d.to_ascii_lowercase(),
                    sent.map_or("null".to_owned(), str::to_ascii_lowercase)
                ));
            }
        }
        let algorithms = part_algorithms(declared, sent);
        let Some(body) = body_slot.take() else {
            return Err(s3_error!(MissingRequestBodyError, "Request body is empty."));
        };
        let stored = store_body(
            &self.blobs,
            body,
            &algorithms,
            MAX_PART_SIZE,
            input.content_length.map(|l| l as u64),
            self.config.body_idle_timeout,
            &keys,
            Some(part_number),
            part_needs_md5(seal.as_ref(), input.content_md5.as_deref()),
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
        let etag = part_etag(seal.as_ref(), stored.md5.as_ref())?;
        let mut part = StoredPart {
            blob: stored.blob,
            size: stored.size,
            etag: etag.clone(),
            part_number: Some(part_number),
            checksums: stored.checksums.clone(),
            binding: None,
        };
        if let Err(e) = self.tag_part(&up, &keys, seal.as_ref(), &mut part) {
            self.blobs.remove([part.blob]).await;
            return Err(e);
        }
        self.record_part(&up.upload_id, part_number, part).await?;
        // Echo the checksum the client sent or the upload declared, not the default one.
        let s = &echoed_checksums(&stored.checksums, declared.or(sent));
        let echo = seal.as_ref().map(SseEcho::of).unwrap_or_default();
        Ok(S3Response::new(UploadPartOutput {
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            e_tag: Some(ETag::Strong(etag)),
            checksum_crc32: s.get("CRC32").cloned(),
            checksum_crc32c: s.get("CRC32C").cloned(),
            checksum_crc64nvme: s.get("CRC64NVME").cloned(),
            checksum_sha1: s.get("SHA1").cloned(),
            checksum_sha256: s.get("SHA256").cloned(),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let caller = caller_of(&req);
        let input = req.input;
        let part_number = check_part_number(input.part_number)?;
        let customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        let src_customer = self.read_customer_key(
            &caller,
            input.copy_source_sse_customer_algorithm.as_deref(),
            input.copy_source_sse_customer_key.as_deref(),
            input.copy_source_sse_customer_key_md5.as_deref(),
        )?;
        let up = self.load_upload(&input.bucket, &input.key, &input.upload_id).await?;
        let (keys, seal) = self.upload_keys(&up, customer.as_ref(), &caller).await?;
        let (src_bucket, src_key) = source_of(&input.copy_source)?;
        let src = self.load_object(&src_bucket, &src_key).await?;
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
        let (start, end) = match input.copy_source_range.as_deref() {
            None => (0, src.size),
            Some(r) => parse_copy_range(r, src.size)?,
        };
        if end - start > MAX_PART_SIZE {
            return Err(s3_error!(InvalidRequest, "The specified copy range is larger than the maximum part size"));
        }
        let declared = upload_algorithm(&up);
        let algorithms = part_algorithms(declared, None);
        let body = read_parts(
            &self.blobs,
            &src.parts,
            start,
            end,
            &src_keys,
            (&format!("{src_bucket}/{src_key}"), self.config.on_integrity_failure.as_ref()),
        )
        .await?;
        let stored = store_body(
            &self.blobs,
            body,
            &algorithms,
            MAX_PART_SIZE,
            Some(end - start),
            self.config.body_idle_timeout,
            &keys,
            Some(part_number),
            part_needs_md5(seal.as_ref(), None),
        )
        .await?;
        let etag = part_etag(seal.as_ref(), stored.md5.as_ref())?;
        let mut part = StoredPart {
            blob: stored.blob,
            size: stored.size,
            etag: etag.clone(),
            part_number: Some(part_number),
            checksums: stored.checksums.clone(),
            binding: None,
        };
        if let Err(e) = self.tag_part(&up, &keys, seal.as_ref(), &mut part) {
            self.blobs.remove([part.blob]).await;
            return Err(e);
        }
        let rec = self.record_part(&up.upload_id, part_number, part).await?;
        let echo = seal.as_ref().map(SseEcho::of).unwrap_or_default();
        let s = &echoed_checksums(&stored.checksums, declared);
        Ok(S3Response::new(UploadPartCopyOutput {
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            sse_customer_algorithm: echo.customer_algorithm,
            sse_customer_key_md5: echo.customer_key_md5,
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(etag)),
                last_modified: Some(timestamp(rec.last_modified_ms)),
                checksum_crc32: s.get("CRC32").cloned(),
                checksum_crc32c: s.get("CRC32C").cloned(),
                checksum_crc64nvme: s.get("CRC64NVME").cloned(),
                checksum_sha1: s.get("SHA1").cloned(),
                checksum_sha256: s.get("SHA256").cloned(),
            }),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        reject_unknown_checksum_headers(&req.headers)?;
        let input = req.input;
        let up = self.load_upload(&input.bucket, &input.key, &input.upload_id).await?;
        let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        self.precheck_write_condition(&input.bucket, &input.key, &condition).await?;
        let declared = upload_algorithm(&up);
        if let Some(t) = input.checksum_type.as_ref() {
            if up.template.checksum_type.as_deref() != Some(t.as_str()) {
                return Err(s3_error!(
                    InvalidRequest,
                    "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                    up.template.checksum_type.as_deref().unwrap_or("FULL_OBJECT").to_ascii_lowercase()
                ));
            }
        }
        let input_checksums: BTreeMap<&'static str, String> = ChecksumFields::pairs(
            input.checksum_crc32.as_ref(),
            input.checksum_crc32c.as_ref(),
            input.checksum_crc64nvme.as_ref(),
            input.checksum_sha1.as_ref(),
            input.checksum_sha256.as_ref(),
        )
        .into_iter()
        .filter_map(|(a, v)| v.map(|v| (a, v.clone())))
        .collect();
        let requested = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let meta = self.meta.clone();
        let id = up.upload_id.clone();
        let stored: BTreeMap<u32, PartRecord> = blocking(move || meta.list_parts(&id, 0, usize::MAX))
            .await?
            .into_iter()
            .map(|p| (p.part_number, p))
            .collect();
        // AWS checks the order of the whole list first, then each part, then part sizes.
        let mut numbers = Vec::with_capacity(requested.len());
        let mut last_number = 0u32;
        for p in &requested {
            let n = p.part_number.ok_or_else(|| s3_error!(MalformedXML, "Each Part needs a PartNumber"))?;
            let n = check_part_number(n)?;
            if n <= last_number {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. Parts must be ordered by part number."
                ));
            }
            last_number = n;
            numbers.push(n);
        }
        let invalid = || {
            s3_error!(
                InvalidPart,
                "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
            )
        };
        let mut chosen: Vec<StoredPart> = Vec::with_capacity(requested.len());
        for (p, n) in requested.iter().zip(&numbers) {
            let rec = stored.get(n).ok_or_else(invalid)?;
            let etag_ok = p.e_tag.as_ref().is_some_and(|e| e.value().trim_matches('"') == rec.part.etag);
            if !etag_ok {
                return Err(invalid());
            }
            check_completed_part_checksums(p, *n, &rec.part, declared)?;
            chosen.push(rec.part.clone());
        }
        // The template and every chosen part must be as sealbox wrote them: the object's binding
        // is about to cover this list, and must never authenticate a list edited in meta.db.
        let mut seal = self.verify_upload(&up)?;
        let binding_key = self.upload_binding_key(&up, &seal)?;
        if let Some(bk) = &binding_key {
            let id = ObjectIdentity::new(&up.bucket, &up.key);
            if let Some(p) = chosen.iter().find(|p| !bk.verify_part(&id, &up.upload_id, p)) {
                let reason = format!("part {} of its multipart upload fails its tag", p.part_number.unwrap_or(0));
                return Err(self.integrity_failure(&id, &reason));
            }
        }
        if chosen.iter().rev().skip(1).any(|p| p.size < MIN_PART_SIZE) {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size."
            ));
        }
        let mut record = up.template.clone();
        record.size = chosen.iter().map(|p| p.size).sum();
        record.etag = multipart_etag(&chosen.iter().map(|p| p.etag.clone()).collect::<Vec<_>>());
        let (checksums, checksum_type) = object_checksum(declared, up.template.checksum_type.as_deref(), &chosen);
        record.checksums = checksums;
        record.checksum_type = checksum_type;
        verify_whole_object_checksum(&input_checksums, &record.checksums)?;
        if let Some(size) = input.mpu_object_size {
            if size < 0 || size as u64 != record.size {
                return Err(s3_error!(
                    InvalidRequest,
                    "The provided 'x-amz-mp-object-size' header value {size} does not match what was computed: {}",
                    record.size
                ));
            }
        }
        record.parts = chosen;
        match &binding_key {
            Some(bk) => self.bind_record_with(&mut record, bk, &mut seal)?,
            // An upload begun before bindings completes into a format-1 record, row MAC only.
            None => {
                record.last_modified_ms = now_ms();
                self.retag_row(&mut record);
            }
        }
        let meta = self.meta.clone();
        let (id, rec) = (up.upload_id.clone(), record.clone());
        // The replaced object's blobs and the unused parts are queued for deletion by the store.
        blocking(move || meta.complete_upload(&id, &rec, &condition)).await?;
        let s = &record.checksums;
        let echo = SealInfo::from_json(record.sse.as_deref())?.as_ref().map(SseEcho::of).unwrap_or_default();
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            server_side_encryption: echo.sse(),
            ssekms_key_id: echo.key_arn,
            bucket_key_enabled: echo.bucket_key,
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            e_tag: Some(ETag::Strong(record.etag.clone())),
            checksum_crc32: s.get("CRC32").cloned(),
            checksum_crc32c: s.get("CRC32C").cloned(),
            checksum_crc64nvme: s.get("CRC64NVME").cloned(),
            checksum_sha1: s.get("SHA1").cloned(),
            checksum_sha256: s.get("SHA256").cloned(),
            checksum_type: record.checksum_type.clone().filter(|_| !s.is_empty()).map(ChecksumType::from),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let up = self.load_upload(&input.bucket, &input.key, &input.upload_id).await?;
        let meta = self.meta.clone();
        // The parts' blobs are queued for deletion by the store.
        blocking(move || meta.abort_upload(&up.upload_id)).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(crate) async fn op_list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let up = self.load_upload(&input.bucket, &input.key, &input.upload_id).await?;
        let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let meta = self.meta.clone();
        let id = up.upload_id.clone();
        let mut parts = blocking(move || meta.list_parts(&id, marker, max + 1)).await?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        let next = parts.last().map(|p| p.part_number as i32);
        let out: Vec<Part> = parts
            .into_iter()
            .map(|p| Part {
                part_number: Some(p.part_number as i32),
                e_tag: Some(ETag::Strong(p.part.etag.clone())),
                size: Some(p.part.size as i64),
                last_modified: Some(timestamp(p.last_modified_ms)),
                checksum_crc32: p.part.checksums.get("CRC32").cloned(),
                checksum_crc32c: p.part.checksums.get("CRC32C").cloned(),
                checksum_crc64nvme: p.part.checksums.get("CRC64NVME").cloned(),
                checksum_sha1: p.part.checksums.get("SHA1").cloned(),
                checksum_sha256: p.part.checksums.get("SHA256").cloned(),
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(up.upload_id.clone()),
            part_number_marker: Some(marker as i32),
            next_part_number_marker: next,
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: (!out.is_empty()).then_some(out),
            owner: Some(owner()),
            initiator: Some(Initiator { id: Some("000000000000".into()), display_name: Some("sealbox".into()) }),
            storage_class: Some(StorageClass::from(crate::restore::class_name(&up.template))),
            checksum_algorithm: upload_algorithm(&up).map(|a| ChecksumAlgorithm::from(a.to_owned())),
            checksum_type: up.template.checksum_type.clone().map(ChecksumType::from),
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let max = input.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
        let prefix = input.prefix.clone().unwrap_or_default();
        let key_marker = input.key_marker.clone().filter(|m| !m.is_empty());
        let id_marker = input.upload_id_marker.clone().filter(|m| !m.is_empty());
        let meta = self.meta.clone();
        let (b, p, km, im) = (input.bucket.clone(), prefix.clone(), key_marker.clone(), id_marker.clone());
        let ups = blocking(move || {
            meta.require_bucket(&b)?;
            meta.list_uploads(&b, p.as_bytes(), km.as_deref().map(str::as_bytes), im.as_deref(), usize::MAX)
        })
        .await?;
        let mut uploads = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        let mut truncated = false;
        let mut last: Option<(String, Option<String>)> = None;
        for up in ups {
            let cp = input.delimiter.as_deref().filter(|d| !d.is_empty()).and_then(|d| {
                let rest = up.key.strip_prefix(prefix.as_str())?;
                rest.find(d).map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
            });
            if let Some(cp) = &cp {
                if prefixes.last() == Some(cp) {
                    continue;
                }
            }
            if uploads.len() + prefixes.len() == max {
                truncated = true;
                break;
            }
            match cp {
                Some(cp) => {
                    last = Some((cp.clone(), None));
                    prefixes.push(cp);
                }
                None => {
                    last = Some((up.key.clone(), Some(up.upload_id.clone())));
                    uploads.push(MultipartUpload {
                        key: Some(up.key.clone()),
                        upload_id: Some(up.upload_id.clone()),
                        initiated: Some(timestamp(up.initiated_ms)),
                        owner: Some(owner()),
                        initiator: Some(Initiator {
                            id: Some("000000000000".into()),
                            display_name: Some("sealbox".into()),
                        }),
                        storage_class: Some(StorageClass::from(crate::restore::class_name(&up.template))),
                        checksum_algorithm: upload_algorithm(&up).map(|a| ChecksumAlgorithm::from(a.to_owned())),
                        checksum_type: up.template.checksum_type.clone().map(ChecksumType::from),
                    });
                }
            }
        }
        let (next_key, next_id) = match (truncated, last) {
            (true, Some((k, id))) => (Some(k), id),
            _ => (None, None),
        };
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            delimiter: input.delimiter,
            key_marker: Some(key_marker.unwrap_or_default()),
            upload_id_marker: Some(id_marker.unwrap_or_default()),
            next_key_marker: next_key,
            next_upload_id_marker: next_id,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            uploads: (!uploads.is_empty()).then_some(uploads),
            common_prefixes: (!prefixes.is_empty())
                .then(|| prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(p) }).collect()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}

/// The part checksums a Complete request lists must be the ones the parts were stored with; an
/// upload that declared an algorithm must list that checksum for every part (AWS).
fn check_completed_part_checksums(
    p: &CompletedPart,
    number: u32,
    stored: &StoredPart,
    declared: Option<&'static str>,
) -> S3Result<()> {
    let given = ChecksumFields::pairs(
        p.checksum_crc32.as_ref(),
        p.checksum_crc32c.as_ref(),
        p.checksum_crc64nvme.as_ref(),
        p.checksum_sha1.as_ref(),
        p.checksum_sha256.as_ref(),
    );
    if let Some(d) = declared {
        if !given.iter().any(|(a, v)| *a == d && v.is_some()) {
            return Err(s3_error!(
                InvalidRequest,
                "The upload was created using a {} checksum. The complete request must include the checksum for each part. It was missing for part {number} in the request.",
                d.to_ascii_lowercase()
            ));
        }
    }
    for (alg, value) in given {
        if let Some(v) = value {
            if stored.checksums.get(alg) != Some(v) {
                return Err(s3_error!(
                    InvalidPart,
                    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
                ));
            }
        }
    }
    Ok(())
}

/// The object checksum of a completed upload: COMPOSITE (checksum of the part checksums, `-N`)
/// or FULL_OBJECT (the part CRCs combined into the CRC of the whole) of the declared algorithm;
/// without one, S3's default CRC64NVME FULL_OBJECT. Parts stored before a checksum was kept for
/// them leave the object without one.
fn object_checksum(
    declared: Option<&'static str>,
    declared_type: Option<&str>,
    parts: &[StoredPart],
) -> (BTreeMap<String, String>, Option<String>) {
    let (alg, kind) = match declared {
        Some(a) => (a, declared_type.unwrap_or("COMPOSITE")),
        None => (DEFAULT_ALGORITHM, "FULL_OBJECT"),
    };
    let values: Option<Vec<(String, u64)>> =
        parts.iter().map(|p| p.checksums.get(alg).map(|v| (v.clone(), p.size))).collect();
    let value = values.and_then(|vals| {
        if kind == "FULL_OBJECT" {
            full_object_crc(alg, &vals)
        } else {
            composite_checksum(alg, &vals.into_iter().map(|(v, _)| v).collect::<Vec<_>>())
        }
    });
    match value {
        Some(v) => (BTreeMap::from([(alg.to_owned(), v)]), Some(kind.to_owned())),
        None => (BTreeMap::new(), None),
    }
}

/// A whole-object checksum sent with Complete must match the object's (BadDigest otherwise); a
/// composite one may come with or without its `-N`.
fn verify_whole_object_checksum(
    given: &BTreeMap<&'static str, String>,
    computed: &BTreeMap<String, String>,
) -> S3Result<()> {
    for (alg, value) in given {
        let ok = computed.get(*alg).is_some_and(|c| c == value || without_part_count(c) == value.as_str());
        if !ok {
            return Err(s3_error!(
                BadDigest,
                "The {} you specified did not match the calculated checksum.",
                crate::checksum::header_name(alg)
            ));
        }
    }
    Ok(())
}

/// `x-amz-copy-source-range: bytes=first-last`, both required and inside the source.
fn parse_copy_range(r: &str, size: u64) -> S3Result<(u64, u64)> {
    let bad = || {
        s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
    };
    let spec = r.strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(s3_error!(InvalidRange, "The requested range is not satisfiable"));
    }
    Ok((first, last + 1))
}
