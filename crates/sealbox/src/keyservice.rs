//! The built-in KMS behind the S3 layer's `KeyService`: every GenerateDataKey/Decrypt S3 makes on
//! a user's behalf is authorised against the key policy and the user's identity policies (with
//! kms:ViaService = s3), counted for metrics, and recorded in the audit trail before its result
//! is released: a call whose record cannot be made durable fails with KMSInternalException (S3
//! answers 500 `KMS.KMSInternalException`) and its data key is dropped (zeroized) unused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sealbox_kms::api::AuthzRequest;
use sealbox_kms::spec::GrantOperation;
use sealbox_kms::{KeyRecord, Kms, KmsError};
use sealbox_policy::{kms_allowed, Decision, PolicyDocument, PolicyKind, RequestContext};
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

/// Identity policies of the user behind `principal_arn` (none for root). Fails closed: when
/// they cannot be read as stored (a row failed its MAC, a document no longer parses) the user
/// gets one policy that denies everything, never "no policy".
pub fn identity_policies(meta: &MetaStore, principal_arn: &str) -> Vec<PolicyDocument> {
    match try_identity_policies(meta, principal_arn) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(principal = principal_arn, error = %e, "identity policies unusable; denying everything");
            vec![deny_everything()]
        }
    }
}

/// Identity policies, or why they cannot be used.
pub fn try_identity_policies(meta: &MetaStore, principal_arn: &str) -> Result<Vec<PolicyDocument>, String> {
    let Some(user) = user_name_of(principal_arn) else { return Ok(Vec::new()) };
    meta.user_policies(user)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(name, doc)| {
            PolicyDocument::parse_for(&doc, PolicyKind::Identity)
                .map_err(|e| format!("stored policy {name} of IAM user {user} no longer parses: {e}"))
        })
        .collect()
}

const DENY_EVERYTHING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

fn deny_everything() -> PolicyDocument {
    // A constant document, checked by a unit test; it cannot fail to parse.
    PolicyDocument::parse_for(DENY_EVERYTHING, PolicyKind::Identity).expect("constant deny-all policy parses")
}

/// AWS KMS authorisation: an explicit Deny in the key policy or an identity policy refuses;
/// otherwise the key policy allowing the principal (directly, or its account when an identity
/// policy allows too), or a grant of the key allowing the request (looked up only then), allows it. Grants never
/// override a Deny (AWS: "an explicit deny in any of these policies overrides an allow").
pub fn authorize_kms(meta: &MetaStore, principal_arn: &str, request: &AuthzRequest<'_>) -> Result<(), KmsError> {
    let action = request.action;
    let resource = request.resource;
    let mut ctx = RequestContext::new(principal_arn, ACCOUNT_ID, action, resource);
    ctx.add_value("kms:CallerAccount", ACCOUNT_ID);
    for (k, v) in request.conditions {
        ctx.add_value(k, v.clone());
    }
    // Unusable identity policies refuse the call (KMSInternalException) instead of being skipped.
    let identity = try_identity_policies(meta, principal_arn).map_err(KmsError::Internal)?;
    let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
    let decision = match request.key {
        Some(k) => {
            let policy = PolicyDocument::parse_for(&k.policy, PolicyKind::Resource)
                .map_err(|e| KmsError::Internal(format!("stored key policy no longer parses: {e}")))?;
            kms_allowed(&policy, &identity_refs, &ctx)
        }
        // Account-level operations (CreateKey, ListKeys...): identity policies decide; root may.
        None if ctx.is_root() => Decision::Allow,
        None => sealbox_policy::evaluate(
            &ctx,
            &identity_refs.iter().map(|p| (*p, PolicyKind::Identity)).collect::<Vec<_>>(),
        ),
    };
    let allowed = match decision {
        Decision::Allow => true,
        Decision::Deny { explicit: true } => false,
        Decision::Deny { explicit: false } => (request.grant_allows)()?,
    };
    if allowed {
        Ok(())
    } else {
        Err(KmsError::AccessDenied(format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} because no identity-based policy, key policy or grant allows the {action} action"
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
        // A grant to the user for this operation counts here too, as it does in AWS for calls
        // S3 makes on the user's behalf.
        let operation = action.strip_prefix("kms:").and_then(GrantOperation::parse);
        let grant_allows = || match operation {
            Some(op) => self.kms.grant_allows(&caller.user_arn, key, op, Some(context)),
            None => Ok(false),
        };
        let request =
            AuthzRequest { action, resource: &arn, key: Some(key), conditions: &extra, grant_allows: &grant_allows };
        authorize_kms(&self.meta, &caller.user_arn, &request).map_err(|e| KeyError {
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

    fn generate_sse_s3_key(&self, context: &BTreeMap<String, String>) -> Result<GeneratedKey, KeyError> {
        let g = self.kms.generate_sse_s3_key_for(context).map_err(key_error)?;
        let mut plaintext = Zeroizing::new([0u8; 32]);
        plaintext.copy_from_slice(&g.plaintext);
        Ok(GeneratedKey { plaintext, ciphertext_blob: g.ciphertext_blob, key_arn: g.key_arn })
    }

    fn decrypt_sse_s3_key(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        Ok(self.kms.decrypt_sse_s3_key_for(blob, context).map_err(key_error)?.plaintext)
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

#[cfg(test)]
mod tests {
    use super::*;
    use sealbox_store::UserRecord;

    const ALICE: &str = "arn:aws:iam::000000000000:user/alice";

    struct Setup {
        _dir: tempfile::TempDir,
        meta: MetaStore,
        key: KeyRecord,
    }

    fn setup(identity_policy: Option<&str>, key_policy: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let meta = MetaStore::open(&dir.path().join("meta.db")).unwrap();
        meta.create_user(&UserRecord {
            name: "alice".into(),
            user_id: "AIDAALICE".into(),
            path: "/".into(),
            created_ms: 0,
        })
        .unwrap();
        if let Some(p) = identity_policy {
            meta.put_user_policy("alice", "p", p).unwrap();
        }
        let kms = Kms::open(
            &dir.path().join("kms.db"),
            sealbox_kms::RootKey::from_bytes(&[1u8; 32]).unwrap(),
            Arc::new(sealbox_kms::FakeClock::at(1_800_000_000)),
            sealbox_kms::KmsConfig { account_id: ACCOUNT_ID.into(), region: "us-east-1".into() },
        )
        .unwrap();
        let key = kms.create_key("", key_policy, &[]).unwrap();
        Setup { _dir: dir, meta, key }
    }

    fn decrypt(s: &Setup, grant_allows: bool) -> bool {
        let conditions = [("kms:EncryptionContext:app".to_owned(), "x".to_owned())];
        let grant = move || Ok(grant_allows);
        let request = AuthzRequest {
            action: "kms:Decrypt",
            resource: "arn",
            key: Some(&s.key),
            conditions: &conditions,
            grant_allows: &grant,
        };
        authorize_kms(&s.meta, ALICE, &request).is_ok()
    }

    const DENY_DECRYPT: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;

    /// AWS's order: an explicit Deny (identity or key policy) refuses even with a grant; with no
    /// Deny, a grant allows what no policy does; a policy allows without a grant.
    #[test]
    fn grants_allow_but_never_beat_an_explicit_deny() {
        let plain = setup(None, None);
        assert!(!decrypt(&plain, false), "the default key policy delegates to IAM, and IAM allows nothing");
        assert!(decrypt(&plain, true), "a grant allows it");
        let denied_by_iam = setup(Some(DENY_DECRYPT), None);
        assert!(!decrypt(&denied_by_iam, true), "an identity-policy Deny beats the grant");
        let key_deny = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::000000000000:root"}},"Action":"kms:*","Resource":"*"}},{{"Effect":"Deny","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:EncryptionContext:app":"x"}}}}}}]}}"#
        );
        let denied_by_key = setup(None, Some(&key_deny));
        assert!(!decrypt(&denied_by_key, true), "a key-policy Deny (on the context) beats the grant");
        let key_allow = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
        );
        assert!(decrypt(&setup(None, Some(&key_allow)), false), "the key policy alone allows");
        let iam_allow = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"x"}}}]}"#;
        assert!(
            decrypt(&setup(Some(iam_allow), None), false),
            "IAM allows through the default key policy, on the context"
        );
    }

    #[test]
    fn fail_closed_policy_denies_everything() {
        let allow = PolicyDocument::parse_for(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let deny = deny_everything();
        let ctx = RequestContext::new("arn:aws:iam::000000000000:user/u", ACCOUNT_ID, "kms:Decrypt", "*");
        assert!(sealbox_policy::evaluate(&ctx, &[(&allow, PolicyKind::Identity)]).is_allowed());
        let both = [(&allow, PolicyKind::Identity), (&deny, PolicyKind::Identity)];
        assert!(!sealbox_policy::evaluate(&ctx, &both).is_allowed());
    }
}
