//! GetObjectAttributes: an object's ETag, checksum, parts, storage class and size in one call,
//! from its record alone (no data key is opened, except to check an SSE-C key as HEAD does).
//!
//! AWS's shape, as clients parse it: the ETag comes without quotes, a COMPOSITE checksum without
//! its `-N` part count, and `ObjectParts` only for multipart objects: the part count always, the
//! parts themselves (paged by `x-amz-max-parts` / `x-amz-part-number-marker`, with their
//! checksums) for COMPOSITE objects, whose checksum is made of the parts' checksums.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::ObjectRecord;

use crate::binding::ObjectIdentity;
use crate::checksum::{without_part_count, ChecksumFields};
use crate::service::{caller_of, timestamp, SealboxS3};

/// Which attributes a request asked for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Wanted {
    etag: bool,
    checksum: bool,
    parts: bool,
    storage_class: bool,
    size: bool,
}

fn wanted(list: &ObjectAttributesList) -> S3Result<Wanted> {
    let mut w = Wanted::default();
    // One header, comma-separated (s3s hands it over unsplit).
    for a in list.iter().flat_map(|a| a.as_str().split(',')) {
        match a.trim() {
            "ETag" => w.etag = true,
            "Checksum" => w.checksum = true,
            "ObjectParts" => w.parts = true,
            "StorageClass" => w.storage_class = true,
            "ObjectSize" => w.size = true,
            _ => return Err(s3_error!(InvalidArgument, "Invalid attribute name specified.")),
        }
    }
    if w == Wanted::default() {
        return Err(s3_error!(
            InvalidArgument,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty."
        ));
    }
    Ok(w)
}

fn object_checksum(rec: &ObjectRecord) -> Option<Checksum> {
    if rec.checksums.is_empty() {
        return None;
    }
    let shown = rec.checksums.iter().map(|(a, v)| (a.clone(), without_part_count(v).to_owned())).collect();
    let f = ChecksumFields::of(&shown);
    Some(Checksum {
        checksum_crc32: f.crc32,
        checksum_crc32c: f.crc32c,
        checksum_crc64nvme: f.crc64nvme,
        checksum_sha1: f.sha1,
        checksum_sha256: f.sha256,
        checksum_type: rec.checksum_type.clone().map(ChecksumType::from),
    })
}

/// `ObjectParts` of a multipart object; `None` for single-part objects (AWS sends none).
fn object_parts(
    rec: &ObjectRecord,
    max_parts: Option<i32>,
    marker: Option<i32>,
) -> S3Result<Option<GetObjectAttributesParts>> {
    if !rec.parts.iter().any(|p| p.part_number.is_some()) {
        return Ok(None);
    }
    let total = Some(rec.parts.len() as i32);
    if rec.checksum_type.as_deref() != Some("COMPOSITE") {
        return Ok(Some(GetObjectAttributesParts { total_parts_count: total, ..Default::default() }));
    }
    let max = match max_parts {
        None => 1000,
        Some(n) if n < 0 => return Err(s3_error!(InvalidArgument, "max-parts must be a non-negative integer")),
        Some(n) => n.min(1000) as usize,
    };
    let marker = marker.unwrap_or(0).max(0);
    let after: Vec<&sealbox_store::StoredPart> =
        rec.parts.iter().filter(|p| p.part_number.map_or(0, |n| n as i32) > marker).collect();
    let page: Vec<ObjectPart> = after
        .iter()
        .take(max)
        .map(|p| {
            // The object's own algorithm only (parts may also carry the default CRC64NVME).
            let sums = p.checksums.iter().filter(|(a, _)| rec.checksums.contains_key(*a));
            let f = ChecksumFields::of(&sums.map(|(a, v)| (a.clone(), v.clone())).collect());
            ObjectPart {
                part_number: p.part_number.map(|n| n as i32),
                size: Some(p.size as i64),
                checksum_crc32: f.crc32,
                checksum_crc32c: f.crc32c,
                checksum_crc64nvme: f.crc64nvme,
                checksum_sha1: f.sha1,
                checksum_sha256: f.sha256,
            }
        })
        .collect();
    let truncated = after.len() > page.len();
    Ok(Some(GetObjectAttributesParts {
        total_parts_count: total,
        part_number_marker: Some(marker),
        next_part_number_marker: page.last().and_then(|p| p.part_number),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        parts: Some(page),
    }))
}

impl SealboxS3 {
    pub(crate) async fn op_get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let caller = caller_of(&req);
        let input = req.input;
        crate::get::check_version_id(input.version_id.as_ref())?;
        let want = wanted(&input.object_attributes)?;
        let customer = self.read_customer_key(
            &caller,
            input.sse_customer_algorithm.as_deref(),
            input.sse_customer_key.as_deref(),
            input.sse_customer_key_md5.as_deref(),
        )?;
        let rec = self.load_object(&input.bucket, &input.key).await?;
        // As HEAD: the record is checked without a data key, and an SSE-C object answers only
        // with its key.
        let id = ObjectIdentity::new(&input.bucket, &input.key);
        self.verify_without_data(&id, &rec, customer.as_ref(), &caller).await?;
        let output = GetObjectAttributesOutput {
            e_tag: want.etag.then(|| ETag::Strong(rec.etag.clone())),
            checksum: if want.checksum { object_checksum(&rec) } else { None },
            object_parts: if want.parts {
                object_parts(&rec, input.max_parts, input.part_number_marker)?
            } else {
                None
            },
            storage_class: want.storage_class.then(|| StorageClass::from(crate::restore::class_name(&rec))),
            object_size: want.size.then_some(rec.size as i64),
            last_modified: Some(timestamp(rec.last_modified_ms)),
            ..Default::default()
        };
        let mut resp = S3Response::new(output);
        resp.extensions.insert(crate::service::WireFix { unquoted_etag: true, ..Default::default() });
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealbox_store::StoredPart;
    use std::collections::BTreeMap;

    fn part(n: u32, sha: &str) -> StoredPart {
        StoredPart {
            blob: format!("b{n}"),
            size: 10,
            etag: "e".into(),
            part_number: Some(n),
            checksums: BTreeMap::from([("SHA256".into(), sha.into()), ("CRC64NVME".into(), "x".into())]),
            binding: None,
        }
    }

    fn multipart(kind: &str) -> ObjectRecord {
        let mut rec: ObjectRecord = serde_json::from_str(r#"{"parts":[]}"#).unwrap();
        rec.parts = (1..=3).map(|n| part(n, &format!("s{n}"))).collect();
        rec.checksums = BTreeMap::from([("SHA256".into(), "abc=-3".into())]);
        rec.checksum_type = Some(kind.into());
        rec
    }

    #[test]
    fn composite_checksums_lose_their_part_count_and_list_their_parts() {
        let rec = multipart("COMPOSITE");
        let c = object_checksum(&rec).unwrap();
        assert_eq!(c.checksum_sha256.as_deref(), Some("abc="));
        let p = object_parts(&rec, Some(2), None).unwrap().unwrap();
        assert_eq!(p.total_parts_count, Some(3));
        assert_eq!(p.is_truncated, Some(true));
        assert_eq!(p.next_part_number_marker, Some(2));
        let listed = p.parts.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1].checksum_sha256.as_deref(), Some("s2"));
        assert_eq!(listed[1].checksum_crc64nvme, None);
        let rest = object_parts(&rec, Some(2), Some(2)).unwrap().unwrap();
        assert_eq!(rest.is_truncated, Some(false));
        assert_eq!(rest.parts.unwrap()[0].part_number, Some(3));
    }

    #[test]
    fn full_object_and_single_part_objects_list_no_parts() {
        let p = object_parts(&multipart("FULL_OBJECT"), None, None).unwrap().unwrap();
        assert_eq!(p.total_parts_count, Some(3));
        assert!(p.parts.is_none());
        let mut single = multipart("FULL_OBJECT");
        single.parts.truncate(1);
        single.parts[0].part_number = None;
        assert!(object_parts(&single, None, None).unwrap().is_none());
    }

    #[test]
    fn attribute_names_are_checked() {
        let list = |names: &[&str]| names.iter().map(|n| ObjectAttributes::from((*n).to_owned())).collect::<Vec<_>>();
        assert!(wanted(&list(&["ETag", "ObjectSize"])).unwrap().etag);
        assert!(wanted(&list(&["ETag,ObjectParts"])).unwrap().parts);
        assert_eq!(wanted(&list(&["Bogus"])).unwrap_err().code(), &s3s::S3ErrorCode::InvalidArgument);
        assert_eq!(wanted(&list(&[])).unwrap_err().code(), &s3s::S3ErrorCode::InvalidArgument);
    }
}
