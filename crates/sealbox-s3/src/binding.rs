//! What ties a stored object record to its object (docs/object-format.md, "Record binding").
//!
//! Two MACs, over canonical, versioned encodings (`sealbox_store::Canonical`) of the record:
//!
//! - The **binding** (format 2): HMAC-SHA256 under a key derived from the object's data key(s),
//!   over the object's identity (bucket, key, version id — taken from the request, never from the
//!   record), size, ETag, checksums, part list (number, size, blob id, ETag, checksums, per-part
//!   tag) and encryption settings (mode, KMS key, context, bucket-key salt, SSE-C check values).
//!   Only whoever can open the data key can make it, so a record moved to another object, a part
//!   list cut short or an edited setting fails before a byte is served. The wrapped keys are not
//!   covered: they are what yields the binding key (a swapped one yields another key), and
//!   `sealbox rewrap` replaces them without touching the binding.
//! - The **row MAC**: HMAC-SHA256 under the server's metadata key (from a secret sealed by the
//!   root key) over every field of the record, tags and descriptive headers included. Checked on
//!   every read (also HEAD, which opens no data key), and the only protection of records written
//!   before bindings existed (they are given one at the first start of this version).
//!
//! Multipart parts share the upload's data key: each part gets a tag under the binding key when
//! it is uploaded (identity, upload id, number, size, blob, ETag, checksums), checked at Complete,
//! and the object's binding covers the ordered list with those tags. Complete may not have the
//! data key (SSE-C clients need not send the key), so CreateMultipartUpload keeps the binding key
//! wrapped under the server's metadata key in the upload; it is dropped when the upload completes.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use s3s::S3Result;
use sealbox_store::{Canonical, ObjectRecord, StoredPart};
use zeroize::Zeroizing;

use crate::sse::{PlainKey, SealInfo};

/// The version id of objects in unversioned buckets (S3's literal "null"). Bound already, so that
/// real version ids (a later feature) need no new format.
pub(crate) const NULL_VERSION: &str = "null";

/// The record format this version writes: 2 = bound to the data key. Records without the field
/// are format 1 (written before bindings, protected by their row MAC only).
pub(crate) const BINDING_FORMAT: u8 = 2;
pub(crate) const LEGACY_FORMAT: u8 = 1;

/// An object as the request names it. Every binding is checked against this, never against the
/// bucket and key a record claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ObjectIdentity<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: &'a str,
}

impl<'a> ObjectIdentity<'a> {
    pub(crate) fn new(bucket: &'a str, key: &'a str) -> Self {
        Self { bucket, key, version_id: NULL_VERSION }
    }

    pub(crate) fn encode(&self, c: Canonical) -> Canonical {
        c.str(self.bucket).str(self.key).str(self.version_id)
    }

    /// `bucket/key`, for logs, metrics and the audit trail.
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.bucket, self.key)
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF-SHA256 expand of `prk` to 32 bytes.
pub(crate) fn expand32(prk: &hkdf::Prk, info: &[u8]) -> S3Result<Zeroizing<[u8; 32]>> {
    let info = [info];
    let okm = prk.expand(&info, Len32).map_err(|_| crate::error::internal("hkdf", "expand failed"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(&mut out[..]).map_err(|_| crate::error::internal("hkdf", "fill failed"))?;
    Ok(out)
}

fn tag(key: &[u8], message: &[u8]) -> String {
    B64.encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), message).as_ref())
}

fn verify(key: &[u8], message: &[u8], tag: &str) -> bool {
    match B64.decode(tag) {
        Ok(t) => hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), message, &t).is_ok(),
        Err(_) => false,
    }
}

/// The HMAC key of one object's binding, derived from its data key(s): for DSSE from both
/// layers, for SSE-C from the key the customer's key seals, for bucket keys from the derived
/// per-object key.
pub(crate) struct BindingKey(Zeroizing<[u8; 32]>);

impl BindingKey {
    pub(crate) fn derive(keys: &[PlainKey]) -> S3Result<Self> {
        if keys.is_empty() {
            return Err(crate::error::internal("binding", "no data key"));
        }
        let mut ikm = Zeroizing::new(Vec::with_capacity(32 * keys.len()));
        for k in keys {
            ikm.extend_from_slice(&k[..]);
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"sealbox object binding key v2").extract(&ikm);
        Ok(BindingKey(expand32(&prk, b"hmac-sha256")?))
    }

    pub(crate) fn object_tag(&self, id: &ObjectIdentity<'_>, rec: &ObjectRecord, info: &SealInfo) -> String {
        tag(&self.0[..], &binding_message(id, rec, info))
    }

    pub(crate) fn verify_object(&self, id: &ObjectIdentity<'_>, rec: &ObjectRecord, info: &SealInfo, t: &str) -> bool {
        verify(&self.0[..], &binding_message(id, rec, info), t)
    }

    pub(crate) fn part_tag(&self, id: &ObjectIdentity<'_>, upload_id: &str, part: &StoredPart) -> String {
        tag(&self.0[..], &part_message(id, upload_id, part))
    }

    pub(crate) fn verify_part(&self, id: &ObjectIdentity<'_>, upload_id: &str, part: &StoredPart) -> bool {
        part.binding.as_deref().is_some_and(|t| verify(&self.0[..], &part_message(id, upload_id, part), t))
    }
}

/// Keys derived from the server's metadata secret (sealed by the root key): the row MAC of
/// object records and upload templates, and the wrapping of upload binding keys.
pub(crate) struct ServerKeys {
    rows: Zeroizing<[u8; 32]>,
    wrap: LessSafeKey,
}

impl ServerKeys {
    pub(crate) fn new(rows: Zeroizing<[u8; 32]>, wrap: &[u8; 32]) -> S3Result<Self> {
        let wrap = UnboundKey::new(&AES_256_GCM, wrap).map_err(|_| crate::error::internal("wrap key", "bad key"))?;
        Ok(ServerKeys { rows, wrap: LessSafeKey::new(wrap) })
    }

    pub(crate) fn object_row_mac(&self, id: &ObjectIdentity<'_>, rec: &ObjectRecord) -> String {
        tag(&self.rows[..], &row_message("sealbox object row v1", id, None, rec))
    }

    pub(crate) fn verify_object_row(&self, id: &ObjectIdentity<'_>, rec: &ObjectRecord) -> bool {
        rec.row_mac
            .as_deref()
            .is_some_and(|t| verify(&self.rows[..], &row_message("sealbox object row v1", id, None, rec), t))
    }

    pub(crate) fn upload_row_mac(&self, id: &ObjectIdentity<'_>, upload_id: &str, template: &ObjectRecord) -> String {
        tag(&self.rows[..], &row_message("sealbox upload row v1", id, Some(upload_id), template))
    }

    pub(crate) fn verify_upload_row(&self, id: &ObjectIdentity<'_>, upload_id: &str, template: &ObjectRecord) -> bool {
        template.row_mac.as_deref().is_some_and(|t| {
            verify(&self.rows[..], &row_message("sealbox upload row v1", id, Some(upload_id), template), t)
        })
    }

    /// AES-256-GCM of an upload's binding key, bound to the upload (random nonce: one wrap per
    /// upload, far below the random-nonce bound).
    pub(crate) fn wrap_binding_key(
        &self,
        id: &ObjectIdentity<'_>,
        upload_id: &str,
        k: &BindingKey,
    ) -> S3Result<String> {
        let mut nonce = [0u8; 12];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| crate::error::internal("randomness", "system RNG failed"))?;
        let mut buf = k.0.to_vec();
        self.wrap
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(wrap_aad(id, upload_id)), &mut buf)
            .map_err(|_| crate::error::internal("wrap", "seal failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(B64.encode(out))
    }

    pub(crate) fn unwrap_binding_key(
        &self,
        id: &ObjectIdentity<'_>,
        upload_id: &str,
        wrapped: &str,
    ) -> Option<BindingKey> {
        let raw = B64.decode(wrapped).ok()?;
        if raw.len() != 12 + 32 + 16 {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&raw[..12]).ok()?;
        let mut buf = Zeroizing::new(raw[12..].to_vec());
        let plain = self.wrap.open_in_place(nonce, Aad::from(wrap_aad(id, upload_id)), &mut buf).ok()?;
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(plain);
        Some(BindingKey(k))
    }
}

fn wrap_aad(id: &ObjectIdentity<'_>, upload_id: &str) -> Vec<u8> {
    id.encode(Canonical::new("sealbox upload binding key v1")).str(upload_id).into_bytes()
}

/// The SSE-C wrap AAD of format-2 records: the customer-sealed data key opens only for this object.
pub(crate) fn customer_key_aad(id: &ObjectIdentity<'_>) -> Vec<u8> {
    id.encode(Canonical::new("sealbox sse-c data key v2")).into_bytes()
}

/// The fields of a record the binding covers. Fields are destructured without `..`: a field
/// added to a record type does not compile here until someone decides whether it is bound.
fn binding_message(id: &ObjectIdentity<'_>, rec: &ObjectRecord, info: &SealInfo) -> Vec<u8> {
    let ObjectRecord {
        bucket: _,
        key: _,
        size,
        etag,
        last_modified_ms: _,
        // The store's row version for concurrent updates, set by the store after sealing.
        generation: _,
        content_type: _,
        content_encoding: _,
        content_disposition: _,
        content_language: _,
        cache_control: _,
        expires: _,
        website_redirect_location: _,
        user_metadata: _,
        checksums,
        checksum_type,
        parts,
        sse: _,
        tags: _,
        // Descriptive, like the content headers: covered by the row MAC.
        storage_class: _,
        restore: _,
        row_mac: _,
    } = rec;
    let SealInfo {
        format,
        algorithm,
        key_arn,
        context,
        context_header,
        wrapped_keys: _,
        bucket_key_salt,
        customer_key_md5,
        customer_key_hmac,
        customer_key_salt,
        binding: _,
        upload_binding_key: _,
    } = info;
    let mut c = id
        .encode(Canonical::new("sealbox object binding v2"))
        .u64(*size)
        .str(etag)
        .opt(checksum_type.as_deref())
        .map(checksums)
        .u64(u64::from(*format))
        .str(algorithm)
        .opt(key_arn.as_deref())
        // aws:s3:arn is rebuilt from the request on every read; the client's own pairs are bound.
        .map(context.iter().filter(|(k, _)| k.as_str() != "aws:s3:arn"))
        .opt(context_header.as_deref())
        .opt(bucket_key_salt.as_deref())
        .opt(customer_key_md5.as_deref())
        .opt(customer_key_hmac.as_deref())
        .opt(customer_key_salt.as_deref())
        .u64(parts.len() as u64);
    for p in parts {
        c = part_fields(c, p).opt(p.binding.as_deref());
    }
    c.into_bytes()
}

fn part_fields(c: Canonical, p: &StoredPart) -> Canonical {
    let StoredPart { blob, size, etag, part_number, checksums, binding: _ } = p;
    c.u64(part_number.map_or(0, u64::from)).u64(*size).str(blob).str(etag).map(checksums)
}

fn part_message(id: &ObjectIdentity<'_>, upload_id: &str, p: &StoredPart) -> Vec<u8> {
    part_fields(id.encode(Canonical::new("sealbox part binding v2")).str(upload_id), p).into_bytes()
}

/// Every field of a record (the row MAC covers all of it).
fn row_message(label: &str, id: &ObjectIdentity<'_>, upload_id: Option<&str>, rec: &ObjectRecord) -> Vec<u8> {
    let ObjectRecord {
        bucket: _,
        key: _,
        size,
        etag,
        last_modified_ms,
        // The store's row version for concurrent updates, set by the store after sealing.
        generation: _,
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires,
        website_redirect_location,
        user_metadata,
        checksums,
        checksum_type,
        parts,
        sse,
        tags,
        storage_class,
        restore,
        row_mac: _,
    } = rec;
    let mut c = id
        .encode(Canonical::new(label))
        .opt(upload_id)
        .u64(*size)
        .str(etag)
        .u64(*last_modified_ms as u64)
        .opt(content_type.as_deref())
        .opt(content_encoding.as_deref())
        .opt(content_disposition.as_deref())
        .opt(content_language.as_deref())
        .opt(cache_control.as_deref())
        .opt(expires.as_deref())
        .opt(website_redirect_location.as_deref())
        .map(user_metadata)
        .map(checksums)
        .opt(checksum_type.as_deref())
        .opt(sse.as_deref())
        .map(tags)
        .u64(parts.len() as u64);
    for p in parts {
        c = part_fields(c, p).opt(p.binding.as_deref());
    }
    // Fields added after v1 come last, tagged and only when set: a record without them keeps the
    // exact bytes (and row MAC) it was written with, and the encoding stays unambiguous (what
    // precedes is self-delimiting).
    if let Some(class) = storage_class {
        c = c.str("storage-class").str(class);
    }
    if let Some(r) = restore {
        c = c.str("restore").u64(r.completes_ms as u64).u64(r.expires_ms as u64);
    }
    c.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn keys(b: u8) -> Vec<PlainKey> {
        vec![Zeroizing::new([b; 32])]
    }

    fn part(n: Option<u32>, blob: &str, size: u64) -> StoredPart {
        StoredPart {
            blob: blob.into(),
            size,
            etag: format!("etag-{blob}"),
            part_number: n,
            checksums: BTreeMap::from([("CRC32".into(), "AAAAAA==".into())]),
            binding: n.map(|n| format!("tag{n}")),
        }
    }

    fn record() -> ObjectRecord {
        ObjectRecord {
            bucket: "b".into(),
            key: "k".into(),
            size: 30,
            etag: "e-3".into(),
            last_modified_ms: 1_700_000_000_000,
            generation: 0,
            content_type: Some("text/plain".into()),
            content_encoding: None,
            content_disposition: None,
            content_language: None,
            cache_control: None,
            expires: None,
            website_redirect_location: None,
            user_metadata: BTreeMap::from([("m".into(), "v".into())]),
            checksums: BTreeMap::new(),
            checksum_type: None,
            parts: vec![part(Some(1), "p1", 10), part(Some(2), "p2", 10), part(Some(3), "p3", 10)],
            sse: Some("{}".into()),
            tags: BTreeMap::new(),
            storage_class: None,
            restore: None,
            row_mac: None,
        }
    }

    fn info() -> SealInfo {
        SealInfo {
            format: BINDING_FORMAT,
            algorithm: "aws:kms".into(),
            key_arn: Some("arn:aws:kms:us-east-1:000000000000:key/k1".into()),
            context: BTreeMap::from([("aws:s3:arn".into(), "arn:aws:s3:::b/k".into()), ("app".into(), "x".into())]),
            context_header: None,
            wrapped_keys: vec!["w1".into()],
            bucket_key_salt: None,
            customer_key_md5: None,
            customer_key_hmac: None,
            customer_key_salt: None,
            binding: None,
            upload_binding_key: None,
        }
    }

    /// One change an attacker with write access to meta.db could make to a bound record.
    #[derive(Debug, Clone)]
    enum Edit {
        Bucket(String),
        Key(String),
        Version(String),
        Size(u64),
        Etag(String),
        Checksum(String),
        DropLastPart,
        DropFirstPart,
        SwapParts,
        PartSize(usize, u64),
        PartBlob(usize, String),
        PartNumber(usize, u32),
        PartTag(usize, String),
        Algorithm(String),
        KeyArn(Option<String>),
        ClientContext(String),
        BucketKeySalt(String),
        CustomerHmac(String),
        Format(u8),
        DataKey(u8),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let s = "[a-z0-9/]{0,8}";
        prop_oneof![
            s.prop_map(Edit::Bucket),
            s.prop_map(Edit::Key),
            s.prop_map(Edit::Version),
            any::<u64>().prop_map(Edit::Size),
            s.prop_map(Edit::Etag),
            s.prop_map(Edit::Checksum),
            Just(Edit::DropLastPart),
            Just(Edit::DropFirstPart),
            Just(Edit::SwapParts),
            (0..3usize, any::<u64>()).prop_map(|(i, v)| Edit::PartSize(i, v)),
            (0..3usize, s).prop_map(|(i, v)| Edit::PartBlob(i, v)),
            (0..3usize, any::<u32>()).prop_map(|(i, v)| Edit::PartNumber(i, v)),
            (0..3usize, s).prop_map(|(i, v)| Edit::PartTag(i, v)),
            prop_oneof![Just("AES256"), Just("aws:kms:dsse"), Just("SSE-C")].prop_map(|a| Edit::Algorithm(a.into())),
            proptest::option::of(s).prop_map(Edit::KeyArn),
            s.prop_map(Edit::ClientContext),
            s.prop_map(Edit::BucketKeySalt),
            s.prop_map(Edit::CustomerHmac),
            any::<u8>().prop_map(Edit::Format),
            any::<u8>().prop_map(Edit::DataKey),
        ]
    }

    /// Applies an edit; false when it happens to change nothing (e.g. the same value).
    fn apply(
        e: &Edit,
        id: &mut (String, String, String),
        rec: &mut ObjectRecord,
        info: &mut SealInfo,
        dk: &mut u8,
    ) -> bool {
        let before = (id.clone(), rec.clone(), info.clone(), *dk);
        match e.clone() {
            Edit::Bucket(v) => id.0 = v,
            Edit::Key(v) => id.1 = v,
            Edit::Version(v) => id.2 = v,
            Edit::Size(v) => rec.size = v,
            Edit::Etag(v) => rec.etag = v,
            Edit::Checksum(v) => {
                rec.checksums.insert("CRC32C".into(), v);
            }
            Edit::DropLastPart => {
                rec.parts.pop();
            }
            Edit::DropFirstPart if !rec.parts.is_empty() => {
                rec.parts.remove(0);
            }
            Edit::SwapParts if rec.parts.len() >= 2 => rec.parts.swap(0, 1),
            Edit::DropFirstPart | Edit::SwapParts => {}
            Edit::PartSize(i, v) => rec.parts.iter_mut().skip(i).take(1).for_each(|p| p.size = v),
            Edit::PartBlob(i, v) => rec.parts.iter_mut().skip(i).take(1).for_each(|p| p.blob = v.clone()),
            Edit::PartNumber(i, v) => rec.parts.iter_mut().skip(i).take(1).for_each(|p| p.part_number = Some(v)),
            Edit::PartTag(i, v) => rec.parts.iter_mut().skip(i).take(1).for_each(|p| p.binding = Some(v.clone())),
            Edit::Algorithm(v) => info.algorithm = v,
            Edit::KeyArn(v) => info.key_arn = v,
            Edit::ClientContext(v) => {
                info.context.insert("app".into(), v);
            }
            Edit::BucketKeySalt(v) => info.bucket_key_salt = Some(v),
            Edit::CustomerHmac(v) => info.customer_key_hmac = Some(v),
            Edit::Format(v) => info.format = v,
            Edit::DataKey(v) => *dk = v,
        }
        before != (id.clone(), rec.clone(), info.clone(), *dk)
    }

    proptest! {
        /// Any change to a bound field, the identity or the data key makes the binding fail.
        #[test]
        fn any_bound_change_breaks_the_binding(edits in proptest::collection::vec(edit(), 1..4)) {
            let (rec0, info0) = (record(), info());
            let t = BindingKey::derive(&keys(1)).unwrap().object_tag(&ObjectIdentity::new("b", "k"), &rec0, &info0);
            let (mut id, mut rec, mut info, mut dk) = (("b".to_owned(), "k".to_owned(), "null".to_owned()), rec0.clone(), info0.clone(), 1u8);
            let mut changed = false;
            for e in &edits {
                changed |= apply(e, &mut id, &mut rec, &mut info, &mut dk);
            }
            let same = id == ("b".into(), "k".into(), "null".into()) && rec == rec0 && info == info0 && dk == 1;
            prop_assume!(changed && !same);
            let oid = ObjectIdentity { bucket: &id.0, key: &id.1, version_id: &id.2 };
            prop_assert!(!BindingKey::derive(&keys(dk)).unwrap().verify_object(&oid, &rec, &info, &t));
        }

        /// The row MAC covers every field, the unbound ones too.
        #[test]
        fn any_change_breaks_the_row_mac(edits in proptest::collection::vec(edit(), 1..4), tag in "[a-z]{1,5}", meta in "[a-z]{0,5}") {
            let server = ServerKeys::new(Zeroizing::new([9u8; 32]), &[8u8; 32]).unwrap();
            let mut rec0 = record();
            rec0.sse = Some(serde_json::to_string(&info()).unwrap());
            let id0 = ObjectIdentity::new("b", "k");
            rec0.row_mac = Some(server.object_row_mac(&id0, &rec0));
            prop_assert!(server.verify_object_row(&id0, &rec0));
            let mut tagged = rec0.clone();
            tagged.tags.insert(tag, "v".into());
            prop_assert!(!server.verify_object_row(&id0, &tagged));
            let mut described = rec0.clone();
            described.user_metadata.insert("m".into(), meta.clone());
            prop_assert!(meta == "v" || !server.verify_object_row(&id0, &described));
            let (mut id, mut rec, mut info, mut dk) = (("b".to_owned(), "k".to_owned(), "null".to_owned()), rec0.clone(), info(), 1u8);
            let mut changed = false;
            for e in &edits {
                if !matches!(e, Edit::DataKey(_)) {
                    changed |= apply(e, &mut id, &mut rec, &mut info, &mut dk);
                }
            }
            rec.sse = Some(serde_json::to_string(&info).unwrap());
            prop_assume!(changed && (id != ("b".into(), "k".into(), "null".into()) || rec != rec0));
            let oid = ObjectIdentity { bucket: &id.0, key: &id.1, version_id: &id.2 };
            prop_assert!(!server.verify_object_row(&oid, &rec));
        }
    }

    #[test]
    fn storage_class_and_restore_state_are_under_the_row_mac_and_old_rows_still_verify() {
        let server = ServerKeys::new(Zeroizing::new([9u8; 32]), &[8u8; 32]).unwrap();
        let id = ObjectIdentity::new("b", "k");
        let plain = record();
        // A record without the fields hashes as records did before they existed.
        let mut expected = row_message("sealbox object row v1", &id, None, &plain);
        let mut archived = plain.clone();
        archived.storage_class = Some("GLACIER".into());
        archived.restore = Some(sealbox_store::RestoreState { completes_ms: 5, expires_ms: 9 });
        let longer = row_message("sealbox object row v1", &id, None, &archived);
        assert!(longer.starts_with(&expected) && longer.len() > expected.len());
        expected.clear();
        let mut rec = archived.clone();
        rec.row_mac = Some(server.object_row_mac(&id, &rec));
        assert!(server.verify_object_row(&id, &rec));
        for edit in 0..4 {
            let mut e = rec.clone();
            match edit {
                0 => e.storage_class = Some("STANDARD_IA".into()),
                1 => e.storage_class = None,
                2 => e.restore = Some(sealbox_store::RestoreState { completes_ms: 5, expires_ms: 10_000 }),
                _ => e.restore = None,
            }
            assert!(!server.verify_object_row(&id, &e), "edit {edit}");
        }
        // Restore state alone (no class) cannot pose as a class.
        let mut only_restore = plain.clone();
        only_restore.restore = Some(sealbox_store::RestoreState { completes_ms: 1, expires_ms: 2 });
        assert_ne!(
            row_message("sealbox object row v1", &id, None, &only_restore),
            row_message("sealbox object row v1", &id, None, &archived)
        );
    }

    #[test]
    fn unbound_fields_and_wrapped_keys_do_not_change_the_binding() {
        let k = BindingKey::derive(&keys(1)).unwrap();
        let id = ObjectIdentity::new("b", "k");
        let (mut rec, mut info) = (record(), info());
        let t = k.object_tag(&id, &rec, &info);
        rec.tags.insert("t".into(), "v".into());
        rec.row_mac = Some("x".into());
        rec.last_modified_ms += 1;
        info.wrapped_keys = vec!["rewrapped".into()];
        info.context.insert("aws:s3:arn".into(), "arn:aws:s3:::elsewhere".into());
        assert!(k.verify_object(&id, &rec, &info, &t));
    }

    #[test]
    fn part_tags_bind_upload_identity_and_part() {
        let k = BindingKey::derive(&keys(1)).unwrap();
        let id = ObjectIdentity::new("b", "k");
        let mut p = part(Some(2), "p2", 10);
        p.binding = Some(k.part_tag(&id, "u1", &p));
        assert!(k.verify_part(&id, "u1", &p));
        assert!(!k.verify_part(&id, "u2", &p));
        assert!(!k.verify_part(&ObjectIdentity::new("b", "other"), "u1", &p));
        assert!(!BindingKey::derive(&keys(2)).unwrap().verify_part(&id, "u1", &p));
        let mut moved = p.clone();
        moved.part_number = Some(3);
        assert!(!k.verify_part(&id, "u1", &moved));
        moved = p.clone();
        moved.size = 11;
        assert!(!k.verify_part(&id, "u1", &moved));
        moved = p;
        moved.binding = None;
        assert!(!k.verify_part(&id, "u1", &moved));
    }

    #[test]
    fn dsse_binding_needs_both_layers() {
        let a: Vec<PlainKey> = vec![Zeroizing::new([1u8; 32]), Zeroizing::new([2u8; 32])];
        let b: Vec<PlainKey> = vec![Zeroizing::new([1u8; 32]), Zeroizing::new([3u8; 32])];
        let id = ObjectIdentity::new("b", "k");
        let t = BindingKey::derive(&a).unwrap().object_tag(&id, &record(), &info());
        assert!(BindingKey::derive(&a).unwrap().verify_object(&id, &record(), &info(), &t));
        assert!(!BindingKey::derive(&b).unwrap().verify_object(&id, &record(), &info(), &t));
        assert!(!BindingKey::derive(&a[..1]).unwrap().verify_object(&id, &record(), &info(), &t));
    }

    #[test]
    fn upload_binding_key_unwraps_only_for_its_upload() {
        let server = ServerKeys::new(Zeroizing::new([9u8; 32]), &[8u8; 32]).unwrap();
        let id = ObjectIdentity::new("b", "k");
        let k = BindingKey::derive(&keys(1)).unwrap();
        let w = server.wrap_binding_key(&id, "u1", &k).unwrap();
        assert_eq!(*server.unwrap_binding_key(&id, "u1", &w).unwrap().0, *k.0);
        assert!(server.unwrap_binding_key(&id, "u2", &w).is_none());
        assert!(server.unwrap_binding_key(&ObjectIdentity::new("b", "x"), "u1", &w).is_none());
        let other = ServerKeys::new(Zeroizing::new([9u8; 32]), &[7u8; 32]).unwrap();
        assert!(other.unwrap_binding_key(&id, "u1", &w).is_none());
    }
}
