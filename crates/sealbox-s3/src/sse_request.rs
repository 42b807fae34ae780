//! Server-side encryption settings: what a request asks for, what a bucket defaults to, and the
//! rules that combine them (contract C.1, C.2, C.6). Pure: no keys are touched here.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};
use s3s::{s3_error, S3Result};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub(crate) const AES256: &str = "AES256";
pub(crate) const AWS_KMS: &str = "aws:kms";
pub(crate) const AWS_KMS_DSSE: &str = "aws:kms:dsse";

/// A customer-provided key (SSE-C): 32 bytes, never stored, never logged.
pub(crate) struct CustomerKey {
    pub key: Zeroizing<[u8; 32]>,
    /// base64 MD5 of the key, as the client sent (and as we echo).
    pub key_md5: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerKey").field("key", &"<redacted>").field("key_md5", &self.key_md5).finish()
    }
}

/// Parses the SSE-C trio (also the copy-source trio). `None` when no header is present.
pub(crate) fn parse_customer_key(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> S3Result<Option<CustomerKey>> {
    if algorithm.is_none() && key.is_none() && key_md5.is_none() {
        return Ok(None);
    }
    let algorithm = algorithm.ok_or_else(|| {
        s3_error!(InvalidArgument, "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
    })?;
    if algorithm != AES256 {
        return Err(s3_error!(InvalidEncryptionAlgorithmError, "The encryption algorithm specified is not valid."));
    }
    let key = key.ok_or_else(|| {
        s3_error!(InvalidArgument, "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
    })?;
    let raw = Zeroizing::new(
        B64.decode(key.trim())
            .map_err(|_| s3_error!(InvalidArgument, "The secret key was invalid for the specified algorithm."))?,
    );
    if raw.len() != 32 {
        return Err(s3_error!(InvalidArgument, "The secret key was invalid for the specified algorithm."));
    }
    let computed = B64.encode(Md5::digest(&raw[..]));
    match key_md5 {
        Some(m) if m.trim() == computed => {}
        Some(_) => return Err(s3_error!(InvalidArgument, "The calculated MD5 hash of the key did not match the hash that was provided.")),
        None => {
            return Err(s3_error!(
                InvalidArgument,
                "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."
            ))
        }
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&raw);
    Ok(Some(CustomerKey { key, key_md5: computed }))
}

/// `x-amz-server-side-encryption-context`: base64 of a JSON object of string pairs.
pub(crate) fn parse_context(header: Option<&str>) -> S3Result<BTreeMap<String, String>> {
    let Some(h) = header else {
        return Ok(BTreeMap::new());
    };
    let bad = || {
        s3_error!(InvalidArgument, "The encryption context header is not valid: it must be base64-encoded UTF-8 JSON of string key/value pairs")
    };
    let json = B64.decode(h.trim()).map_err(|_| bad())?;
    let map: BTreeMap<String, String> = serde_json::from_slice(&json).map_err(|_| bad())?;
    if map.contains_key("aws:s3:arn") {
        return Err(s3_error!(InvalidArgument, "The encryption context may not override aws:s3:arn"));
    }
    Ok(map)
}

/// What the encryption headers of a write ask for.
#[derive(Debug, Default)]
pub(crate) struct SseHeaders<'a> {
    pub algorithm: Option<&'a str>,
    pub kms_key_id: Option<&'a str>,
    pub context: Option<&'a str>,
    pub bucket_key: Option<bool>,
    pub customer: Option<CustomerKey>,
}

/// The encryption a write will actually get.
#[derive(Debug)]
pub(crate) enum SseMode {
    S3,
    Kms { key: Option<String>, context: BTreeMap<String, String>, bucket_key: bool },
    Dsse { key: Option<String>, context: BTreeMap<String, String> },
    Customer(CustomerKey),
}

/// A bucket's default encryption (PutBucketEncryption), stored as JSON in the bucket record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BucketDefault {
    pub algorithm: String,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub bucket_key: bool,
}

impl BucketDefault {
    pub(crate) fn validate(&self) -> S3Result<()> {
        match self.algorithm.as_str() {
            AES256 if self.kms_key_id.is_some() => Err(s3_error!(
                InvalidArgument,
                "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse"
            )),
            AES256 | AWS_KMS | AWS_KMS_DSSE => Ok(()),
            _ => Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            )),
        }
    }
}

/// Precedence (contract C.6): request headers (incl. SSE-C) > bucket default > SSE-S3.
pub(crate) fn resolve_mode(h: SseHeaders<'_>, default: Option<&BucketDefault>) -> S3Result<SseMode> {
    let kms_only = h.kms_key_id.is_some() || h.context.is_some();
    if let Some(c) = h.customer {
        if h.algorithm.is_some() || kms_only {
            return Err(s3_error!(InvalidArgument, "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"));
        }
        return Ok(SseMode::Customer(c));
    }
    let context = parse_context(h.context)?;
    match h.algorithm {
        Some(AES256) if kms_only => Err(s3_error!(InvalidArgument, "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")),
        Some(AES256) => Ok(SseMode::S3),
        Some(AWS_KMS) => Ok(SseMode::Kms {
            key: h.kms_key_id.map(str::to_owned),
            context,
            bucket_key: h.bucket_key.unwrap_or_else(|| default.is_some_and(|d| d.algorithm == AWS_KMS && d.bucket_key)),
        }),
        // Bucket keys do not apply to DSSE-KMS: the header is ignored, never echoed (C.7).
        Some(AWS_KMS_DSSE) => Ok(SseMode::Dsse { key: h.kms_key_id.map(str::to_owned), context }),
        Some(other) => Err(s3_error!(InvalidArgument, "The encryption method specified is not supported: {other}")),
        None if kms_only => Err(s3_error!(InvalidArgument, "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")),
        None => Ok(match default {
            Some(d) if d.algorithm == AWS_KMS => SseMode::Kms {
                key: d.kms_key_id.clone(),
                context,
                bucket_key: h.bucket_key.unwrap_or(d.bucket_key),
            },
            Some(d) if d.algorithm == AWS_KMS_DSSE => SseMode::Dsse { key: d.kms_key_id.clone(), context },
            _ => SseMode::S3,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_headers(k: &[u8]) -> (String, String) {
        (B64.encode(k), B64.encode(Md5::digest(k)))
    }

    #[test]
    fn customer_key_rules() {
        let (k, m) = key_headers(&[7u8; 32]);
        assert!(parse_customer_key(Some("AES256"), Some(&k), Some(&m)).unwrap().is_some());
        assert!(parse_customer_key(None, None, None).unwrap().is_none());
        let code = |r: S3Result<Option<CustomerKey>>| r.unwrap_err().code().as_str().to_owned();
        assert_eq!(code(parse_customer_key(Some("AES128"), Some(&k), Some(&m))), "InvalidEncryptionAlgorithmError");
        let (short, short_md5) = key_headers(&[1u8; 16]);
        assert_eq!(code(parse_customer_key(Some("AES256"), Some(&short), Some(&short_md5))), "InvalidArgument");
        assert_eq!(code(parse_customer_key(Some("AES256"), Some(&k), Some("AAAA"))), "InvalidArgument");
        assert_eq!(code(parse_customer_key(Some("AES256"), Some(&k), None)), "InvalidArgument");
        assert_eq!(code(parse_customer_key(Some("AES256"), Some("***"), Some(&m))), "InvalidArgument");
    }

    #[test]
    fn precedence_and_validation() {
        let kms_default =
            BucketDefault { algorithm: AWS_KMS.into(), kms_key_id: Some("alias/x".into()), bucket_key: true };
        match resolve_mode(SseHeaders::default(), Some(&kms_default)).unwrap() {
            SseMode::Kms { key, bucket_key, .. } => {
                assert_eq!(key.as_deref(), Some("alias/x"));
                assert!(bucket_key);
            }
            m => panic!("{m:?}"),
        }
        // Request headers beat the default, both ways.
        assert!(matches!(
            resolve_mode(SseHeaders { algorithm: Some(AES256), ..Default::default() }, Some(&kms_default)).unwrap(),
            SseMode::S3
        ));
        assert!(matches!(
            resolve_mode(SseHeaders { bucket_key: Some(false), ..Default::default() }, Some(&kms_default)).unwrap(),
            SseMode::Kms { bucket_key: false, .. }
        ));
        assert!(matches!(resolve_mode(SseHeaders::default(), None).unwrap(), SseMode::S3));
        let err = |h| resolve_mode(h, None).unwrap_err().code().as_str().to_owned();
        assert_eq!(err(SseHeaders { algorithm: Some("aws:fsx"), ..Default::default() }), "InvalidArgument");
        assert_eq!(
            err(SseHeaders { algorithm: Some(AES256), kms_key_id: Some("k"), ..Default::default() }),
            "InvalidArgument"
        );
        assert_eq!(err(SseHeaders { kms_key_id: Some("k"), ..Default::default() }), "InvalidArgument");
        assert_eq!(
            err(SseHeaders { algorithm: Some(AWS_KMS), context: Some("not base64!"), ..Default::default() }),
            "InvalidArgument"
        );
        let ctx = B64.encode(br#"{"aws:s3:arn":"x"}"#);
        assert_eq!(
            err(SseHeaders { algorithm: Some(AWS_KMS), context: Some(&ctx), ..Default::default() }),
            "InvalidArgument"
        );
        let ctx = B64.encode(br#"{"team":"blue"}"#);
        match resolve_mode(SseHeaders { algorithm: Some(AWS_KMS), context: Some(&ctx), ..Default::default() }, None)
            .unwrap()
        {
            SseMode::Kms { context, .. } => assert_eq!(context["team"], "blue"),
            m => panic!("{m:?}"),
        }
        assert!(BucketDefault { algorithm: AES256.into(), kms_key_id: Some("k".into()), bucket_key: false }
            .validate()
            .is_err());
    }
}
