//! ListObjects (v1), ListObjectsV2 and ListObjectVersions over one listing engine.
//!
//! The engine walks keys in UTF-8 byte order, folds keys into CommonPrefixes at the delimiter and
//! jumps over a whole common prefix with one range query, so a listing costs O(page), not O(keys
//! under the prefixes it skips).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use base64::Engine;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sealbox_store::{prefix_upper_bound, MetaStore, ObjectRecord, StoreError};

use crate::bucket::owner;
use crate::error::blocking;
use crate::service::{timestamp, SealboxS3};

struct ListQuery {
    prefix: String,
    delimiter: Option<String>,
    /// Resume strictly after this key (or past this common prefix).
    after: Option<String>,
    max_keys: usize,
}

enum Entry {
    Object(Box<ObjectRecord>),
    Prefix(String),
}

struct ListResult {
    entries: Vec<Entry>,
    truncated: bool,
}

impl ListResult {
    fn last_name(&self) -> Option<String> {
        self.entries.last().map(|e| match e {
            Entry::Object(o) => o.key.clone(),
            Entry::Prefix(p) => p.clone(),
        })
    }
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix_of(key: &str, prefix: &str, delimiter: Option<&str>) -> Option<String> {
    let delim = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.strip_prefix(prefix)?;
    let idx = rest.find(delim)?;
    Some(format!("{prefix}{}", &rest[..idx + delim.len()]))
}

fn run_listing(meta: &MetaStore, bucket: &str, q: &ListQuery) -> Result<ListResult, StoreError> {
    meta.require_bucket(bucket)?;
    let prefix = q.prefix.as_bytes();
    // Where to start: after the marker, or past every key of the marker's common prefix.
    let mut cursor: Option<(Vec<u8>, bool)> =
        q.after.as_ref().map(|a| match common_prefix_of(a, &q.prefix, q.delimiter.as_deref()) {
            Some(cp) if cp == *a => match prefix_upper_bound(cp.as_bytes()) {
                Some(up) => (up, true),
                None => (a.as_bytes().to_vec(), false),
            },
            _ => (a.as_bytes().to_vec(), false),
        });
    let mut entries = Vec::new();
    let batch = (q.max_keys + 1).clamp(2, 1001);
    if q.max_keys == 0 {
        // AWS answers max-keys=0 with no keys and IsTruncated false, whatever the bucket holds.
        return Ok(ListResult { entries, truncated: false });
    }
    loop {
        let page = meta.list_objects(bucket, prefix, cursor.as_ref().map(|(k, i)| (k.as_slice(), *i)), batch)?;
        let exhausted = page.len() < batch;
        let mut jumped = false;
        for rec in page {
            if entries.len() == q.max_keys {
                return Ok(ListResult { entries, truncated: true });
            }
            if let Some(cp) = common_prefix_of(&rec.key, &q.prefix, q.delimiter.as_deref()) {
                match prefix_upper_bound(cp.as_bytes()) {
                    Some(up) => {
                        entries.push(Entry::Prefix(cp));
                        cursor = Some((up, true));
                        jumped = true;
                        break;
                    }
                    None => {
                        // Cannot jump past it (all-0xFF prefix): fold key by key.
                        if !matches!(entries.last(), Some(Entry::Prefix(p)) if *p == cp) {
                            entries.push(Entry::Prefix(cp));
                        }
                        cursor = Some((rec.key.as_bytes().to_vec(), false));
                        continue;
                    }
                }
            }
            cursor = Some((rec.key.as_bytes().to_vec(), false));
            entries.push(Entry::Object(Box::new(rec)));
        }
        if !jumped && exhausted {
            return Ok(ListResult { entries, truncated: false });
        }
    }
}

/// A continuation token as listings hand it out (opaque to clients): the last name returned.
pub(crate) fn encode_token(last: &str) -> String {
    TOKEN.encode(last)
}

/// The name a continuation token resumes after; a token we did not make is `InvalidArgument`.
pub(crate) fn decode_token(t: &str) -> S3Result<String> {
    TOKEN
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

/// An empty `delimiter` is no delimiter: AWS then leaves `Delimiter` out of the answer too.
fn delimiter(d: Option<String>) -> Option<String> {
    d.filter(|d| !d.is_empty())
}

fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be a non-negative integer")),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

/// `encoding-type=url`: percent-encode names in the answer so any byte survives XML.
struct Encoder(bool);

impl Encoder {
    fn new(t: Option<&EncodingType>) -> S3Result<Self> {
        match t.map(|e| e.as_str()) {
            None => Ok(Encoder(false)),
            Some("url") => Ok(Encoder(true)),
            Some(_) => Err(s3_error!(InvalidArgument, "Invalid Encoding Method specified in Request")),
        }
    }
    fn enc(&self, s: String) -> String {
        if self.0 {
            urlencoding::encode(&s).replace("%2F", "/")
        } else {
            s
        }
    }
    fn opt(&self, s: Option<String>) -> Option<String> {
        s.map(|s| self.enc(s))
    }
}

/// What a listing shows of each object besides the basics.
struct Shown {
    owner: bool,
    /// `OptionalObjectAttributes=RestoreStatus` (ListObjectsV2), judged at this time.
    restore_status_at: Option<i64>,
}

fn split(entries: Vec<Entry>, enc: &Encoder, shown: &Shown) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for e in entries {
        match e {
            Entry::Object(o) => objects.push(Object {
                key: Some(enc.enc(o.key.clone())),
                e_tag: Some(ETag::Strong(o.etag.clone())),
                size: Some(o.size as i64),
                last_modified: Some(timestamp(o.last_modified_ms)),
                storage_class: Some(ObjectStorageClass::from(crate::restore::class_name(&o))),
                restore_status: shown.restore_status_at.and_then(|now| crate::restore::listing_restore_status(&o, now)),
                checksum_algorithm: (!o.checksums.is_empty())
                    .then(|| o.checksums.keys().map(|k| ChecksumAlgorithm::from(k.clone())).collect()),
                checksum_type: o.checksum_type.clone().filter(|_| !o.checksums.is_empty()).map(ChecksumType::from),
                owner: shown.owner.then(owner),
            }),
            Entry::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(enc.enc(p)) }),
        }
    }
    (objects, prefixes)
}

impl SealboxS3 {
    async fn list(&self, bucket: &str, q: ListQuery) -> S3Result<ListResult> {
        let meta = self.meta.clone();
        let bucket = bucket.to_owned();
        blocking(move || run_listing(&meta, &bucket, &q)).await
    }

    pub(crate) async fn op_list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let mut input = req.input;
        input.delimiter = delimiter(input.delimiter);
        let enc = Encoder::new(input.encoding_type.as_ref())?;
        let restore_status = match input.optional_object_attributes.as_deref() {
            None => false,
            Some(attrs) => {
                for a in attrs.iter().flat_map(|a| a.as_str().split(',')).map(str::trim) {
                    if a != "RestoreStatus" {
                        return Err(s3_error!(
                            InvalidArgument,
                            "Invalid value for x-amz-optional-object-attributes: {a}"
                        ));
                    }
                }
                !attrs.is_empty()
            }
        };
        let after = match &input.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => input.start_after.clone(),
        };
        let max = max_keys(input.max_keys)?;
        let res = self
            .list(
                &input.bucket,
                ListQuery {
                    prefix: input.prefix.clone().unwrap_or_default(),
                    delimiter: input.delimiter.clone(),
                    after,
                    max_keys: max,
                },
            )
            .await?;
        let next = res.truncated.then(|| res.last_name()).flatten().map(|n| encode_token(&n));
        let truncated = res.truncated;
        let shown = Shown {
            owner: input.fetch_owner.unwrap_or(false),
            restore_status_at: restore_status.then(|| self.clock_ms()),
        };
        let (objects, prefixes) = split(res.entries, &enc, &shown);
        let key_count = (objects.len() + prefixes.len()) as i32;
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc.enc(input.prefix.unwrap_or_default())),
            delimiter: enc.opt(input.delimiter),
            start_after: enc.opt(input.start_after),
            max_keys: Some(max as i32),
            key_count: Some(key_count),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            contents: (!objects.is_empty()).then_some(objects),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    pub(crate) async fn op_list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let mut input = req.input;
        input.delimiter = delimiter(input.delimiter);
        let enc = Encoder::new(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        let res = self
            .list(
                &input.bucket,
                ListQuery {
                    prefix: input.prefix.clone().unwrap_or_default(),
                    delimiter: input.delimiter.clone(),
                    after: input.marker.clone().filter(|m| !m.is_empty()),
                    max_keys: max,
                },
            )
            .await?;
        // v1 returns NextMarker only when a delimiter was given (clients use the last key otherwise).
        let next_marker = (res.truncated && input.delimiter.is_some()).then(|| res.last_name()).flatten();
        let truncated = res.truncated;
        let (objects, prefixes) = split(res.entries, &enc, &Shown { owner: true, restore_status_at: None });
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc.enc(input.prefix.unwrap_or_default())),
            delimiter: enc.opt(input.delimiter),
            marker: Some(enc.enc(input.marker.unwrap_or_default())),
            next_marker: enc.opt(next_marker),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            contents: (!objects.is_empty()).then_some(objects),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    /// Unversioned buckets: every object is its one version, `VersionId` "null", latest.
    pub(crate) async fn op_list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let mut input = req.input;
        input.delimiter = delimiter(input.delimiter);
        let enc = Encoder::new(input.encoding_type.as_ref())?;
        let max = max_keys(input.max_keys)?;
        // With a version-id-marker of "null" the marker key's only version was already listed.
        let after = input.key_marker.clone().filter(|m| !m.is_empty());
        let res = self
            .list(
                &input.bucket,
                ListQuery {
                    prefix: input.prefix.clone().unwrap_or_default(),
                    delimiter: input.delimiter.clone(),
                    after,
                    max_keys: max,
                },
            )
            .await?;
        let truncated = res.truncated;
        let next_key = truncated.then(|| res.last_name()).flatten();
        let next_version = next_key.as_ref().and_then(|k| {
            // A common prefix as the marker has no version id.
            res.entries
                .last()
                .and_then(|e| matches!(e, Entry::Object(_)).then(|| "null".to_owned()))
                .filter(|_| !k.is_empty())
        });
        let (objects, prefixes) = split(res.entries, &enc, &Shown { owner: true, restore_status_at: None });
        let versions: Vec<ObjectVersion> = objects
            .into_iter()
            .map(|o| ObjectVersion {
                key: o.key,
                e_tag: o.e_tag,
                size: o.size,
                last_modified: o.last_modified,
                is_latest: Some(true),
                version_id: Some("null".into()),
                storage_class: o.storage_class.map(|c| ObjectVersionStorageClass::from(c.as_str().to_owned())),
                checksum_algorithm: o.checksum_algorithm,
                checksum_type: o.checksum_type,
                owner: o.owner,
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(enc.enc(input.prefix.unwrap_or_default())),
            delimiter: enc.opt(input.delimiter),
            key_marker: Some(enc.enc(input.key_marker.unwrap_or_default())),
            version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
            next_key_marker: enc.opt(next_key),
            next_version_id_marker: next_version,
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            versions: (!versions.is_empty()).then_some(versions),
            common_prefixes: (!prefixes.is_empty()).then_some(prefixes),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
