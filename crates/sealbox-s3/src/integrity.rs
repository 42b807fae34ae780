//! Authenticated metadata in the S3 layer: the server's metadata keys, and the one path every
//! stored object record takes before it is used (`open_object`, `verify_record`) or after it is
//! written (`bind_record`, `retag_row`). Formats and reasons: `binding.rs`.
//!
//! A record that fails is refused with `500 InternalError` and a message saying so (S3 has no
//! code for "your metadata was tampered with"; a 500 says "our fault, not yours"), counted in
//! `sealbox_object_integrity_failures_total` and audited as `ObjectIntegrityFailure`, like a
//! sealed blob that fails its tag.

use std::sync::Arc;

use aws_lc_rs::hkdf;
use aws_lc_rs::hmac;
use s3s::{S3Error, S3Result};
use sealbox_store::{LegacyCounts, MetaStore, ObjectRecord, RowAuthenticator, StoreError, UploadRecord};
use zeroize::Zeroizing;

use crate::binding::{expand32, BindingKey, ObjectIdentity, ServerKeys, BINDING_FORMAT, LEGACY_FORMAT};
use crate::keys::Caller;
use crate::service::SealboxS3;
use crate::sse::{OpenFailure, PlainKey, SealInfo};
use crate::sse_request::CustomerKey;

/// Keys derived from the server's metadata secret: 32 random bytes made at the first start of a
/// version with authenticated metadata and kept in `meta.db` sealed by the root key (so a PKCS#11
/// root key that never leaves its token works too).
pub struct MetadataKeys {
    objects: Zeroizing<[u8; 32]>,
    wrap: Zeroizing<[u8; 32]>,
    config: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MetadataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetadataKeys(<redacted>)")
    }
}

impl MetadataKeys {
    pub fn from_secret(secret: &[u8; 32]) -> S3Result<Self> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"sealbox metadata keys v1").extract(secret);
        Ok(MetadataKeys {
            objects: expand32(&prk, b"object rows")?,
            wrap: expand32(&prk, b"upload binding key wrap")?,
            config: expand32(&prk, b"config rows")?,
        })
    }

    pub(crate) fn server_keys(&self) -> S3Result<ServerKeys> {
        ServerKeys::new(self.objects.clone(), &self.wrap)
    }

    /// The authenticator of configuration rows to install in the meta store; `on_failure` is told
    /// about every row that fails (metrics, audit).
    pub fn row_authenticator(&self, on_failure: Arc<dyn Fn(&str) + Send + Sync>) -> Arc<dyn RowAuthenticator> {
        Arc::new(ConfigRows { key: hmac::Key::new(hmac::HMAC_SHA256, &self.config[..]), on_failure })
    }

    /// Authenticates a store from before authenticated metadata (see
    /// `MetaStore::authenticate_legacy_rows`): its object records and upload templates keep
    /// format 1 and get a row MAC over what they hold now. Needs the row authenticator installed.
    pub fn authenticate_legacy_store(&self, meta: &MetaStore, sealed_key: &[u8]) -> Result<LegacyCounts, StoreError> {
        let server = self.server_keys().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        meta.authenticate_legacy_rows(
            sealed_key,
            &|rec: &ObjectRecord| server.object_row_mac(&ObjectIdentity::new(&rec.bucket, &rec.key), rec),
            &|up: &UploadRecord| {
                server.upload_row_mac(&ObjectIdentity::new(&up.bucket, &up.key), &up.upload_id, &up.template)
            },
        )
    }
}

struct ConfigRows {
    key: hmac::Key,
    on_failure: Arc<dyn Fn(&str) + Send + Sync>,
}

impl RowAuthenticator for ConfigRows {
    fn mac(&self, row: &[u8]) -> Vec<u8> {
        hmac::sign(&self.key, row).as_ref().to_vec()
    }
    fn verify(&self, row: &[u8], mac: &[u8]) -> bool {
        hmac::verify(&self.key, row, mac).is_ok()
    }
    fn report(&self, what: &str) {
        tracing::error!(row = what, "meta.db row failed its integrity check; refused");
        (self.on_failure)(what);
    }
}

impl SealboxS3 {
    /// Reports a record that failed its integrity check and returns the error that refuses it.
    pub(crate) fn integrity_failure(&self, id: &ObjectIdentity<'_>, reason: &str) -> S3Error {
        let label = id.label();
        tracing::error!(object = %label, reason, "object record failed its integrity check; refused");
        if let Some(r) = &self.config.on_integrity_failure {
            r(&label, &format!("stored record failed its integrity check: {reason}"));
        }
        crate::error::record_integrity_error()
    }

    /// Checks a stored record against the object the request names: its row MAC, and that it
    /// holds sealed data (a record without a data key is refused, never served raw).
    pub(crate) fn verify_record(&self, id: &ObjectIdentity<'_>, rec: &ObjectRecord) -> S3Result<SealInfo> {
        if !self.enc.server.verify_object_row(id, rec) {
            return Err(self.integrity_failure(id, "its row MAC does not match (edited, or another object's record)"));
        }
        let info = match SealInfo::from_json(rec.sse.as_deref()) {
            Ok(Some(info)) => info,
            Ok(None) => return Err(self.integrity_failure(id, "it names no sealed data key (sse is null)")),
            Err(_) => return Err(self.integrity_failure(id, "its encryption record does not parse")),
        };
        if info.format != LEGACY_FORMAT && info.format != BINDING_FORMAT {
            return Err(self.integrity_failure(id, "its record format is unknown"));
        }
        if info.wrapped_keys.is_empty() {
            return Err(self.integrity_failure(id, "it names no sealed data key"));
        }
        Ok(info)
    }

    /// Verifies a stored record and opens its data key(s) for the object the request names:
    /// row MAC, contexts rebuilt from `id`, then (format 2) the binding under the data key.
    pub(crate) async fn open_object(
        &self,
        id: &ObjectIdentity<'_>,
        rec: &ObjectRecord,
        customer: Option<&CustomerKey>,
        caller: &Caller,
    ) -> S3Result<(SealInfo, Vec<PlainKey>)> {
        let info = self.verify_record(id, rec)?;
        let keys = self.open_keys(id, &info, customer, caller).await?;
        if info.format == BINDING_FORMAT {
            let bound = match info.binding.as_deref() {
                Some(t) => BindingKey::derive(&keys)?.verify_object(id, rec, &info, t),
                None => false,
            };
            if !bound {
                return Err(self.integrity_failure(id, "its binding to the data key does not match"));
            }
        }
        Ok((info, keys))
    }

    /// `Encryption::open` with integrity failures reported.
    pub(crate) async fn open_keys(
        &self,
        id: &ObjectIdentity<'_>,
        info: &SealInfo,
        customer: Option<&CustomerKey>,
        caller: &Caller,
    ) -> S3Result<Vec<PlainKey>> {
        match self.enc.open(info, id, customer, caller).await {
            Ok(k) => Ok(k),
            Err(OpenFailure::Integrity(reason)) => Err(self.integrity_failure(id, reason)),
            Err(OpenFailure::Refused(e)) => Err(e),
        }
    }

    /// Binds a new record to its data key and tags its row, just before it is committed. Sets
    /// the modification time first: the row MAC covers it.
    pub(crate) fn bind_record(&self, rec: &mut ObjectRecord, keys: &[PlainKey], seal: &mut SealInfo) -> S3Result<()> {
        self.bind_record_with(rec, &BindingKey::derive(keys)?, seal)
    }

    pub(crate) fn bind_record_with(
        &self,
        rec: &mut ObjectRecord,
        bk: &BindingKey,
        seal: &mut SealInfo,
    ) -> S3Result<()> {
        rec.last_modified_ms = crate::service::now_ms();
        seal.format = BINDING_FORMAT;
        seal.upload_binding_key = None;
        let (bucket, key) = (rec.bucket.clone(), rec.key.clone());
        let id = ObjectIdentity::new(&bucket, &key);
        seal.binding = Some(bk.object_tag(&id, rec, seal));
        rec.sse = Some(seal.to_json());
        rec.row_mac = Some(self.enc.server.object_row_mac(&id, rec));
        Ok(())
    }

    /// Re-tags a record's row after a change that needs no data key (tags, re-wrapped keys).
    /// Callers verify the record first, so an edit made behind sealbox's back is never re-tagged.
    pub(crate) fn retag_row(&self, rec: &mut ObjectRecord) {
        let (bucket, key) = (rec.bucket.clone(), rec.key.clone());
        rec.row_mac = Some(self.enc.server.object_row_mac(&ObjectIdentity::new(&bucket, &key), rec));
    }

    /// For metadata-only updates made inside one store transaction (tagging): checks the record
    /// as stored, then re-makes the row MAC of its new version.
    pub(crate) fn check_and_retag(&self, current: &ObjectRecord, next: &mut ObjectRecord) -> Result<(), StoreError> {
        let id = ObjectIdentity::new(&current.bucket, &current.key);
        if self.verify_record(&id, current).is_err() {
            return Err(StoreError::Tampered(format!("record of object {}", id.label())));
        }
        self.retag_row(next);
        Ok(())
    }

    /// Checks an upload's template (the part of an upload the object record is made from).
    pub(crate) fn verify_upload(&self, up: &UploadRecord) -> S3Result<SealInfo> {
        let id = ObjectIdentity::new(&up.bucket, &up.key);
        if !self.enc.server.verify_upload_row(&id, &up.upload_id, &up.template) {
            return Err(self.integrity_failure(&id, "its multipart upload's row MAC does not match"));
        }
        match SealInfo::from_json(up.template.sse.as_deref()) {
            Ok(Some(info)) if !info.wrapped_keys.is_empty() => Ok(info),
            _ => Err(self.integrity_failure(&id, "its multipart upload names no sealed data key")),
        }
    }

    /// Finishes a new upload's template: keeps the binding key wrapped for Complete and tags it.
    pub(crate) fn seal_upload_template(
        &self,
        up: &mut UploadRecord,
        keys: &[PlainKey],
        mut seal: SealInfo,
    ) -> S3Result<()> {
        let id = ObjectIdentity::new(&up.bucket, &up.key);
        seal.upload_binding_key =
            Some(self.enc.server.wrap_binding_key(&id, &up.upload_id, &BindingKey::derive(keys)?)?);
        up.template.sse = Some(seal.to_json());
        up.template.row_mac = Some(self.enc.server.upload_row_mac(&id, &up.upload_id, &up.template));
        Ok(())
    }

    /// The binding key of an upload being completed (`None` for uploads begun before bindings).
    pub(crate) fn upload_binding_key(&self, up: &UploadRecord, seal: &SealInfo) -> S3Result<Option<BindingKey>> {
        let id = ObjectIdentity::new(&up.bucket, &up.key);
        match (seal.format, seal.upload_binding_key.as_deref()) {
            (LEGACY_FORMAT, None) => Ok(None),
            (BINDING_FORMAT, Some(w)) => match self.enc.server.unwrap_binding_key(&id, &up.upload_id, w) {
                Some(k) => Ok(Some(k)),
                None => Err(self.integrity_failure(&id, "its multipart upload's binding key does not open")),
            },
            _ => Err(self.integrity_failure(&id, "its multipart upload has no binding key")),
        }
    }
}

/// The binding on its own: an attacker who also holds the server's metadata key (and so can
/// re-make any row MAC) still cannot move, splice or edit a record, because the contexts, the
/// SSE-C AAD and the binding tie it to its data key. Runs against the real KMS.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    use sealbox_store::{BlobStore, StoredPart};

    use super::*;
    use crate::keys::{GeneratedKey, KeyError, KeyService};
    use crate::service::S3Config;
    use crate::sse::Encryption;
    use crate::sse_request::SseMode;

    struct LocalKms(sealbox_kms::Kms);

    fn ke(e: sealbox_kms::KmsError) -> KeyError {
        KeyError { aws_type: e.aws_type().to_owned(), message: e.to_string(), access_denied: false }
    }

    fn generated(g: sealbox_kms::GeneratedDataKey) -> GeneratedKey {
        let mut plaintext = Zeroizing::new([0u8; 32]);
        plaintext.copy_from_slice(&g.plaintext);
        GeneratedKey { plaintext, ciphertext_blob: g.ciphertext_blob, key_arn: g.key_arn }
    }

    impl KeyService for LocalKms {
        fn generate_data_key(
            &self,
            key: Option<&str>,
            ctx: &BTreeMap<String, String>,
            _: &Caller,
        ) -> Result<GeneratedKey, KeyError> {
            self.0.generate_data_key(key, ctx).map(generated).map_err(ke)
        }
        fn decrypt_data_key(
            &self,
            blob: &[u8],
            ctx: &BTreeMap<String, String>,
            _: &Caller,
        ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
            self.0.decrypt_data_key(blob, ctx).map(|d| d.plaintext).map_err(ke)
        }
        fn generate_sse_s3_key(&self, ctx: &BTreeMap<String, String>) -> Result<GeneratedKey, KeyError> {
            self.0.generate_sse_s3_key_for(ctx).map(generated).map_err(ke)
        }
        fn decrypt_sse_s3_key(
            &self,
            blob: &[u8],
            ctx: &BTreeMap<String, String>,
        ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
            self.0.decrypt_sse_s3_key_for(blob, ctx).map(|d| d.plaintext).map_err(ke)
        }
        fn check_key_usable(&self, arn: &str) -> Result<(), KeyError> {
            let rec = self.0.resolve(arn, true).map_err(ke)?;
            self.0.require_usable(&rec).map_err(ke)
        }
        fn rewrap(&self, blob: &[u8], ctx: &BTreeMap<String, String>) -> Result<Option<Vec<u8>>, KeyError> {
            self.0.rewrap_blob(blob, ctx).map_err(ke)
        }
        fn resolve_key_arn(&self, key: &str) -> Result<String, KeyError> {
            Ok(self.0.key_arn(&self.0.resolve(key, true).map_err(ke)?.key_id))
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        s3: SealboxS3,
        failures: Arc<AtomicU64>,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let kms = sealbox_kms::Kms::open(
            &dir.path().join("kms.db"),
            sealbox_kms::RootKey::from_bytes(&[1u8; 32]).unwrap(),
            Arc::new(sealbox_kms::FakeClock::at(1_800_000_000)),
            sealbox_kms::KmsConfig { account_id: "000000000000".into(), region: "us-east-1".into() },
        )
        .unwrap();
        let metadata = MetadataKeys::from_secret(&[2u8; 32]).unwrap();
        let enc = Encryption::new(Arc::new(LocalKms(kms)), [3u8; 32], &metadata, std::time::Duration::from_secs(600))
            .unwrap();
        let failures = Arc::new(AtomicU64::new(0));
        let counter = failures.clone();
        let config = S3Config {
            on_integrity_failure: Some(Arc::new(move |_: &str, _: &str| {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
            ..Default::default()
        };
        let meta = Arc::new(MetaStore::open(&dir.path().join("meta.db")).unwrap());
        let blobs = BlobStore::open(dir.path(), meta.clone()).unwrap();
        Fixture { s3: SealboxS3::new(meta, blobs, config, Arc::new(enc)), _dir: dir, failures }
    }

    fn customer() -> CustomerKey {
        CustomerKey { key: Zeroizing::new([4u8; 32]), key_md5: "md5".into() }
    }

    fn modes() -> Vec<(&'static str, SseMode)> {
        let kms = |bucket_key| SseMode::Kms { key: None, context: BTreeMap::new(), bucket_key };
        vec![
            ("sse-s3", SseMode::S3),
            ("sse-kms", kms(false)),
            ("bucket-key", kms(true)),
            ("dsse", SseMode::Dsse { key: None, context: BTreeMap::new() }),
            ("sse-c", SseMode::Customer(customer())),
        ]
    }

    /// A bound record as PutObject (or Complete, with `parts` > 1) writes it.
    async fn write(f: &Fixture, key: &str, mode: SseMode, parts: u32) -> ObjectRecord {
        let (keys, mut seal) = f.s3.enc.seal_new("b", key, mode, None, &Caller::default()).await.unwrap();
        let mut rec = ObjectRecord {
            bucket: "b".into(),
            key: key.into(),
            size: 10 * u64::from(parts),
            etag: format!("etag of {key}"),
            last_modified_ms: 0,
            generation: 0,
            content_type: None,
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires: None,
            website_redirect_location: None,
            user_metadata: BTreeMap::new(),
            checksums: BTreeMap::new(),
            checksum_type: None,
            parts: (1..=parts)
                .map(|n| StoredPart {
                    blob: format!("{key}-{n}"),
                    size: 10,
                    etag: String::new(),
                    part_number: (parts > 1).then_some(n),
                    checksums: BTreeMap::new(),
                    binding: None,
                })
                .collect(),
            sse: None,
            tags: BTreeMap::new(),
            storage_class: None,
            restore: None,
            row_mac: None,
        };
        f.s3.bind_record(&mut rec, &keys, &mut seal).unwrap();
        rec
    }

    async fn open(f: &Fixture, key: &str, rec: &ObjectRecord, sse_c: bool) -> S3Result<Vec<PlainKey>> {
        let ck = sse_c.then(customer);
        f.s3.open_object(&ObjectIdentity::new("b", key), rec, ck.as_ref(), &Caller::default()).await.map(|(_, k)| k)
    }

    /// `rec` made to look like `key`'s record by someone holding the metadata key.
    fn forge(f: &Fixture, mut rec: ObjectRecord, key: &str) -> ObjectRecord {
        rec.key = key.into();
        f.s3.retag_row(&mut rec);
        rec
    }

    /// Refused as an integrity failure, and reported (counted, audited) as one.
    fn refused_for_integrity(f: &Fixture, result: S3Result<Vec<PlainKey>>, what: &str) {
        match result {
            Err(e) => assert_eq!(e.code().as_str(), "InternalError", "{what}: {e:?}"),
            Ok(_) => panic!("{what}: a forged record opened"),
        }
        assert!(f.failures.swap(0, Ordering::Relaxed) >= 1, "{what}: not reported");
    }

    #[tokio::test]
    async fn moved_records_and_wrapped_keys_fail_even_with_the_row_key() {
        let f = fixture();
        for (name, _) in modes() {
            let sse_c = name == "sse-c";
            let mode = || modes().into_iter().find(|(n, _)| *n == name).unwrap().1;
            let a = write(&f, &format!("a-{name}"), mode(), 1).await;
            let b = write(&f, &format!("b-{name}"), mode(), 1).await;
            assert!(open(&f, &a.key, &a, sse_c).await.is_ok(), "{name}: own record");
            let a_key = a.key.clone();
            // B's whole record under A's name.
            refused_for_integrity(&f, open(&f, &a_key, &forge(&f, b.clone(), &a_key), sse_c).await, name);
            // Only B's wrapped data key(s) in A's record.
            let mut spliced = a.clone();
            let mut info = SealInfo::from_json(spliced.sse.as_deref()).unwrap().unwrap();
            info.wrapped_keys = SealInfo::from_json(b.sse.as_deref()).unwrap().unwrap().wrapped_keys;
            spliced.sse = Some(info.to_json());
            let spliced = forge(&f, spliced, &a_key);
            if name == "bucket-key" {
                // One bucket key serves the bucket: the blobs are equal, so is the record.
                assert!(open(&f, &a_key, &spliced, sse_c).await.is_ok());
            } else {
                refused_for_integrity(&f, open(&f, &a_key, &spliced, sse_c).await, name);
            }
            // A record with no sealed data, however well tagged.
            let mut null = a.clone();
            null.sse = None;
            refused_for_integrity(&f, open(&f, &a_key, &forge(&f, null, &a_key), sse_c).await, name);
        }
    }

    #[tokio::test]
    async fn spliced_part_lists_and_edited_settings_fail_the_binding() {
        let f = fixture();
        for (name, mode) in modes() {
            let sse_c = name == "sse-c";
            let rec = write(&f, name, mode, 3).await;
            assert!(open(&f, name, &rec, sse_c).await.is_ok());
            let mut cut = rec.clone();
            let last = cut.parts.pop().unwrap();
            cut.size -= last.size;
            refused_for_integrity(&f, open(&f, name, &forge(&f, cut, name), sse_c).await, name);
            let mut swapped = rec.clone();
            swapped.parts.swap(0, 1);
            refused_for_integrity(&f, open(&f, name, &forge(&f, swapped, name), sse_c).await, name);
            let mut resized = rec.clone();
            resized.size += 1;
            resized.parts[2].size += 1;
            refused_for_integrity(&f, open(&f, name, &forge(&f, resized, name), sse_c).await, name);
            let mut renamed = rec.clone();
            let mut info = SealInfo::from_json(renamed.sse.as_deref()).unwrap().unwrap();
            info.key_arn = Some("arn:aws:kms:us-east-1:000000000000:key/other".into());
            renamed.sse = Some(info.to_json());
            // Refused (a cached bucket key's state check may name the missing key first).
            assert!(open(&f, name, &forge(&f, renamed, name), sse_c).await.is_err(), "{name}: key edited");
            f.failures.swap(0, Ordering::Relaxed);
            // Unbound fields (tags) change freely with a re-made row MAC: that is what tagging does.
            let mut tagged = rec.clone();
            tagged.tags.insert("k".into(), "v".into());
            assert!(open(&f, name, &forge(&f, tagged, name), sse_c).await.is_ok(), "{name}: tags");
        }
    }
}
