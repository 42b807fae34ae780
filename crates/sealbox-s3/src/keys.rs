//! What the S3 layer needs from a key service. The S3 layer knows nothing of how keys are stored:
//! the server plugs the built-in KMS in behind this trait (and tests could plug in another).

use std::collections::BTreeMap;

use s3s::{S3Error, S3ErrorCode};
use zeroize::Zeroizing;

/// Who is asking, for key policies and the audit trail of KMS calls S3 makes on a user's behalf.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub access_key_id: String,
    pub user_arn: String,
    pub source_ip: Option<String>,
    pub is_tls: bool,
}

/// A fresh data key: the plaintext (used once, then dropped) and its KMS-wrapped form.
pub struct GeneratedKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub ciphertext_blob: Vec<u8>,
    pub key_arn: String,
}

/// A KMS error as AWS names it, e.g. `DisabledException`; S3 answers `KMS.DisabledException`.
#[derive(Debug, Clone)]
pub struct KeyError {
    pub aws_type: String,
    pub message: String,
    /// Access denied by a key policy: S3 answers `AccessDenied` 403 instead of a KMS code.
    pub access_denied: bool,
}

impl From<KeyError> for S3Error {
    fn from(e: KeyError) -> Self {
        if e.access_denied {
            return S3Error::with_message(S3ErrorCode::AccessDenied, e.message);
        }
        let code = format!("KMS.{}", e.aws_type);
        let mut err = S3Error::with_message(S3ErrorCode::Custom(code.into()), e.message);
        let status = if e.aws_type == "KMSInternalException" {
            http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            http::StatusCode::BAD_REQUEST
        };
        err.set_status_code(status);
        err
    }
}

/// The key operations S3 server-side encryption uses. All calls block (local database).
pub trait KeyService: Send + Sync + 'static {
    /// GenerateDataKey (AES_256) under `key` (id, ARN, alias, alias ARN) or, for `None`, the
    /// AWS-managed `alias/aws/s3` key (created on first use).
    fn generate_data_key(
        &self,
        key: Option<&str>,
        context: &BTreeMap<String, String>,
        caller: &Caller,
    ) -> Result<GeneratedKey, KeyError>;
    /// Decrypt of a blob made by `generate_data_key` with the same context.
    fn decrypt_data_key(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        caller: &Caller,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// SSE-S3: a data key under the internal service key (not a customer key; rotated yearly),
    /// bound to `context` (the object's identity; empty for records from before bindings).
    fn generate_sse_s3_key(&self, context: &BTreeMap<String, String>) -> Result<GeneratedKey, KeyError>;
    fn decrypt_sse_s3_key(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// Fails with the KMS error a crypto call would give if the key is not usable right now
    /// (disabled, pending deletion, deleted). Used where a cached bucket key avoids a KMS call,
    /// so that disabling a key still takes effect at once.
    fn check_key_usable(&self, key_arn: &str) -> Result<(), KeyError>;
    /// Re-wraps a data-key blob (KMS or SSE-S3 service key) under its key's newest material;
    /// `None` when it already is.
    fn rewrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Option<Vec<u8>>, KeyError>;
    /// Resolves a key reference to its key ARN (NotFoundException if none).
    fn resolve_key_arn(&self, key: &str) -> Result<String, KeyError>;
    /// The key material version a data-key blob was wrapped with (read from the blob, no
    /// decryption), for the `x-sealbox-kms-key-version` response header; `None` if unknown.
    fn material_version(&self, _blob: &[u8]) -> Option<u32> {
        None
    }
}
