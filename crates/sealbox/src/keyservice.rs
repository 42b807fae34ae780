//! The built-in KMS behind the S3 layer's `KeyService`: every GenerateDataKey/Decrypt S3 makes on
//! a user's behalf is authorised against the key policy and the user's identity policies (with
//! kms:ViaService = s3), counted for metrics, and recorded in the audit trail before its result
//! is released: a call whose record cannot be made durable fails with KMSInternalException (S3
//! answers 500 `KMS.KMSInternalException`) and its data key is dropped (zeroized) unused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sealbox_kms::{KeyRecord, Kms, KmsError};
use sealbox_policy::{kms_allowed, PolicyDocument, PolicyKind, RequestContext};
use sealbox_s3::{Caller, GeneratedKey, KeyError, KeyService};
use sealbox_store::MetaStore;
use zeroize::Zeroizing;

use crate::iam::ACCOUNT_ID;

/// KMS calls S3 made, by operation (the bucket-keys feature shows here).
#[derive(Default)]
pub struct S3KmsCalls {
    pub generate_data_key: AtomicU64,
    pub decrypt: AtomicU64,
}

pub struct KmsKeys {
    pub kms: Arc<Kms>,
    pub meta: Arc<MetaStore>,
    pub calls: Arc<S3KmsCalls>,
    /// Writes the call's record durably; `Err` means the call must be refused.
    pub audit: Arc<dyn Fn(AuditedKmsCall) -> Result<(), crate::audit_glue::AuditRefused> + Send + Sync>,
}

/// A KMS call S3 made for a user, for the audit trail.
pub struct AuditedKmsCall {
    pub operation: &'static str,
    pub caller: Caller,
    pub key_arn: Option<String>,
    pub context: BTreeMap<String, String>,
    pub error: Option<(String, String)>,
}

/// The call ran but its audit record could not be written: nothing of it is released.
fn audit_refused() -> KeyError {
    KeyError {
        aws_type: "KMSInternalException".to_owned(),
        message: crate::audit_glue::AUDIT_UNAVAILABLE.to_owned(),
        access_denied: false,
    }
}

fn key_error(e: KmsError) -> KeyError {
    KeyError { aws_type: e.aws_type().to_owned(), message: e.to_string(), access_denied: false }
}

/// The IAM user name in `arn:aws:iam::<acct>:user/<path>/<name>`, if the ARN names a user.
pub fn user_name_of(arn: &str) -> Option<&str> {
    let rest = arn.split(":user/").nth(1)?;
    rest.rsplit('/').next()
}

/// Identity policies of the user behind `principal_arn` (none for root).
pub fn identity_policies(meta: &MetaStore, principal_arn: &str) -> Vec<PolicyDocument> {
    let Some(user) = user_name_of(principal_arn) else { return Vec::new() };
    meta.user_policies(user)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, doc)| PolicyDocument::parse_for(&doc, PolicyKind::Identity).ok())
        .collect()
}

/// AWS KMS authorisation: the key policy (and identity policies when it delegates to the account).
pub fn authorize_kms(
    meta: &MetaStore,
    principal_arn: &str,
    action: &str,
    key: Option<&KeyRecord>,
    resource: &str,
    extra: &[(String, String)],
) -> Result<(), KmsError> {
    let mut ctx = RequestContext::new(principal_arn, ACCOUNT_ID, action, resource);
    ctx.add_value("kms:CallerAccount", ACCOUNT_ID);
    for (k, v) in extra {
        ctx.add_value(k, v.clone());
    }
    let identity = identity_policies(meta, principal_arn);
    let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
    let allowed = match key {
        Some(k) => {
            let policy = PolicyDocument::parse_for(&k.policy, PolicyKind::Resource)
                .map_err(|e| KmsError::Internal(format!("stored key policy no longer parses: {e}")))?;
            kms_allowed(&policy, &identity_refs, &ctx).is_allowed()
        }
        // Account-level operations (CreateKey, ListKeys...): identity policies decide; root may.
        None => {
            ctx.is_root()
                || sealbox_policy::evaluate(
                    &ctx,
                    &identity_refs.iter().map(|p| (*p, PolicyKind::Identity)).collect::<Vec<_>>(),
                )
                .is_allowed()
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(KmsError::AccessDenied(format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} because no identity-based or key policy allows the {action} action"
        )))
    }
}

impl KmsKeys {
    fn authorize_via_s3(
        &self,
        caller: &Caller,
        action: &str,
        key: &KeyRecord,
        context: &BTreeMap<String, String>,
    ) -> Result<(), KeyError> {
        let mut extra = vec![("kms:ViaService".to_owned(), format!("s3.{}.amazonaws.com", self.kms.config.region))];
        for (k, v) in context {
            extra.push((format!("kms:EncryptionContext:{k}"), v.clone()));
            extra.push(("kms:EncryptionContextKeys".to_owned(), k.clone()));
        }
        let arn = self.kms.key_arn(&key.key_id);
        authorize_kms(&self.meta, &caller.user_arn, action, Some(key), &arn, &extra).map_err(|e| KeyError {
            aws_type: e.aws_type().to_owned(),
            message: e.to_string(),
            access_denied: true,
        })
    }

    fn audit(
        &self,
        operation: &'static str,
        caller: &Caller,
        key_arn: Option<String>,
        context: &BTreeMap<String, String>,
        error: Option<&KeyError>,
    ) -> Result<(), KeyError> {
        (self.audit)(AuditedKmsCall {
            operation,
            caller: caller.clone(),
            key_arn,
            context: context.clone(),
            error: error.map(|e| (e.aws_type.clone(), e.message.clone())),
        })
        .map_err(|_| audit_refused())
    }
}

impl KeyService for KmsKeys {
    fn generate_data_key(
        &self,
        key: Option<&str>,
        context: &BTreeMap<String, String>,
        caller: &Caller,
    ) -> Result<GeneratedKey, KeyError> {
        let result = (|| {
            let rec = match key {
                Some(k) => self.kms.resolve(k, true),
                None => self.kms.s3_default_key(),
            }
            .map_err(key_error)?;
            self.authorize_via_s3(caller, "kms:GenerateDataKey", &rec, context)?;
            let g = self.kms.generate_data_key_with(&rec, 32, context).map_err(key_error)?;
            let mut plaintext = Zeroizing::new([0u8; 32]);
            plaintext.copy_from_slice(&g.plaintext);
            Ok(GeneratedKey { plaintext, ciphertext_blob: g.ciphertext_blob, key_arn: g.key_arn })
        })();
        self.calls.generate_data_key.fetch_add(1, Ordering::Relaxed);
        self.audit(
            "GenerateDataKey",
            caller,
            result.as_ref().ok().map(|g| g.key_arn.clone()),
            context,
            result.as_ref().err(),
        )?;
        result
    }

    fn decrypt_data_key(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
        caller: &Caller,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let mut arn = None;
        let result = (|| {
            let (key_id, _) = Kms::blob_key_info(blob)
                .ok_or_else(|| key_error(KmsError::InvalidCiphertext("The ciphertext is invalid.".into())))?;
            let rec = self.kms.key(&key_id).map_err(key_error)?.ok_or_else(|| {
                key_error(KmsError::NotFound(format!("Key '{}' does not exist", self.kms.key_arn(&key_id))))
            })?;
            arn = Some(self.kms.key_arn(&key_id));
            self.authorize_via_s3(caller, "kms:Decrypt", &rec, context)?;
            Ok(self.kms.decrypt_data_key(blob, context).map_err(key_error)?.plaintext)
        })();
        self.calls.decrypt.fetch_add(1, Ordering::Relaxed);
        self.audit("Decrypt", caller, arn, context, result.as_ref().err())?;
        result
    }

    fn generate_sse_s3_key(&self) -> Result<GeneratedKey, KeyError> {
        let g = self.kms.generate_sse_s3_key().map_err(key_error)?;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        plaintext.copy_from_slice(&g.plaintext);
        Ok(GeneratedKey { plaintext, ciphertext_blob: g.ciphertext_blob, key_arn: g.key_arn })
    }

    fn decrypt_sse_s3_key(&self, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        Ok(self.kms.decrypt_sse_s3_key(blob).map_err(key_error)?.plaintext)
    }

    fn check_key_usable(&self, key_arn: &str) -> Result<(), KeyError> {
        let rec = self.kms.resolve(key_arn, true).map_err(key_error)?;
        self.kms.require_usable(&rec).map_err(key_error)
    }

    fn rewrap(&self, blob: &[u8], context: &BTreeMap<String, String>) -> Result<Option<Vec<u8>>, KeyError> {
        self.kms.rewrap_blob(blob, context).map_err(key_error)
    }

    fn material_version(&self, blob: &[u8]) -> Option<u32> {
        Kms::blob_key_info(blob).map(|(_, version)| version)
    }

    fn resolve_key_arn(&self, key: &str) -> Result<String, KeyError> {
        let rec = self.kms.resolve(key, true).map_err(key_error)?;
        Ok(self.kms.key_arn(&rec.key_id))
    }
}
