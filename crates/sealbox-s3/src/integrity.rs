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
