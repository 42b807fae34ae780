use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A bucket and its configuration documents (stored as the XML/JSON the API layer chose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRecord {
    pub name: String,
    /// Unix time in milliseconds.
    pub created_ms: i64,
    /// Bucket default encryption, as JSON owned by the S3 layer; `None` = SSE-S3 default.
    pub encryption: Option<String>,
    /// Bucket policy document, as JSON.
    pub policy: Option<String>,
    /// `Enabled` / `Suspended`, or `None` for a bucket that never had versioning.
    pub versioning: Option<String>,
}

/// One stored blob of an object: a single PUT has one, a multipart object one per part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPart {
    pub blob: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// The part's ETag (without quotes); for single PUTs the object's ETag.
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_number: Option<u32>,
    /// Per-part checksums (algorithm name -> base64 value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// Multipart parts: the part's tag under the object's binding key (owned by the S3 layer),
    /// made when the part was uploaded and checked when the upload completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

/// Everything S3 knows about an object. The descriptive fields are stored as one JSON document so
/// the schema stays small; size/etag/time are columns because listings need them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    #[serde(skip)]
    pub bucket: String,
    #[serde(skip)]
    pub key: String,
    #[serde(skip)]
    pub size: u64,
    #[serde(skip)]
    pub etag: String,
    /// Unix time in milliseconds.
    #[serde(skip)]
    pub last_modified_ms: i64,
    /// Row version in the meta store: every write of the row takes a fresh one (set by the store,
    /// ignored on put). A metadata-only update applies only at the generation it was read at.
    #[serde(skip)]
    pub generation: i64,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub content_encoding: Option<String>,
    #[serde(default)]
    pub content_disposition: Option<String>,
    #[serde(default)]
    pub content_language: Option<String>,
    #[serde(default)]
    pub cache_control: Option<String>,
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub website_redirect_location: Option<String>,
    #[serde(default)]
    pub user_metadata: BTreeMap<String, String>,
    /// Whole-object checksums (algorithm -> base64), and the checksum type (FULL_OBJECT|COMPOSITE).
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    #[serde(default)]
    pub checksum_type: Option<String>,
    pub parts: Vec<StoredPart>,
    /// How the object is sealed: JSON owned by the S3 layer.
    #[serde(default)]
    pub sse: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The storage class the writer chose; `None` is STANDARD (AWS names no class for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// RestoreObject state of an archived (GLACIER / DEEP_ARCHIVE) object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreState>,
    /// MAC of the whole record under the server's metadata key (owned by the S3 layer): an edit of
    /// any field in `meta.db` is detected before the record is used. `None` only in a store that
    /// was never authenticated (records written before it, until the start-up migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_mac: Option<String>,
}

/// A restore of an archived object: readable from `completes_ms` until `expires_ms` (Unix ms).
/// The data itself never moves: an archived object is sealed and stored like any other, and the
/// restore only decides when S3 lets it be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreState {
    pub completes_ms: i64,
    pub expires_ms: i64,
}

impl ObjectRecord {
    pub fn blob_ids(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|p| p.blob.as_str())
    }
}

/// An in-progress multipart upload. `template` holds the object attributes fixed at create time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub template: ObjectRecord,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub upload_id: String,
    pub part_number: u32,
    pub last_modified_ms: i64,
    pub part: StoredPart,
}
