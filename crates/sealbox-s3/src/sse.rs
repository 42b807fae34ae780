//! Server-side encryption of objects: which data key(s) seal an object, how they are protected,
//! and the description (`SealInfo`) stored with the object so it can be opened again.
//!
//! - SSE-S3: one data key from the internal service key, context
//!   `{"aws:s3:arn": "arn:aws:s3:::bucket/key"}` (format 2; format-1 records used none).
//! - SSE-KMS: one data key from GenerateDataKey under the customer's key, context
//!   `{"aws:s3:arn": "arn:aws:s3:::bucket/key"}` plus the client's pairs.
//! - SSE-KMS with a bucket key: one bucket-level key per (bucket, KMS key, context) from KMS,
//!   cached for a bounded time; each object's data key is HKDF(bucket key, random salt), so
//!   thousands of PUTs make one KMS call.
//! - DSSE-KMS: two independent data keys from two GenerateDataKey calls: two layers.
//! - SSE-C: a random data key sealed (AES-256-GCM) under the customer's key, with the object's
//!   identity as AAD (format 2); the server keeps only that sealed key and a salted HMAC to
//!   recognise the customer key, never the key.
//!
//! Reads rebuild every context and AAD from the request's bucket and key ([`kms_context`]), never
//! from the record, so a record or wrapped key moved to another object does not open; the record's
//! binding (`binding.rs`) then covers the rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{constant_time, hkdf, hmac};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use s3s::{s3_error, S3Error, S3Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::binding::{customer_key_aad, ObjectIdentity, ServerKeys, BINDING_FORMAT, LEGACY_FORMAT};
use crate::keys::{Caller, KeyError, KeyService};
use crate::sse_request::{CustomerKey, SseMode, AES256, AWS_KMS, AWS_KMS_DSSE};

pub(crate) const SSE_C: &str = "SSE-C";

/// A plaintext data key, only ever in memory.
pub(crate) type PlainKey = Zeroizing<[u8; 32]>;

/// How an object (or an in-progress upload) is sealed. Stored as JSON in the object record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealInfo {
    /// 2: contexts/AAD bind the object's identity and `binding` ties the record to the data key;
    /// 1 (absent): written before that, protected by the record's row MAC only.
    #[serde(default = "legacy_format")]
    pub format: u8,
    pub algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
    /// The full encryption context sent to KMS (bound to the wrapped key).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
    /// The client's `x-amz-server-side-encryption-context`, echoed on writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_header: Option<String>,
    /// base64 blobs: KMS/service-wrapped data keys (two for DSSE), the bucket key's blob, or for
    /// SSE-C the data key sealed under the customer key.
    pub wrapped_keys: Vec<String>,
    /// With a bucket key: the per-object salt the data key is derived with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_hmac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_key_salt: Option<String>,
    /// The record's binding (base64 HMAC under a key derived from the data key, `binding.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// In-progress multipart uploads only: the binding key, wrapped under the server's metadata
    /// key, so Complete can bind the part list without the data key. Dropped at Complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_binding_key: Option<String>,
}

fn legacy_format() -> u8 {
    LEGACY_FORMAT
}

impl SealInfo {
    pub(crate) fn from_json(s: Option<&str>) -> S3Result<Option<SealInfo>> {
        match s {
            None => Ok(None),
            Some(j) => {
                serde_json::from_str(j).map(Some).map_err(|e| crate::error::internal("corrupt encryption record", e))
            }
        }
    }
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    pub(crate) fn is_customer(&self) -> bool {
        self.algorithm == SSE_C
    }
    pub(crate) fn bucket_key_enabled(&self) -> bool {
        self.bucket_key_salt.is_some()
    }
    /// ETags of KMS/DSSE/SSE-C objects are not the MD5 of the plaintext (it would be an oracle).
    pub(crate) fn etag_is_md5(&self) -> bool {
        self.algorithm == AES256
    }
}

/// The response headers every object operation echoes (contract C.3).
#[derive(Debug, Default, Clone)]
pub(crate) struct SseEcho {
    pub algorithm: Option<String>,
    pub key_arn: Option<String>,
    pub bucket_key: Option<bool>,
    pub context: Option<String>,
    pub customer_algorithm: Option<String>,
    pub customer_key_md5: Option<String>,
}

impl SseEcho {
    pub(crate) fn of(info: &SealInfo) -> Self {
        if info.is_customer() {
            return SseEcho {
                customer_algorithm: Some(AES256.into()),
                customer_key_md5: info.customer_key_md5.clone(),
                ..Default::default()
            };
        }
        SseEcho {
            algorithm: Some(info.algorithm.clone()),
            key_arn: info.key_arn.clone(),
            bucket_key: info.bucket_key_enabled().then_some(true),
            context: info.context_header.clone(),
            customer_algorithm: None,
            customer_key_md5: None,
        }
    }
    pub(crate) fn sse(&self) -> Option<s3s::dto::ServerSideEncryption> {
        self.algorithm.clone().map(s3s::dto::ServerSideEncryption::from)
    }
}

fn random<const N: usize>() -> S3Result<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).map_err(|_| crate::error::internal("randomness", "system RNG failed"))?;
    Ok(b)
}

fn to_plain(v: &[u8]) -> S3Result<PlainKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    if v.len() != 32 {
        return Err(crate::error::internal("data key", "KMS returned a data key of the wrong length"));
    }
    k.copy_from_slice(v);
    Ok(k)
}

struct HkdfLen;
impl hkdf::KeyType for HkdfLen {
    fn len(&self) -> usize {
        32
    }
}

/// Per-object data key from a bucket key (contract C.7): unique for every object by its salt.
fn derive_object_key(bucket_key: &[u8], salt: &[u8]) -> S3Result<PlainKey> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(bucket_key);
    let okm = prk
        .expand(&[b"sealbox s3 bucket-key object key v1"], HkdfLen)
        .map_err(|_| crate::error::internal("hkdf", "expand failed"))?;
    let mut k = Zeroizing::new([0u8; 32]);
    okm.fill(&mut k[..]).map_err(|_| crate::error::internal("hkdf", "fill failed"))?;
    Ok(k)
}

/// The fixed AAD of format-1 SSE-C records (format 2 binds the object: `customer_key_aad`).
const SSEC_AAD_V1: &[u8] = b"sealbox sse-c data key v1";

fn seal_under_customer_key(customer: &CustomerKey, dek: &[u8; 32], aad: &[u8]) -> S3Result<String> {
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &customer.key[..]).map_err(|_| crate::error::internal("sse-c", "bad key"))?,
    );
    // A random 96-bit nonce per wrap: each customer key wraps few keys (one per object version).
    let nonce_bytes: [u8; 12] = random()?;
    let mut buf = dek.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::from(aad), &mut buf)
        .map_err(|_| crate::error::internal("sse-c", "seal failed"))?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    Ok(B64.encode(out))
}

fn open_under_customer_key(customer: &CustomerKey, wrapped: &str, aad: &[u8]) -> S3Result<PlainKey> {
    let denied = || s3_error!(AccessDenied, "Access Denied");
    let raw = B64.decode(wrapped).map_err(|_| denied())?;
    if raw.len() != 12 + 32 + 16 {
        return Err(denied());
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &customer.key[..]).map_err(|_| denied())?);
    let nonce = Nonce::try_assume_unique_for_key(&raw[..12]).map_err(|_| denied())?;
    let mut buf = Zeroizing::new(raw[12..].to_vec());
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).map_err(|_| denied())?;
    to_plain(plain)
}

fn customer_key_hmac(secret: &[u8; 32], salt: &[u8], customer: &CustomerKey) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(salt);
    ctx.update(&customer.key[..]);
    hex::encode(ctx.sign().as_ref())
}

struct CachedBucketKey {
    plaintext: PlainKey,
    blob: String,
    key_arn: String,
    made: Instant,
}

/// Bucket-level keys, reused for a bounded time (contract C.7), and recently opened bucket keys so
/// GETs of many objects under one bucket key do not each call KMS.
pub(crate) struct BucketKeys {
    ttl: Duration,
    /// Uses of a cached bucket key (no KMS call) and fetches from KMS, for metrics.
    pub(crate) hits: std::sync::atomic::AtomicU64,
    pub(crate) misses: std::sync::atomic::AtomicU64,
    by_bucket: Mutex<HashMap<String, Arc<CachedBucketKey>>>,
    opened: Mutex<HashMap<String, (PlainKey, Instant)>>,
}

impl BucketKeys {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            hits: Default::default(),
            misses: Default::default(),
            by_bucket: Mutex::new(HashMap::new()),
            opened: Mutex::new(HashMap::new()),
        }
    }
}

/// Everything needed to seal or open objects: the key service, the bucket-key cache, and the
/// server secret that keys SSE-C recognition HMACs.
pub struct Encryption {
    pub(crate) keys: Arc<dyn KeyService>,
    pub(crate) bucket_keys: BucketKeys,
    pub(crate) ssec_secret: Zeroizing<[u8; 32]>,
    /// Row MACs of object records and the wrapping of upload binding keys.
    pub(crate) server: ServerKeys,
}

impl Encryption {
    /// (cache hits, KMS fetches) of bucket keys since start.
    pub fn bucket_key_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.bucket_keys.hits.load(Relaxed), self.bucket_keys.misses.load(Relaxed))
    }

    pub fn new(
        keys: Arc<dyn KeyService>,
        ssec_secret: [u8; 32],
        metadata: &crate::integrity::MetadataKeys,
        bucket_key_ttl: Duration,
    ) -> S3Result<Self> {
        Ok(Self {
            keys,
            bucket_keys: BucketKeys::new(bucket_key_ttl),
            ssec_secret: Zeroizing::new(ssec_secret),
            server: metadata.server_keys()?,
        })
    }
}

/// Runs a blocking key-service call off the async runtime.
async fn key_call<T: Send + 'static>(f: impl FnOnce() -> Result<T, KeyError> + Send + 'static) -> S3Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(S3Error::from),
        Err(e) => Err(crate::error::internal("key service task", e)),
    }
}

pub(crate) fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// The encryption context a stored object's data key is opened with, rebuilt from the request's
/// identity: `aws:s3:arn` is the object's (the bucket's, for bucket keys) whatever the record
/// says; the client's own pairs come from the record (the wrapped key's AAD covers them).
pub(crate) fn kms_context(info: &SealInfo, id: &ObjectIdentity<'_>) -> BTreeMap<String, String> {
    if info.algorithm == AES256 {
        if info.format < BINDING_FORMAT {
            return BTreeMap::new();
        }
        return BTreeMap::from([("aws:s3:arn".to_owned(), object_arn(id.bucket, id.key))]);
    }
    let mut ctx = info.context.clone();
    let arn =
        if info.bucket_key_enabled() { format!("arn:aws:s3:::{}", id.bucket) } else { object_arn(id.bucket, id.key) };
    ctx.insert("aws:s3:arn".into(), arn);
    ctx
}

/// Why a stored object's data key did not open.
pub(crate) enum OpenFailure {
    /// The record does not fit its object (moved, spliced or edited): an integrity failure.
    Integrity(&'static str),
    /// An ordinary refusal: wrong or missing SSE-C key, disabled KMS key, access denied.
    Refused(S3Error),
}

impl From<S3Error> for OpenFailure {
    fn from(e: S3Error) -> Self {
        OpenFailure::Refused(e)
    }
}

/// A key-service call on a stored wrapped key: InvalidCiphertext means the blob does not open
/// under this object's context, i.e. it belongs to another object or was edited.
async fn stored_key_call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KeyError> + Send + 'static,
) -> Result<T, OpenFailure> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.aws_type == "InvalidCiphertextException" => {
            Err(OpenFailure::Integrity("its wrapped data key does not open for this object"))
        }
        Ok(Err(e)) => Err(OpenFailure::Refused(e.into())),
        Err(e) => Err(OpenFailure::Refused(crate::error::internal("key service task", e))),
    }
}

impl Encryption {
    /// Makes the data key(s) for a new object and the record that will open them again.
    pub(crate) async fn seal_new(
        &self,
        bucket: &str,
        key: &str,
        mode: SseMode,
        context_header: Option<String>,
        caller: &Caller,
    ) -> S3Result<(Vec<PlainKey>, SealInfo)> {
        let id = ObjectIdentity::new(bucket, key);
        let mut info = SealInfo {
            format: BINDING_FORMAT,
            algorithm: String::new(),
            key_arn: None,
            context: BTreeMap::new(),
            context_header: None,
            wrapped_keys: Vec::new(),
            bucket_key_salt: None,
            customer_key_md5: None,
            customer_key_hmac: None,
            customer_key_salt: None,
            binding: None,
            upload_binding_key: None,
        };
        match mode {
            SseMode::S3 => {
                let ks = self.keys.clone();
                info.algorithm = AES256.into();
                let ctx = kms_context(&info, &id);
                let g = key_call(move || ks.generate_sse_s3_key(&ctx)).await?;
                info.wrapped_keys.push(B64.encode(&g.ciphertext_blob));
                Ok((vec![g.plaintext], info))
            }
            SseMode::Kms { key: key_ref, mut context, bucket_key: false } => {
                context.insert("aws:s3:arn".into(), object_arn(bucket, key));
                let g = self.generate(key_ref.clone(), context.clone(), caller).await?;
                info.algorithm = AWS_KMS.into();
                info.key_arn = Some(g.key_arn.clone());
                info.context = context;
                info.context_header = context_header;
                info.wrapped_keys.push(B64.encode(&g.ciphertext_blob));
                Ok((vec![g.plaintext], info))
            }
            SseMode::Kms { key: key_ref, context, bucket_key: true } => {
                let bk = self.bucket_key(bucket, key_ref, context.clone(), caller).await?;
                let salt: [u8; 32] = random()?;
                let dek = derive_object_key(&bk.plaintext[..], &salt)?;
                info.algorithm = AWS_KMS.into();
                info.key_arn = Some(bk.key_arn.clone());
                let mut ctx = context;
                ctx.insert("aws:s3:arn".into(), format!("arn:aws:s3:::{bucket}"));
                info.context = ctx;
                info.context_header = context_header;
                info.wrapped_keys.push(bk.blob.clone());
                info.bucket_key_salt = Some(B64.encode(salt));
                Ok((vec![dek], info))
            }
            SseMode::Dsse { key: key_ref, mut context } => {
                context.insert("aws:s3:arn".into(), object_arn(bucket, key));
                let first = self.generate(key_ref.clone(), context.clone(), caller).await?;
                let second = self.generate(Some(first.key_arn.clone()), context.clone(), caller).await?;
                info.algorithm = AWS_KMS_DSSE.into();
                info.key_arn = Some(first.key_arn.clone());
                info.context = context;
                info.context_header = context_header;
                info.wrapped_keys.push(B64.encode(&first.ciphertext_blob));
                info.wrapped_keys.push(B64.encode(&second.ciphertext_blob));
                Ok((vec![first.plaintext, second.plaintext], info))
            }
            SseMode::Customer(ck) => {
                let dek: PlainKey = Zeroizing::new(random()?);
                let salt: [u8; 16] = random()?;
                info.algorithm = SSE_C.into();
                info.wrapped_keys.push(seal_under_customer_key(&ck, &dek, &customer_key_aad(&id))?);
                info.customer_key_md5 = Some(ck.key_md5.clone());
                info.customer_key_salt = Some(B64.encode(salt));
                info.customer_key_hmac = Some(customer_key_hmac(&self.ssec_secret, &salt, &ck));
                Ok((vec![dek], info))
            }
        }
    }

    async fn generate(
        &self,
        key_ref: Option<String>,
        context: BTreeMap<String, String>,
        caller: &Caller,
    ) -> S3Result<crate::keys::GeneratedKey> {
        let ks = self.keys.clone();
        let caller = caller.clone();
        key_call(move || ks.generate_data_key(key_ref.as_deref(), &context, &caller)).await
    }

    async fn bucket_key(
        &self,
        bucket: &str,
        key_ref: Option<String>,
        context: BTreeMap<String, String>,
        caller: &Caller,
    ) -> S3Result<Arc<CachedBucketKey>> {
        let cache_key = format!(
            "{bucket}\u{0}{}\u{0}{}\u{0}{}",
            key_ref.as_deref().unwrap_or(""),
            serde_json::to_string(&context).unwrap_or_default(),
            caller.access_key_id
        );
        let cached = {
            let map = self.bucket_keys.by_bucket.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&cache_key).filter(|hit| hit.made.elapsed() < self.bucket_keys.ttl).cloned()
        };
        if let Some(hit) = cached {
            self.bucket_keys.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // The cache saves the KMS call, never the key-state check: a disabled key stops new
            // writes at once.
            let ks = self.keys.clone();
            let arn = hit.key_arn.clone();
            key_call(move || ks.check_key_usable(&arn)).await?;
            return Ok(hit);
        }
        self.bucket_keys.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut ctx = context;
        ctx.insert("aws:s3:arn".into(), format!("arn:aws:s3:::{bucket}"));
        let g = self.generate(key_ref, ctx, caller).await?;
        let fresh = Arc::new(CachedBucketKey {
            plaintext: g.plaintext,
            blob: B64.encode(&g.ciphertext_blob),
            key_arn: g.key_arn,
            made: Instant::now(),
        });
        self.bucket_keys.by_bucket.lock().unwrap_or_else(|e| e.into_inner()).insert(cache_key, fresh.clone());
        Ok(fresh)
    }

    /// Recovers the data key(s) of a stored object, checking SSE-C keys (contract C.2). Every
    /// context and AAD is rebuilt from `id` (the request), never taken from the record.
    pub(crate) async fn open(
        &self,
        info: &SealInfo,
        id: &ObjectIdentity<'_>,
        customer: Option<&CustomerKey>,
        caller: &Caller,
    ) -> Result<Vec<PlainKey>, OpenFailure> {
        if info.is_customer() {
            let ck = customer.ok_or_else(|| {
                s3_error!(InvalidRequest, "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
            })?;
            let salt = B64
                .decode(info.customer_key_salt.as_deref().unwrap_or_default())
                .map_err(|_| OpenFailure::Integrity("its SSE-C check value is not base64"))?;
            let expected = info.customer_key_hmac.as_deref().unwrap_or_default();
            let actual = customer_key_hmac(&self.ssec_secret, &salt, ck);
            if constant_time::verify_slices_are_equal(expected.as_bytes(), actual.as_bytes()).is_err() {
                return Err(s3_error!(AccessDenied, "Access Denied").into());
            }
            let wrapped = info.wrapped_keys.first().ok_or(OpenFailure::Integrity("it has no wrapped data key"))?;
            let aad = if info.format < BINDING_FORMAT { SSEC_AAD_V1.to_vec() } else { customer_key_aad(id) };
            // The customer's key is the right one (its check value matched), so a data key that
            // does not open under it belongs to another object or was edited.
            return open_under_customer_key(ck, wrapped, &aad)
                .map(|k| vec![k])
                .map_err(|_| OpenFailure::Integrity("its SSE-C data key does not open for this object"));
        }
        if customer.is_some() {
            return Err(
                s3_error!(InvalidRequest, "The encryption parameters are not applicable to this object.").into()
            );
        }
        let blobs: Vec<Vec<u8>> = info
            .wrapped_keys
            .iter()
            .map(|b| B64.decode(b))
            .collect::<Result<_, _>>()
            .map_err(|_| OpenFailure::Integrity("a wrapped data key is not base64"))?;
        let expected_keys = if info.algorithm == AWS_KMS_DSSE { 2 } else { 1 };
        if blobs.len() != expected_keys {
            return Err(OpenFailure::Integrity("it has the wrong number of wrapped data keys"));
        }
        let ctx = kms_context(info, id);
        match info.algorithm.as_str() {
            AES256 => {
                let ks = self.keys.clone();
                let blob = blobs.into_iter().next().unwrap_or_default();
                let plain = stored_key_call(move || ks.decrypt_sse_s3_key(&blob, &ctx)).await?;
                Ok(vec![to_plain(&plain)?])
            }
            AWS_KMS if info.bucket_key_enabled() => {
                let salt = B64
                    .decode(info.bucket_key_salt.as_deref().unwrap_or_default())
                    .map_err(|_| OpenFailure::Integrity("its bucket-key salt is not base64"))?;
                let bk = self.open_bucket_key(info, &ctx, &blobs[0], caller).await?;
                Ok(vec![derive_object_key(&bk[..], &salt)?])
            }
            AWS_KMS | AWS_KMS_DSSE => {
                let mut out = Vec::with_capacity(blobs.len());
                for blob in blobs {
                    let ks = self.keys.clone();
                    let ctx = ctx.clone();
                    let caller = caller.clone();
                    let plain = stored_key_call(move || ks.decrypt_data_key(&blob, &ctx, &caller)).await?;
                    out.push(to_plain(&plain)?);
                }
                Ok(out)
            }
            _ => Err(OpenFailure::Integrity("its encryption mode is unknown")),
        }
    }

    async fn open_bucket_key(
        &self,
        info: &SealInfo,
        ctx: &BTreeMap<String, String>,
        blob: &[u8],
        caller: &Caller,
    ) -> Result<PlainKey, OpenFailure> {
        // The cache is keyed by the blob *and* the context it opened under, so a bucket key
        // opened for one bucket is never reused for a record that names another bucket's blob.
        let id = format!(
            "{}\u{0}{}\u{0}{}",
            B64.encode(blob),
            serde_json::to_string(ctx).unwrap_or_default(),
            caller.access_key_id
        );
        let cached = {
            let opened = self.bucket_keys.opened.lock().unwrap_or_else(|e| e.into_inner());
            opened.get(&id).filter(|(_, at)| at.elapsed() < self.bucket_keys.ttl).map(|(k, _)| k.clone())
        };
        if let Some(k) = cached {
            self.bucket_keys.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ks = self.keys.clone();
            let arn = info.key_arn.clone().unwrap_or_default();
            key_call(move || ks.check_key_usable(&arn)).await?;
            return Ok(k);
        }
        self.bucket_keys.misses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ks = self.keys.clone();
        let ctx = ctx.clone();
        let caller = caller.clone();
        let blob = blob.to_vec();
        let plain = to_plain(&stored_key_call(move || ks.decrypt_data_key(&blob, &ctx, &caller)).await?)?;
        self.bucket_keys.opened.lock().unwrap_or_else(|e| e.into_inner()).insert(id, (plain.clone(), Instant::now()));
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_from_one_bucket_key_differ_by_salt() {
        let bk = [9u8; 32];
        let a = derive_object_key(&bk, &[1u8; 32]).unwrap();
        let b = derive_object_key(&bk, &[2u8; 32]).unwrap();
        assert_ne!(*a, *b);
        assert_eq!(*a, *derive_object_key(&bk, &[1u8; 32]).unwrap());
    }

    #[test]
    fn customer_wrapped_key_opens_only_with_that_key() {
        let ck = CustomerKey { key: Zeroizing::new([3u8; 32]), key_md5: String::new() };
        let other = CustomerKey { key: Zeroizing::new([4u8; 32]), key_md5: String::new() };
        let dek = [5u8; 32];
        let a = customer_key_aad(&ObjectIdentity::new("b", "a"));
        let w = seal_under_customer_key(&ck, &dek, &a).unwrap();
        assert_eq!(*open_under_customer_key(&ck, &w, &a).unwrap(), dek);
        assert_eq!(open_under_customer_key(&other, &w, &a).unwrap_err().code().as_str(), "AccessDenied");
        assert!(!w.contains(&B64.encode(dek)));
        // Bound to the object: the same customer key does not open it for another object, nor
        // under the format-1 AAD.
        assert!(open_under_customer_key(&ck, &w, &customer_key_aad(&ObjectIdentity::new("b", "b"))).is_err());
        assert!(open_under_customer_key(&ck, &w, SSEC_AAD_V1).is_err());
    }
}
