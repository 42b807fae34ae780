//! What the server writes to the audit trail (sealbox-audit): every KMS call (including those S3
//! makes for a user), every rotation and key destruction, every IAM call, every bucket-level
//! change and every denied request. Management records are durable before the response goes out.

use std::sync::Arc;

use sealbox_audit::{AuditLog, AuditRecord, Durability, Principal as AuditPrincipal, RequestContext};

use crate::identity::Principal;

pub fn principal(p: &Principal) -> AuditPrincipal {
    AuditPrincipal {
        identity_type: if p.is_root() { "Root".into() } else { "IAMUser".into() },
        principal_id: p.user_id.clone(),
        arn: p.arn.clone(),
        account_id: crate::iam::ACCOUNT_ID.into(),
        access_key_id: p.access_key_id.clone(),
        user_name: p.user_name.clone(),
    }
}

pub fn context(
    region: &str,
    source_ip: Option<String>,
    headers: Option<&http::HeaderMap>,
    request_id: &str,
) -> RequestContext {
    RequestContext {
        time: time::OffsetDateTime::now_utc(),
        region: region.to_owned(),
        source_ip: source_ip.unwrap_or_else(|| "127.0.0.1".into()),
        user_agent: headers
            .and_then(|h| h.get(http::header::USER_AGENT))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        request_id: request_id.to_owned(),
    }
}

/// Appends a record; management records wait for their fsync. A failed audit write is logged
/// loudly (the record's request has usually already been answered by then for async paths).
pub async fn write(log: &Arc<AuditLog>, record: AuditRecord, durable: bool) {
    let mode = if durable { Durability::Durable } else { Durability::Buffered };
    if let Err(e) = log.append_async(record, mode).await {
        tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN");
    }
}

/// Blocking variant, for code already on a blocking thread (the KMS calls S3 makes).
pub fn write_blocking(log: &AuditLog, record: AuditRecord) {
    if let Err(e) = log.append(record, Durability::Durable) {
        tracing::error!(error = %e, "AUDIT RECORD COULD NOT BE WRITTEN");
    }
}

/// S3 operations recorded as management events (bucket configuration and lifecycle).
pub fn is_s3_management(op: &str) -> bool {
    matches!(
        op,
        "CreateBucket"
            | "DeleteBucket"
            | "PutBucketEncryption"
            | "DeleteBucketEncryption"
            | "PutBucketPolicy"
            | "DeleteBucketPolicy"
            | "PutBucketVersioning"
    )
}
