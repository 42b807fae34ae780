//! The S3 access hook (s3s `S3Access`): runs after signature verification, before every S3
//! operation. It names the operation for metrics, tells the S3 layer who the caller is, and
//! evaluates identity and bucket policies with AWS's logic (explicit Deny > Allow > implicit deny).

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};
use sealbox_policy::{s3_allowed, PolicyDocument, PolicyKind, RequestContext};
use sealbox_s3::{CallerArn, RequestInfo};
use sealbox_store::MetaStore;

use crate::iam::ACCOUNT_ID;
use crate::identity::{KeyRing, Principal};
use crate::metrics::OperationSlot;
use crate::s3_actions::{action_for, resource_for};

/// Filled by the access hook with the authenticated principal, read by the router for auditing.
#[derive(Clone, Default)]
pub struct CallerSlot(pub Arc<std::sync::OnceLock<Principal>>);

pub struct SealboxAccess {
    pub keyring: Arc<KeyRing>,
    pub meta: Arc<MetaStore>,
    /// Bucket configuration changes (and, with data events on, object operations) are audited:
    /// refused while the trail cannot be written (see `audit_glue`).
    pub audit: Arc<sealbox_audit::AuditLog>,
    pub region: String,
    pub audit_data_events: bool,
}

/// Policies that apply to one request, loaded from the meta store.
struct Policies {
    identity: Vec<PolicyDocument>,
    bucket: Option<PolicyDocument>,
}

/// Why the policies of a request could not be used: the request is refused, never evaluated as
/// if a policy were absent.
enum PolicyLoadError {
    /// The bucket's row failed its integrity check (the store reported it).
    TamperedBucket(String),
    Other(String),
}

fn load_policies(meta: &MetaStore, user: Option<&str>, bucket: Option<&str>) -> Result<Policies, PolicyLoadError> {
    let identity = match user {
        Some(u) => meta
            .user_policies(u)
            .map_err(|e| PolicyLoadError::Other(e.to_string()))?
            .into_iter()
            .map(|(name, doc)| {
                PolicyDocument::parse_for(&doc, PolicyKind::Identity).map_err(|e| {
                    PolicyLoadError::Other(format!("stored policy {name} of user {u} no longer parses: {e}"))
                })
            })
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let bucket = match bucket {
        Some(b) => match meta.bucket(b) {
            Ok(rec) => match rec.and_then(|r| r.policy) {
                Some(text) => Some(
                    PolicyDocument::parse_for(&text, PolicyKind::Resource)
                        .map_err(|e| PolicyLoadError::Other(e.to_string()))?,
                ),
                None => None,
            },
            Err(e @ sealbox_store::StoreError::Tampered(_)) => {
                return Err(PolicyLoadError::TamperedBucket(e.to_string()))
            }
            Err(e) => return Err(PolicyLoadError::Other(e.to_string())),
        },
        None => None,
    };
    Ok(Policies { identity, bucket })
}

/// Operations that replace a bucket setting: the root user may run them on a bucket whose
/// settings failed their integrity check, which is how a tampered setting is put right (as on
/// AWS, where the root user can always replace or delete a bucket policy that locks it out).
fn replaces_bucket_setting(operation: &str) -> bool {
    matches!(
        operation,
        "PutBucketPolicy"
            | "DeleteBucketPolicy"
            | "PutBucketEncryption"
            | "DeleteBucketEncryption"
            | "PutBucketVersioning"
    )
}

/// The condition keys AWS fills in for S3 requests (contract C.10).
fn request_context(
    principal: Option<&Principal>,
    action: &str,
    resource: String,
    info: &RequestInfo,
    headers: &http::HeaderMap,
    query: Option<&str>,
) -> RequestContext {
    let mut ctx = match principal {
        Some(p) => RequestContext::new(p.arn.clone(), ACCOUNT_ID, action, resource),
        None => RequestContext::anonymous(action, resource),
    };
    ctx.add_value("aws:SecureTransport", if info.is_tls { "true" } else { "false" });
    if let Some(ip) = &info.source_ip {
        ctx.add_value("aws:SourceIp", ip.clone());
    }
    if let Some(p) = principal {
        if let Some(name) = &p.user_name {
            ctx.add_value("aws:username", name.clone());
        }
        ctx.add_value("aws:userid", p.user_id.clone());
    }
    let now = time::OffsetDateTime::now_utc();
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        ctx.add_value("aws:CurrentTime", t);
    }
    ctx.add_value("aws:EpochTime", now.unix_timestamp().to_string());
    for (header, key) in [
        ("x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"),
        ("x-amz-server-side-encryption-aws-kms-key-id", "s3:x-amz-server-side-encryption-aws-kms-key-id"),
        ("x-amz-server-side-encryption-customer-algorithm", "s3:x-amz-server-side-encryption-customer-algorithm"),
    ] {
        if let Some(v) = headers.get(header).and_then(|v| v.to_str().ok()) {
            ctx.add_value(key, v.to_owned());
        }
    }
    if let Some(q) = query {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            match k.as_ref() {
                "prefix" => ctx.add_value("s3:prefix", v.into_owned()),
                "delimiter" => ctx.add_value("s3:delimiter", v.into_owned()),
                "max-keys" => ctx.add_value("s3:max-keys", v.into_owned()),
                _ => {}
            }
        }
    }
    ctx
}

/// `x-amz-copy-source: /bucket/key?versionId=...` (URL-encoded) → (bucket, key).
fn copy_source(headers: &http::HeaderMap) -> Option<(String, String)> {
    let raw = headers.get("x-amz-copy-source")?.to_str().ok()?;
    let raw = raw.split('?').next()?;
    let decoded = urlencoding::decode(raw.trim_start_matches('/')).ok()?;
    let (b, k) = decoded.split_once('/')?;
    Some((b.to_owned(), k.to_owned()))
}

/// `x-amz-expected-bucket-owner` (and, for copies, `x-amz-source-expected-bucket-owner`): every
/// bucket here belongs to the one account, so any other account id is refused with AWS's 403.
fn check_expected_owners(headers: &http::HeaderMap) -> S3Result<()> {
    for name in ["x-amz-expected-bucket-owner", "x-amz-source-expected-bucket-owner"] {
        if let Some(v) = headers.get(name) {
            if v.to_str().ok().map(str::trim) != Some(ACCOUNT_ID) {
                tracing::info!(header = name, "request refused: the bucket belongs to another account");
                return Err(denied());
            }
        }
    }
    Ok(())
}

fn denied() -> s3s::S3Error {
    s3_error!(AccessDenied, "Access Denied")
}

#[async_trait::async_trait]
impl S3Access for SealboxAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let operation = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationSlot>() {
            let _ = slot.0.set(operation.clone());
        }
        let principal = match cx.credentials() {
            Some(c) => Some(self.keyring.principal(&c.access_key).ok_or_else(denied)?),
            None => None,
        };
        if let Some(p) = &principal {
            cx.extensions_mut().insert(CallerArn(p.arn.clone()));
            if let Some(slot) = cx.extensions_mut().get::<CallerSlot>() {
                let _ = slot.0.set(p.clone());
            }
        }
        let info = cx.extensions_mut().get::<RequestInfo>().cloned().unwrap_or_default();
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        if bucket.is_some() {
            check_expected_owners(cx.headers())?;
        }
        if let Some(op) = sealbox_s3::unmodeled_operation(cx.method(), key.is_some(), cx.uri().query()) {
            return Err(s3_error!(NotImplemented, "{op} is not implemented"));
        }
        // The root user with no bucket policy in play is always allowed: skip the store lookups.
        let is_root = principal.as_ref().is_some_and(Principal::is_root);
        let action = action_for(&operation);
        let mut checks = vec![(action, bucket.clone(), key.clone())];
        if operation == "CopyObject" || operation == "UploadPartCopy" {
            if let Some((sb, sk)) = copy_source(cx.headers()) {
                checks.push(("s3:GetObject", Some(sb), Some(sk)));
            }
        }
        for (action, bucket, key) in checks {
            let meta = self.meta.clone();
            let user = principal.as_ref().and_then(|p| p.user_name.clone());
            let b = bucket.clone();
            let loaded = tokio::task::spawn_blocking(move || load_policies(&meta, user.as_deref(), b.as_deref()))
                .await
                .map_err(|e| s3_error!(InternalError, "policy lookup failed: {e}"))?;
            let policies = match loaded {
                Ok(p) => p,
                Err(PolicyLoadError::TamperedBucket(_)) if is_root && replaces_bucket_setting(&operation) => continue,
                Err(PolicyLoadError::TamperedBucket(e) | PolicyLoadError::Other(e)) => {
                    return Err(s3_error!(InternalError, "The request was refused: {e}"));
                }
            };
            if is_root && policies.bucket.is_none() {
                continue;
            }
            let ctx = request_context(
                principal.as_ref(),
                action,
                resource_for(bucket.as_deref(), key.as_deref()),
                &info,
                cx.headers(),
                cx.uri().query(),
            );
            let identity: Vec<&PolicyDocument> = policies.identity.iter().collect();
            let decision = s3_allowed(&identity, policies.bucket.as_ref(), is_root, &ctx);
            if !decision.is_allowed() {
                tracing::info!(operation, action, resource = %ctx.resource, principal = %ctx.principal_arn, "access denied by policy");
                return Err(denied());
            }
        }
        self.audit_before(cx, &operation, principal.as_ref()).await
    }
}

impl SealboxAccess {
    /// An allowed operation that must be audited: refused while the trail cannot be written; a
    /// bucket configuration change first gets its durable intent record (the router writes the
    /// outcome with the same request id).
    async fn audit_before(
        &self,
        cx: &mut S3AccessContext<'_>,
        operation: &str,
        principal: Option<&Principal>,
    ) -> S3Result<()> {
        let management = crate::audit_glue::is_s3_management(operation);
        let data = self.audit_data_events && sealbox_audit::is_s3_data_event(operation);
        if !(management || data) {
            return Ok(());
        }
        let unavailable = || s3_error!(ServiceUnavailable, "{}", crate::audit_glue::AUDIT_UNAVAILABLE);
        if !management || principal.is_none() {
            return if self.audit.has_failed() { Err(unavailable()) } else { Ok(()) };
        }
        let Some(p) = principal else { return Ok(()) };
        let info = cx.extensions_mut().get::<RequestInfo>().cloned().unwrap_or_default();
        let rid = cx.extensions_mut().get::<crate::audit_glue::AuditRequestId>().map(|r| r.0.clone());
        let rid = rid.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let ctx = crate::audit_glue::context(&self.region, info.source_ip.clone(), Some(cx.headers()), &rid);
        let bucket = match cx.s3_path() {
            S3Path::Bucket { bucket } | S3Path::Object { bucket, .. } => bucket.to_string(),
            S3Path::Root => String::new(),
        };
        crate::audit_glue::AuditedCall::begin(
            &self.audit,
            &crate::audit_glue::principal(p),
            &ctx,
            sealbox_audit::EventSource::S3,
            operation,
            || serde_json::json!({ "bucketName": bucket }),
        )
        .await
        .map(|_| ())
        .map_err(|_| unavailable())
    }
}
